"""Run the destruction state machine (tests/unit/test_destruction_machine.py) for longer than
the test suite does, and print how many examples and steps ran, how many documents the real core
removed and purged under the oracle's eye, and what it found. Asserts nothing itself: a broken
promise is printed as the failing example (and the exit code is 1).

    .venv/bin/python bench/destruction_soak.py [--examples 300] [--steps 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    import os

    os.environ["LD_MACHINE_EXAMPLES"] = str(a.examples)
    os.environ["LD_MACHINE_STEPS"] = str(a.steps)
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    from tests.unit import test_destruction_machine as machine

    started = time.perf_counter()
    found = None
    try:
        run_state_machine_as_test(machine.DestructionMachine, settings=settings(
            max_examples=a.examples, stateful_step_count=a.steps, deadline=None, database=None,
            derandomize=a.seed is not None, suppress_health_check=list(HealthCheck)))
    except Exception as exc:  # the failing example is printed by hypothesis above
        found = f"{exc.__class__.__name__}: {exc}"
    s = machine.STEPS
    print(f"destruction soak: {s['examples']} examples, {s['steps']} steps checked by the oracle, "
          f"{s['documents']} documents added, {s['listed']} listed, "
          f"{s['removed']} removed and {s['purged']} purged by the core, "
          f"{time.perf_counter() - started:.0f} s")
    print("refused by the gate or the list: " + (", ".join(f"{k} {v}" for k, v in machine.SKIPPED.most_common())
                                                 or "nothing"))
    print(f"broken promises found: {1 if found else 0}" + (f" ({found})" if found else ""))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
