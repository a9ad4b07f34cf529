"""The fleet file: its schedule, its schools and what it refuses (no database needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from connector import fleet
from connector.errors import ConfigError
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "examples" / "obs-de-sample.edexml.xml"
PG = "postgresql://leerdossier@db.example/leerdossier"


@pytest.mark.parametrize(("every", "cron"), [
    ("30s", "* * * * * */30"), ("1s", "* * * * * */1"), ("15m", "*/15 * * * *"), ("1h", "0 */1 * * *"),
    ("6h", "0 */6 * * *"), ("1d", "0 0 * * *"),
])
def test_intervals_that_divide_the_clock_become_cron(every: str, cron: str) -> None:
    assert fleet.cron_for(every) == cron


@pytest.mark.parametrize("every", ["90s", "7m", "5h", "2d", "0s", "often"])
def test_other_intervals_ask_for_cron(every: str) -> None:
    with pytest.raises(ConfigError):
        fleet.cron_for(every)


def _school(folder: Path, name: str, **state: object) -> Path:
    sub = folder / "work" / name
    sub.mkdir(parents=True)
    settings = {k: v for k, v in ({"url": PG, "schema": f"school_{name}"} | state).items() if v is not None}
    config = write_config(sub, EXPORT, state=settings)
    target = folder / "schools" / f"{name}.toml"
    target.parent.mkdir(exist_ok=True)
    shutil.move(config, target)
    return target


def _fleet(folder: Path, extra: str = 'every = "1h"') -> Path:
    path = folder / "fleet.toml"
    path.write_text(f'[fleet]\nurl = "{PG}"\nschools = ["schools/*.toml"]\n{extra}\n', encoding="utf-8")
    return path


def test_the_example_fleet_file_loads(tmp_path: Path) -> None:
    shutil.copy(ROOT / "deploy" / "fleet.example.toml", tmp_path / "fleet.toml")
    _school(tmp_path, "regenboog")
    loaded = fleet.load(tmp_path / "fleet.toml")
    assert list(loaded.schools) == ["regenboog"] and loaded.cron == "0 */1 * * *"
    assert fleet.check_schools(loaded) == []


def test_schools_are_named_by_their_files_and_checked(tmp_path: Path) -> None:
    _school(tmp_path, "a")
    _school(tmp_path, "b", schema="school_a")  # the same store as a
    _school(tmp_path, "c", url="sqlite:///state.db", schema=None)
    loaded = fleet.load(_fleet(tmp_path))
    assert sorted(loaded.schools) == ["a", "b", "c"]
    problems = fleet.check_schools(loaded)
    assert any(p.startswith("b: shares its state store with a") for p in problems)
    assert any(p.startswith("c:") for p in problems)
    assert not any(p.startswith("a:") for p in problems)


def test_the_fleet_file_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    _school(tmp_path, "a")
    assert fleet.load(_fleet(tmp_path, 'every = ""')).cron is None  # no schedule: 'fleet cycle' only
    with pytest.raises(ConfigError, match="give either"):
        fleet.load(_fleet(tmp_path, 'every = "1h"\ncron = "0 6 * * *"'))
    with pytest.raises(ConfigError, match="not a cron"):
        fleet.load(_fleet(tmp_path, 'every = ""\ncron = "whenever"'))
    with pytest.raises(ConfigError, match="log_level"):
        fleet.load(_fleet(tmp_path, 'log_level = "LOUD"'))
    with pytest.raises(ConfigError, match="PostgreSQL"):
        path = tmp_path / "sqlite-fleet.toml"
        path.write_text('[fleet]\nurl = "sqlite:///q.db"\nschools = ["schools/*.toml"]\n', encoding="utf-8")
        fleet.load(path)
    with pytest.raises(ConfigError, match="matches no file"):
        path = tmp_path / "empty-fleet.toml"
        path.write_text(f'[fleet]\nurl = "{PG}"\nschools = ["nowhere/*.toml"]\n', encoding="utf-8")
        fleet.load(path)
    (tmp_path / "more").mkdir()
    shutil.copy(tmp_path / "schools" / "a.toml", tmp_path / "more" / "a.toml")
    with pytest.raises(ConfigError, match="both named 'a'"):
        path = tmp_path / "twice-fleet.toml"
        path.write_text(f'[fleet]\nurl = "{PG}"\nschools = ["schools/*.toml", "more/*.toml"]\n', encoding="utf-8")
        fleet.load(path)


def test_the_single_school_commands_do_not_load_the_job_engine() -> None:
    import subprocess
    import sys
    code = "import sys, connector.cli; print('procrastinate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_without_the_extra_the_fleet_commands_say_what_to_install(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from click.testing import CliRunner

    import connector
    from connector.cli import main
    monkeypatch.setitem(sys.modules, "procrastinate", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "connector.fleet", raising=False)
    monkeypatch.delattr(connector, "fleet", raising=False)
    result = CliRunner().invoke(main, ["fleet", "status", "--fleet", str(_fleet(tmp_path))])
    assert result.exit_code != 0
    assert "pip install 'leerdossier-connector[fleet]'" in result.output


def test_a_worker_without_a_schedule_is_healthy_until_a_cycle_fails() -> None:
    """Cycles queued from outside ('fleet cycle' from another scheduler) have no period, so no
    age counts as stale; a scheduled worker is stale after two periods without a success."""
    from datetime import UTC, datetime, timedelta

    from connector.service import Health, Schedule

    start = datetime(2026, 11, 24, 12, tzinfo=UTC)
    later = start + timedelta(days=3)
    unscheduled = Health(None, started=start)
    assert unscheduled.report(later)[0] == 200
    unscheduled.last_status = "failed"
    assert unscheduled.report(later)[0] == 503
    hourly = Health(Schedule("1h", None), started=start)
    assert hourly.report(start + timedelta(minutes=90))[0] == 200
    assert hourly.report(later)[0] == 503


def test_a_worker_puts_itself_and_its_threads_under_the_cpu_policy_it_is_given() -> None:
    """In a child process, so the test run keeps its own policy. Where the system has no
    SCHED_BATCH (not Linux) the worker says it left the policy unchanged; it never skips."""
    if not hasattr(os, "SCHED_BATCH"):
        assert fleet.apply_cpu_policy("batch") == "unchanged"
        return
    probe = (
        "import os, sys, threading\n"
        "from connector.fleet import apply_cpu_policy\n"
        "seen = []\n"
        "for wanted in sys.argv[1:]:\n"
        "    got = apply_cpu_policy(wanted)\n"
        "    t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))\n"
        "    t.start(); t.join()\n"
        "    print(got, os.sched_getscheduler(0), seen[-1])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, "batch", "batch", "normal"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    batch, other = os.SCHED_BATCH, os.SCHED_OTHER
    assert out[:3] == [f"batch {batch} {batch}", f"batch {batch} {batch}", f"normal {other} {other}"]


def test_the_cpu_policy_is_batch_or_normal() -> None:
    assert fleet.FleetSection(url=PG, schools=["*.toml"]).cpu_policy == "normal"
    with pytest.raises(ValidationError):
        fleet.FleetSection(url=PG, schools=["*.toml"], cpu_policy="fifo")
