"""Plan benchmark: parse-only floor vs plan, peak RSS at N and 2N, first vs second sync.

    python bench/plan_bench.py [--pupils 100000] [--sync-pupils 20000]

Prints figures; asserts nothing. Each measurement runs in its own process so peak RSS is its own.
  floor   lxml iterparse over the export, clearing as it goes (no validation, no model): the floor
  plan    `leerdossier plan --no-skip` work: stream + validate every record + map + stage + compare
          with a recorded state of N dossiers and 10 documents per pupil (unchanged input, so 0 ops)
  skipping  the same plan after a sync kept each dossier's record digest (an unchanged night):
          records whose digest is unchanged are staged from their rows, not validated or mapped
  sync    a real first sync into the filesystem store, then a second on unchanged input
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"


def child(args: list[str]) -> dict[str, Any]:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def rss_mb() -> float:
    from _rss import peak_rss_mb
    return peak_rss_mb()


def phase_floor(export: Path) -> dict[str, Any]:
    from lxml import etree

    started = time.perf_counter()
    n = 0
    for _, elem in etree.iterparse(str(export), events=("end",), tag="leerling",
                                   resolve_entities=False, no_network=True, load_dtd=False):
        n += 1
        elem.clear(keep_tail=False)
        parent = elem.getparent()
        while elem.getprevious() is not None:
            del parent[0]
    return {"seconds": time.perf_counter() - started, "pupils": n, "rss_mb": rss_mb()}


def _parts(folder: Path) -> tuple[Any, ...]:
    from adapters.dms.filesystem import FilesystemSettings, FilesystemStore
    from adapters.las.edexml import EdexmlSettings, EdexmlSource
    from connector.audit import AuditLog
    from connector.identity import Identity
    from connector.mapping import load
    from connector.ports import SourceContext
    from connector.state import StateStore

    identity = Identity(b"bench-secret-0123456789", "las_key")
    state = StateStore(f"sqlite:///{folder / 'state.db'}")
    source = EdexmlSource(EdexmlSettings(path=folder / "export.xml"),
                          SourceContext(pseudonymize=identity.pseudonym_of))
    store = FilesystemStore(FilesystemSettings(root=folder / "dms"))
    return identity, state, source, store, AuditLog(state, identity.audit_key), load("po")


def phase_seed(folder: Path) -> dict[str, Any]:
    """Write the recorded state the plan is compared with: every pupil's dossier as last applied,
    and 10 documents per pupil. (Straight into the state store: a seeding tool, not a sync.)"""
    from sqlalchemy import insert

    from connector.errors import RejectedRecord
    from connector.state import documents, dossiers, now

    identity, state, source, _store, _audit, mapping = _parts(folder)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    docs: list[dict[str, Any]] = []
    classes = [c for p in mapping.parts for c in p.classes]

    def flush() -> None:
        with state.transaction() as conn:
            if rows:
                conn.execute(insert(dossiers), rows)
            if docs:
                conn.execute(insert(documents), docs)
        rows.clear()
        docs.clear()

    n = 0
    for p in source.pupils():
        if isinstance(p, RejectedRecord):
            continue
        n += 1
        eid, pseudonym = identity.external_id(p), identity.pseudonym(p)
        spec = mapping.desired(p, eid, pseudonym)
        pgn, nb = identity.duplicate_hashes(p)
        rows.append({"external_id": eid, "pseudonym": pseudonym, "school": spec.school,
                     "ref_id": f"d{n:08d}", "fingerprint": spec.fingerprint,
                     "spec": spec.model_dump_json(), "departure": spec.departure, "dup_pgn": pgn,
                     "dup_nb": nb, "updated": now()})
        for i in range(10):
            docs.append({"id": f"{n:08d}-{i}", "external_id": eid, "dossier_id": f"d{n:08d}",
                         "part": "I" if i < 4 else "II",
                         "doc_class": classes[(n + i) % len(classes)], "updated": now()})
        if len(rows) >= 5000:
            flush()
    flush()
    return {"seconds": time.perf_counter() - started, "dossiers": n, "documents": n * 10}


def phase_keep(folder: Path) -> dict[str, Any]:
    """A real sync over the seeded state (nothing to change, so no DMS call): it keeps each
    dossier's record digest, as every applied night does."""
    from connector.sync import SyncOptions, sync

    identity, state, source, store, audit, mapping = _parts(folder)
    started = time.perf_counter()
    report = sync(source, store, state, audit, identity, mapping, SyncOptions(accept_snapshot=True), date.today())
    assert report.dms_writes == 0 and report.stopped_by is None and report.halted_by is None
    return {"seconds": time.perf_counter() - started, "unchanged": report.records_unchanged}


def phase_plan(folder: Path, skip: bool = False) -> dict[str, Any]:
    from connector.sync import SyncOptions, sync

    identity, state, source, store, audit, mapping = _parts(folder)
    started = time.perf_counter()
    report = sync(source, store, state, audit, identity, mapping,
                  SyncOptions(dry_run=True, hold_suspected_duplicates=True, skip_unchanged=skip), date.today())
    return {"seconds": time.perf_counter() - started, "rss_mb": rss_mb(),
            "pupils": report.pupils_seen, "creates": report.dossiers_created,
            "updates": report.dossiers_updated, "rejected": len(report.rejected),
            "unchanged": report.records_unchanged}


def phase_sync(folder: Path) -> dict[str, Any]:
    from connector.sync import SyncOptions, sync

    identity, state, source, store, audit, mapping = _parts(folder)
    started = time.perf_counter()
    report = sync(source, store, state, audit, identity, mapping, SyncOptions(), date.today())
    return {"seconds": time.perf_counter() - started, "rss_mb": rss_mb(),
            "dms_writes": report.dms_writes, "created": report.dossiers_created}


def prepare(n: int, tag: str) -> Path:
    from examples.synth import Synth, write

    folder = OUT / f"{tag}-{n}"
    if folder.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    write(folder / "export.xml", Synth(pupils=n, duplicates=0, schooljaar="2026-2027"))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pupils", type=int, default=100_000)
    ap.add_argument("--sync-pupils", type=int, default=20_000)
    ap.add_argument("--skip-plan", action="store_true", help="only the first/second sync figures")
    ap.add_argument("--skip-sync", action="store_true", help="only the parse/plan figures")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.phase:
        fn = {"floor": lambda: phase_floor(a.folder / "export.xml"), "seed": lambda: phase_seed(a.folder),
              "plan": lambda: phase_plan(a.folder), "sync": lambda: phase_sync(a.folder),
              "keep": lambda: phase_keep(a.folder), "plan-skip": lambda: phase_plan(a.folder, skip=True)}[a.phase]
        print(json.dumps(fn()))
        return

    print(f"machine: {os.cpu_count()} cpus, Python {sys.version.split()[0]}")
    for n in () if a.skip_plan else (a.pupils, a.pupils * 2):
        folder = prepare(n, "plan")
        size = (folder / "export.xml").stat().st_size / 1e6
        floor = child(["--phase", "floor", "--folder", str(folder)])
        seed = child(["--phase", "seed", "--folder", str(folder)])
        plan = child(["--phase", "plan", "--folder", str(folder)])
        print(f"N={n:>7} export {size:6.1f} MB | parse-only {floor['seconds']:6.2f} s "
              f"(rss {floor['rss_mb']:5.0f} MB) | plan {plan['seconds']:6.2f} s against {seed['dossiers']} "
              f"dossiers + {seed['documents']} documents (rss {plan['rss_mb']:5.0f} MB; "
              f"{plan['creates']} creates, {plan['updates']} updates) | plan/parse = "
              f"{plan['seconds'] / floor['seconds']:.2f}x")
        child(["--phase", "keep", "--folder", str(folder)])
        floor = child(["--phase", "floor", "--folder", str(folder)])  # again, beside the skipping plan
        skip = child(["--phase", "plan-skip", "--folder", str(folder)])
        print(f"N={n:>7} unchanged night | parse-only {floor['seconds']:6.2f} s | plan skipping "
              f"{skip['seconds']:6.2f} s ({skip['unchanged']} records unchanged, rss {skip['rss_mb']:5.0f} MB; "
              f"{skip['creates']} creates, {skip['updates']} updates) | skipping/parse = "
              f"{skip['seconds'] / floor['seconds']:.2f}x | --no-skip/skipping = "
              f"{plan['seconds'] / skip['seconds']:.2f}x")
    if a.skip_sync:
        return
    folder = prepare(a.sync_pupils, "sync")
    first = child(["--phase", "sync", "--folder", str(folder)])
    second = child(["--phase", "sync", "--folder", str(folder)])
    print(f"sync N={a.sync_pupils}: first {first['seconds']:.2f} s ({first['dms_writes']} DMS writes, "
          f"rss {first['rss_mb']:.0f} MB) | second {second['seconds']:.2f} s ({second['dms_writes']} DMS writes) "
          f"| second/first = {second['seconds'] / first['seconds']:.1%}")


if __name__ == "__main__":
    main()
