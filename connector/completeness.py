"""Are the dossiers complete and current ("compleet en actueel")? What the rules require and a
school can act on, per school: counts first, then the records by pseudonymous key.

Checks:
- leavers without an onderwijskundig rapport (every departure needs one for the new school);
- an OKR recorded as sent without evidence in the dossier that the parents were informed;
- documents without a class, or without a retention tag;
- dossiers whose pupil is no longer in the LAS and has no recorded departure (vanished);
- pupils without a dossier: records the last sync rejected or held as suspected duplicates;
- suspected duplicates not yet dismissed;
- requests near or past their deadline;
- guardians whose parental authority nobody knows (they get no access until it is recorded);
- guardians about whom a person's record and the LAS disagree (authority, death), not
  confirmed by a person since (the more restrictive reading holds meanwhile);
- rights that cannot be applied because no DMS account is linked (as of the last apply).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from connector import acl, rights
from connector.state import StateStore

CHECKS: tuple[tuple[str, str], ...] = (
    ("leaver_without_okr", "leaver without an onderwijskundig rapport"),
    ("okr_without_parents_informed", "OKR sent without evidence that the parents were informed"),
    ("document_without_class", "documents without a class"),
    ("document_without_tag", "documents without a retention tag"),
    ("vanished", "pupil no longer in the LAS, no departure recorded"),
    ("pupil_without_dossier", "pupil without a dossier (rejected or held in the last sync)"),
    ("suspected_duplicate", "suspected duplicate, not dismissed"),
    ("request_due", "request near or past its deadline"),
    ("authority_unknown", "guardian whose parental authority is unknown"),
    ("guardian_disagreement", "guardian: a person's record and the LAS disagree"),
    ("right_without_account", "a right that waits for a linked DMS account"),
)


def report(state: StateStore, okr_class: str, evidence_class: str, today: date, warn_days: int) -> dict[str, Any]:
    """The report per school: ``{"schools": {code: {"counts": {...}, "items": [...]}}, "checks": ...}``."""
    rows = state.dossier_rows()
    facts = state.facts_map({r.external_id: r.departure for r in rows})
    known = state.completeness_facts()
    recorded = state.recorded_guardians(None)
    waiting = state.waiting_for_accounts()
    schools: dict[str, dict[str, Any]] = {}

    def add(school: str, check: str, record: str, detail: str = "") -> None:
        entry = schools.setdefault(school, {"counts": {c: 0 for c, _ in CHECKS}, "items": []})
        entry["counts"][check] += 1
        entry["items"].append({"check": check, "record": record, "detail": detail})

    by_pseudonym = {}
    for r in rows:
        by_pseudonym[r.pseudonym] = r.school
        schools.setdefault(r.school, {"counts": {c: 0 for c, _ in CHECKS}, "items": []})
        classes = known["classes"].get(r.external_id, set())
        f = facts[r.external_id]
        if r.ref_id is not None and f.departure is not None and f.clock_start is not None \
                and okr_class not in classes:
            add(r.school, "leaver_without_okr", r.pseudonym, f"left {f.departure.isoformat()}")
        okr = known["okr"].get(r.external_id)
        if okr is not None and evidence_class not in classes:
            add(r.school, "okr_without_parents_informed", r.pseudonym, f"sent {okr.on.isoformat()}")
        if known["unclassified"].get(r.external_id):
            add(r.school, "document_without_class", r.pseudonym, f"{known['unclassified'][r.external_id]} documents")
        if known["untagged"].get(r.external_id):
            add(r.school, "document_without_tag", r.pseudonym, f"{known['untagged'][r.external_id]} documents")
        if r.vanished_since is not None and f.departure is None:
            add(r.school, "vanished", r.pseudonym, f"missing since {r.vanished_since.isoformat()}")
        if waiting.get(r.external_id):
            add(r.school, "right_without_account", r.pseudonym, ", ".join(waiting[r.external_id]))
        for d in acl.disagreements(recorded.get(r.external_id, [])):
            add(r.school, "guardian_disagreement", r.pseudonym, f"{d['guardian']}: {d['disagreement']}")
        if known["unknown_authority"].get(r.external_id):
            add(r.school, "authority_unknown", r.pseudonym, f"{known['unknown_authority'][r.external_id]} guardians")
    for school in list(schools):
        last = state.last_sync_report(school) or {}
        for rej in last.get("rejected", []):
            add(school, "pupil_without_dossier", rej["record"], f"rejected: {rej['field']}: {rej['reason']}")
        for pseudonym in last.get("held", []):
            add(school, "pupil_without_dossier", pseudonym, "held as a suspected duplicate")
        for dup in last.get("suspected_duplicates", []):
            if dup.get("group"):
                add(school, "suspected_duplicate", f"{dup['a']} e.a.", f"groep van {dup['group']}: {dup['basis']}")
            else:
                add(school, "suspected_duplicate", f"{dup['a']} / {dup['b']}", dup.get("basis", ""))
    for req in rights.request_rows(state, "open", warn_days, today):
        if req["state"] in ("due soon", "overdue"):
            school = by_pseudonym.get(req["record"], "unknown")
            add(school, "request_due", req["record"], f"{req['kind']} due {req['due']} ({req['state']})")
    return {"today": today.isoformat(), "checks": dict(CHECKS),
            "schools": {k: schools[k] for k in sorted(schools)}}
