"""Reading TOML files with errors that name the file, the line and the key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from connector.errors import ConfigError

_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def _split_key(raw: str) -> list[str]:
    return [part.strip().strip("\"'") for part in raw.split(".")]


def locate(text: str, loc: Sequence[str | int]) -> int | None:
    """Best line number (1-based) for a dotted key path in TOML text.

    Finds ``key =`` under the table header that holds it; falls back to the nearest enclosing
    table header; returns None when nothing in the path appears in the text.
    """
    path = [str(p) for p in loc if not isinstance(p, int)]
    best: tuple[int, int] | None = None  # (matched depth, line)
    table: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _TABLE.match(line)
        if m:
            table = _split_key(m.group(1))
            depth = _prefix_len(table, path)
            if depth == len(table) and depth > 0 and (best is None or depth > best[0]):
                best = (depth, lineno)
            continue
        k = _KEY.match(line)
        if not k:
            continue
        full = table + _split_key(k.group(1))
        depth = _prefix_len(full, path)
        if depth == len(full) and depth > 0 and (best is None or depth > best[0]):
            best = (depth, lineno)
    return best[1] if best else None


def _prefix_len(candidate: list[str], path: list[str]) -> int:
    n = 0
    for a, b in zip(candidate, path, strict=False):
        if a != b:
            break
        n += 1
    return n


def read(path: Path) -> tuple[dict[str, Any], str]:
    """Parse a TOML file; syntax errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def explain(path: Path, text: str, err: ValidationError, prefix: Sequence[str] = ()) -> ConfigError:
    """Turn a pydantic error into one message naming file, line and key for every problem."""
    lines = []
    for e in err.errors(include_input=False, include_url=False):
        loc = [*prefix, *(str(p) for p in e["loc"])]
        lineno = locate(text, loc)
        where = f"{path}:{lineno}" if lineno else str(path)
        lines.append(f"{where}: {'.'.join(loc) or '(top level)'}: {e['msg']}")
    return ConfigError("\n".join(lines))


def problem(path: Path, text: str, loc: Sequence[str], message: str) -> ConfigError:
    """A single config problem at a known key."""
    lineno = locate(text, loc)
    where = f"{path}:{lineno}" if lineno else str(path)
    return ConfigError(f"{where}: {'.'.join(loc)}: {message}")
