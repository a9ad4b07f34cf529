"""The DMS fails: transient errors, timeouts, 429s without Retry-After and lost answers, at a
30 % rate; the runs converge to the end state of a fault-free run. A DMS that keeps failing
trips the circuit breaker: the run stops sending and the rest waits in the journal. A stop
request halts between operations the same way."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from connector.execute import RetryPolicy
from connector.sync import SyncOptions, sync
from tests.conftest import ListSource, World, make_world, pupil
from tests.faults import FaultyStore

PUPILS = [pupil(f"K{i:03d}", jaargroep=str(1 + i % 8)) for i in range(60)]
FAST = RetryPolicy(attempts=3, initial=0.0, maximum=0.0)


def _run(w: World, store: object, items=PUPILS, **options: object):  # type: ignore[no-untyped-def]
    return sync(ListSource(list(items)), store, w.state, w.audit, w.identity, w.mapping,  # type: ignore[arg-type]
                SyncOptions(retry=FAST, accept_snapshot=True, **options), date(2026, 11, 24))  # type: ignore[arg-type]


def _end_state(w: World) -> tuple[int, dict[str, str | None]]:
    rows = w.state.dossier_rows()
    return w.store.dossier_count(), {r.external_id: w.state.recorded(r.external_id).fingerprint for r in rows}  # type: ignore[union-attr]


def test_thirty_percent_faults_converge_to_the_fault_free_end_state(tmp_path: Path) -> None:
    clean = make_world(tmp_path / "clean")
    assert _run(clean, clean.store).dossiers_created == len(PUPILS)
    faulty_world = make_world(tmp_path / "faulty")
    faulty = FaultyStore(faulty_world.store, rate=0.3, seed=7)
    for _ in range(10):
        report = _run(faulty_world, faulty)
        if not report.failed and not faulty_world.state.pending():
            break
    assert faulty.injected > 20
    assert _end_state(faulty_world) == _end_state(clean)  # the same dossiers, the same content, none twice
    assert faulty_world.state.pending() == []  # the journal drained
    assert _run(faulty_world, faulty_world.store).dms_writes == 0


def test_a_dms_that_keeps_failing_trips_the_breaker_and_the_rest_waits(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    down = FaultyStore(w.store, always=True)
    report = _run(w, down, breaker=5)
    assert report.halted_by == "circuit_breaker"
    assert len(report.failed) == 5 and down.injected == 5 * FAST.attempts  # then it stopped calling
    assert report.deferred > 0
    assert w.state.last_runs(1)[0]["status"] == "halted"
    assert w.state.last_good_snapshot("99XY") is None  # a halted run is not a good snapshot
    again = _run(w, w.store, breaker=5)  # the DMS is back
    assert again.halted_by is None and w.store.dossier_count() == len(PUPILS)
    assert w.state.pending() == []


def test_a_stop_request_halts_between_operations(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 10

    report = _run(w, w.store, should_stop=stop)
    assert report.halted_by == "stop_requested" and 0 < w.store.dossier_count() < len(PUPILS)
    assert _run(w, w.store).halted_by is None and w.store.dossier_count() == len(PUPILS)
