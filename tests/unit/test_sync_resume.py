"""A run that dies while staging its snapshot is continued by the next run from the source's
cursor, stored with each staged batch: nothing is read twice, nothing is lost, no dossier is
made twice; a changed snapshot is read again from the start."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import connector.sync
from connector.sync import SyncOptions, sync
from tests.conftest import ListSource, World, pupil

BATCH = 200
N = BATCH * 2 + 50


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connector.sync, "BATCH", BATCH)


class Died(BaseException):
    """Stands for SIGKILL: no except or finally of the run gets to clean up."""


@dataclass
class DyingSource(ListSource):
    die_at: int = 0

    def pupils(self, since=None, resume=None):  # type: ignore[no-untyped-def]
        for n, item in enumerate(super().pupils(since, resume)):
            if n == self.die_at:
                raise Died
            yield item


def _die_during_staging(world: World, monkeypatch: pytest.MonkeyPatch, items: list) -> None:  # type: ignore[type-arg]
    with monkeypatch.context() as m:
        m.setattr(world.state, "finish_run", lambda *a, **k: None)
        m.setattr(world.state, "drop_staging", lambda *a, **k: None)
        with pytest.raises(Died):
            sync(DyingSource(items, die_at=N - 10), world.store, world.state, world.audit, world.identity,
                 world.mapping, SyncOptions(), world_today())


def world_today():  # type: ignore[no-untyped-def]
    from datetime import date
    return date(2026, 11, 24)


def test_an_interrupted_run_is_continued_from_its_cursor(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [pupil(f"K{i:05d}") for i in range(N)]
    _die_during_staging(world, monkeypatch, items)
    assert world.state.dossier_count() == 0  # it died before writing anything

    report = world.sync(items)
    assert report.resumed_read == BATCH * 2  # the two committed batches were taken over, unread
    assert report.pupils_seen == N and report.rejected == []
    assert report.dossiers_created == N and world.state.dossier_count() == N
    statuses = [r["status"] for r in world.state.last_runs(2)]
    assert statuses == ["ok", "interrupted"]
    again = world.sync(items)
    assert again.dms_writes == 0 and again.resumed_read == 0


def test_a_changed_snapshot_is_read_from_the_start(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [pupil(f"K{i:05d}") for i in range(N)]
    _die_during_staging(world, monkeypatch, items)
    changed = ListSource([*items, pupil("K99999")], snapshot="list-2")
    report = sync(changed, world.store, world.state, world.audit, world.identity, world.mapping,
                  SyncOptions(), world_today())
    assert report.resumed_read == 0
    assert report.rejected == []  # the dead run's staged rows were dropped, not counted twice
    assert report.dossiers_created == N + 1


def test_a_second_sync_at_the_same_time_is_stopped_not_mistaken_for_a_resume(world: World) -> None:
    items = [pupil(f"K{i:05d}") for i in range(10)]
    with world.state.exclusive("sync"):  # another process holding it looks the same to flock
        import multiprocessing
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        url = str(world.state.engine.url.render_as_string(hide_password=False))
        p = ctx.Process(target=_sync_in_child, args=(world.folder, url, world.state.schema, items, q))
        p.start()
        p.join(60)
        stopped_by = q.get(timeout=5)
    assert stopped_by == "single_instance"
    assert world.state.dossier_count() == 0 and world.state.last_runs(1) == []
    assert world.sync(items).dossiers_created == 10  # released: the next run goes ahead


def _sync_in_child(folder, url, schema, items, q) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_world
    q.put(make_world(folder, url, schema).sync(items).stopped_by)
