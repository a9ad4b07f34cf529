"""The use cases on the DMS and the schedule it is kept by: prepare the DMS once, show the
retention schedule in force."""

from __future__ import annotations

from typing import Any

from connector.app.context import App


def init_dms(app: App) -> dict[str, Any]:
    """Create what the connector needs in the DMS (document type, metadata fields, roles);
    idempotent. What was made or found, or a note that this DMS needs nothing."""
    with app.open_store() as store:
        return store.init() or {"note": "nothing to set up for this DMS"}


def schedule_view(app: App) -> dict[str, Any]:
    """The retention schedule in force, as the people who answer for it read it: per category
    its trigger, period, kind, basis, school override, alternatives and classes; and what an
    unclassified document gets."""
    sch = app.schedule()
    categories: dict[str, dict[str, Any]] = {
        code: {
            "name": c.name, "trigger": c.trigger, "period": c.period, "kind": c.kind, "blocked": c.blocked,
            "basis": c.basis, "override": c.override,
            "when_referred": c.when_referred.model_dump() if c.when_referred else None,
            "with_consent": c.with_consent.model_dump() if c.with_consent else None,
            "classes": sorted(k for k, v in sch.classes.items() if v == code),
        } for code, c in sch.categories.items()
    }
    return {
        "schedule": sch.name, "description": sch.description, "file": str(sch.path),
        "overrides_file": str(sch.override_path) if sch.override_path else None,
        "categories": categories, "unclassified": {"gets": sch.longest().name},
    }
