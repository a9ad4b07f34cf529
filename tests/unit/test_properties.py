"""Property tests of the whole cycle (plan -> execute -> plan) on generated snapshot sequences,
including runs killed between the journal and the DMS write, and after the write."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.model import DossierRef, DossierSpec
from tests.conftest import World, make_world, pupil

KEYS = [f"LL{i:03d}" for i in range(12)]


class Crash(BaseException):
    """Stands for SIGKILL: nothing in the connector may catch it."""


@dataclass
class CrashingStore:
    """Wraps a real store; dies once, before or after the n-th write reaches the DMS."""

    inner: Any
    at: int
    after_write: bool
    writes: int = 0
    crashed: bool = False

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _write(self, fn: Any, *args: Any) -> Any:
        self.writes += 1
        if not self.crashed and self.writes == self.at:
            self.crashed = True
            if self.after_write:
                fn(*args)
            raise Crash
        return fn(*args)

    def create_dossier(self, spec: DossierSpec) -> DossierRef:
        return self._write(self.inner.create_dossier, spec)  # type: ignore[no-any-return]

    def update_dossier(self, ref: DossierRef, spec: DossierSpec) -> None:
        self._write(self.inner.update_dossier, ref, spec)


snapshot = st.dictionaries(
    st.sampled_from(KEYS),
    st.tuples(st.sampled_from(["1", "2", "3", "4"]), st.booleans()),
    min_size=8, max_size=12,
)


def items(snap: dict[str, tuple[str, bool]]) -> list[Any]:
    return [pupil(k, jaargroep=jg, uitstroomdatum=date(2026, 7, 10) if left else None,
                  achternaam=f"Naam{k}", roepnaam=f"Roep{k}")
            for k, (jg, left) in sorted(snap.items())]


def dossier_folders(w: World) -> int:
    return len(list((w.folder / "dms" / "dossiers").glob("*/*")))


def assert_one_dossier_per_key(w: World, keys: set[str]) -> None:
    found = {}
    for k in keys:
        ref = w.store.find_dossier(f"las:99XY:{k}")
        assert ref is not None, k
        found[k] = ref.id
    assert len(set(found.values())) == len(keys)
    assert dossier_folders(w) == w.store.dossier_count() == len(keys)


SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(st.lists(snapshot, min_size=1, max_size=4))
def test_plan_execute_plan_is_empty_and_never_two_dossiers_per_key(snaps: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = make_world(Path(tmp))
        seen: set[str] = set()
        for snap in snaps:
            report = w.sync(items(snap), accept_snapshot=True)
            assert report.stopped_by is None and not report.failed
            seen |= set(snap)
            again = w.sync(items(snap), dry_run=True)
            assert again.dossiers_created == again.dossiers_updated == 0
            assert_one_dossier_per_key(w, seen)
            vanished = {v["record"] for v in report.vanished}
            expected = {w.identity.pseudonym_of("99XY", k) for k in seen - set(snap)}
            departed = {w.identity.pseudonym_of("99XY", k) for k in seen - set(snap)
                        if w.state.recorded(f"las:99XY:{k}").spec.departure is not None}  # type: ignore[union-attr]
            assert vanished == expected - departed


@SETTINGS
@given(snapshot, snapshot, st.integers(min_value=1, max_value=14), st.booleans())
def test_a_killed_run_is_finished_by_the_next_without_duplicates(
        first: dict[str, Any], second: dict[str, Any], at: int, after_write: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = make_world(Path(tmp))
        w.sync(items(first))
        crashing = CrashingStore(w.store, at=at, after_write=after_write)
        with contextlib.suppress(Crash):
            w.sync(items(second), store=crashing, accept_snapshot=True)
        w.state.engine.dispose()  # the process died: nothing survives but disk
        w2 = make_world(Path(tmp))
        report = w2.sync(items(second), accept_snapshot=True)
        assert not report.failed
        assert w2.state.pending() == []
        assert_one_dossier_per_key(w2, set(first) | set(second))
        assert w2.sync(items(second)).dms_writes == 0
        for k, (jg, _left) in second.items():
            ref = w2.store.find_dossier(f"las:99XY:{k}")
            assert ref is not None
            assert w2.store.read_dossier(ref)["properties"]["jaargroep"] == jg
        assert w2.audit.verify().ok


def test_concurrent_execution_keeps_one_dossier_per_key_and_an_intact_audit_chain(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    snap = {k: ("3", False) for k in KEYS}
    report = w.sync(items(snap), concurrency=4)
    assert report.dossiers_created == len(KEYS) and not report.failed
    assert_one_dossier_per_key(w, set(KEYS))
    changed = {k: ("4", k.endswith("1")) for k in KEYS}
    report = w.sync(items(changed), concurrency=4)
    assert report.dossiers_updated == len(KEYS)
    assert w.audit.verify().ok and w.state.pending() == []
    assert w.sync(items(changed), concurrency=4).dms_writes == 0
