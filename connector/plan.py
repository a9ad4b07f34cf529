"""Pure planning: desired dossiers against recorded dossiers -> operations.

Nothing here reads a file, a database or a clock: the same inputs always give the same plan.
The sync run feeds these functions from the streamed snapshot and the state store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from connector.errors import SafetyStop
from connector.model import DossierSpec, Operation, RecordedDossier


def changed_fields(desired: DossierSpec, recorded: DossierSpec | None) -> tuple[str, ...]:
    """Names (never values) of what differs between two specs of one dossier."""
    if recorded is None:
        return ("*",)
    changed = [
        f"properties.{k}"
        for k in sorted(set(desired.properties) | set(recorded.properties))
        if desired.properties.get(k) != recorded.properties.get(k)
    ]
    for name in ("title", "school", "departure", "parts"):
        if getattr(desired, name) != getattr(recorded, name):
            changed.append(name)
    return tuple(changed)


def plan_dossier(desired: DossierSpec, recorded: RecordedDossier | None) -> Operation | None:
    """The one operation that brings a dossier to its desired state, or None if it is there."""
    if recorded is None or recorded.ref_id is None:
        return Operation(kind="create_dossier", external_id=desired.external_id,
                         pseudonym=desired.pseudonym, spec=desired)
    if recorded.fingerprint == desired.fingerprint:
        return None
    return Operation(kind="update_dossier", external_id=desired.external_id,
                     pseudonym=desired.pseudonym, spec=desired, ref_id=recorded.ref_id,
                     changed=changed_fields(desired, recorded.spec))


def plan(desired: Iterable[DossierSpec], recorded: Mapping[str, RecordedDossier],
         hold: frozenset[str] = frozenset()) -> list[Operation]:
    """Plan a whole snapshot. ``hold`` lists pseudonyms whose dossier must not be created yet
    (suspected duplicates awaiting a person's decision); their existing dossiers are updated."""
    ops = []
    for spec in desired:
        rec = recorded.get(spec.external_id)
        op = plan_dossier(spec, rec)
        if op is None or (op.kind == "create_dossier" and spec.pseudonym in hold):
            continue
        ops.append(op)
    return ops


@dataclass(frozen=True)
class SnapshotCheck:
    seen: int
    last_good: int | None
    min_ratio: float


def check_snapshot(check: SnapshotCheck) -> None:
    """Stop a run on a snapshot that looks truncated: far fewer pupils than the last good one."""
    if check.last_good is None or check.last_good == 0:
        return
    ratio = check.seen / check.last_good
    if ratio < check.min_ratio:
        raise SafetyStop(
            "min_snapshot_ratio",
            f"the snapshot holds {check.seen} pupil records, {ratio:.0%} of the last good run's "
            f"{check.last_good} (minimum {check.min_ratio:.0%}). It looks truncated, so nothing was "
            "changed. Check the export; if the school really shrank, rerun with --accept-snapshot --by NAME.",
        )
