"""The Graph test server behind Prism, for the SharePoint adapter's tests (marker ``graph``).

Prism 5.16 (``@stoplight/prism-cli``, installed by ``.ci/run`` into ``.cache/npm``) runs as a
validating proxy with Microsoft's published schema (``shared/specs/msgraph``): a request the
adapter makes, or an answer the server gives, that does not match is answered 422 or 500, which
the adapter reports as an error and the test fails. Under ``CI=true`` a missing Node.js or Prism
fails the tests; elsewhere it skips them.

The token endpoint (``login.microsoftonline.com``) is reached through :class:`ToFake`, a
transport that sends msal's requests to the test server: the identity platform is not part of
the Graph schema, and msal asks for https, which the test server does not speak.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, need
from tests.graph.server import GraphServer

SPEC = Path(__file__).parent / "spec" / "graph-v1.0-drives.openapi.yaml"
"""A verbatim copy of the subset converted from Microsoft's published v1.0 metadata (its README,
with the MIT notice, beside it); ``test_the_schema_is_microsofts`` holds it to the original."""
ORIGINAL = ROOT.parent / "shared" / "specs" / "msgraph" / "graph-v1.0-drives.openapi.yaml"
PRISM = ROOT / ".cache" / "npm" / "node_modules" / ".bin" / "prism"
CLIENT_SECRET = "ld-test-client-secret-0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ToFake(httpx.BaseTransport):
    """Sends what msal asks of ``https://login.microsoftonline.com/...`` to the test server's
    ``/login/...`` (plain HTTP on 127.0.0.1)."""

    def __init__(self, server: GraphServer) -> None:
        self._inner = httpx.HTTPTransport(verify=False)  # plain HTTP to the test server
        self._url = httpx.URL(server.url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "login.microsoftonline.com":
            path = "/login" + path
        else:  # the test server's own https address for the platform (its discovery names it)
            assert request.url.host == "127.0.0.1" and path.startswith("/login/"), request.url
        request.url = request.url.copy_with(scheme="http", host=self._url.host, port=self._url.port, path=path)
        request.headers["Host"] = f"{self._url.host}:{self._url.port}"
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class Prism:
    """``prism proxy --errors SPEC upstream`` on a port of its own."""

    def __init__(self, upstream: str) -> None:
        need(shutil.which("node") is not None, "Node.js is not installed")
        need(PRISM.exists(), "Prism is not installed in .cache/npm (.ci/run installs @stoplight/prism-cli@5.16)")
        need(SPEC.exists(), f"the Graph schema is not at {SPEC}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(PRISM), "proxy", "--errors", "-h", "127.0.0.1", "-p", str(self.port), str(SPEC), upstream],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    out = self.process.stdout.read().decode()[-800:] if self.process.stdout else ""
                    raise AssertionError("Prism did not start: " + out) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def control(server: GraphServer, what: str, body: dict[str, Any] | None = None,
            query: dict[str, str] | None = None) -> Any:
    """Ask the test server directly (never through Prism) to change or tell the tenant."""
    url = f"{server.url}/_control/{what}"
    if query:
        url += "?" + "&".join(f"{k}={urllib.request.quote(v)}" for k, v in query.items())
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def settings(server: GraphServer, base_url: str, folder: str, **changes: Any) -> dict[str, Any]:
    """``[dms]`` settings for the test tenant, Graph reached at ``base_url`` (Prism or the server)."""
    values: dict[str, Any] = {
        "tenant": "leerdossier-test.onmicrosoft.com", "client_id": server.client_id,
        "client_secret": "env:LD_GRAPH_SECRET", "site": "contoso.sharepoint.com:/sites/school",
        "drive": "Leerlingdossiers", "folder": folder, "graph_url": base_url,
    }
    values.update(changes)
    return values


def secret_of(path: Path | None = None) -> Any:
    """A StoreContext secret reader: the test client's secret, or a file's bytes."""
    def read(ref: str) -> bytes:
        if ref == "env:LD_GRAPH_SECRET":
            return CLIENT_SECRET.encode()
        assert ref.startswith("file:")
        return Path(ref[5:]).read_bytes()
    return read


def self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for https://127.0.0.1 and its key (PEM files in ``folder``), for the test
    server's identity platform; the tests trust it through ``SSL_CERT_FILE``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "login.crt", folder / "login.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)
