"""Mutation fuzzing, longer than CI runs it: N seeded mutations of each parser's sample (EDEXML,
UWLR answer, OSO, CSV, TOML config, mapping, schedule, overrides), each parsed in a child with an
address-space limit (tests/fuzzing.py). Prints per parser how the inputs ended, every crash
(traceback), hang (> 10 s) and input that took more than 300 MB, and the wall time; the last
line is ``anomalies: N`` (exit code 1 when N > 0).

    .venv/bin/python bench/fuzz_soak.py [--per-parser 1250] [--workers 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzzing import OPERATIONS, PARSERS, Result, Worker, mutate, samples  # noqa: E402

ANOMALIES = ("crash", "hang", "memory")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-parser", type=int, default=1250)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    base = samples()
    jobs = [(kind, i) for i in range(a.per_parser) for kind in PARSERS]
    lock = threading.Lock()
    counts: dict[str, Counter[str]] = {k: Counter() for k in PARSERS}
    slowest: dict[str, float] = dict.fromkeys(PARSERS, 0.0)
    peak: dict[str, float] = dict.fromkeys(PARSERS, 0.0)
    found: list[tuple[str, list[tuple[str, int, int]], Result]] = []
    started = time.perf_counter()

    def work(w: Worker) -> None:
        while True:
            with lock:
                if not jobs:
                    return
                kind, i = jobs.pop()
            rng = random.Random(f"{a.seed}:{kind}:{i}")
            ops = [(rng.choice(OPERATIONS), rng.randrange(2**32), rng.randrange(2**32))
                   for _ in range(rng.randint(1, 4))]
            r = w.run(kind, mutate(base[kind], kind, ops))
            with lock:
                counts[kind][r.outcome] += 1
                slowest[kind] = max(slowest[kind], r.seconds)
                peak[kind] = max(peak[kind], r.peak_mb)
                if r.outcome in ANOMALIES:
                    found.append((kind, ops, r))

    workers = [Worker(a.timeout) for _ in range(a.workers)]
    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.close()
    wall = time.perf_counter() - started

    total = sum(sum(c.values()) for c in counts.values())
    print(f"inputs: {total} ({a.per_parser} per parser, seed {a.seed}, {a.workers} workers)")
    print(f"{'parser':<10}{'ok':>7}{'error':>7}{'crash':>7}{'hang':>6}{'memory':>8}{'slowest s':>11}{'peak MB':>9}")
    for kind in PARSERS:
        c = counts[kind]
        print(f"{kind:<10}{c['ok']:>7}{c['error']:>7}{c['crash']:>7}{c['hang']:>6}{c['memory']:>8}"
              f"{slowest[kind]:>11.2f}{peak[kind]:>9.0f}")
    for kind, ops, r in found:
        print(f"\n{r.outcome} in {kind} after {ops}:\n{r.detail}")
    print(f"wall time: {wall:.1f} s")
    print(f"anomalies: {len(found)}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
