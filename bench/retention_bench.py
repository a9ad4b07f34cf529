"""Retention benchmark: tag every document and make a destruction list, next to the plan.

    python bench/retention_bench.py [--pupils 100000]

N pupils with 10 documents each and 10 % leavers. Prints (asserts nothing), each phase in its own
process so peak RSS is its own:
  plan   the core's plan on the same export and recorded state (the reference)
  tags   recompute every document's retention tag from the state and store the changed ones
  list   create a destruction list of everything due on a day when the leavers' part II is due
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import plan_bench  # noqa: E402

LIST_DAY = date(2030, 1, 1)  # the synthetic leavers left in 2026: part II (2 years) is due, part I (5) not


def child(args: list[str]) -> dict[str, Any]:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _schedule() -> Any:
    from connector.mapping import load
    from connector.retention import load_schedule

    return load_schedule("retention-po", classes=set(load("po").classes))


def phase_tags(folder: Path) -> dict[str, Any]:
    from connector.state import StateStore
    from connector.tagging import recompute

    state = StateStore(f"sqlite:///{folder / 'state.db'}")
    schedule = _schedule()
    started = time.perf_counter()
    report = recompute(state, schedule)
    return {"seconds": time.perf_counter() - started, "rss_mb": plan_bench.rss_mb(), **report.as_dict()}


def phase_list(folder: Path) -> dict[str, Any]:
    from connector import destruction
    from connector.audit import AuditLog
    from connector.state import StateStore

    state = StateStore(f"sqlite:///{folder / 'state.db'}")
    started = time.perf_counter()
    from connector.clock import Clock
    from connector.users import User

    maker = User(name="bench", roles=frozenset({"maker"}))
    list_id, items = destruction.create_list(state, AuditLog(state, b"k" * 32), _schedule(), LIST_DAY, maker,
                                             Clock(LIST_DAY))
    return {"seconds": time.perf_counter() - started, "rss_mb": plan_bench.rss_mb(), "items": items, "list": list_id}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pupils", type=int, default=100_000)
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.phase:
        print(json.dumps({"tags": phase_tags, "list": phase_list}[a.phase](a.folder)))
        return
    from examples.synth import Synth, write

    folder = plan_bench.OUT / f"retention-{a.pupils}"
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    write(folder / "export.xml", Synth(pupils=a.pupils, duplicates=0, leavers=0.10, schooljaar="2026-2027"))
    seed = plan_bench.child(["--phase", "seed", "--folder", str(folder)])
    plan = plan_bench.child(["--phase", "plan", "--folder", str(folder)])
    tags = child(["--phase", "tags", "--folder", str(folder)])
    again = child(["--phase", "tags", "--folder", str(folder)])
    listing = child(["--phase", "list", "--folder", str(folder)])
    print(f"N={a.pupils} pupils, {seed['documents']} documents, 10 % leavers")
    print(f"plan (reference)   {plan['seconds']:7.2f} s  rss {plan['rss_mb']:5.0f} MB")
    print(f"tag all documents  {tags['seconds']:7.2f} s  rss {tags['rss_mb']:5.0f} MB  "
          f"({tags['changed']} tags stored) = {tags['seconds'] / plan['seconds']:.2f}x plan")
    print(f"tag again (no change) {again['seconds']:5.2f} s  ({again['changed']} changed)")
    print(f"destruction list   {listing['seconds']:7.2f} s  rss {listing['rss_mb']:5.0f} MB  "
          f"({listing['items']} items due on {LIST_DAY})")


if __name__ == "__main__":
    main()
