"""LAS source benchmark: pupils per second and peak RSS for every PupilSource, next to the floor.

    python bench/las_bench.py [--pupils 50000]

For N and 2N pupils of the same made-up school, each in its own process (so peak RSS is its
own), prints (asserts nothing):
  floor     parsing the same bytes with lxml alone (EDEXML, the UWLR answer, OSO files: iterparse,
            each record cleared) or with the csv module alone (CSV)
  adapter   the source's full read: per-record XSD validation, Pupil values, cursor; for UWLR
            also the SOAP request and the HTTP transfer from the test UWLR server on 127.0.0.1
and as the last line ``ratio: X.XX``, the adapter/floor throughput of the slowest adapter at N.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

KINDS = ("edexml", "uwlr", "oso", "csv")


def child(args: list[str]) -> dict[str, Any]:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def prepare(folder: Path, n: int) -> None:
    from examples.synth import Synth, uwlr_answer_lines, write, write_csv, write_oso
    s = Synth(pupils=n, seed=5, duplicates=0)
    write(folder / "export.xml", s)
    (folder / "answer.xml").write_text("".join(uwlr_answer_lines(s)), encoding="utf-8")
    write_oso(folder / "oso", s)
    write_csv(folder / "export.csv", s)


def floor(kind: str, folder: Path) -> int:
    from lxml import etree
    if kind == "csv":
        with (folder / "export.csv").open(encoding="utf-8", newline="") as fh:
            return sum(1 for _ in csv.reader(fh, delimiter=";")) - 1
    files = {"edexml": [folder / "export.xml"], "uwlr": [folder / "answer.xml"],
             "oso": sorted((folder / "oso").glob("*.xml"))}[kind]
    tag = {"edexml": "leerling", "uwlr": "{http://www.edustandaard.nl/leerresultaten/2/leerlinggegevens}leerling",
           "oso": "{http://www.edustandaard.nl/oso_gegevensset/2019/dossier}dossier"}[kind]
    n = 0
    for f in files:
        for _, elem in etree.iterparse(str(f), tag=tag, resolve_entities=False, no_network=True):
            n += 1
            elem.clear()
            while elem.getprevious() is not None:  # the usual lxml idiom: drop what was read
                del elem.getparent()[0]
    return n


def adapter(kind: str, folder: Path) -> int:
    from adapters.las.csv import CsvSettings, CsvSource
    from adapters.las.edexml import EdexmlSettings, EdexmlSource
    from adapters.las.oso import OsoSettings, OsoSource
    from connector.model import Pupil
    from tests.las.sources import KEY_ENV, context, uwlr_settings
    ctx = context()
    if kind == "uwlr":
        from adapters.las.uwlr import UwlrSource
        from examples.synth import Synth
        from tests.las.uwlr_server import Scenario, UwlrServer
        scenario = Scenario(synth=Synth(pupils=1, seed=5), body=folder / "answer.xml")
        os.environ[KEY_ENV] = scenario.key
        with UwlrServer(scenario) as server:
            started = time.perf_counter()
            src = UwlrSource(uwlr_settings(server.url, scenario.synth), ctx)
            n = sum(isinstance(i, Pupil) for i in src.pupils())
            return _timed(n, started)
    sources = {
        "edexml": lambda: EdexmlSource(EdexmlSettings(path=folder / "export.xml"), ctx),
        "oso": lambda: OsoSource(OsoSettings(path=folder / "oso"), ctx),
        "csv": lambda: CsvSource(CsvSettings(path=folder / "export.csv", layout="parnassys"), ctx),
    }
    started = time.perf_counter()
    n = sum(isinstance(i, Pupil) for i in sources[kind]().pupils())
    return _timed(n, started)


_elapsed: list[float] = []


def _timed(n: int, started: float) -> int:
    _elapsed.append(time.perf_counter() - started)
    return n


def one(what: str, kind: str, folder: Path) -> None:
    if what == "floor":
        started = time.perf_counter()
        n = floor(kind, folder)
        elapsed = time.perf_counter() - started
    else:
        n = adapter(kind, folder)
        elapsed = _elapsed[-1]
    from _rss import peak_rss_mb
    rss = peak_rss_mb()
    print(json.dumps({"n": n, "seconds": elapsed, "rss_mb": rss}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pupils", type=int, default=50_000)
    ap.add_argument("--one", nargs=3, metavar=("WHAT", "KIND", "FOLDER"))
    a = ap.parse_args()
    if a.one:
        one(a.one[0], a.one[1], Path(a.one[2]))
        return
    print(f"LAS sources, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'source':8} {'N':>7} {'floor/s':>10} {'adapter/s':>10} {'ratio':>6} {'RSS floor':>10} {'RSS adapter':>12}")
    ratios: dict[str, float] = {}
    for n in (a.pupils, a.pupils * 2):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            prepare(folder, n)
            for kind in KINDS:
                f = child(["--one", "floor", kind, str(folder)])
                d = child(["--one", "adapter", kind, str(folder)])
                assert f["n"] == d["n"] == n, (kind, f["n"], d["n"])
                fr, dr = n / f["seconds"], n / d["seconds"]
                ratio = dr / fr
                if n == a.pupils:
                    ratios[kind] = ratio
                print(f"{kind:8} {n:>7} {fr:>10,.0f} {dr:>10,.0f} {ratio:>6.2f} {f['rss_mb']:>8.0f}MB "
                      f"{d['rss_mb']:>10.0f}MB", flush=True)
    slowest = min(ratios, key=lambda k: ratios[k])
    print(f"slowest adapter: {slowest}")
    print(f"ratio: {ratios[slowest]:.2f}")


if __name__ == "__main__":
    main()
