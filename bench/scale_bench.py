"""Scale-out benchmark: 1, 2 and 4 ``leerdossier fleet worker`` processes on one PostgreSQL.

    python bench/scale_bench.py [--schools 50] [--pupils 1000] [--workers 1,2,4]

Each worker count gets a fresh database (every school's state in its own schema, the queue in
another) and empty filesystem DMS folders: ``fleet cycle`` queues one sync job per school, the
workers start together with ``--once`` and the clock stops when the last has left. Every run is
a first sync (all dossiers created). Prints, per worker count, the seconds, the throughput in
pupils per second and a check that every school was synced once and completely; then the
speed-up of each count relative to one worker. Asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.fleet_world import cli, make_fleet, start_worker  # noqa: E402
from tests.integration.postgres import fresh_database  # noqa: E402


def one(base: Path, schools: int, pupils: int, workers: int) -> float:
    for folder in base.glob("s[0-9]*"):
        shutil.rmtree(folder / "dms", ignore_errors=True)
        (folder / "install.key").unlink(missing_ok=True)
    with fresh_database() as url:
        world = make_fleet(base, url, schools, pupils, heartbeat=5, stalled_after=60)
        queued = cli("fleet", "cycle", "--fleet", str(world.fleet))
        if queued.returncode != 0:
            raise SystemExit(queued.stderr)
        started = time.perf_counter()
        procs = [start_worker(world, f"w{i}", "--once") for i in range(workers)]
        for proc in procs:
            code, log = proc.wait(timeout=3600)
            if code != 0:
                raise SystemExit(log[-2000:])
        seconds = time.perf_counter() - started
        jobs = world.jobs()
        complete = (len(jobs) == schools and {st for _, st, _ in jobs} == {"succeeded"}
                    and all(world.dossiers(s) == pupils for s in world.schools))
    total = schools * pupils
    print(f"workers {workers}: {seconds:7.1f} s  {total / seconds:8.1f} pupils/s  "
          f"({schools} schools x {pupils} pupils, {'all synced once, complete' if complete else 'INCOMPLETE'})",
          flush=True)
    return total / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schools", type=int, default=50)
    ap.add_argument("--pupils", type=int, default=1000)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        base = Path(tmp)
        print(f"preparing {args.schools} exports of {args.pupils} pupils ...", flush=True)
        make_fleet(base, "postgresql://unused/unused", args.schools, args.pupils)
        rates = {n: one(base, args.schools, args.pupils, n) for n in counts}
    if 1 in rates:
        for n, rate in rates.items():
            if n != 1:
                print(f"speed-up {n} workers: {rate / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
