"""Journal behaviour of the executor: failures are kept and retried, never replayed over newer state."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from connector.errors import PermanentError, TransientError
from connector.model import DossierRef, DossierSpec
from tests.conftest import World, pupil


@dataclass
class FailingStore:
    """Wraps a real store; refuses updates that would set jaargroep to ``bad``."""

    inner: Any
    bad: str | None = "6"
    error: type[Exception] = PermanentError
    calls: int = 0

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update_dossier(self, ref: DossierRef, spec: DossierSpec) -> None:
        self.calls += 1
        if spec.properties.get("jaargroep") == self.bad:
            raise self.error("update dossier: 422 on /dossiers (test)")
        self.inner.update_dossier(ref, spec)


def jaargroep(world: World) -> str:
    ref = world.store.find_dossier("las:99XY:LL1")
    assert ref is not None
    return str(world.store.read_dossier(ref)["properties"]["jaargroep"])


def test_permanent_failure_is_reported_kept_and_retried_next_run(world: World) -> None:
    world.sync([pupil("LL1", jaargroep="5")])
    failing = FailingStore(world.store)
    report = world.sync([pupil("LL1", jaargroep="6")], store=failing)
    assert failing.calls == 1  # permanent: not retried within the run
    assert len(report.failed) == 1 and report.failed[0]["record"].startswith("p-")
    assert "422" in report.failed[0]["error"]
    assert world.state.journal_counts().get("failed") == 1
    failing.bad = None
    again = world.sync([pupil("LL1", jaargroep="6")], store=failing)
    assert again.resumed == 1 and not again.failed and jaargroep(world) == "6"
    assert world.state.pending() == []


def test_transient_failure_is_retried_within_the_run(world: World) -> None:
    world.sync([pupil("LL1", jaargroep="5")])
    failing = FailingStore(world.store, error=TransientError)
    report = world.sync([pupil("LL1", jaargroep="6")], store=failing)
    assert failing.calls == 2  # the test retry policy allows two attempts
    assert report.failed and report.failed[0]["error"].startswith("transient")


def test_an_old_failed_operation_is_never_replayed_over_a_newer_state(world: World) -> None:
    world.sync([pupil("LL1", jaargroep="5")])
    failing = FailingStore(world.store)
    world.sync([pupil("LL1", jaargroep="6")], store=failing)  # fails, stays in the journal
    world.sync([pupil("LL1", jaargroep="7")], store=failing)  # the old row fails again; 7 lands
    assert jaargroep(world) == "7"
    failing.bad = None  # the DMS would now accept the old change ...
    report = world.sync([pupil("LL1", jaargroep="7")], store=failing)
    assert report.resumed == 0 and report.dms_writes == 0  # ... but it is superseded, not replayed
    assert jaargroep(world) == "7"
    assert world.state.journal_counts().get("superseded") == 1


def test_recording_an_operation_supersedes_exactly_the_older_unfinished_ones_of_its_family(world: World) -> None:
    """Per target and family: older rows still new, sent or failed are superseded; done rows,
    newer rows, other targets and the other family are left as they are."""
    from sqlalchemy import select, update

    from connector.model import Operation
    from connector.state import journal
    world.sync([pupil("A1"), pupil("B2")])
    with world.state.engine.connect() as conn:
        ops = {Operation.model_validate_json(p).external_id: Operation.model_validate_json(p)
               for p in conn.execute(select(journal.c.payload)).scalars()}
    a, b = (ops[k] for k in sorted(ops))
    tag_of_a = a.model_copy(update={"kind": "tag_document"})  # same target, the other family
    run = world.state.begin_run("sync")
    with world.state.transaction() as conn:
        ids = world.state.journal_add(conn, run, [(op, None, None) for op in (a, a, b, tag_of_a, a, a)])
        conn.execute(update(journal).where(journal.c.id == ids[1]).values(status="failed"))
        conn.execute(update(journal).where(journal.c.id == ids[2]).values(status="sent"))
        world.state.record_done_many(conn, [(ids[4], a, "ref-a", None, None)])
    with world.state.engine.connect() as conn:
        status = dict(conn.execute(select(journal.c.id, journal.c.status)).all())
    assert [status[i] for i in ids] == ["superseded", "superseded", "sent", "new", "done", "new"]
    assert list(status.values()).count("done") == 3  # the first sync's rows are left as they were


def test_a_slow_dms_gets_its_work_recorded_in_smaller_groups(world: World, monkeypatch: Any) -> None:
    """Past GROUP_SECONDS a group is recorded early; the rows it did not reach go back to new
    (their attempt not counted) and the next group takes them."""
    from sqlalchemy import select

    from connector import execute
    from connector.state import journal
    monkeypatch.setattr(execute, "GROUP_SECONDS", 0.0)  # every call is "slow": groups of one
    marks: list[int] = []
    real = world.state.journal_mark_many
    monkeypatch.setattr(world.state, "journal_mark_many", lambda ids, status: (marks.append(len(ids)),
                                                                               real(ids, status))[1])
    report = world.sync([pupil(f"LL{i}") for i in range(1, 6)])
    assert report.dossiers_created == 5 and not report.failed and report.deferred == 0
    assert marks == [5, 4, 3, 2, 1]  # each group reached one operation; the rest went round again
    with world.state.engine.connect() as conn:
        rows = conn.execute(select(journal.c.status, journal.c.attempts)).all()
    assert [tuple(r) for r in rows] == [("done", 1)] * 5
    assert world.audit.verify().ok


@dataclass
class UnflushableStore:
    """Wraps a real store; its groups' writes cannot be made durable (a failed write-back)."""

    inner: Any

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def group(self) -> Iterator[None]:
        with self.inner.group():
            yield
        raise TransientError("make the group's writes durable: Input/output error")


def test_a_group_the_dms_could_not_make_durable_is_not_recorded_done(world: World, caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="leerdossier"):
        report = world.sync([pupil("LL1"), pupil("LL2")], store=UnflushableStore(world.store))
    assert report.dossiers_created == 0 and len(report.failed) == 2
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures == ["the DMS could not make a group's writes durable: its operations failed"]  # once
    assert all("durable" in f["error"] for f in report.failed)
    assert world.state.dossier_count() == 0 and world.state.journal_counts() == {"failed": 2}
    assert [e for e in world.audit.entries() if e["action"] == "dossier.created"] == []
    again = world.sync([pupil("LL1"), pupil("LL2")])  # the next run does them again, once
    assert again.resumed == 2 and not again.failed
    assert world.state.dossier_count() == 2 and world.store.dossier_count() == 2
    assert world.state.pending() == []
