"""UWLR 2.2 (Uitwisseling Leerlinggegevens en Resultaten) over SOAP as a PupilSource.

The request is built by zeep from the published WSDL and schemas, which ship with this module
(``xsd/uwlr-2.2``, unchanged; never fetched): ``HaalLeerlinggegevens`` for one school year and
school, with the required ``autorisatie`` SOAP header. The key comes from a secret reference.

The answer is a snapshot of the school year (no delete events). It is not deserialised into
objects: a 50,000-pupil answer would be held in memory whole. The body is streamed to an
anonymous temporary file (no name on disk; gone when closed), digested, and read record by
record with the same hardened EDEXML reader as the file export (the body is EDEXML 2.1 in the
leerlinggegevens namespace), so memory stays flat in the number of pupils.

``laatstontvangengegevens`` is the time of the request of the last run that was applied
completely (minus a margin for clock skew): a LAS with nothing new answers
``<geenwijzigingen/>`` and the run writes nothing. ``<geengegevens/>`` is an empty snapshot, which
the core's snapshot rail stops when the school had pupils.

Errors: timeouts, connection errors, 5xx without a fault, 429 and a ``Server`` fault are
``SourceUnavailable`` (retried here a few times with back-off, then the run ends and the next
one tries again); a ``Client`` fault, 401, 403 and 404 are ``SourceRefused``. Messages carry the
endpoint, the HTTP status and the fault code, never a response body or a fault text.

Vendors (Somtoday, ESIS, ParnasSys) differ only in settings: ``endpoint``, ``klantcode``,
``klantnaam`` and the key they issue. See README, "Reading from the LAS".
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, ClassVar

import requests
import zeep
import zeep.transports
from lxml import etree
from pydantic import BaseModel, Field, HttpUrl, model_validator

from adapters.las._cursor import Position, begin, digest_stream
from adapters.las._edex import SOAP_ENV, XSD_DIR, EdexReader, Scan, hardened_parser_options, refuse_doctype
from adapters.las._records import ReadsRecords
from adapters.las._uwlr_answer import DIALECT, NS
from connector.config import SecretRef
from connector.errors import ConfigError, RejectedRecord, SourceError, SourceRefused, SourceUnavailable
from connector.model import Frozen, Pupil, School
from connector.ports import Cursor, SourceContext, SourceRecord, SourceReport
from connector.retrying import retry_after, retrying

NS_AUT = "http://www.edustandaard.nl/leerresultaten/2/autorisatie"
WSDL = XSD_DIR / "uwlr-2.2" / "wsdl" / "UWLR_Leerlinggegevens_v2p2.wsdl"
BINDING = f"{{{NS}}}bndLeerlinggegevens"
CHUNK = 1 << 16
FAULT_LIMIT = 1 << 16
_SCHOOLJAAR = re.compile(r"^\d{4}-\d{4}$")

# zeep's own transport logs whole requests (with the authorisation key) and answers (with pupils'
# data) at DEBUG; this adapter posts through its own transport, and zeep's loggers stay quiet.
for _name in ("zeep", "zeep.transports", "zeep.wsdl"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class UwlrSettings(Frozen):
    endpoint: HttpUrl
    """The LAS's UWLR 2.2 leerlinggegevens service (its own URL per vendor and school)."""
    brin: str | None = Field(default=None, pattern=r"^\d{2}[A-Z]{2}$")
    dependancecode: str | None = Field(default=None, pattern=r"^\d{2}$")
    schoolkey: str | None = Field(default=None, min_length=1, max_length=256)
    schooljaar: str = "auto"
    """``2026-2027``, or ``auto``: the school year of the day of the run (from 1 August)."""
    klantcode: str = Field(min_length=1, max_length=64)
    klantnaam: str = Field(min_length=1, max_length=64)
    autorisatiesleutel: SecretRef
    xsdversie: str = "2.2"
    gegevenssetid: str | None = Field(default=None, min_length=1, max_length=64)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=300.0, gt=0)
    """Seconds without a byte from the LAS before the call is given up (a large school's answer
    takes a while to build)."""
    attempts: int = Field(default=3, ge=1, le=10)
    clock_margin_minutes: int = Field(default=10, ge=0)
    """``laatstontvangengegevens`` is set this much earlier than the last applied request, so
    a LAS whose clock runs ahead cannot hide a change."""
    ask_for_changes: bool = True
    """Send ``laatstontvangengegevens`` (false: always ask for the whole snapshot)."""
    verify: bool | Path = True
    """TLS verification: true, or a CA bundle file for a LAS with a private CA."""

    @model_validator(mode="after")
    def _school_given(self) -> UwlrSettings:
        if bool(self.brin) == bool(self.schoolkey):
            raise ValueError("give either brin (with an optional dependancecode) or schoolkey")
        if self.schooljaar != "auto" and not _SCHOOLJAAR.match(self.schooljaar):
            raise ValueError("schooljaar: 'auto' or a school year such as 2026-2027")
        return self


def school_year(today: date) -> str:
    """The Dutch school year a day falls in (1 August to 31 July)."""
    start = today.year if today.month >= 8 else today.year - 1
    return f"{start}-{start + 1}"


class _StreamingTransport(zeep.transports.Transport):
    """zeep's transport, posting with a streamed answer and without logging bodies. A redirect
    is never followed: the request carries the autorisatiesleutel, which would go with it."""

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> requests.Response:
        return self.session.post(address, data=message, headers=headers, timeout=self.operation_timeout,
                                 stream=True, allow_redirects=False)


class UwlrSource(ReadsRecords):
    """Asks one school's LAS for its pupils of one school year."""

    settings_model: ClassVar[type[BaseModel]] = UwlrSettings
    _clients: ClassVar[dict[tuple[Any, ...], zeep.Client]] = {}

    def __init__(self, settings: UwlrSettings, context: SourceContext) -> None:
        self.settings = settings
        self._pseudonymize = context.pseudonymize
        if context.secret is None:
            raise ConfigError("las: the UWLR source needs the secret resolver")
        self._secret = context.secret
        self._base = context.base
        self.report = SourceReport()
        self._position: Position | None = None
        self._scan = Scan()
        self._requested: str | None = None
        self._today = date.today
        self.endpoint = str(settings.endpoint)

    # -- port -------------------------------------------------------------------------------
    def cursor(self) -> Cursor | None:
        if self._position is None:
            return None
        return Position(self._position.snapshot, self._scan.records, self._position.extra).dump()

    def check(self) -> list[str]:
        try:
            self._key()
        except ConfigError as exc:
            return [str(exc)]
        try:
            with self._session() as session:
                response = session.get(self.endpoint, timeout=(self.settings.connect_timeout, 30), stream=True)
                response.close()
        except requests.RequestException as exc:
            return [f"UWLR endpoint {self._where()} is not reachable ({exc.__class__.__name__})"]
        if response.status_code in (401, 403):
            return [f"UWLR endpoint {self._where()} refuses this machine (HTTP {response.status_code})"]
        if response.status_code == 404:
            return [f"UWLR endpoint {self._where()} does not exist (HTTP 404); check the endpoint setting"]
        return []

    def _read(self, since: Cursor | None, resume: Cursor | None, raw: bool
              ) -> Iterator[Pupil | RejectedRecord | SourceRecord]:
        """Ask the LAS; ``since`` (the last applied run) sets ``laatstontvangengegevens``, and
        ``resume`` skips what an interrupted run staged from the same answer."""
        self.report = SourceReport()
        self._scan = Scan()
        applied = Position.load(since)
        last = applied.extra.get("requested") if applied and self.settings.ask_for_changes else None
        requested = datetime.now(UTC).replace(microsecond=0)
        with self._download(last) as body:
            refuse_doctype(body.read(65536), self._where())
            body.seek(0)
            snapshot = digest_stream(body)
            body.seek(0)
            # the cursor remembers this request's time: the next run asks for changes since it
            self._position, skip = begin(snapshot, resume, self.report, {"requested": requested.isoformat()})
            reader = EdexReader(DIALECT, self._where(), self._pseudonymize, self.report)
            root = f"{{{SOAP_ENV}}}Envelope"
            yield from reader.pupils(body, root=root, skip=skip, scan=self._scan, raw=raw)
        if self.report.school is None:  # an exception answer names no school: it is the one asked for
            s = self.settings
            self.report.school = School(brin=s.brin, dependancecode=s.dependancecode, schoolkey=s.schoolkey)
        if "geenwijzigingen" in self._scan.markers:
            self.report.unchanged = True
        elif "geengegevens" in self._scan.markers:
            self.report.warnings.append("the LAS answered geengegevens: no pupils for this school and year")
        elif self._scan.school is None:
            raise SourceError(f"{self._where()}: the answer holds no <leerlinggegevens> and no exception")

    # -- internals --------------------------------------------------------------------------
    def _where(self) -> str:
        """The endpoint for messages: scheme, host and path, never a query string."""
        u = self.settings.endpoint
        return f"{u.scheme}://{u.host}{':' + str(u.port) if u.port else ''}{u.path or ''}"

    def _key(self) -> str:
        key = self._secret(self.settings.autorisatiesleutel).decode()
        if not 1 <= len(key) <= 64:
            raise ConfigError("las.autorisatiesleutel: the key must be 1 to 64 characters (UWLR tpString64)")
        return key

    def _session(self) -> requests.Session:
        session = requests.Session()
        verify = self.settings.verify
        session.verify = str(self._base / verify) if isinstance(verify, Path) else verify
        session.trust_env = False  # no proxy or netrc credentials picked up by accident
        return session

    def _client(self, session: requests.Session) -> zeep.Client:
        """The client for this session; the parsed WSDL is cached per process."""
        key = (self.settings.connect_timeout, self.settings.read_timeout)
        cached = self._clients.get(key)
        if cached is None:
            zsettings = zeep.Settings(strict=True, raw_response=True, xml_huge_tree=False,
                                      forbid_dtd=True, forbid_entities=True, forbid_external=True)
            transport = _StreamingTransport(timeout=self.settings.connect_timeout,
                                            operation_timeout=(self.settings.connect_timeout,
                                                               self.settings.read_timeout))
            cached = zeep.Client(str(WSDL), transport=transport, settings=zsettings)
            self._clients[key] = cached
        cached.transport.session = session
        return cached

    def _request(self, client: zeep.Client, last: str | None) -> dict[str, Any]:
        s = self.settings
        school: dict[str, Any] = (
            {"brincode": s.brin, "dependancecode": s.dependancecode} if s.brin else {"schoolkey": s.schoolkey})
        if school.get("dependancecode") is None:
            school.pop("dependancecode", None)
        args: dict[str, Any] = {
            "schooljaar": s.schooljaar if s.schooljaar != "auto" else school_year(self._today()),
            **school, "xsdversie": s.xsdversie,
        }
        if s.gegevenssetid:
            args["gegevenssetid"] = s.gegevenssetid
        if last:
            margin = timedelta(minutes=s.clock_margin_minutes)
            args["laatstontvangengegevens"] = datetime.fromisoformat(last) - margin
        header = client.get_element(f"{{{NS_AUT}}}autorisatie")(
            autorisatiesleutel=self._key(), klantcode=s.klantcode, klantnaam=s.klantnaam)
        args["_soapheaders"] = [header]
        return args

    def _download(self, last: str | None) -> IO[bytes]:
        """POST the request (retrying what is worth retrying) and stream the answer's body to an
        anonymous temporary file; returns it at offset 0."""
        retry = retrying(SourceUnavailable, self.settings.attempts, initial=2.0, maximum=60.0)
        for attempt in retry:
            with attempt:
                return self._post_once(last)
        raise SourceUnavailable(f"{self._where()}: no answer")  # pragma: no cover (reraise=True)

    def _post_once(self, last: str | None) -> IO[bytes]:
        body = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the caller, who closes it)
        try:
            with self._session() as session:
                client = self._client(session)
                service = client.create_service(BINDING, self.endpoint)
                try:
                    response = service.HaalLeerlinggegevens(**self._request(client, last))
                except zeep.exceptions.ValidationError as exc:
                    raise ConfigError(f"las: the UWLR request does not fit the schema ({exc.path or 'request'})"
                                      ) from None
                try:
                    status = response.status_code
                    if status != 200:
                        raise self._error(status, response)
                    deadline = time.monotonic() + self.settings.read_timeout * 4
                    for chunk in response.iter_content(CHUNK):
                        body.write(chunk)
                        if time.monotonic() > deadline:
                            raise SourceUnavailable(f"{self._where()}: the answer took too long to arrive")
                finally:
                    response.close()
        except requests.Timeout:
            body.close()
            raise SourceUnavailable(f"{self._where()}: timed out") from None
        except requests.ConnectionError:
            body.close()
            raise SourceUnavailable(f"{self._where()}: connection failed") from None
        except requests.RequestException as exc:
            body.close()
            raise SourceUnavailable(f"{self._where()}: {exc.__class__.__name__}") from None
        except zeep.exceptions.Error as exc:  # the WSDL or the envelope as zeep reads them
            body.close()
            raise SourceError(f"{self._where()}: {exc.__class__.__name__}") from None
        except BaseException:
            body.close()
            raise
        body.seek(0)
        return body

    def _error(self, status: int, response: requests.Response) -> SourceError:
        where = self._where()
        code = _fault_code(response) if status == 500 else None
        if code is not None:
            local = code.rpartition(":")[2]
            if local.startswith("Client") or local.startswith("Sender"):
                return SourceRefused(f"{where}: the LAS refused the request (SOAP fault {local})")
            return SourceUnavailable(f"{where}: the LAS could not answer (SOAP fault {local})")
        if 300 <= status < 400:
            return SourceRefused(f"{where}: HTTP {status}: the LAS answered with a redirect; not followed (the "
                                 "request carries the key): configure the endpoint it names, if it is the LAS's")
        if status in (401, 403):
            return SourceRefused(f"{where}: HTTP {status}: the LAS refused the authorisation")
        if status == 429 or status >= 500 or status == 408:
            return SourceUnavailable(f"{where}: HTTP {status}", delay=retry_after(response.headers.get("Retry-After")))
        return SourceRefused(f"{where}: HTTP {status}")


def _fault_code(response: requests.Response) -> str | None:
    """The faultcode of a SOAP fault answer (read at most FAULT_LIMIT bytes), else None."""
    data = b""
    for chunk in response.iter_content(CHUNK):
        data += chunk
        if len(data) > FAULT_LIMIT:
            return None
    try:
        root = etree.fromstring(data, etree.XMLParser(**hardened_parser_options()))
    except etree.XMLSyntaxError:
        return None
    code = root.find(f".//{{{SOAP_ENV}}}Fault/faultcode")
    if code is None or not code.text:
        return None
    return re.sub(r"[^A-Za-z0-9_.:-]", "", code.text.strip())[:64]

