"""The SharePoint adapter's error mapping, without a server: every httpx failure, HTTP status,
token refusal and answer of another shape lands in the connector's error root; no message
carries a response body, a folder's name (a pupil's) or a token; a redirect is never followed
with the token."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from adapters.dms.graph import SharePointSettings, SharePointStore
from adapters.testing import dossier_spec
from connector.errors import ConfigError, ConnectorError, PermanentError, TransientError
from connector.model import DmsGrant, DocumentRef, DossierRef
from connector.ports import StoreContext
from tests.http_faults import leaves, redirect_is_refused

SECRET_BODY = "Noor van Dijk 123456782"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOi.secret-token"


def login(refuse: str | None = None) -> httpx.MockTransport:
    """The identity platform: discovery, its aliases, and a token (or a refusal)."""
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/openid-configuration"):
            base = "https://login.microsoftonline.com/t.onmicrosoft.com"
            return httpx.Response(200, json={"token_endpoint": f"{base}/oauth2/v2.0/token",
                                             "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                             "issuer": f"{base}/v2.0"})
        if path.endswith("/discovery/instance"):
            return httpx.Response(200, json={"metadata": [{"preferred_network": "login.microsoftonline.com",
                                                           "aliases": ["login.microsoftonline.com"]}]})
        if path.endswith("/token"):
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["client_credentials"]
            if refuse:
                return httpx.Response(401, json={"error": refuse, "error_description":
                                                 f"AADSTS7000215: {SECRET_BODY} trace id x"})
            return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN})
        return httpx.Response(404)
    return httpx.MockTransport(handler)


def mocked(handler: Any, refuse: str | None = None) -> SharePointStore:
    settings = SharePointSettings(tenant="t.onmicrosoft.com", client_id="client-1", client_secret="env:X",
                                  site="contoso.sharepoint.com:/sites/school", drive="b!drive")
    ctx = StoreContext(secret=lambda ref: b"client-secret", index_key=b"k" * 32)
    return SharePointStore(settings, ctx, transport=httpx.MockTransport(handler), login_transport=login(refuse))


REF = DossierRef(id="01FOLDER", external_id="las:99XY:LL7")
DOC = DocumentRef(id="01DOC", dossier_id="01FOLDER", part="II", doc_class="rapport", name="rapport Noor.pdf")
CALLS = {
    "find_dossier": lambda s: s.find_dossier("las:99XY:LL7"),
    "create_dossier": lambda s: s.create_dossier(dossier_spec()),
    "update_dossier": lambda s: s.update_dossier(REF, dossier_spec()),
    "documents": lambda s: list(s.documents(REF)),
    "add_document": lambda s: s.add_document(REF, "II", "rapport", "Noor.pdf", io.BytesIO(b"x"), {}),
    "read": lambda s: s.read(DOC),
    "destroy": lambda s: s.destroy(DOC),
    "init": lambda s: s.init(),
    "set_access": lambda s: s.set_access(REF, "II", (DmsGrant(principal="ouder@x.nl", kind="user"),)),
}


@pytest.mark.parametrize(("status", "error"), [
    (400, PermanentError), (401, PermanentError), (403, PermanentError), (404, PermanentError),
    (409, PermanentError), (422, PermanentError), (429, TransientError), (500, TransientError),
    (502, TransientError), (503, TransientError), (504, TransientError),
])
def test_http_status_maps_to_an_error_class_without_the_body(status: int, error: type[Exception]) -> None:
    body = {"error": {"code": "accessDenied" if status == 403 else "generalException", "message": SECRET_BODY}}
    store = mocked(lambda request: httpx.Response(status, json=body, headers={"Retry-After": "7"}))
    with pytest.raises(error) as info:
        store.find_dossier("las:99XY:LL7")
    message = str(info.value)
    assert str(status) in message and "find the site" in message
    assert SECRET_BODY not in message and "Noor" not in message and TOKEN not in message
    if status in (429, 503):
        assert info.value.delay == 7.0  # type: ignore[attr-defined]
    if status == 403:
        assert "Sites.Selected" in message


@pytest.mark.parametrize("exc", [
    httpx.ConnectTimeout("x"), httpx.ReadTimeout("x"), httpx.WriteTimeout("x"), httpx.PoolTimeout("x"),
    httpx.ConnectError("x"), httpx.ReadError("x"), httpx.WriteError("x"), httpx.RemoteProtocolError("x"),
    httpx.LocalProtocolError("x"), httpx.ProxyError("x"), httpx.UnsupportedProtocol("x"), httpx.CloseError("x"),
    httpx.DecodingError("x"), httpx.TooManyRedirects("x"),
])
@pytest.mark.parametrize("where", ["graph", "login"])
def test_every_httpx_error_is_transient(exc: Exception, where: str) -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        raise exc

    if where == "graph":
        store = mocked(failing)
    else:
        settings = SharePointSettings(tenant="t.onmicrosoft.com", client_id="client-1", client_secret="env:X",
                                      site="contoso.sharepoint.com:/sites/school")
        ctx = StoreContext(secret=lambda ref: b"client-secret", index_key=b"k" * 32)
        try:
            store = SharePointStore(settings, ctx, transport=httpx.MockTransport(failing),
                                    login_transport=httpx.MockTransport(failing))
        except TransientError:
            return  # msal reads the tenant's discovery document at once: already in the root
    with pytest.raises(TransientError):
        store.find_dossier("las:99XY:LL7")


def test_every_httpx_error_class_is_covered() -> None:
    covered = {httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout, httpx.ConnectError,
               httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.LocalProtocolError,
               httpx.ProxyError, httpx.UnsupportedProtocol, httpx.CloseError, httpx.DecodingError,
               httpx.TooManyRedirects}
    assert leaves(httpx.RequestError) <= covered


@pytest.mark.parametrize("error", ["invalid_client", "unauthorized_client", "invalid_scope"])
def test_a_refused_token_is_permanent_and_names_no_secret(error: str) -> None:
    store = mocked(lambda request: httpx.Response(200, json={}), refuse=error)
    with pytest.raises(PermanentError) as info:
        store.find_dossier("las:99XY:LL7")
    message = str(info.value)
    assert error in message and "AADSTS7000215" in message
    assert SECRET_BODY not in message and "client-secret" not in message


@pytest.mark.parametrize("answer", [
    httpx.Response(200, text="<html>onderhoud</html>"),
    httpx.Response(200, json=[1, 2, 3]),
    httpx.Response(200, json={"unexpected": True}),
    httpx.Response(200, json={"value": "nope", "@odata.nextLink": 5}),
    httpx.Response(200, json={"value": [{"name": "x"}]}),
    httpx.Response(200, json={"id": None, "value": [{"id": 3, "folder": "ja"}]}),
])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_an_answer_of_another_shape_is_an_error_of_the_root_never_a_traceback(answer: httpx.Response,
                                                                              call: str) -> None:
    store = mocked(lambda request: answer)
    try:
        CALLS[call](store)
    except ConnectorError as exc:
        assert "onderhoud" not in str(exc) and "nope" not in str(exc)


def test_a_redirect_is_never_followed_with_the_token() -> None:
    redirect_is_refused(mocked, lambda store: store.find_dossier("las:99XY:LL7"),
                        "https://elsewhere.invalid/v1.0/sites/x", "graph.microsoft.com")


def test_a_download_is_fetched_without_the_token() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("Authorization")))
        if request.url.host == "graph.microsoft.com" and not request.url.path.endswith("/content"):
            return httpx.Response(200, json={"id": "s", "sharePointIds": {"listId": "l"}})
        if request.url.host == "graph.microsoft.com":
            return httpx.Response(302, headers={"Location": "https://contoso.sharepoint.com/_layouts/download?x=1"})
        return httpx.Response(200, content=b"%PDF-1.4")

    assert mocked(handler).read(DOC) == b"%PDF-1.4"
    assert seen[-2:] == [("graph.microsoft.com", f"Bearer {TOKEN}"), ("contoso.sharepoint.com", None)]


def test_the_schema_is_microsofts() -> None:
    """The Graph schema the tests validate against is the published subset, byte for byte, and
    names its origin (Microsoft's v1.0 metadata, with its hash)."""
    import hashlib

    from tests.graph.harness import ORIGINAL, SPEC

    text = SPEC.read_text(encoding="utf-8")
    assert "a9d32d3611746c96043229a98867be064fb782c801b3405bce00c224ea3f6a03" in text  # the CSDL it came from
    if ORIGINAL.exists():  # beside a checkout of the workspace: the copy is the original
        assert hashlib.sha256(SPEC.read_bytes()).digest() == hashlib.sha256(ORIGINAL.read_bytes()).digest()


def test_timeouts_are_always_set_and_settings_take_one_credential() -> None:
    store = mocked(lambda request: httpx.Response(200, json={}))
    timeout = store._client.timeout
    assert None not in (timeout.connect, timeout.read, timeout.write, timeout.pool)
    with pytest.raises(ValueError, match="exactly one"):
        SharePointSettings(tenant="t.onmicrosoft.com", client_id="client-1", site="s:/sites/x")
    with pytest.raises(ValueError, match="reference"):
        SharePointSettings(tenant="t.onmicrosoft.com", client_id="client-1", site="s:/sites/x",
                           client_secret="plain-secret")
    with pytest.raises(ConfigError, match="index key"):
        SharePointStore(SharePointSettings(tenant="t.onmicrosoft.com", client_id="client-1", site="s:/sites/x",
                                           client_secret="env:X"),
                        StoreContext(secret=lambda ref: b"x"))


def test_a_certificate_credential_signs_an_assertion(tmp_path: Any) -> None:
    """The app's certificate (a PEM with its key) gives msal a signed client assertion, never the key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leerdossier-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    forms: list[dict[str, list[str]]] = []

    def platform(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            forms.append(parse_qs(request.content.decode()))
        return login().handle_request(request)

    settings = SharePointSettings(tenant="t.onmicrosoft.com", client_id="client-1", certificate="file:app.pem",
                                  site="contoso.sharepoint.com:/sites/school", drive="b!drive")
    ctx = StoreContext(secret=lambda ref: pem, index_key=b"k" * 32)
    store = SharePointStore(settings, ctx, transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"id": "s", "sharePointIds": {"listId": "l"}})),
        login_transport=httpx.MockTransport(platform))
    store._drive_path()
    [form] = forms
    assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assert "PRIVATE KEY" not in json.dumps(form)
