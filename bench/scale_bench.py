"""Scale-out benchmark: 1, 2 and 4 ``leerdossier fleet worker`` processes on one PostgreSQL.

    python bench/scale_bench.py [--schools 50] [--pupils 1000] [--workers 1,2,4] [--repeat 2] [--dms-dir DIR]
                                [--cpu-policy normal|batch]

Each run gets a fresh database (every school's state in its own schema, the queue in another)
and filesystem DMS folders of its own (all are removed only at the end). The workers start and
register; then ``fleet cycle`` queues one sync job per school. The time is the queue's own: from
the deferral of the first job to the end of the last (the workers' start-up is not in it, as in a
service that runs for months). Every run is a first sync (all dossiers created); ``fleet check``
made the schools' state schemas before. Prints, per worker count, the seconds, the throughput in
pupils per second and a check that every school was synced once and completely; then the
speed-up of each count relative to one worker, from the best of ``--repeat`` runs per count
(this machine's disk and neighbours make single runs vary by a fifth or more), and each round's
own ratio with their median. The counts take turns, round by round, and every run starts after
the disk has written back the last one's leftovers. Asserts nothing.

The clean-up at the end removes every run's dossiers, which takes minutes at full size. On ext4
without a journal (as this machine's disk) new files and folders are slower for some minutes
after a large deletion (see ``main``), so leave a few minutes between two invocations, or
the first runs of the second pay for the first's clean-up.

The workers run under the fleet file's default CPU policy ("normal") unless ``--cpu-policy
batch`` puts them under SCHED_BATCH (``[fleet] cpu_policy``); compare the two in one
invocation with ``--cpu-policy normal,batch``: every round then runs each count under each
policy; each policy gets its own speed-up lines, and one more line sets the best run of each
count under either policy against the best single worker under either.

The DMS folders lie in the temporary folder on disk unless ``--dms-dir`` puts them elsewhere
(``--dms-dir /dev/shm`` shows the workers' scaling without the disk). Each run also prints
what the machine's disks wrote and how many flushes they were asked for (the disk is the one
thing the workers share besides the cores and PostgreSQL), and how busy the cores were, both
over the run's own time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.exc import ProgrammingError  # noqa: E402

from tests.integration.fleet_world import FleetWorld, cli, make_fleet, start_worker, wait_until  # noqa: E402
from tests.integration.postgres import fresh_database  # noqa: E402


def one(base: Path, dms: Path, schools: int, pupils: int, workers: int, policy: str) -> float:
    """One run into ``dms``, a folder no run used before, the workers under CPU ``policy``."""
    for folder in base.glob("s[0-9]*"):
        (folder / "install.key").unlink(missing_ok=True)
    with fresh_database() as url:
        world = make_fleet(base, url, schools, pupils, dms, heartbeat=5, stalled_after=60, cpu_policy=policy)
        checked = cli("fleet", "check", "--fleet", str(world.fleet))  # creates every school's state schema
        if checked.returncode != 0:
            raise SystemExit(checked.stderr)
        procs = [start_worker(world, f"w{i}") for i in range(workers)]
        ready = wait_until(lambda: _count(world, "select count(*) from procrastinate_workers") == workers, 120, 0.2)
        if not ready:
            raise SystemExit("the workers did not start")
        # start from a quiet disk: the previous run's dropped database, the exports and the
        # schemas are written back (and, on a disk mounted with discard, trimmed) before the
        # clock starts, not inside this run's time
        os.sync()
        with _Sampler() as sampler:
            queued = cli("fleet", "cycle", "--fleet", str(world.fleet))
            if queued.returncode != 0:
                raise SystemExit(queued.stderr)
            _wait_finished(url, schools)
        # from the first job's deferral to the last one's end, as the queue recorded them
        span = ("select extract(epoch from min(at) filter (where type = 'deferred')), "
                "extract(epoch from max(at) filter (where type = 'succeeded')) from procrastinate_events")
        start, end = (float(v) for v in world.query(None, span)[0])
        seconds = end - start
        disk, cpu = sampler.within(start, end)
        for proc in procs:
            code, log = proc.stop()
            if code != 0:
                raise SystemExit(log[-2000:])
        jobs = world.jobs()
        complete = (len(jobs) == schools and {st for _, st, _ in jobs} == {"succeeded"}
                    and all(world.dossiers(s) == pupils for s in world.schools))
    total = schools * pupils
    print(f"workers {workers} ({policy}): {seconds:7.1f} s  {total / seconds:8.1f} pupils/s  "
          f"({schools} schools x {pupils} pupils, {'all synced once, complete' if complete else 'INCOMPLETE'}; "
          f"disk: {disk[0] / 2048:.0f} MB written, {disk[1]} flushes)", flush=True)
    if sum(cpu):
        cores = os.cpu_count() or 1
        busy = {k: cores * v / sum(cpu) for k, v in zip(("user", "system", "iowait", "idle"), cpu, strict=True)}
        print("           cores busy: " + ", ".join(f"{k} {v:.2f}" for k, v in busy.items()), flush=True)
    return total / seconds


_DISK = re.compile(r"(sd|vd|xvd)[a-z]+|nvme\d+n\d+")


class _Sampler(threading.Thread):
    """The disks' and cores' counters ten times a second, so that what they did is taken over
    exactly the run's own time (the queue's first deferral to its last end), not over the
    start-up of ``fleet cycle`` before it or the wait for the last poll after it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, list[int], list[int]]] = []
        self._done = threading.Event()

    def __enter__(self) -> _Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join()

    def run(self) -> None:
        while True:
            self.samples.append((time.time(), _disk(), _cpu()))
            if self._done.wait(0.1):
                return

    def within(self, start: float, end: float) -> tuple[list[int], list[int]]:
        """Disk and CPU counters' growth between the last sample before ``start`` and the first
        after ``end`` (a tenth of a second wider at most)."""
        first = max((s for s in self.samples if s[0] <= start), default=self.samples[0], key=lambda s: s[0])
        last = min((s for s in self.samples if s[0] >= end), default=self.samples[-1], key=lambda s: s[0])
        return ([b - a for a, b in zip(first[1], last[1], strict=True)],
                [b - a for a, b in zip(first[2], last[2], strict=True)])


def _disk() -> list[int]:
    """Sectors written and flush requests of the machine's disks so far (Linux; zeros elsewhere):
    the disk is the one resource the workers share besides the cores."""
    totals = [0, 0]
    with contextlib.suppress(OSError):
        for line in Path("/proc/diskstats").read_text().splitlines():
            fields = line.split()
            if _DISK.fullmatch(fields[2]):
                totals[0] += int(fields[9])
                totals[1] += int(fields[18]) if len(fields) > 18 else 0
    return totals


def _cpu() -> list[int]:
    """The machine's CPU time so far (Linux; zeros elsewhere): user (with nice), system (with
    interrupts), iowait, idle, in clock ticks."""
    with contextlib.suppress(OSError):
        user, nice, system, idle, iowait, irq, softirq = (
            int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8])
        return [user + nice, system + irq + softirq, iowait, idle]
    return [0, 0, 0, 0]


def _wait_finished(url: str, schools: int) -> None:
    """Until every job has ended, asked once a second on one connection (a new connection each
    time would take a few per cent of a core from the workers in the timed window)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT",
                           connect_args={"options": "-csearch_path=leerdossier_queue"})
    sql = text("select count(*) from procrastinate_jobs where status in ('succeeded', 'failed')")
    try:
        with engine.connect() as conn:
            wait_until(lambda: conn.execute(sql).scalar_one() == schools, 3600, 1.0)
    finally:
        engine.dispose()


def _count(world: FleetWorld, sql: str) -> int:
    try:
        return int(world.query(None, sql)[0][0])
    except ProgrammingError:  # the first worker has not made the queue yet
        return -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schools", type=int, default=50)
    ap.add_argument("--pupils", type=int, default=1000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--repeat", type=int, default=2, help="Runs per worker count; the best counts.")
    ap.add_argument("--dms-dir", type=Path, help="Where the schools' DMS folders go (default: the temporary folder).")
    ap.add_argument("--cpu-policy", default="normal",
                    help="The workers' [fleet] cpu_policy: normal, batch, or both (normal,batch).")
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    policies = args.cpu_policy.split(",")
    if not set(policies) <= {"normal", "batch"}:
        ap.error("--cpu-policy: normal, batch or normal,batch")
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp, \
            tempfile.TemporaryDirectory(prefix="scale-bench-dms-", dir=args.dms_dir) as dms_tmp:
        base, dms = Path(tmp), Path(dms_tmp)
        print(f"preparing {args.schools} exports of {args.pupils} pupils; DMS folders in {dms.parent} ...",
              flush=True)
        make_fleet(base, "postgresql://unused/unused", args.schools, args.pupils, dms)
        # rounds of every count in turn (1, 2, 4, 1, 2, 4, ...), so that a slow spell of the
        # machine falls on all counts alike rather than on the runs of one
        runs: dict[tuple[str, int], list[float]] = {(p, n): [] for p in policies for n in counts}
        for round_ in range(args.repeat):
            for policy, n in runs:
                # each run writes into new folders and none is deleted before the end: ext4
                # without a journal (this machine's disk) does not reuse an inode freed in the
                # last minute (six if not yet written back), so after the last run's tens of
                # thousands of deletions every new file and folder would search past them
                # (the kernel's recently_deleted), a cost of the benchmark, not of the service
                runs[policy, n].append(one(base, dms / f"run{round_}-{n}-{policy}", args.schools, args.pupils, n,
                                           policy))
    for policy in policies:
        base_runs = runs.get((policy, 1))
        if not base_runs:
            continue
        for n in counts:
            if n == 1:
                continue
            rate, one_rate = max(runs[policy, n]), max(base_runs)
            # each round's own ratio too: its runs met the same state of the machine, so
            # their spread shows how far one lucky or unlucky run moved the best-of figure
            rounds = [a / b for a, b in zip(runs[policy, n], base_runs, strict=True)]
            print(f"speed-up {n} workers ({policy}): {rate / one_rate:.2f}x (best {rate:.1f} vs {one_rate:.1f} "
                  f"pupils/s); per round {', '.join(f'{r:.2f}' for r in rounds)}, "
                  f"median {statistics.median(rounds):.2f}x")
    if len(policies) > 1 and 1 in counts:
        # the scaling an integrator gets who picks, for each count, the policy that suits it
        best_one = max(max(runs[p, 1]) for p in policies)
        for n in counts:
            if n != 1:
                best = max(max(runs[p, n]) for p in policies)
                print(f"speed-up {n} workers (the better policy for each count): {best / best_one:.2f}x "
                      f"(best {best:.1f} vs {best_one:.1f} pupils/s)")


if __name__ == "__main__":
    main()
