"""Cursors for sources that deliver whole snapshots (files, UWLR answers).

A cursor names the snapshot (a digest of its bytes) and how many records of it the core has
staged. A resumed read continues after those records only when the snapshot is byte for byte
the same one; otherwise it starts again from the first record, which is always safe.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from connector.errors import SourceError
from connector.ports import SourceReport

CHUNK = 1 << 16  # small reads: 1 MiB buffers fragment the heap and raise peak RSS with file size


@dataclass(frozen=True)
class Position:
    snapshot: str
    position: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def load(cls, cursor: str | None) -> Position | None:
        """The position in ``cursor``, or None when there is none or it is not one of ours."""
        if not cursor:
            return None
        try:
            data = json.loads(cursor)
            return cls(str(data["snapshot"]), int(data.get("position", 0)), dict(data.get("extra") or {}))
        except (ValueError, KeyError, TypeError):
            return None

    def skip_for(self, snapshot: str) -> int:
        """How many records a read of ``snapshot`` may skip: all staged ones when it is the same
        snapshot, none otherwise."""
        return self.position if self.snapshot == snapshot else 0


def begin(snapshot: str, resume: str | None, report: SourceReport,
          extra: dict[str, Any] | None = None) -> tuple[Position, int]:
    """Start a read of ``snapshot``: its position, and how many records it skips because an
    interrupted read of the same snapshot staged them (also set as ``report.resumed_at``)."""
    earlier = Position.load(resume)
    skip = earlier.skip_for(snapshot) if earlier else 0
    report.resumed_at = skip
    return Position(snapshot, 0, extra or {}), skip


def digest_file(path: Path) -> str:
    """The file's digest; an unreadable file is a SourceError naming it."""
    try:
        with path.open("rb") as fh:
            return digest_stream(fh)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None


def digest_stream(fh: IO[bytes]) -> str:
    h = hashlib.sha256()
    while chunk := fh.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()
