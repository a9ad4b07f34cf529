"""The fleet on a real PostgreSQL: several ``leerdossier fleet worker`` processes share the
schools; each school is synced once per cycle, never by two workers at once, and a dead
worker's school is taken over and finished without a duplicate dossier."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.fleet_world import FleetWorld, cli, cycles_by_school, make_fleet, start_worker, wait_until
from tests.integration.postgres import fresh_database

pytestmark = pytest.mark.postgres


def _sync_runs(world: FleetWorld, school: str) -> list[str]:
    return [r[0] for r in world.query(school, "select status from runs where kind = 'sync' order by id")]


@pytest.mark.parametrize("workers", [2, 4])
def test_every_school_is_synced_exactly_once_per_cycle(tmp_path: Path, workers: int) -> None:
    with fresh_database() as url:
        world = make_fleet(tmp_path, url, schools=50, pupils=6)
        checked = cli("fleet", "check", "--fleet", str(world.fleet))
        assert checked.returncode == 0, checked.stderr
        queued = cli("fleet", "cycle", "--fleet", str(world.fleet), "--json")
        assert queued.returncode == 0, queued.stderr
        again = cli("fleet", "cycle", "--fleet", str(world.fleet), "--json")
        assert '"waiting"' in again.stdout and '"queued"' not in again.stdout  # no second job while one waits

        procs = [start_worker(world, f"w{i}", "--once") for i in range(workers)]
        logs = []
        for proc in procs:
            code, err = proc.wait(timeout=600)
            assert code == 0, err[-2000:]
            logs.append(cycles_by_school(err))

        jobs = world.jobs()
        assert Counter(s for s, _, _ in jobs) == Counter(world.schools)  # one job per school
        assert {st for _, st, _ in jobs} == {"succeeded"}
        done = [school for log in logs for school in log]
        assert sorted(done) == sorted(world.schools)  # each school's cycle ran once, by one worker
        assert sum(1 for log in logs if log) >= 2  # the work was shared
        for school in world.schools:
            assert _sync_runs(world, school) == ["ok"]
            assert world.dossiers(school) == world.pupils


def test_periodic_ticks_make_one_job_per_school_however_many_workers(tmp_path: Path) -> None:
    with fresh_database() as url:
        world = make_fleet(tmp_path, url, schools=4, pupils=4, every="3s")
        procs = [start_worker(world, f"w{i}") for i in range(2)]
        assert wait_until(lambda: sum(st == "succeeded" for _, st, _ in world.jobs()) >= 12, timeout=90, every=0.5)
        for proc in procs:
            code, err = proc.stop()
            assert code == 0, err[-2000:]

        ticks = world.query(None, "select args->>'school', args->>'timestamp' from procrastinate_jobs "
                                  "where task_name = 'leerdossier.sync_school'")
        per_tick = Counter(ticks)
        assert len({stamp for _, stamp in ticks}) >= 3
        assert set(per_tick.values()) == {1}  # two workers, each deferring every tick: one job per school per tick
        jobs = world.jobs()
        for school in world.schools:
            succeeded = sum(1 for s, st, _ in jobs if s == school and st == "succeeded")
            assert succeeded >= 2
            ok = _sync_runs(world, school).count("ok") + _sync_runs(world, school).count("unchanged")
            assert succeeded <= ok <= sum(1 for s, _, _ in jobs if s == school)
            assert world.dossiers(school) == world.pupils


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "terminated"])
def test_a_stopped_workers_school_is_taken_over_without_duplicates(tmp_path: Path, sig: int) -> None:
    with fresh_database() as url:
        world = make_fleet(tmp_path, url, schools=1, pupils=1500)
        school = world.schools[0]
        assert cli("fleet", "cycle", "--fleet", str(world.fleet)).returncode == 0
        first = start_worker(world, "first")

        def dossiers_begun() -> bool:
            try:
                return bool(world.query(school, "select count(*) from journal where status = 'done'")[0][0] > 20)
            except Exception:  # the schema is not there yet
                return False

        assert wait_until(dossiers_begun, timeout=120)
        code, _ = first.stop(sig)
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
        status = world.jobs()[0][1]
        assert status == ("doing" if sig == signal.SIGKILL else "todo")  # a dead worker cannot say; a stopping one does

        second = start_worker(world, "second")
        assert wait_until(lambda: world.jobs()[0][1] == "succeeded", timeout=180, every=0.5)
        code, err = second.stop()
        assert code == 0, err[-2000:]
        # the same job, taken over once: one attempt that the first worker did not finish, one that ended
        assert world.jobs() == [(school, "succeeded", 2)]
        assert world.dossiers(school) == world.pupils  # one dossier per pupil, none twice
        unfinished = world.query(school, "select count(*) from journal where status in ('new', 'sent', 'failed')")
        assert unfinished[0][0] == 0
        creates = world.query(school, "select subject, count(*) from audit where action = 'dossier.created' "
                                      "group by subject having count(*) > 1")
        assert creates == []
        assert _sync_runs(world, school)[-1] == "ok"


def test_the_workers_log_at_the_fleet_files_level(tmp_path: Path) -> None:
    with fresh_database() as url:
        world = make_fleet(tmp_path, url, schools=1, pupils=3, log_level="WARNING", cpu_policy="batch")
        assert cli("fleet", "cycle", "--fleet", str(world.fleet)).returncode == 0
        code, err = start_worker(world, "quiet", "--once").wait(timeout=120)
        assert code == 0, err[-2000:]
        assert [st for _, st, _ in world.jobs()] == ["succeeded"]
        assert cycles_by_school(err) == [] and '"worker started"' not in err  # INFO lines left out
        world.base.joinpath("fleet.toml").write_text(
            world.fleet.read_text(encoding="utf-8").replace('"WARNING"', '"INFO"'), encoding="utf-8")
        assert cli("fleet", "cycle", "--fleet", str(world.fleet)).returncode == 0
        code, err = start_worker(world, "chatty", "--once").wait(timeout=120)
        assert code == 0 and cycles_by_school(err) == world.schools  # the same worker at INFO says more
        started = [json.loads(line) for line in err.splitlines() if '"worker started"' in line]
        assert [entry.get("cpu_policy") for entry in started] == ["batch"]  # as the fleet file asks
