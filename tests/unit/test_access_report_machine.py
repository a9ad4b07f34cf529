"""Who can see what, attacked: random sequences of access applied by the rules, hand-made
changes to a dossier's ACLs in the DMS (another account added, a role taken off, a role narrowed
to reports only) and pupils leaving, through the real core (filesystem store, SQLite state,
``acl.apply`` and ``acl.effective``).

The oracle keeps its own model of what the DMS holds per dossier part, and works out from the
school's rules (staff roles while a pupil is at school, the administration's part I after
departure) what it should hold; it never asks the connector. After every step it checks that
the report counts exactly the pupils each holder can open per part, and lists exactly the
differences between the two: a hand-made change is never hidden, and a difference never
invented."""

from __future__ import annotations

import io
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from connector import acl
from connector.access import AccessPolicy
from connector.model import DmsGrant, DossierRef
from tests.conftest import World, make_world, pupil

TODAY = date(2026, 11, 24)
ROLES = {"leerkracht": ("I", "II"), "administratie": ("I",)}
AFTER = {"administratie": ("I",)}
POLICY = AccessPolicy(roles=ROLES, parts=("I", "II"), roles_after_departure=AFTER)
KEYS = [f"R{n}" for n in range(4)]

Held = dict[str, tuple[str, str, tuple[str, ...] | None]]
"""principal -> (principal, kind, classes): the oracle's model of one part's ACL."""


def meant(departed: bool) -> dict[str, Held]:
    """What the rules give a dossier's parts, worked out here from the policy's words."""
    roles = AFTER if departed else ROLES
    out: dict[str, Held] = {"I": {}, "II": {}}
    for role, parts in roles.items():
        for part in parts:
            out[part][role] = (role, "group", None)
    return out


class AccessReportMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ld-access-"))
        self.w: World = make_world(self.tmp)
        self.departed: dict[str, bool] = dict.fromkeys(KEYS, False)
        report = self.w.sync(self.snapshot(), today=TODAY)
        assert report.dossiers_created == len(KEYS)
        self.refs: dict[str, DossierRef] = {}
        self.pseudonyms: dict[str, str] = {}
        for row in self.w.state.dossier_rows():
            key = row.external_id.rsplit(":", 1)[-1]
            self.refs[key] = DossierRef(id=row.ref_id or "", external_id=row.external_id)
            self.pseudonyms[key] = row.pseudonym
            for part, cls in (("II", "rapport"), ("II", "verslag_teambespreking"), ("I", "inschrijving")):
                self.w.store.add_document(self.refs[key], part, cls, f"{cls}.pdf", io.BytesIO(b"%PDF-1.4"), {})
        self.held: dict[str, dict[str, Held]] = {k: {"I": {}, "II": {}} for k in KEYS}  # nothing given yet

    def teardown(self) -> None:
        self.w.state.engine.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def snapshot(self) -> list[Any]:
        return [pupil(k, uitstroomdatum=TODAY - timedelta(days=30)) if self.departed[k] else pupil(k) for k in KEYS]

    def write(self, key: str, part: str) -> None:
        """A person changes the part's ACL in the DMS by hand, as the oracle's model says."""
        grants = tuple(DmsGrant(principal=p, kind=k, classes=c)  # type: ignore[arg-type]
                       for p, k, c in sorted(self.held[key][part].values()))
        self.w.store.set_access(self.refs[key], part, grants)

    @rule()
    def apply(self) -> None:
        acl.apply(self.w.store, self.w.state, self.w.audit, POLICY, self.w.state.dossier_rows(), TODAY, "test",
                  force=True)
        for key in KEYS:
            self.held[key] = meant(self.departed[key])

    @rule(key=st.sampled_from(KEYS), part=st.sampled_from(["I", "II"]))
    def someone_opens_it_to_another_account(self, key: str, part: str) -> None:
        self.held[key][part]["buurman"] = ("buurman", "user", None)
        self.write(key, part)

    @rule(key=st.sampled_from(KEYS), part=st.sampled_from(["I", "II"]), role=st.sampled_from(sorted(ROLES)))
    def someone_takes_a_role_off(self, key: str, part: str, role: str) -> None:
        self.held[key][part].pop(role, None)
        self.write(key, part)

    @rule(key=st.sampled_from(KEYS), role=st.sampled_from(sorted(ROLES)))
    def someone_narrows_a_role_to_reports(self, key: str, role: str) -> None:
        if role in self.held[key]["II"]:
            self.held[key]["II"][role] = (role, "group", ("rapport",))
            self.write(key, "II")

    @rule(key=st.sampled_from(KEYS))
    def the_pupil_leaves(self, key: str) -> None:
        self.departed[key] = True
        self.w.sync(self.snapshot(), today=TODAY, accept_departures=True)

    @invariant()
    def the_report_is_what_the_dms_holds_and_every_difference_is_named(self) -> None:
        report = acl.effective(self.w.store, self.w.state, POLICY, self.w.state.dossier_rows(), TODAY)
        assert report["failed"] == [] and report["dossiers"] == len(KEYS)
        counts: dict[tuple[str, str, bool], int] = {}
        differences = set()
        for key in KEYS:
            rules = meant(self.departed[key])
            for part in ("I", "II"):
                for principal, (_p, kind, classes) in self.held[key][part].items():
                    holder = f"role:{principal}" if kind == "group" else "other"
                    slot = (holder, part, classes is None)
                    counts[slot] = counts.get(slot, 0) + 1
                    given = rules[part].get(principal)
                    if given is None:
                        differences.add((self.pseudonyms[key], part, holder, "extra"))
                    elif given[2] is None and classes is not None:
                        differences.add((self.pseudonyms[key], part, holder, "narrower"))
                for principal in set(rules[part]) - set(self.held[key][part]):
                    differences.add((self.pseudonyms[key], part, f"role:{principal}", "missing"))
        assert {(h["holder"], h["part"], h["whole_part"]): h["pupils"] for h in report["holders"]} == counts
        found = [(d["record"], d["part"], d["holder"], d["difference"]) for d in report["differences"]]
        assert len(found) == len(set(found)) and set(found) == differences


AccessReportMachine.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("LD_ACCESS_EXAMPLES", "25")), stateful_step_count=12,
    deadline=None, suppress_health_check=[HealthCheck.too_slow])
TestAccessReport = AccessReportMachine.TestCase
