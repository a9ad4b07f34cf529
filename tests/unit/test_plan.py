from __future__ import annotations

from datetime import date

import pytest

from connector.errors import SafetyStop
from connector.mapping import load as load_mapping
from connector.model import DossierSpec, RecordedDossier
from connector.plan import SnapshotCheck, changed_fields, check_snapshot, plan, plan_dossier

PARTS = load_mapping("po").parts


def spec(eid: str, **props: str) -> DossierSpec:
    return DossierSpec(external_id=eid, pseudonym=f"p-{eid}", school="99XY", title="T",
                       properties={"jaargroep": "5", **props}, parts=PARTS)


def rec(s: DossierSpec, ref: str | None = "r1") -> RecordedDossier:
    return RecordedDossier(external_id=s.external_id, pseudonym=s.pseudonym, ref_id=ref,
                           fingerprint=s.fingerprint, spec=s)


def test_new_dossier_is_created() -> None:
    op = plan_dossier(spec("a"), None)
    assert op is not None and op.kind == "create_dossier" and op.ref_id is None


def test_unchanged_dossier_needs_nothing() -> None:
    assert plan_dossier(spec("a"), rec(spec("a"))) is None


def test_changed_dossier_is_updated_naming_fields_not_values() -> None:
    op = plan_dossier(spec("a", jaargroep="6"), rec(spec("a")))
    assert op is not None and op.kind == "update_dossier" and op.ref_id == "r1"
    assert op.changed == ("properties.jaargroep",)
    assert "6" not in " ".join(op.changed)


def test_a_recorded_dossier_without_ref_is_created_again_idempotently() -> None:
    op = plan_dossier(spec("a"), rec(spec("a"), ref=None))
    assert op is not None and op.kind == "create_dossier"


def test_departure_and_title_changes_are_named() -> None:
    old = spec("a")
    new = old.model_copy(update={"departure": date(2026, 7, 10), "title": "U"})
    assert changed_fields(new, old) == ("departure", "title") or set(changed_fields(new, old)) == {"departure", "title"}


def test_plan_is_deterministic_and_holds_only_creates() -> None:
    desired = [spec("a"), spec("b", jaargroep="7"), spec("c")]
    recorded = {"b": rec(spec("b"))}
    hold = frozenset({"p-b", "p-c"})
    ops = plan(desired, recorded, hold)
    assert [(o.kind, o.external_id) for o in ops] == [("create_dossier", "a"), ("update_dossier", "b")]
    assert plan(desired, recorded, hold) == ops


@pytest.mark.parametrize(("seen", "last", "stops"), [
    (80, 100, False), (79, 100, True), (0, 100, True), (5, None, False), (0, 0, False),
])
def test_truncated_snapshot_stops(seen: int, last: int | None, stops: bool) -> None:
    check = SnapshotCheck(seen=seen, last_good=last, min_ratio=0.8)
    if stops:
        with pytest.raises(SafetyStop) as info:
            check_snapshot(check)
        assert info.value.rail == "min_snapshot_ratio"
    else:
        check_snapshot(check)
