"""One regression test per way the destruction promise was found broken (named after it), on the
core and, where the defect was in a command, through the CLI."""

from __future__ import annotations

import io
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import delete, select, update

from adapters.dms.filesystem import FilesystemStore
from connector import destruction, tagging, transfer
from connector.clock import Clock
from connector.errors import ConfigError, InvalidState, NotPermitted, PermanentError
from connector.identity import Identity
from connector.mapping import load as load_mapping
from connector.model import DocumentRef, DossierRef
from connector.retention import load_schedule
from connector.state import audit_head, audit_log, destruction_items, destruction_lists, documents
from connector.users import User
from examples.synth import Synth, write
from tests.conftest import (
    APPROVER,
    APPROVER2,
    MAKER,
    SECRET,
    World,
    acting,
    add_users,
    filesystem_store,
    pupil,
    write_config,
)

MAPPING = load_mapping("po")
SCHEDULE = load_schedule("retention-po", classes=set(MAPPING.classes))
KEY = Identity(SECRET, "las_key").approval_key
TODAY = date.today()
CLOCK = Clock()


def run(*args: str) -> Result:
    return CliRunner().invoke(main_cmd(), list(args), catch_exceptions=False)


def js(*args: str) -> tuple[int, dict]:
    r = run(*args, "--json")
    return r.exit_code, json.loads(r.stdout) if r.stdout.strip() else {}


def main_cmd():  # type: ignore[no-untyped-def]
    from connector.cli import main

    return main


def dossier(w: World, key: str) -> tuple[object, DossierRef]:
    row = w.state.find_pupil([w.identity.pseudonym_of("99XY", key)])[0]
    return row, DossierRef(id=row.ref_id or "", external_id=row.external_id)


def add_docs(w: World, key: str, classes: list[str]) -> None:
    _row, ref = dossier(w, key)
    for cls in classes:
        w.store.add_document(ref, MAPPING.classes[cls][0], cls, "d.pdf", io.BytesIO(b"x"), {})
    tagging.refresh(w.store, w.state, w.audit, SCHEDULE, MAPPING, 0, "t")


def left_long_ago(w: World, keys: list[str], classes: list[str]) -> None:
    """Pupils synced, given documents, vanished from the LAS and recorded as left in 2020."""
    w.sync([pupil(k) for k in keys])
    for k in keys:
        add_docs(w, k, classes)
    w.sync([], accept_snapshot=True)
    for k in keys:
        row, _ref = dossier(w, k)
        with w.state.transaction() as conn:
            w.state.record_fact(conn, row.external_id, "departure", date(2020, 1, 1), "t")  # type: ignore[attr-defined]
    tagging.refresh(w.store, w.state, w.audit, SCHEDULE, MAPPING, 0, "t")


def approved_list(w: World, clock: Clock = CLOCK) -> int:
    list_id, n = destruction.create_list(w.state, w.audit, SCHEDULE, clock.today(), MAKER, clock)
    assert n
    destruction.approve(w.state, w.audit, KEY, list_id, APPROVER, "directeur", {}, clock)
    return list_id


# 1 ------------------------------------------------------------------------------------------------
def test_a_returning_pupil_with_a_changed_field_is_reenrolled_and_nothing_is_listed(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport"])
    row, _ = dossier(world, "K1")
    report = world.sync([pupil("K1", jaargroep="7")])  # back after the summer, one group up
    facts = world.state.facts_for(row.external_id, None)  # type: ignore[attr-defined]
    assert facts.reenrolled is not None and facts.clock_start is None
    assert row.external_id in report.retag  # type: ignore[attr-defined]
    _list, n = destruction.create_list(world.state, world.audit, SCHEDULE, TODAY, MAKER, CLOCK)
    assert n == 0


def test_a_pupil_whose_las_departure_goes_away_is_reenrolled_even_after_a_hand_recorded_one(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport"])
    row, _ = dossier(world, "K1")
    world.sync([pupil("K1", uitstroomdatum=date(2021, 7, 1))])  # the LAS now has a departure: it wins
    assert world.state.facts_for(row.external_id, date(2021, 7, 1)).clock_start == date(2021, 7, 1)  # type: ignore[attr-defined]
    world.sync([pupil("K1", groep="8b")])  # and then re-enrols the pupil: the hand-recorded 2020 must not run on
    assert world.state.facts_for(row.external_id, None).clock_start is None  # type: ignore[attr-defined]


# 2 ------------------------------------------------------------------------------------------------
def real_install(tmp_path: Path) -> str:
    export = write(tmp_path / "export.xml", Synth(pupils=30, duplicates=0, leavers=0.0))
    cfg = write_config(tmp_path, export, simulated=False, destruction={"output": "out"})
    add_users(cfg)
    assert js("sync", "--config", str(cfg))[0] == 0
    return str(cfg)


def test_today_is_for_previews_only_on_a_real_install(tmp_path: Path) -> None:
    c = real_install(tmp_path)
    code, made = js("destruction", "list", "create", "--config", c, "--today", "2099-01-01", *acting("maker"))
    assert code == 0 and made["status"] == "preview"
    r = run("destruction", "list", "approve", "--config", c, str(made["list"]), *acting("approver"))
    assert r.exit_code == 1 and "preview" in r.stderr
    for args in (["destruction", "list", "execute", "--config", c, str(made["list"]), "--today", "2099-01-01"],
                 ["destruction", "purge", "--config", c, "--today", "2099-01-01"]):
        r = run(*args, *acting("maker"))
        assert r.exit_code == 1 and "previews only" in r.stderr


def test_a_simulated_clock_says_so_on_the_certificate_and_in_the_audit(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport"])
    clock = Clock(date(2026, 11, 24))
    list_id = approved_list(world, clock)
    report = destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, clock, 100, MAKER, KEY)
    assert report.destroyed == 1 and "geen geldige verklaring" in str(report.clock)
    entry = next(e for e in world.audit.entries() if e["action"] == "document.destroyed")
    assert "geen geldige verklaring" in entry["details"]["clock"]
    cert = destruction.certificate(world.state, world.audit, KEY, list_id, "filesystem", True, 30, simulated=True)
    assert cert["simulated"] == "gesimuleerde datum: geen geldige verklaring"


# 3 ------------------------------------------------------------------------------------------------
def test_an_approval_is_by_an_identified_person_who_did_not_make_the_list(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport", "toetsuitslagen"])
    list_id, _n = destruction.create_list(world.state, world.audit, SCHEDULE, TODAY, MAKER, CLOCK)
    own = User(name="maker", roles=frozenset({"maker", "approver"}))
    with pytest.raises(NotPermitted, match="four eyes"):
        destruction.approve(world.state, world.audit, KEY, list_id, own, None, {}, CLOCK)
    with pytest.raises(NotPermitted, match="list.approve"):
        destruction.approve(world.state, world.audit, KEY, list_id, MAKER, None, {}, CLOCK)
    # two approvals asked for: the first leaves it waiting, the same person cannot give the second
    result = destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK, required=2)
    assert result["status"] == "approving"
    with pytest.raises(NotPermitted, match="already"):
        destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK, required=2)
    with pytest.raises(InvalidState, match="must be approved first"):
        destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, CLOCK, 100, MAKER, KEY,
                            required=2)
    assert destruction.approve(world.state, world.audit, KEY, list_id, APPROVER2, None, {}, CLOCK,
                               required=2)["status"] == "approved"
    # a forged approval (signed without the install key) does not count
    forged = Identity(b"another-install-secret-012345", "las_key").approval_key
    with pytest.raises(InvalidState, match="not approved by"):
        destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, CLOCK, 100, MAKER, forged)
    done = destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, CLOCK, 100, MAKER, KEY,
                               required=2)
    assert done.destroyed == 2


def test_an_empty_list_is_neither_approved_nor_executed(world: World) -> None:
    world.sync([pupil("K1")])
    list_id, n = destruction.create_list(world.state, world.audit, SCHEDULE, TODAY, MAKER, CLOCK)
    assert n == 0
    with pytest.raises(InvalidState):
        destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)
    with pytest.raises(InvalidState):
        destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, CLOCK, 100, MAKER, KEY)


def test_commands_act_as_authenticated_users_with_the_right_role(tmp_path: Path) -> None:
    c = real_install(tmp_path)
    r = run("hold", "add", "--config", c, "LL000003", "--reason", "klacht", "--as", "approver", "--secret", "env:NOPE")
    assert r.exit_code == 1
    bad = tmp_path / "wrong"
    bad.write_text("not the secret at all")
    bad.chmod(0o600)
    r = run("hold", "add", "--config", c, "LL000003", "--reason", "klacht", "--as", "approver", "--secret",
            f"file:{bad}")
    assert r.exit_code == 1 and "secret is wrong" in r.stderr
    code, hold = js("hold", "add", "--config", c, "LL000003", "--reason", "klacht", *acting("maker"))
    assert code == 0
    r = run("hold", "remove", "--config", c, str(hold["hold"]), "--reason", "klaar", *acting("maker"))
    assert r.exit_code == 1 and "hold.remove" in r.stderr
    assert js("hold", "remove", "--config", c, str(hold["hold"]), "--reason", "klaar", *acting("approver"))[0] == 0
    actors = {e["actor"] for e in js("audit", "show", "--config", c, "--last", "0")[1]}
    assert {"maker", "approver"} <= actors
    users = js("user", "list", "--config", c)[1]
    assert {u["name"] for u in users} == {"admin", "maker", "approver", "approver2"}
    assert "secret" not in json.dumps(users).replace('"password": true', "")
    assert run("user", "add", "--config", c, "newbie", "--role", "maker", "--new-secret", "env:LD_TEST_SECRET",
               *acting("maker")).exit_code == 1  # only an admin adds users
    assert js("user", "disable", "--config", c, "approver2", *acting("admin"))[0] == 0
    assert run("hold", "add", "--config", c, "LL000003", "--reason", "x", *acting("approver2")).exit_code == 1


# 4 ------------------------------------------------------------------------------------------------
def test_removal_at_the_source_is_a_destruction_behind_a_list(world: World, tmp_path: Path) -> None:
    left_long_ago(world, ["K1"], ["rapport", "vrijstelling_leerplicht"])
    row, ref = dossier(world, "K1")
    for part in ("I", "II"):
        report = transfer.export_part(world.store, world.state, world.audit, MAPPING, row, part,  # type: ignore[arg-type]
                                      transfer.FolderDestination(tmp_path / "archief"), True, MAKER, SCHEDULE,
                                      CLOCK)
        assert report.removed == 0  # nothing leaves the source here
        if part == "I":  # the blocked (Archiefwet) document is copied, never listed for removal
            assert report.verified == 1 and report.transfer_list is None
            assert report.kept[0]["reason"] == "blocked category"
        else:
            assert report.listed == 1 and report.transfer_list is not None
            transfer_list = report.transfer_list
    assert len(list(world.store.documents(ref))) == 2
    with pytest.raises(InvalidState, match="must be approved"):
        destruction.execute(world.store, world.state, world.audit, SCHEDULE, transfer_list, CLOCK, 100, MAKER, KEY)
    destruction.approve(world.state, world.audit, KEY, transfer_list, APPROVER, None, {}, CLOCK)
    done = destruction.execute(world.store, world.state, world.audit, SCHEDULE, transfer_list, CLOCK, 100, MAKER, KEY)
    assert done.destroyed == 1 and done.kind == "transfer"
    assert [d.doc_class for d in world.store.documents(ref)] == ["vrijstelling_leerplicht"]
    # and the transferred document is purged after the grace period, like any other
    later = Clock(date.today() + timedelta(days=31))
    assert destruction.purge(world.store, world.state, world.audit, SCHEDULE, later, 30, MAKER, KEY).purged == 1


# 5 ------------------------------------------------------------------------------------------------
def test_two_executions_of_one_list_do_not_run_at_once(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport"] * 3)
    list_id = approved_list(world)
    with world.state.exclusive("destruction"):  # another execution is running
        report = destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, CLOCK, 100, MAKER, KEY)
        purged = destruction.purge(world.store, world.state, world.audit, SCHEDULE, CLOCK, 0, MAKER, KEY)
    assert report.stopped_by == purged.stopped_by == "single_instance" and report.destroyed == 0
    done = destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, CLOCK, 100, MAKER, KEY)
    assert done.destroyed == 3
    # a late duplicate of a done item is skipped without rewriting it
    _head, items = destruction.load_list(world.state, list_id)
    op = destruction.Operation(kind="destroy_document", external_id=items[0]["external_id"],
                               pseudonym=items[0]["pseudonym"],
                               document=DocumentRef(id=items[0]["doc_id"], dossier_id=items[0]["dossier_id"],
                                                    part="II", doc_class="rapport", name="x"), item_id=items[0]["id"])
    world.state.skip(0, op, "document is trashed")
    _head, items = destruction.load_list(world.state, list_id)
    assert {i["status"] for i in items} == {"destroyed"}
    cert = destruction.certificate(world.state, world.audit, KEY, list_id, "filesystem", True, 30)
    assert cert["counts"]["destroyed"] == 3
    destroyed = [e for e in world.audit.entries() if e["action"] == "document.destroyed"]
    assert len(destroyed) == 3


# 6 ------------------------------------------------------------------------------------------------
def test_impossible_departure_dates_are_rejected_records(world: World, tmp_path: Path) -> None:
    from adapters.las.edexml import EdexmlSettings, EdexmlSource
    from connector.ports import SourceContext

    export = write(tmp_path / "x.xml", Synth(pupils=5, duplicates=0, leavers=0.0))
    text = export.read_text(encoding="utf-8")
    born = re.search(r"<geboortedatum>(\d{4})", text)
    assert born
    text = text.replace("</instroomdatum>", "</instroomdatum><uitstroomdatum>1901-01-01</uitstroomdatum>", 1)
    export.write_text(text, encoding="utf-8")
    source = EdexmlSource(EdexmlSettings(path=export), SourceContext(pseudonymize=world.identity.pseudonym_of))
    items = list(source.pupils(None))
    rejected = [i for i in items if not hasattr(i, "key")]
    assert len(rejected) == 1 and rejected[0].as_dict()["field"] == "uitstroomdatum"  # type: ignore[union-attr]
    # a date far in the future from any source is rejected when staged
    report = world.sync([pupil("K1"), pupil("K2", uitstroomdatum=TODAY + timedelta(days=400))])
    assert [(r["field"], "future" in r["reason"]) for r in report.rejected] == [("uitstroomdatum", True)]


def test_a_departure_by_hand_before_the_birth_or_far_ahead_is_refused(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", Synth(pupils=30, duplicates=0, leavers=0.0))
    cfg = write_config(tmp_path, export, destruction={"output": "out"})
    add_users(cfg)
    c = str(cfg)
    js("sync", "--config", c)
    text = export.read_text(encoding="utf-8")
    export.write_text(re.sub(r'<leerling key="LL000003".*?</leerling>\n', "", text, flags=re.S), encoding="utf-8")
    js("sync", "--config", c, "--accept-snapshot", "--by", "t")
    for day in ("1901-01-01", (TODAY + timedelta(days=400)).isoformat()):
        r = run("pupil", "left", "--config", c, "LL000003", "--date", day, *acting("maker"))
        assert r.exit_code == 1 and "--date" in r.stderr
    r = run("pupil", "exam-result", "--config", c, "LL000003", "--date", "1901-01-01", *acting("maker"))
    assert r.exit_code == 1


def test_many_new_departures_in_one_snapshot_stop_the_run(world: World) -> None:
    keys = [f"K{i}" for i in range(40)]
    world.sync([pupil(k) for k in keys])
    left = [pupil(k, uitstroomdatum=date(2026, 7, 1)) if i < 26 else pupil(k) for i, k in enumerate(keys)]
    report = world.sync(left)
    assert report.stopped_by == "mass_departure" and report.dossiers_updated == 0
    assert world.sync(left, accept_departures=True).stopped_by is None
    assert world.sync([pupil(k) for k in keys[:2]] + left[2:], max_new_departures=30).stopped_by is None


# 7 ------------------------------------------------------------------------------------------------
def test_an_override_cannot_undercut_a_floor_through_an_alternative(tmp_path: Path) -> None:
    vo = load_mapping("vo")
    for body in ('[overrides.psychologisch_vo]\nbasis = "Schoolbeleid"\nwhen_referred = { period = "1d", '
                 'basis = "Schoolbeleid" }\n',
                 '[overrides.psychologisch_vo]\nbasis = "Schoolbeleid"\nwith_consent = { period = "1w", '
                 'basis = "Schoolbeleid" }\n'):
        (tmp_path / "o.toml").write_text(body)
        with pytest.raises(ConfigError, match="shortest period"):
            load_schedule("retention-vo", overrides=tmp_path / "o.toml", classes=set(vo.classes))


# 8 ------------------------------------------------------------------------------------------------
def test_the_filesystem_store_takes_only_ids_of_its_own_shape_from_disk(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport", "vrijstelling_leerplicht"])
    _row, ref = dossier(world, "K1")
    store: FilesystemStore = world.store
    blocked = next(d for d in store.documents(ref) if d.doc_class == "vrijstelling_leerplicht")
    part = next(p for p in (world.folder / "dms" / "dossiers").glob("*/*/II-onderwijskundig"))
    for name, meta in (("evil", {"id": blocked.id[:4] + "*", "part": "II", "name": "x", "file": "evil.pdf"}),
                       ("esc", {"id": "esc", "part": "II", "name": "x", "file": "../I-administratief/x"})):
        (part / f"{name}.meta.json").write_text(json.dumps(meta))
    assert {d.doc_class for d in store.documents(ref)} == {"rapport", "vrijstelling_leerplicht"}
    with pytest.raises(PermanentError):
        store.destroy(DocumentRef(id=blocked.id[:4] + "*", dossier_id=ref.id, part="II", doc_class=None, name="x"))
    with pytest.raises(PermanentError):
        store.purge(DocumentRef(id="*", dossier_id=ref.id, part="II", doc_class=None, name="x"))
    assert blocked.id in {d.id for d in store.documents(ref)}  # the blocked document stays
    fresh = filesystem_store(world.folder / "dms", world.identity.index_key)
    assert len(list(fresh.documents(ref))) == 2


# 9 ------------------------------------------------------------------------------------------------
def test_an_audit_log_cut_short_is_detected(world: World) -> None:
    from connector.audit import AuditLog

    head_file = world.folder / "state.db.audit-head"
    audit = AuditLog(world.state, world.identity.audit_key, head_file)
    for i in range(5):
        audit.record("t", "test.entry", None, {"i": i})
    destruction.create_list(world.state, audit, SCHEDULE, TODAY, MAKER, CLOCK)  # an anchor in the state
    for i in range(5):
        audit.record("t", "test.entry", None, {"i": i})
    assert audit.verify().ok and head_file.stat().st_mode & 0o777 == 0o600
    entries = audit.entries()
    keep = entries[7]
    with world.state.transaction() as conn:  # cut the last entries and rewind the head to match
        conn.execute(delete(audit_log).where(audit_log.c.seq > keep["seq"]))
        conn.execute(update(audit_head).values(seq=keep["seq"], hash=keep["hash"]))
    result = audit.verify()
    assert not result.ok and any("head" in p for p in result.problems)
    with world.state.transaction() as conn:  # or empty both tables
        conn.execute(delete(audit_log))
        conn.execute(delete(audit_head))
    result = audit.verify()
    assert not result.ok and any("removed" in p for p in result.problems)
    head_file.unlink()  # even without the head file, the list in the state is an anchor
    assert not audit.verify().ok


# 10 -----------------------------------------------------------------------------------------------
def test_the_due_gauge_counts_only_what_the_gate_would_let_go(world: World) -> None:
    left_long_ago(world, ["K1", "K2"], ["rapport", "verzuim"])
    row, _ = dossier(world, "K2")
    with world.state.transaction() as conn:
        world.state.add_hold(conn, row, None, "klacht", "t")  # type: ignore[arg-type]
        conn.execute(update(documents).values(kind="minimum").where(documents.c.doc_class == "verzuim"))
    listed = list(destruction.due_documents(world.state, SCHEDULE, TODAY, exclude_listed=False))
    assert destruction.due_count(world.state, SCHEDULE, TODAY) == len(listed) == 1  # K1's rapport only
    with world.state.engine.connect() as conn:
        assert conn.execute(select(destruction_items)).first() is None


def test_the_service_makes_lists_and_purges_but_never_approves(world: World) -> None:
    from connector.users import SERVICE

    left_long_ago(world, ["K1"], ["rapport"])
    list_id, n = destruction.create_list(world.state, world.audit, SCHEDULE, TODAY, SERVICE, CLOCK)
    assert n == 1
    with pytest.raises(NotPermitted):
        destruction.approve(world.state, world.audit, KEY, list_id, SERVICE, None, {}, CLOCK)
    with pytest.raises(NotPermitted):
        destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, CLOCK, 100, SERVICE, KEY)
    destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)
    assert destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, CLOCK, 100, MAKER,
                               KEY).destroyed == 1
    later = Clock(date.today() + timedelta(days=30))  # today as the removal saw it, also across midnight
    assert destruction.purge(world.store, world.state, world.audit, SCHEDULE, later, 30, SERVICE, KEY).purged == 1
    assert world.audit.verify().ok


def test_a_list_cancelled_while_it_runs_removes_nothing_more(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport", "toetsuitslagen"])
    list_id = approved_list(world)

    class Cancelling:
        """Someone cancels the list right after the first removal."""

        def __init__(self) -> None:
            self.calls = 0

        def __getattr__(self, name: str) -> object:
            return getattr(world.store, name)

        @property
        def capabilities(self) -> object:
            return world.store.capabilities

        def destroy(self, doc: DocumentRef) -> None:
            self.calls += 1
            world.store.destroy(doc)
            if self.calls == 1:
                with world.state.transaction() as conn:
                    conn.execute(update(destruction_lists).values(status="cancelled"))

    report = destruction.execute(Cancelling(), world.state, world.audit, SCHEDULE, list_id, CLOCK, 100,  # type: ignore[arg-type]
                                 MAKER, KEY)
    assert report.destroyed == 1 and report.skipped[0]["reason"] == "the list is cancelled now"
