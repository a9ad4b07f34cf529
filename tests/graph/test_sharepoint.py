"""The SharePoint adapter against the Graph test server, every request through Prism with
Microsoft's published schema (marker ``graph``): the shared conformance suite of the
DocumentStore port, then what is SharePoint's own (layout, columns made once, labels, deletion,
throttling, tokens, a lost answer, permissions). Binary content goes to the server directly:
Prism passes bodies as text."""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import pytest

from adapters.dms.graph import COLUMNS, SharePointStore
from adapters.testing import AccessContract, DocumentStoreContract, dossier_spec
from adapters.testing.document_store import _tag
from connector.errors import PermanentError, TransientError
from connector.model import DmsGrant, DocumentRef, DossierRef
from connector.ports import DocumentStore
from tests.graph.conftest import open_graph_store
from tests.graph.harness import Prism, control
from tests.graph.server import GraphServer

pytestmark = pytest.mark.graph


class TestSharePointStore(DocumentStoreContract, AccessContract):
    def open_store(self, request: pytest.FixtureRequest, tmp_path: Any) -> DocumentStore:
        self.server: GraphServer = request.getfixturevalue("graph_server")
        proxy: Prism = request.getfixturevalue("prism")
        self.opened = open_graph_store(self.server, proxy.url)
        self.opened.init()  # as the integrator runs `leerdossier dms init` first
        return self.opened

    def stored_properties(self, store: Any, ref: DossierRef) -> dict[str, Any]:
        stored: dict[str, Any] = store.stored(ref)
        return stored

    def make_principal(self, request: pytest.FixtureRequest, name: str, groups: tuple[str, ...] = ()) -> None:
        control(self.server, "principal", {"user": name, "groups": [f"grp-{g}" for g in groups]})
        for g in groups:  # the integrator's [dms.groups]: the role's Microsoft 365 group
            self.opened.settings.groups[g] = f"grp-{g}"

    def readable(self, store: Any, ref: DossierRef, user: str, groups: tuple[str, ...]) -> set[str]:
        return set(control(self.server, "readable", query={"user": user, "below": ref.id})["ids"])

    def place_also(self, store: Any, ref: DossierRef, doc: DocumentRef, part: str) -> None:
        """SharePoint holds a file in one folder: staff move it to the other part's folder by hand."""
        control(self.server, "move", {"id": doc.id, "parent": store._part_folders(ref.id)[part]})


def item(server: GraphServer, item_id: str) -> dict[str, Any]:
    found: dict[str, Any] = control(server, "item", query={"id": item_id})
    return found


def requests_since(server: GraphServer) -> list[tuple[str, str]]:
    return [tuple(r) for r in control(server, "stats")["requests"]]  # type: ignore[misc]


def test_the_layout_a_folder_per_pupil_named_by_title_and_key_with_a_folder_per_part(
        graph_store: SharePointStore, graph_server: GraphServer) -> None:
    ref = graph_store.create_dossier(dossier_spec())
    folder = item(graph_server, ref.id)
    key = graph_store.key("las:99XY:LL000001")
    assert folder["name"] == f"Noor van Dijk [{key}]"
    assert folder["fields"]["ldDossier"] == key and folder["fields"]["ldSchool"] == "99XY"
    parts = graph_store._part_folders(ref.id, refresh=True)
    assert set(parts) == {"I", "II"}
    assert item(graph_server, parts["I"])["name"].startswith("I. Deel I")
    assert ":" not in item(graph_server, parts["I"])["name"]  # SharePoint refuses a colon in a name
    renamed = dossier_spec(title="Noor de Vries")
    graph_store.update_dossier(ref, renamed)
    assert item(graph_server, ref.id)["name"] == f"Noor de Vries [{key}]"
    assert graph_store.find_dossier("las:99XY:LL000001") == ref  # by the key, never by the title


def test_a_folder_without_its_key_is_an_unfinished_creation_that_the_next_create_completes(
        graph_store: SharePointStore, graph_server: GraphServer) -> None:
    control(graph_server, "faults", {"method": "PATCH", "contains": "/listItem/fields", "status": 503,
                                     "retry_after": "3"})
    with pytest.raises(TransientError) as lost:
        graph_store.create_dossier(dossier_spec())
    assert lost.value.delay == 3
    fresh = open_graph_store(graph_server, graph_store.settings.graph_url, folder=graph_store.settings.folder)
    fresh.context = graph_store.context
    fresh._key = graph_store._key
    assert fresh.find_dossier("las:99XY:LL000001") is None  # cut off before its key: not found
    ref = fresh.create_dossier(dossier_spec(title="Noor de Vries"))  # the LAS changed the name meanwhile
    assert fresh.find_dossier("las:99XY:LL000001") == ref
    top = fresh._folder(create=False)
    assert top is not None
    names = [c["name"] for c in fresh._paged(f"{fresh._item(top)}/children", "t")]
    assert names == [f"Noor de Vries [{fresh.key('las:99XY:LL000001')}]"]  # one dossier, not two


def test_a_lost_answer_after_the_folder_was_made_gives_one_dossier(graph_store: SharePointStore,
                                                                  graph_server: GraphServer) -> None:
    graph_store._folder(create=True)
    control(graph_server, "faults", {"method": "POST", "contains": "/children", "lost": True})
    with pytest.raises(TransientError):
        graph_store.create_dossier(dossier_spec())
    ref = graph_store.create_dossier(dossier_spec())  # the executor's retry
    top = graph_store._folder(create=False)
    assert top is not None
    children = list(graph_store._paged(f"{graph_store._item(top)}/children", "t"))
    assert [c["id"] for c in children] == [ref.id]


def test_columns_are_made_once_and_check_changes_nothing(graph_server: GraphServer, prism: Prism) -> None:
    store = open_graph_store(graph_server, prism.url)
    store.init()
    again = open_graph_store(graph_server, prism.url)
    assert again.init()["columns_made"] == 0
    control(graph_server, "reset_stats", {})
    assert again.check() == []
    assert {m for m, _p in requests_since(graph_server)} == {"GET"}
    assert set(COLUMNS) <= again._column_names()


def test_a_retention_label_is_applied_and_a_label_that_forbids_deletion_keeps_the_document(
        graph_server: GraphServer, prism: Prism) -> None:
    t = _tag()
    control(graph_server, "label", {"name": "Leerlingdossier bewaren", "isDeleteAllowed": False})
    store = open_graph_store(graph_server, prism.url, labels={t.category: "Leerlingdossier bewaren"})
    assert store.init()["labels"] == 1
    ref = store.create_dossier(dossier_spec())
    doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 r"), {})
    store.tag(doc, t)
    store.tag(doc, t)  # applying the same label again is harmless
    assert item(graph_server, doc.id)["label"]["name"] == "Leerlingdossier bewaren"
    with pytest.raises(PermanentError, match="Leerlingdossier bewaren"):
        store.destroy(doc)
    assert [d.id for d in store.documents(ref)] == [doc.id]
    with pytest.raises(PermanentError, match="Onbekend label|no retention label"):
        open_graph_store(graph_server, prism.url, labels={"x": "Onbekend label"}).init()


def test_destroy_is_permanent_delete_and_gone_is_done(graph_store: SharePointStore, graph_server: GraphServer) -> None:
    ref = graph_store.create_dossier(dossier_spec())
    doc = graph_store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 r"), {})
    graph_store.destroy(doc)
    assert item(graph_server, doc.id)["state"] == "purged"  # not in the recycle bin
    graph_store.destroy(doc)
    assert list(graph_store.documents(ref)) == []


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_is_transient_with_the_servers_retry_after(graph_store: SharePointStore,
                                                              graph_server: GraphServer, status: int) -> None:
    ref = graph_store.create_dossier(dossier_spec())
    control(graph_server, "faults", {"method": "GET", "contains": "/children", "status": status, "retry_after": "7"})
    with pytest.raises(TransientError) as exc:
        list(graph_store.documents(ref))
    assert exc.value.delay == 7
    for bad in (500, 502, 504):
        control(graph_server, "faults", {"method": "GET", "contains": "/children", "status": bad})
        with pytest.raises(TransientError):
            list(graph_store.documents(ref))
    assert list(graph_store.documents(ref)) == []


def test_the_token_is_cached_and_renewed_when_refused(graph_store: SharePointStore, graph_server: GraphServer) -> None:
    before = control(graph_server, "stats")["tokens_issued"]
    ref = graph_store.create_dossier(dossier_spec())
    list(graph_store.documents(ref))
    assert control(graph_server, "stats")["tokens_issued"] == before + 1  # one token for every call
    control(graph_server, "expire", {})
    assert list(graph_store.documents(ref)) == []
    assert control(graph_server, "stats")["tokens_issued"] == before + 2


def test_a_missing_permission_is_permanent_and_named(graph_store: SharePointStore, graph_server: GraphServer) -> None:
    ref = graph_store.create_dossier(dossier_spec())
    control(graph_server, "deny", {"contains": "/children"})
    try:
        with pytest.raises(PermanentError, match="Sites.Selected") as exc:
            list(graph_store.documents(ref))
        assert "Noor" not in str(exc.value)
    finally:
        control(graph_server, "deny", {"contains": None})


def test_access_is_given_per_part_folder_without_e_mail_and_taken_back(
        graph_store: SharePointStore, graph_server: GraphServer) -> None:
    suffix = os.urandom(3).hex()
    control(graph_server, "principal", {"user": f"juf-{suffix}", "groups": [f"grp-{suffix}"]})
    graph_store.settings.groups["leerkracht"] = f"grp-{suffix}"
    ref = graph_store.create_dossier(dossier_spec())
    docs = [graph_store.add_document(ref, "II", "rapport", f"r{i}.pdf", io.BytesIO(b"%PDF-1.4"), {}) for i in range(3)]
    graph_store.set_access(ref, "II", (DmsGrant(principal="leerkracht", kind="group"),))
    part = graph_store._part_folders(ref.id)["II"]
    assert item(graph_server, part)["unique"]
    assert not any(item(graph_server, d.id)["unique"] for d in docs)  # per folder, never per document
    readable = control(graph_server, "readable", query={"user": f"juf-{suffix}", "below": ref.id})["ids"]
    assert set(readable) == {d.id for d in docs}
    graph_store.set_access(ref, "II", ())
    assert control(graph_server, "readable", query={"user": f"juf-{suffix}", "below": ref.id})["ids"] == []
    with pytest.raises(PermanentError, match="dms.groups"):
        graph_store.set_access(ref, "II", (DmsGrant(principal="onbekend", kind="group"),))


def test_a_permission_the_connector_did_not_give_stays(graph_store: SharePointStore, graph_server: GraphServer) -> None:
    ref = graph_store.create_dossier(dossier_spec())
    part = graph_store._part_folders(ref.id)["II"]
    graph_store._json("POST", f"{graph_store._item(part)}/invite", "t", json={
        "recipients": [{"email": "directeur@school.nl"}], "roles": ["read"], "requireSignIn": True,
        "sendInvitation": False})
    graph_store.set_access(ref, "II", (DmsGrant(principal="ouder@example.nl", kind="user"),))
    graph_store.set_access(ref, "II", ())
    listed = graph_store._paged(f"{graph_store._item(part)}/permissions", "t")
    holders = {p["grantedToV2"]["user"]["email"] for p in listed if "user" in p.get("grantedToV2", {})}
    assert holders == {"directeur@school.nl"}


def test_binary_content_simple_and_through_an_upload_session(graph_server: GraphServer) -> None:
    direct = GraphServer(page_size=5).start()  # binary bodies: straight to the server, not through Prism
    try:
        store = open_graph_store(direct, direct.url)
        ref = store.create_dossier(dossier_spec())
        small = bytes(range(256)) * 64
        large = os.urandom(11 * 1024 * 1024 + 7)  # three chunks of an upload session
        a = store.add_document(ref, "II", "rapport", "klein.bin", io.BytesIO(small), {})
        b = store.add_document(ref, "II", "rapport", "groot.bin", io.BytesIO(large), {})
        assert store.read(a) == small and store.read(b) == large
        assert base64.b64decode(item(direct, b.id)["content"]) == large
        paths = [p for _m, p in direct.tenant.requests]
        assert any(p.endswith("/createUploadSession") for p in paths)
    finally:
        direct.shutdown()
        direct.server_close()


def test_a_next_page_on_another_origin_is_not_followed(graph_server: GraphServer) -> None:
    direct = GraphServer(page_size=1).start()
    try:
        store = open_graph_store(direct, direct.url)
        ref = store.create_dossier(dossier_spec())
        store.add_document(ref, "II", "rapport", "a.pdf", io.BytesIO(b"a"), {})
        store.add_document(ref, "II", "rapport", "b.pdf", io.BytesIO(b"b"), {})
        control(direct, "public", {"url": "https://graph.example.net"})
        with pytest.raises(PermanentError, match="another origin"):
            list(store.documents(ref))
    finally:
        direct.shutdown()
        direct.server_close()


def test_the_delta_cursor_names_the_dossiers_staff_changed_and_nothing_else(
        graph_store: SharePointStore, graph_server: GraphServer, prism: Prism) -> None:
    a = graph_store.create_dossier(dossier_spec("las:99XY:LL1"))
    b = graph_store.create_dossier(dossier_spec("las:99XY:LL2"))
    changed, first = graph_store.changes(None)
    assert changed is None and first  # the first time: look at everything, and keep this cursor
    changed, second = graph_store.changes(first)
    assert changed == frozenset() and second  # nothing happened
    part = graph_store._part_folders(b.id)["II"]
    control(graph_server, "place", {"parent": part, "name": "verslag teambespreking.docx", "content": "x"})
    fresh = open_graph_store(graph_server, prism.url, folder=graph_store.settings.folder)  # nothing cached
    changed, third = fresh.changes(second)
    assert changed == frozenset({b.id})
    assert [d.name for d in graph_store.documents(b)] == ["verslag teambespreking.docx"]
    assert fresh.changes(third)[0] == frozenset()
    doc = next(iter(graph_store.documents(b)))
    graph_store.destroy(doc)
    assert fresh.changes(third)[0] == frozenset({b.id})  # a removal counts too
    assert a.id not in (fresh.changes(first)[0] or ())
    assert fresh.changes("not-a-token-graph-knows")[0] is None  # too old or unknown: look at everything


def test_check_names_a_broad_permission_on_the_folder_that_holds_the_dossiers(
        graph_store: SharePointStore, graph_server: GraphServer) -> None:
    graph_store.create_dossier(dossier_spec())
    top = graph_store._folder(create=False)
    assert graph_store.check() == []
    control(graph_server, "grant", {"id": top, "permission": {
        "roles": ["owner"], "grantedToV2": {"siteGroup": {"id": "3", "displayName": "School Owners"}}}})
    assert graph_store.check() == []  # the site's owners administer it
    control(graph_server, "grant", {"id": top, "permission": {
        "roles": ["write"], "grantedToV2": {"siteGroup": {"id": "5", "displayName": "School Members"}}}})
    [problem] = graph_store.check()
    assert "1 permission(s)" in problem and "every pupil's dossier" in problem and "Members" not in problem


def test_a_document_moved_out_of_its_dossier_is_never_deleted(graph_store: SharePointStore,
                                                              graph_server: GraphServer) -> None:
    a = graph_store.create_dossier(dossier_spec("las:99XY:LL1"))
    b = graph_store.create_dossier(dossier_spec("las:99XY:LL2"))
    doc = graph_store.add_document(a, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 r"), {})
    control(graph_server, "move", {"id": doc.id, "parent": graph_store._part_folders(b.id)["II"]})
    with pytest.raises(PermanentError, match="no longer in its dossier"):
        graph_store.destroy(doc)  # staff moved it to another pupil: it is not this dossier's to delete
    top = graph_store._folder(create=False)
    control(graph_server, "move", {"id": doc.id, "parent": top})
    with pytest.raises(PermanentError, match="no longer in its dossier"):
        graph_store.destroy(doc)  # out of every dossier
    assert item(graph_server, doc.id)["state"] == "live"


def test_revoking_reaches_a_file_staff_shared_and_spares_access_the_connector_did_not_give(
        graph_store: SharePointStore, graph_server: GraphServer) -> None:
    suffix = os.urandom(3).hex()
    control(graph_server, "principal", {"user": f"juf-{suffix}", "groups": [f"grp-{suffix}"]})
    control(graph_server, "principal", {"user": f"ib-{suffix}@school.nl"})
    graph_store.settings.groups["leerkracht"] = f"grp-{suffix}"
    ref = graph_store.create_dossier(dossier_spec())
    doc = graph_store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 r"), {})
    part = graph_store._part_folders(ref.id)["II"]
    # the intern begeleider could read part II before the connector gave anything
    graph_store._json("POST", f"{graph_store._item(part)}/invite", "t", json={
        "recipients": [{"email": f"ib-{suffix}@school.nl"}], "roles": ["read"], "requireSignIn": True,
        "sendInvitation": False})
    ib = DmsGrant(principal=f"ib-{suffix}@school.nl", kind="user")
    graph_store.set_access(ref, "II", (DmsGrant(principal="leerkracht", kind="group"), ib))
    # staff share the one file by hand: SharePoint copies the folder's permissions onto it
    control(graph_server, "grant", {"id": doc.id, "permission": {
        "roles": ["read"], "grantedToV2": {"user": {"email": "collega@school.nl"}}}})
    graph_store.set_access(ref, "II", ())

    def reads(user: str) -> list[str]:
        return list(control(graph_server, "readable", query={"user": user, "below": ref.id})["ids"])

    assert reads(f"juf-{suffix}") == []  # the connector's grant is gone from the shared file too
    assert reads(f"ib-{suffix}@school.nl") == [doc.id]  # a grant the connector did not give stays


def test_a_dossier_folder_staff_renamed_is_still_found_by_its_key(graph_store: SharePointStore,
                                                                  graph_server: GraphServer, prism: Prism) -> None:
    ref = graph_store.create_dossier(dossier_spec())
    graph_server.tenant.items[ref.id].name = "Noor van Dijk (oud)"
    fresh = open_graph_store(graph_server, prism.url, folder=graph_store.settings.folder)
    fresh.context, fresh._key = graph_store.context, graph_store._key
    assert fresh.find_dossier("las:99XY:LL000001") == ref
    assert fresh.create_dossier(dossier_spec()) == ref  # brought back to its name, not made twice
    assert item(graph_server, ref.id)["name"].endswith(f"[{fresh.key('las:99XY:LL000001')}]")
