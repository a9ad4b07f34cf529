"""Mutation fuzzing of every parser the connector reads input with: EDEXML files, UWLR answers,
OSO files, CSV exports, and the TOML configuration, mapping, schedule and overrides files.

A mutation starts from a shipped sample and applies a few operations (bit flips, truncation,
duplicated and reordered elements, deep nesting, huge values, random bytes). Each input is
parsed completely in a child process with an address-space limit; the parent waits at most
``timeout`` seconds. An input ends in one of:

    ok      the parser took it (records and rejected records alike)
    error   a clean error: the connector's error root (it names the file or record and field)
    crash   any other exception (a traceback)
    hang    no answer within the timeout (the child is killed and replaced)
    memory  the child's peak resident memory grew more than ``MEMORY_MB`` for the input, or it
            ran out of its address space

Used by ``tests/unit/test_fuzz.py`` (Hypothesis chooses the operations, in CI) and by
``bench/fuzz_soak.py`` (many seeded mutations, printed).
"""

from __future__ import annotations

import io
import multiprocessing
import os
import random
import resource
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARSERS = ("edexml", "uwlr", "oso", "csv", "config", "mapping", "schedule", "overrides")
OPERATIONS = ("flip", "truncate", "duplicate", "reorder", "nest", "huge", "random", "bytes", "value")
ODD_VALUES = (b"", b" ", b"2031-13-01", b"31-01-2031", b"0000-00-00", b"-1", b"99999999999999999999", b"NaN",
              b"\xc3\x28", b"\xef\xbb\xbf", b"\x00", b"\x1b[31m", b"&amp;", b"&#0;", b"]]>", b"\"", b";", b"=",
              "\u202e\u0645\u00e9".encode(), b"x" * 300)
"""Values that are well-formed enough to reach a field's own checks (dates, numbers, encodings)."""
MEMORY_MB = 300
ADDRESS_SPACE_MB = 1024  # on top of what the child holds when it starts
UWLR_ENV = "LD_FUZZ_UWLR_KEY"

Op = tuple[str, int, int]


# -- samples ---------------------------------------------------------------------------------------
def samples() -> dict[str, bytes]:
    """One shipped or generated sample per parser (small: a mutation is cheap to parse)."""
    from examples.synth import Synth, lines, oso_dossier_xml, people, uwlr_answer_lines, write_csv

    synth = Synth(pupils=4, seed=3, duplicates=0, leavers=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        csv_bytes = write_csv(Path(tmp) / "export.csv", synth).read_bytes()
    overrides = '[overrides.dossier]\nperiod = "3y"\nbasis = "Schoolbeleid 2026 §3: drie jaar"\n'
    return {
        "edexml": "".join(lines(synth)).encode(),
        "uwlr": "".join(uwlr_answer_lines(synth)).encode(),
        "oso": ('<?xml version="1.0" encoding="UTF-8"?>\n' + oso_dossier_xml(synth, next(people(synth)))).encode(),
        "csv": csv_bytes,
        "config": (ROOT / "config.example.toml").read_bytes(),
        "mapping": (ROOT / "mappings" / "po.toml").read_bytes(),
        "schedule": (ROOT / "mappings" / "retention-po.toml").read_bytes(),
        "overrides": overrides.encode(),
    }


# -- mutations -------------------------------------------------------------------------------------
def _boundaries(data: bytes, kind: str) -> list[int]:
    """Where elements start: tags in XML, lines elsewhere."""
    mark = b"<" if kind in ("edexml", "uwlr", "oso") else b"\n"
    found: list[int] = []
    i = data.find(mark)
    while i >= 0 and len(found) < 4096:
        found.append(i)
        i = data.find(mark, i + 1)
    return found or [0]


def mutate(data: bytes, kind: str, ops: list[Op]) -> bytes:
    """Apply ``ops`` (operation, two numbers that choose where and how much) in turn."""
    for name, a, b in ops:
        n = max(len(data), 1)
        cuts = _boundaries(data, kind)
        p, q = sorted((cuts[a % len(cuts)], cuts[b % len(cuts)]))
        if name == "flip":
            i = a % n
            data = data[:i] + bytes([(data[i:i + 1] or b"\0")[0] ^ (1 << (b % 8))]) + data[i + 1:]
        elif name == "truncate":
            data = data[:a % n]
        elif name == "duplicate":  # an element (or lines) twice
            data = data[:q] + data[p:q] + data[q:]
        elif name == "reorder":  # two neighbouring elements swapped
            r = cuts[min(cuts.index(q) + 1, len(cuts) - 1)] if q in cuts else q
            data = data[:p] + data[q:r] + data[p:q] + data[r:]
        elif name == "nest":
            depth = 10 + b % 20_000
            if kind in ("edexml", "uwlr", "oso"):
                deep = b"<x>" * depth + b"</x>" * depth
            elif kind == "csv":
                deep = b'"' * depth
            else:
                deep = b"deep = " + b"[" * depth + b"]" * depth + b"\n"
            data = data[:p] + deep + data[p:]
        elif name == "huge":
            data = data[:p + 1] + b"9" * (1 + b % 6_000_000) + data[p + 1:]
        elif name == "random":
            rng = random.Random(a * 7919 + b)
            data = data[:p] + rng.randbytes(1 + b % 512) + data[p + 1 + b % 64:]
        elif name == "bytes":
            data = random.Random(a).randbytes(b % 4096)
        elif name == "value":  # one field's value (text between tags, a value after '=' or ';') replaced
            sep = (b">", b"<") if kind in ("edexml", "uwlr", "oso") else ((b";", b";") if kind == "csv"
                                                                          else (b"= ", b"\n"))
            i = data.find(sep[0], p)
            j = data.find(sep[1], i + len(sep[0])) if i >= 0 else -1
            if j > i >= 0:
                data = data[:i + len(sep[0])] + ODD_VALUES[b % len(ODD_VALUES)] + data[j:]
    return data


# -- parsing one input -----------------------------------------------------------------------------
def _source_context() -> Any:
    from connector.ports import SourceContext

    return SourceContext(pseudonymize=lambda school, key: "p-fuzz",
                         secret=lambda ref: os.environ.get(ref.removeprefix("env:"), "x" * 16).encode())


def _edexml(path: Path) -> int:
    from adapters.las.edexml import EdexmlSettings, EdexmlSource

    return sum(1 for _ in EdexmlSource(EdexmlSettings(path=path), _source_context()).pupils())


def _oso(path: Path) -> int:
    from adapters.las.oso import OsoSettings, OsoSource

    folder = path.parent / "oso"
    folder.mkdir(exist_ok=True)
    path.replace(folder / "LL000001.xml")
    return sum(1 for _ in OsoSource(OsoSettings(path=folder), _source_context()).pupils())


def _csv(path: Path) -> int:
    from adapters.las.csv import CsvSettings, CsvSource

    return sum(1 for _ in CsvSource(CsvSettings(path=path, layout="parnassys"), _source_context()).pupils())


def _uwlr(path: Path) -> int:
    from adapters.las.uwlr import UwlrSettings, UwlrSource

    class Answered(UwlrSource):
        """The adapter as it is, with the answer read from the mutated bytes, not the network."""

        def _download(self, last: str | None) -> io.BytesIO:
            return io.BytesIO(path.read_bytes())

    os.environ.setdefault(UWLR_ENV, "fuzz-key-0123456789")
    settings = UwlrSettings.model_validate({"endpoint": "http://127.0.0.1:9/uwlr", "brin": "99XY",
                                            "klantcode": "fuzz", "klantnaam": "fuzz",
                                            "autorisatiesleutel": f"env:{UWLR_ENV}", "schooljaar": "2026-2027",
                                            "attempts": 1})
    return sum(1 for _ in Answered(settings, _source_context()).pupils())


def _config(path: Path) -> int:
    from connector import config

    config.load(path)
    return 1


def _mapping(path: Path) -> int:
    from connector import mapping

    return len(mapping.load(path).classes)


def _schedule(path: Path) -> int:
    from connector.retention import load_schedule

    return len(load_schedule(path).categories)


def _overrides(path: Path) -> int:
    from connector.retention import load_schedule

    return len(load_schedule("retention-po", overrides=path).overrides)


PARSE: dict[str, tuple[str, Callable[[Path], int]]] = {
    "edexml": ("export.xml", _edexml), "uwlr": ("answer.xml", _uwlr), "oso": ("dossier.xml", _oso),
    "csv": ("export.csv", _csv), "config": ("config.toml", _config), "mapping": ("mapping.toml", _mapping),
    "schedule": ("schedule.toml", _schedule), "overrides": ("overrides.toml", _overrides),
}


def parse(kind: str, data: bytes) -> tuple[str, str]:
    """Parse one input completely: ("ok", n) or ("error", class) for a clean error, or
    ("crash", traceback) for anything else."""
    from connector.errors import ConnectorError

    name, fn = PARSE[kind]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return "ok", str(fn(path))
        except ConnectorError as exc:
            return "error", type(exc).__name__
        except MemoryError:
            return "memory", "MemoryError"
        except Exception:
            return "crash", traceback.format_exc(limit=12)


# -- the child -------------------------------------------------------------------------------------
@dataclass
class Result:
    outcome: str
    detail: str
    seconds: float
    peak_mb: float


def _status(field: str) -> float:
    """A field of /proc/self/status in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _child(conn: Connection) -> None:
    vm = _status("VmSize")
    limit = int((vm + ADDRESS_SPACE_MB) * 1024 * 1024)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    parse("config", (ROOT / "config.example.toml").read_bytes())  # imports done before the first measure
    while True:
        try:
            kind, data = conn.recv()
        except EOFError:
            return
        with open("/proc/self/clear_refs", "w") as fh:  # the peak RSS starts again from now
            fh.write("5")
        base = _status("VmRSS")
        start = time.perf_counter()
        outcome, detail = parse(kind, data)
        seconds = time.perf_counter() - start
        peak = _status("VmHWM") - base
        if outcome in ("ok", "error") and peak > MEMORY_MB:
            outcome, detail = "memory", f"peak {peak:.0f} MB"
        conn.send((outcome, detail, seconds, peak))


class Worker:
    """One child that parses inputs one after another; a hung or dead child is replaced."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._ctx = multiprocessing.get_context("fork")
        self._start()

    def _start(self) -> None:
        self._conn, theirs = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_child, args=(theirs,), daemon=True)
        self._proc.start()
        theirs.close()

    def run(self, kind: str, data: bytes) -> Result:
        start = time.perf_counter()
        try:
            self._conn.send((kind, data))
            if self._conn.poll(self.timeout):
                outcome, detail, seconds, peak = self._conn.recv()
                return Result(outcome, detail, seconds, peak)
            outcome, detail = "hang", f"no answer within {self.timeout:.0f} s"
        except (EOFError, OSError):  # a broken pipe included
            outcome, detail = "memory", "the child died (out of its address space?)"
        self.close()
        self._start()
        return Result(outcome, detail, time.perf_counter() - start, 0.0)

    def close(self) -> None:
        self._proc.kill()
        self._proc.join(5)
        self._conn.close()
