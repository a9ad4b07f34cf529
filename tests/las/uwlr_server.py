"""A test UWLR 2.2 leerlinggegevens server: a small WSGI app on 127.0.0.1.

It serves the published WSDL (``?wsdl``) and answers ``HaalLeerlinggegevens`` the way the
standard says a LAS does: the request is checked against the published schemas (SOAPAction,
the ``autorisatie`` header, ``leerlinggegevens_verzoek``), a wrong key gets a ``Client`` fault,
an unknown school ``<geengegevens/>``, a ``laatstontvangengegevens`` after the last change
``<geenwijzigingen/>``, and otherwise the school's pupils as EDEXML in the leerlinggegevens
namespace, streamed. Answers up to ``validate_up_to`` pupils are validated against the
published UWLR schema before they are sent (problems land in ``scenario.invalid``).

Scenarios for faults: ``fault-server``, ``fault-client``, ``http503`` (with Retry-After),
``http429`` (without), ``slow`` (waits ``delay`` seconds before answering), ``garbage``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from lxml import etree

from examples.synth import Synth, uwlr_answer_lines

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "adapters" / "las" / "xsd" / "uwlr-2.2"
NS = "http://www.edustandaard.nl/leerresultaten/2/leerlinggegevens"
NS_AUT = "http://www.edustandaard.nl/leerresultaten/2/autorisatie"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_schemas: dict[str, etree.XMLSchema] = {}


def uwlr_schema(name: str) -> etree.XMLSchema:
    if name not in _schemas:
        _schemas[name] = etree.XMLSchema(etree.parse(str(SPECS / "Schemas" / name), _PARSER))
    return _schemas[name]


@dataclass
class Scenario:
    synth: Synth = field(default_factory=lambda: Synth(pupils=40))
    key: str = "uwlr-test-key-0123456789"
    klantcode: str = "LD-TEST"
    mode: str = "ok"
    delay: float = 0.0
    changed_at: datetime = field(default_factory=lambda: datetime(2024, 10, 1, 8, 0))
    validate_up_to: int = 5000
    body: bytes | Path | None = None
    """A prepared answer sent as it is once the request passed its checks (for benchmarks)."""
    mangle: Callable[[str], str] | None = None
    """Changes the answer text before it is sent (bad records, hostile XML); not validated then."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def fault(code: str, text: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP}"><soap:Body><soap:Fault>'
            f"<faultcode>soap:{code}</faultcode><faultstring>{text}</faultstring></soap:Fault></soap:Body>"
            "</soap:Envelope>").encode()


def exception_answer(name: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'
            f'<leerlinggegevens_antwoord xmlns="{NS}"><{name}/></leerlinggegevens_antwoord></soap:Body>'
            "</soap:Envelope>").encode()


class App:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.url = ""

    def __call__(self, environ: dict[str, Any], start: Any) -> Iterator[bytes]:
        sc = self.scenario
        if environ["REQUEST_METHOD"] == "GET":
            if "wsdl" in environ.get("QUERY_STRING", "").lower():
                text = (SPECS / "wsdl" / "UWLR_Leerlinggegevens_v2p2.wsdl").read_text(encoding="utf-8")
                body = text.replace("http://localhost:8080/NOTDEFINEDYET", self.url).encode()
                start("200 OK", [("Content-Type", "text/xml; charset=utf-8")])
                return iter([body])
            start("405 Method Not Allowed", [("Content-Type", "text/plain")])
            return iter([b"POST a SOAP request"])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(min(length, 1 << 20))
        record: dict[str, Any] = {"soapaction": environ.get("HTTP_SOAPACTION")}
        sc.requests.append(record)
        if sc.mode == "slow":
            time.sleep(sc.delay)
        if sc.mode == "http503":
            start("503 Service Unavailable", [("Retry-After", "1"), ("Content-Type", "text/plain")])
            return iter([b"maintenance: pupil Jan Jansen"])
        if sc.mode == "http429":
            start("429 Too Many Requests", [("Content-Type", "text/plain")])
            return iter([b"slow down"])
        if sc.mode == "fault-server":
            return self._fault(start, "Server", "database of school 99XY (Jan Jansen) unavailable")
        try:
            env = etree.fromstring(raw, _PARSER)
        except etree.XMLSyntaxError:
            return self._fault(start, "Client", "not XML")
        header = env.find(f"{{{SOAP}}}Header/{{{NS_AUT}}}autorisatie")
        verzoek = env.find(f"{{{SOAP}}}Body/{{{NS}}}leerlinggegevens_verzoek")
        if (record["soapaction"] or "").strip('"') != "HaalLeerlinggegevens":
            return self._fault(start, "Client", "unknown SOAPAction")
        if header is None or not uwlr_schema("UWLR_Autorisatie_v2p2.xsd").validate(header):
            return self._fault(start, "Client", "autorisatie header missing or invalid")
        if verzoek is None or not uwlr_schema("UWLR_Leerlinggegevens_v2p2.xsd").validate(verzoek):
            return self._fault(start, "Client", "leerlinggegevens_verzoek invalid")
        get = lambda el, n, ns=NS: el.findtext(f"{{{ns}}}{n}")  # noqa: E731
        record.update(schooljaar=get(verzoek, "schooljaar"), brin=get(verzoek, "brincode"),
                      laatst=get(verzoek, "laatstontvangengegevens"),
                      key_ok=get(header, "autorisatiesleutel", NS_AUT) == sc.key,
                      klantcode=get(header, "klantcode", NS_AUT))
        if sc.mode == "fault-client" or not record["key_ok"]:
            return self._fault(start, "Client", "autorisatiesleutel onbekend")
        if sc.mode == "garbage":
            start("200 OK", [("Content-Type", "text/xml")])
            return iter([b"<soap:Envelope xmlns:soap='" + SOAP.encode() + b"'><soap:Body><oops"])
        start_ok = lambda: start("200 OK", [("Content-Type", "text/xml; charset=utf-8")])  # noqa: E731
        if record["brin"] != sc.synth.brin or sc.mode == "empty":
            start_ok()
            return iter([exception_answer("geengegevens")])
        if record["laatst"]:
            since = datetime.fromisoformat(record["laatst"].replace("Z", "+00:00")).replace(tzinfo=None)
            if since >= sc.changed_at:
                start_ok()
                return iter([exception_answer("geenwijzigingen")])
        synth = sc.synth
        if record["schooljaar"] != synth.schooljaar:
            synth = Synth(**{**synth.__dict__, "schooljaar": record["schooljaar"]})
        start_ok()
        if isinstance(sc.body, Path):
            return _file_chunks(sc.body)
        if sc.body is not None:
            return iter(sc.body[i:i + (1 << 16)] for i in range(0, len(sc.body), 1 << 16))
        if sc.mangle is not None:
            return iter([sc.mangle("".join(uwlr_answer_lines(synth))).encode()])
        if synth.pupils <= sc.validate_up_to:
            body = "".join(uwlr_answer_lines(synth)).encode()
            self._validate(body)
            return iter([body])
        return _chunks(uwlr_answer_lines(synth))

    def _fault(self, start: Any, code: str, text: str) -> Iterator[bytes]:
        start("500 Internal Server Error", [("Content-Type", "text/xml; charset=utf-8")])
        return iter([fault(code, text)])

    def _validate(self, body: bytes) -> None:
        env = etree.fromstring(body, _PARSER)
        antwoord = env.find(f"{{{SOAP}}}Body/{{{NS}}}leerlinggegevens_antwoord")
        xsd = uwlr_schema("UWLR_Leerlinggegevens_v2p2.xsd")
        if antwoord is None or not xsd.validate(antwoord):
            errors = [f"{e.path}: {e.type_name}" for e in xsd.error_log]
            # the EDEXML 2.1 schooljaar code list ends at 2024-2025; later years are the only accepted gap
            errors = [e for e in errors if "schooljaar" not in e]
            if antwoord is None or errors:
                self.scenario.invalid.extend(errors or ["no leerlinggegevens_antwoord"])


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            yield chunk


def _chunks(lines: Iterator[str], size: int = 1 << 16) -> Iterator[bytes]:
    buf: list[str] = []
    n = 0
    for line in lines:
        buf.append(line)
        n += len(line)
        if n >= size:
            yield "".join(buf).encode()
            buf, n = [], 0
    if buf:
        yield "".join(buf).encode()


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        return None


class UwlrServer:
    """Runs the app on a free port of 127.0.0.1 in a background thread."""

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.app = App(self.scenario)
        self.httpd = make_server("127.0.0.1", 0, self.app, server_class=_Threading, handler_class=_Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/uwlr/leerlinggegevens"
        self.app.url = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> UwlrServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
