"""The Mayan adapter: error mapping (every httpx failure and HTTP status into the connector's
error classes, never a response body), idempotency after a lost response against the real
server, and the journal finishing a create whose answer was lost."""

from __future__ import annotations

import io
import os
from datetime import date
from typing import Any

import httpx
import pytest

from adapters.dms.mayan import MayanSettings, MayanStore
from connector.errors import PermanentError, TransientError
from connector.mapping import load as load_mapping
from connector.model import DossierSpec
from connector.ports import StoreContext
from tests.conftest import World, mayan_store, pupil
from tests.http_faults import leaves, redirect_is_refused

PARTS = load_mapping("po").parts
SECRET_BODY = "Noor van Dijk 123456782"


def spec(external_id: str = "las:99XY:LL7") -> DossierSpec:
    return DossierSpec(external_id=external_id, pseudonym="p-7", school="99XY", title="Noor van Dijk",
                       properties={"jaargroep": "5"}, parts=PARTS)


def mocked(handler: Any) -> MayanStore:
    ctx = StoreContext(secret=lambda ref: b"token", index_key=b"k" * 32)
    return MayanStore(MayanSettings(url="http://mayan.invalid", token="env:X"), ctx,
                      transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(("status", "error"), [
    (400, PermanentError), (401, PermanentError), (403, PermanentError), (404, PermanentError),
    (409, PermanentError), (422, PermanentError), (429, TransientError), (500, TransientError),
    (502, TransientError), (503, TransientError), (504, TransientError),
])
def test_http_status_maps_to_an_error_class_without_the_body(status: int, error: type[Exception]) -> None:
    store = mocked(lambda request: httpx.Response(status, text=SECRET_BODY, headers={"Retry-After": "7"}))
    with pytest.raises(error) as info:
        store.find_dossier("las:99XY:LL7")
    message = str(info.value)
    assert str(status) in message and "/search/advanced/" in message
    assert SECRET_BODY not in message and "Noor" not in message
    if status == 429:
        assert info.value.delay == 7.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("exc", [
    httpx.ConnectTimeout("x"), httpx.ReadTimeout("x"), httpx.WriteTimeout("x"), httpx.PoolTimeout("x"),
    httpx.ConnectError("x"), httpx.ReadError("x"), httpx.WriteError("x"), httpx.RemoteProtocolError("x"),
    httpx.LocalProtocolError("x"), httpx.ProxyError("x"), httpx.UnsupportedProtocol("x"),
])
def test_every_transport_error_is_transient(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(TransientError):
        mocked(handler).find_dossier("las:99XY:LL7")


def test_every_httpx_transport_error_class_is_covered() -> None:
    """A new httpx transport error would otherwise slip past the mapping unnoticed."""
    covered = {httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout, httpx.ConnectError,
               httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.LocalProtocolError,
               httpx.ProxyError, httpx.UnsupportedProtocol, httpx.CloseError}
    assert leaves(httpx.TransportError) <= covered


@pytest.mark.parametrize("answer", [
    httpx.Response(200, text="<html>onderhoud</html>"),  # a maintenance page: not JSON
    httpx.Response(200, json=[1, 2, 3]),  # a list for an object
    httpx.Response(200, json={"unexpected": True}),  # the fields are missing
    httpx.Response(200, json={"results": [{"label": "x"}], "next": None}),  # a result without its id
    httpx.Response(200, json={"results": "nope", "next": 5}),
    httpx.Response(200, json={"results": [{"id": "not a number", "label": "x"}], "next": None}),
])
@pytest.mark.parametrize("call", ["find_dossier", "create_dossier", "documents", "init", "set_access", "read"])
def test_an_answer_of_another_shape_is_an_error_of_the_root_never_a_traceback(answer: httpx.Response,
                                                                              call: str) -> None:
    from connector.errors import ConnectorError
    from connector.model import DmsGrant, DocumentRef, DossierRef

    store = mocked(lambda request: answer)
    ref = DossierRef(id="1:2", external_id="las:99XY:LL7")
    calls = {
        "find_dossier": lambda: store.find_dossier("las:99XY:LL7"),
        "create_dossier": lambda: store.create_dossier(spec()),
        "documents": lambda: list(store.documents(ref)),
        "init": store.init,
        "set_access": lambda: store.set_access(ref, "I", (DmsGrant(principal="g", kind="group"),)),
        "read": lambda: store.read(DocumentRef(id="3", dossier_id="1:2", part="I", doc_class=None, name="x")),
    }
    try:
        calls[call]()
    except ConnectorError as exc:
        assert "onderhoud" not in str(exc) and "nope" not in str(exc)


def test_a_redirect_is_never_followed_with_the_token() -> None:
    redirect_is_refused(mocked, lambda store: store.find_dossier("las:99XY:LL7"),
                        "https://elsewhere.invalid/api/v4/cabinets/", "mayan.invalid")


def test_timeouts_are_always_set() -> None:
    store = mocked(lambda request: httpx.Response(200, json={}))
    timeout = store._client.timeout
    assert None not in (timeout.connect, timeout.read, timeout.write, timeout.pool)


def test_pagination_is_followed() -> None:
    pages = {
        "1": {"count": 3, "next": "http://mayan.invalid/api/v4/metadata_types/?page=2&page_size=100",
              "results": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]},
        "2": {"count": 3, "next": None, "results": [{"id": 3, "name": "c"}]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("page", "1")])

    assert mocked(handler)._types() == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize("link", [
    "https://elsewhere.invalid/api/v4/metadata_types/?page=2",  # another origin
    "http://mayan.invalid/metadata_types/?page=2",  # outside the API, without /api/v4
    "//elsewhere.invalid/api/v4/metadata_types/?page=2",  # scheme-relative
    "http://mayan.invalid@elsewhere.invalid/api/v4/metadata_types/?page=2",  # credentials trick
])
def test_the_token_never_follows_a_next_link_to_another_origin(link: str) -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json={"count": 3, "next": None, "results": [{"id": 3, "name": "c"}]})
        return httpx.Response(200, json={"count": 3, "next": link, "results": [{"id": 1, "name": "a"}]})

    with pytest.raises(PermanentError, match="another origin or outside the API"):
        mocked(handler)._types()
    assert set(hosts) == {"mayan.invalid"}


def test_a_next_link_written_with_http_behind_a_proxy_is_fetched_from_the_configured_url() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url).split("?")[0])
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json={"count": 2, "next": None, "results": [{"id": 2, "name": "b"}]})
        return httpx.Response(200, json={"count": 2, "results": [{"id": 1, "name": "a"}],
                                         "next": "http://mayan.invalid/api/v4/metadata_types/?page=2"})

    ctx = StoreContext(secret=lambda ref: b"token", index_key=b"k" * 32)
    store = MayanStore(MayanSettings(url="https://mayan.invalid", token="env:X"), ctx,
                       transport=httpx.MockTransport(handler))
    assert store._types() == {"a": 1, "b": 2}
    assert all(u.startswith("https://mayan.invalid/api/v4/") for u in seen)


class LoseResponse(httpx.BaseTransport):
    """Forwards to the real server, then drops the answer of the first matching request,
    as a network that fails after the server has done the work."""

    def __init__(self, method: str, path_suffix: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.method, self.suffix, self.lost = method, path_suffix, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.lost and request.method == self.method and request.url.path.endswith(self.suffix):
            response.read()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


@pytest.mark.mayan
def test_a_lost_answer_to_create_cabinet_does_not_make_a_second_dossier(mayan_server: Any) -> None:
    ctx = StoreContext(secret=lambda ref: mayan_server.token.encode(), index_key=b"lost-cabinet" * 3)
    lossy = LoseResponse("POST", "/api/v4/cabinets/")
    store = MayanStore(MayanSettings(url=mayan_server.url, token="env:X"), ctx, transport=lossy)
    ref = store.create_dossier(spec("las:99XY:LOST1"))
    assert lossy.lost == 1
    again = store.create_dossier(spec("las:99XY:LOST1"))
    assert again == ref == store.find_dossier("las:99XY:LOST1")
    assert len(store._root_cabinets(store.key("las:99XY:LOST1"))) == 1


@pytest.mark.mayan
def test_the_journal_finishes_a_create_whose_answer_was_lost(mayan_server: Any, world: World) -> None:
    """The executor sees a TransientError, retries, and the retry finds the dossier."""
    # a key of its own: the test runs once per state backend on the same Mayan
    ctx = StoreContext(secret=lambda ref: mayan_server.token.encode(), index_key=os.urandom(32))
    lossy = LoseResponse("POST", "/api/v4/documents/upload/")
    store = MayanStore(MayanSettings(url=mayan_server.url, token="env:X"), ctx, transport=lossy)
    report = world.sync([pupil("LOST2")], store=store)
    assert lossy.lost == 1 and report.dossiers_created == 1 and not report.failed
    assert world.sync([pupil("LOST2")], store=store).dms_writes == 0
    assert len(store._root_cabinets(store.key("las:99XY:LOST2"))) == 1


@pytest.mark.mayan
def test_documents_uploaded_by_staff_are_listed_and_tagged(mayan_server: Any) -> None:
    store = mayan_store(mayan_server)
    ref = store.create_dossier(spec("las:99XY:STAFF"))
    cabinet = int(ref.id.split(":")[0])
    part_ii = store._parts(cabinet)["II"]
    # a staff member uploads straight into Mayan, without the connector's metadata
    with httpx.Client(base_url=mayan_server.url + "/api/v4",
                      headers={"Authorization": f"Token {mayan_server.token}", "Accept": "application/json"},
                      timeout=30) as raw:
        doc = raw.post("/documents/upload/", data={"document_type_id": str(store._document_type()),
                                                   "label": "OKR groep 8.pdf"},
                       files={"file": ("okr.pdf", b"%PDF-1.4 okr")}).json()
        raw.post(f"/cabinets/{part_ii}/documents/add/", json={"document": doc["id"]})
    [listed] = [d for d in store.documents(ref)]
    assert listed.doc_class is None and listed.part == "II" and listed.name == "OKR groep 8.pdf"
    from connector.model import PupilFacts
    from connector.retention import load_schedule, tag

    schedule = load_schedule("retention-po", classes=set(load_mapping("po").classes))
    cls = load_mapping("po").classify(listed)
    assert cls == "onderwijskundig_rapport"
    store.tag(listed, tag(PupilFacts(departure=date(2026, 7, 10)), cls, schedule))
    [after] = list(store.documents(ref))
    assert after.metadata["retention_class"] == "onderwijskundig_rapport"
    assert after.metadata["retention_due"] == "2028-07-10"
    assert io.BytesIO(store.read(after)).read() == b"%PDF-1.4 okr"
