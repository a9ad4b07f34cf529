"""Reading TOML files with errors that name the file, the line and the key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from connector.errors import ConfigError

MAX_BYTES = 1024 * 1024
"""No configuration, mapping or schedule file comes near this (the largest shipped is 6 KiB); parsing
one bigger would take the parser's time and memory for nothing."""
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


def resolve_path(base: Path, value: str | Path) -> Path:
    """A path as a configuration file gives it: ``~`` expanded, and relative to ``base`` (the
    folder of the configuration file) unless it is absolute."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def preset_or_path(ref: str | Path, base: Path | None, presets: Path) -> Path:
    """A shipped preset by name (no suffix: ``po``, ``retention-po``, ``parnassys``) or a file
    by path, relative to ``base``."""
    if not Path(ref).suffix:
        return presets / f"{ref}.toml"
    return resolve_path(base, ref) if base is not None else Path(ref)


def read(path: Path) -> tuple[dict[str, Any], str]:
    """Parse a TOML file; syntax errors name the file and line."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; not a configuration file")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ConfigError(f"{path}: invalid TOML: a number with too many digits") from None


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


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Deep merge for ``extends``: tables merge key by key, arrays of tables append, values replace."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def read_extending(path: Path, section: str, resolve: Callable[[str], Path], depth: int = 0
                   ) -> tuple[dict[str, Any], str]:
    """Read a TOML file whose ``[section] extends = "..."`` names a base file to start from."""
    raw, text = read(path)
    parent = raw.get(section, {}).get("extends") if isinstance(raw.get(section), dict) else None
    if parent is None:
        return raw, text
    if depth >= 5:
        raise ConfigError(f"{path}: {section}.extends: chain too deep (a loop?)")
    base_path = resolve(str(parent))
    if not base_path.exists():
        raise problem(path, text, [section, "extends"], f"no such file or preset {parent!r}")
    base_raw, _ = read_extending(base_path, section, resolve, depth + 1)
    base_raw.get(section, {}).pop("extends", None)
    return merge(base_raw, raw), text


M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, section: str, model: type[M], resolve: Callable[[str, Path], Path],
               what: str, known: Sequence[str]) -> tuple[M, str]:
    """Read a TOML file that may ``[section] extends`` another, and validate it; every problem
    names file, line and key. ``resolve(ref, folder)`` finds a preset or a relative path."""
    if not path.exists():
        raise ConfigError(f"{what} {path}: no such file or preset (presets: {', '.join(sorted(known))})")
    raw, text = read_extending(path, section, lambda ref: resolve(ref, path.parent))
    return _validated(path, text, raw, model), text


def read_model(path: Path, model: type[M]) -> tuple[M, str]:
    """Read one TOML file and validate it; every problem names file, line and key."""
    raw, text = read(path)
    return _validated(path, text, raw, model), text


def _validated(path: Path, text: str, raw: dict[str, Any], model: type[M]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise explain(path, text, exc) from None
