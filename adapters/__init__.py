"""Adapter registry: config ``type = "..."`` -> adapter class.

Built-in adapters are listed here; third parties add their own through the Python entry point
groups ``leerdossier.las`` and ``leerdossier.dms`` (name = "module:Class"). A name registered
twice is refused rather than silently shadowed.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from connector.config import AdapterSection, LoadedConfig
from connector.errors import ConfigError
from connector.model import StoreCapabilities
from connector.ports import AdapterClass, DocumentStore, PupilSource, SourceContext, StoreContext

BUILTIN = {
    "leerdossier.las": {"edexml": "adapters.las.edexml:EdexmlSource", "uwlr": "adapters.las.uwlr:UwlrSource",
                        "oso": "adapters.las.oso:OsoSource", "csv": "adapters.las.csv:CsvSource"},
    "leerdossier.dms": {"filesystem": "adapters.dms.filesystem:FilesystemStore",
                        "mayan": "adapters.dms.mayan:MayanStore",
                        "sharepoint": "adapters.dms.graph:SharePointStore"},
}


def available(group: str) -> dict[str, str]:
    found = dict(BUILTIN[group])
    for name, value in _registered(group):
        if name in found and found[name] != value:
            raise ConfigError(f"adapter {name!r} in {group} is registered twice ({found[name]} and {value})")
        found[name] = value
    return found


@functools.cache
def _registered(group: str) -> tuple[tuple[str, str], ...]:
    """The installed packages' adapters, read once per process (installing one means a restart;
    reading every package's metadata took a worker several milliseconds per adapter per job)."""
    return tuple((ep.name, ep.value) for ep in entry_points(group=group))


PORTS: dict[str, type] = {"leerdossier.las": PupilSource, "leerdossier.dms": DocumentStore}


def _load(group: str, section: AdapterSection, loaded: LoadedConfig, name: str) -> tuple[Any, Any]:
    known = available(group)
    target = known.get(section.type)
    if target is None:
        raise loaded.problem([name, "type"], f"unknown type {section.type!r} (known: {', '.join(sorted(known))})")
    module, _, attr = target.partition(":")
    cls = getattr(import_module(module), attr)
    port = PORTS[group]
    missing = sorted(n for n, v in vars(port).items() if callable(v) and not n.startswith("_") and not hasattr(cls, n))
    if missing:  # an adapter written for an earlier port: say so now, not halfway through a run
        raise loaded.problem([name, "type"], f"adapter {section.type!r} ({target}) does not implement "
                                             f"{port.__name__}: no {', '.join(missing)}")
    if not isinstance(cls, AdapterClass) or not isinstance(cls.settings_model, type) \
            or not issubclass(cls.settings_model, BaseModel):
        raise loaded.problem([name, "type"], f"adapter {section.type!r} ({target}) has no settings_model (a "
                                             "pydantic model of its configuration table)")
    try:
        settings = cls.settings_model.model_validate(section.settings())
    except ValidationError as exc:
        raise loaded.explain(exc, name) from None
    return cls, settings


def build_source(loaded: LoadedConfig, context: SourceContext) -> PupilSource:
    cls, settings = _load("leerdossier.las", loaded.config.las, loaded, "las")
    context = replace(context, base=loaded.base,
                      secret=lambda ref: loaded.secret(ref, ["las"]))
    source: PupilSource = cls(settings, context)
    return source


def store_capabilities(loaded: LoadedConfig) -> StoreCapabilities:
    """What the configured DMS adapter can do, without connecting to it."""
    cls, _settings = _load("leerdossier.dms", loaded.config.dms, loaded, "dms")
    capabilities: StoreCapabilities = cls.capabilities
    return capabilities


def build_store(loaded: LoadedConfig, index_key: bytes = b"") -> DocumentStore:
    cls, settings = _load("leerdossier.dms", loaded.config.dms, loaded, "dms")
    fields = loaded.config.dms.settings()

    def secret(ref: str) -> bytes:  # a problem names the setting that holds the reference
        named = [k for k, v in fields.items() if v == ref]
        return loaded.secret(ref, ["dms", named[0] if named else "secret"])

    context = StoreContext(base=loaded.base, secret=secret, index_key=index_key)
    store: DocumentStore = cls(settings, context)
    return store



def read_export(path: Path, context: SourceContext, layout: str | None = None) -> PupilSource:
    """A LAS export read once, its format told by its content: an EDEXML file, an OSO file or
    folder, a saved UWLR answer, or else a CSV export in ``layout`` (a preset under
    mappings/las/, or a .toml file; ``parnassys`` when not given). The adapter is loaded by name,
    as ``build_source`` does: the core that calls this loads no parser of its own."""
    settings: dict[str, object] = {"path": path}
    if path.is_dir():
        kind = "oso"
    else:
        try:
            with path.open("rb") as fh:
                head = fh.read(16384)
        except OSError as exc:
            raise ConfigError(f"export {path.name} cannot be read ({exc.strerror})") from None
        if b"<EDEX" in head:
            kind = "edexml"
        elif b"oso_gegevensset" in head:
            kind = "oso"
        elif b"leerlinggegevens_antwoord" in head:
            module = import_module("adapters.las._uwlr_answer")
            answer: PupilSource = module.UwlrAnswerFile(path, context)
            return answer
        else:
            kind, settings["layout"] = "csv", layout or "parnassys"
    module_name, _, attr = BUILTIN["leerdossier.las"][kind].partition(":")
    cls = getattr(import_module(module_name), attr)
    try:
        source: PupilSource = cls(cls.settings_model.model_validate(settings), context)
    except ValidationError as exc:
        raise ConfigError(f"export {path.name}: {exc.errors()[0]['msg']}") from None
    return source
