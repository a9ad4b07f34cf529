"""A handful of SIGKILLs at random moments during sync and during destruction execute (the
benchmark bench/crash_soak.py does a hundred): after a restart, no duplicate dossiers, no lost
or repeated operations, nothing reported destroyed that is not."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import crash_soak


@pytest.mark.slow
def test_a_handful_of_kills_leave_no_anomaly(tmp_path: Path) -> None:
    rng = random.Random(5)
    base = tmp_path / "base"
    base.mkdir()
    pupils = 80
    info = crash_soak.prepare(base, pupils)
    dbase = crash_soak.prepare_destruction(base, info["keys"])
    crash_soak.KILLS.update(mid_run=0, after_end=0)
    totals: dict[str, int] = {}
    for i in range(3):
        for k, v in crash_soak.trial_sync(base, tmp_path / f"s{i}", pupils, rng).items():
            totals[k] = totals.get(k, 0) + v
        for k, v in crash_soak.trial_destroy(dbase, tmp_path / f"d{i}", rng).items():
            totals[k] = totals.get(k, 0) + v
    assert crash_soak.KILLS["mid_run"] >= 2  # kills land once the work has begun; most catch it mid-run
    assert totals == {"duplicates": 0, "lost": 0, "repeated": 0, "falsely_reported": 0}
