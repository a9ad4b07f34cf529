"""Access benchmark: compute and diff every dossier's access list, through the state, for N pupils.

    python bench/access_bench.py [--pupils 100000]

Each phase in its own process (peak RSS is its own). Prints (asserts nothing):
  plan       the core's plan of the same export against the same recorded dossiers (reference)
  first      the first apply: every dossier's list computed and set (a DMS that only counts calls)
  again      the same day again: every list computed and diffed, nothing to set
  later      years later: only the dossiers whose pupils turned 16 in between change
  pure       computing and diffing N lists in memory alone, without the state (the floor)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import plan_bench  # noqa: E402
from _rss import peak_rss_mb  # noqa: E402

DAY = date(2026, 11, 24)
LATER = date(2035, 6, 1)
"""The synthetic school is a primary school (pupils of 4 to 12): by this day some have turned 16."""
POLICY_ROLES = {"leerkracht": ("I", "II"), "intern_begeleider": ("I", "II"), "administratie": ("I",)}


def child(args: list[str]) -> dict[str, Any]:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


class CountingStore:
    """A DMS that takes every access change and only counts it (the DMS's own cost is not ours)."""

    from connector.model import StoreCapabilities
    capabilities: ClassVar[Any] = StoreCapabilities(acl=True)

    def __init__(self) -> None:
        self.calls = 0

    def set_access(self, ref: Any, part: str, grants: Any) -> None:
        self.calls += 1


def policy() -> Any:
    from connector.access import AccessPolicy
    return AccessPolicy(roles=POLICY_ROLES, parts=("I", "II"), information_classes=("rapport",))


def phase_seed_access(folder: Path, n: int) -> dict[str, Any]:
    """Birth dates and guardians as an OSO/CSV source would have delivered them; accounts linked
    for the guardians with authority of every other pupil."""
    from sqlalchemy import insert, select

    from connector.state import StateStore, dossiers, guardians, now, pupil_access
    from examples.synth import Synth, people

    state = StateStore(f"sqlite:///{folder / 'state.db'}")
    started = time.perf_counter()
    with state.engine.connect() as conn:
        ids = {eid.rsplit(":", 1)[1]: (eid, ps) for eid, ps in conn.execute(
            select(dossiers.c.external_id, dossiers.c.pseudonym))}
    access_rows: list[dict[str, Any]] = []
    guardian_rows: list[dict[str, Any]] = []
    stamp = now()
    for i, p in enumerate(people(Synth(pupils=n, duplicates=0, schooljaar="2026-2027"))):
        eid, pseudonym = ids[p.key]
        access_rows.append({"external_id": eid, "pseudonym": pseudonym, "birth_date": p.geboortedatum,
                            "fingerprint": "seed", "updated": stamp})
        for j, g in enumerate(p.guardians):
            guardian_rows.append({"guardian_id": f"g-{i:07d}{j}", "external_id": eid, "source": "las",
                                  "relation": g.relatie, "authority": "yes" if g.gezag else "no", "deceased": 0,
                                  "account": f"user{i}-{j}" if i % 2 == 0 else None, "by": "LAS", "at": stamp})
        if len(access_rows) >= 5000:
            with state.transaction() as conn:
                conn.execute(insert(pupil_access), access_rows)
                conn.execute(insert(guardians), guardian_rows)
            access_rows, guardian_rows = [], []
    with state.transaction() as conn:
        if access_rows:
            conn.execute(insert(pupil_access), access_rows)
        if guardian_rows:
            conn.execute(insert(guardians), guardian_rows)
    return {"seconds": time.perf_counter() - started}


def phase_apply(folder: Path, day: date) -> dict[str, Any]:
    from connector import acl
    from connector.audit import AuditLog
    from connector.state import StateStore

    state = StateStore(f"sqlite:///{folder / 'state.db'}")
    audit = AuditLog(state, b"bench-audit-key-0123456789abcdef")
    store = CountingStore()
    rows = state.dossier_rows()
    started = time.perf_counter()
    report = acl.apply(store, state, audit, policy(), rows, day, "bench")  # type: ignore[arg-type]
    return {"seconds": time.perf_counter() - started, "rss_mb": peak_rss_mb(), "dossiers": report.dossiers,
            "dms_calls": store.calls, "parts_changed": report.parts_changed,
            "missing_accounts": report.missing_accounts}


def phase_pure(n: int) -> dict[str, Any]:
    """The same shape of facts made cheaply in memory (no pupil generator, no state)."""
    from connector.access import AccessFacts, GuardianFacts, access_list, diff

    pol = policy()
    start_birth = date(2014, 1, 1)
    started = time.perf_counter()
    changes = 0
    for i in range(n):
        birth = date.fromordinal(start_birth.toordinal() + i % 3000)
        guardians = tuple(GuardianFacts(id=f"g-{j}", authority=(i + j) % 5 != 0) for j in range(i % 3))
        facts = AccessFacts(pseudonym=f"p-{i}", birth_date=birth, guardians=guardians)
        today, _ = access_list(facts, pol, DAY)
        later, _ = access_list(facts, pol, LATER)
        grant, revoke = diff(today, later)
        changes += bool(grant or revoke)
    return {"seconds": time.perf_counter() - started, "rss_mb": peak_rss_mb(), "changed": changes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pupils", type=int, default=100_000)
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--day", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.phase:
        if a.phase == "seed":
            out = plan_bench.phase_seed(a.folder)
        elif a.phase == "seed-access":
            out = phase_seed_access(a.folder, a.pupils)
        elif a.phase == "plan":
            out = plan_bench.phase_plan(a.folder)
        elif a.phase == "apply":
            out = phase_apply(a.folder, date.fromisoformat(a.day))
        else:
            out = phase_pure(a.pupils)
        print(json.dumps(out, default=str))
        return
    n = a.pupils
    folder = plan_bench.prepare(n, "access")
    child(["--phase", "seed", "--folder", str(folder), "--pupils", str(n)])
    plan = child(["--phase", "plan", "--folder", str(folder), "--pupils", str(n)])
    child(["--phase", "seed-access", "--folder", str(folder), "--pupils", str(n)])
    print(f"access, N={n:,} pupils (0-2 guardians each, half with a linked account), 3 staff roles, 2 parts")
    print(f"  plan (reference)  {plan['seconds']:7.2f} s  rss {plan['rss_mb']:5.0f} MB")
    for label, day in (("first apply", DAY), ("again, same day", DAY), ("years later", LATER)):
        r = child(["--phase", "apply", "--folder", str(folder), "--day", day.isoformat(), "--pupils", str(n)])
        print(f"  {label:<17} {r['seconds']:7.2f} s  rss {r['rss_mb']:5.0f} MB  dossiers {r['dossiers']:,}  "
              f"DMS calls {r['dms_calls']:,}  ({r['seconds'] / plan['seconds']:.2f}x plan)", flush=True)
    pure = child(["--phase", "pure", "--pupils", str(n)])
    print(f"  pure compute+diff {pure['seconds']:7.2f} s  rss {pure['rss_mb']:5.0f} MB  "
          f"(two lists and their diff per pupil, in memory; {pure['changed']:,} change by {LATER.isoformat()})")


if __name__ == "__main__":
    main()
