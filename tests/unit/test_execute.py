"""Journal behaviour of the executor: failures are kept and retried, never replayed over newer state."""

from __future__ import annotations

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
