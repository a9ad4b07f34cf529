"""``doctor``: check the config, paths, secrets, file modes, the source and the DMS. A check: it
changes nothing, here or in the DMS (no key, state store or DMS folder is made; the first sync
does), and opens the state store read-only, without migrating it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import adapters
from connector import config as config_mod
from connector import mapping as mapping_mod
from connector.app.context import App
from connector.app.lists import file_anchors
from connector.audit import AuditLog
from connector.errors import ConnectorError
from connector.identity import Identity
from connector.inspection import EXPORT_FOLDER
from connector.ports import SourceContext
from connector.retention import load_schedule
from connector.state import StateStore, head_revision, peek


def doctor(config_path: Path) -> list[dict[str, Any]]:
    """Every check with its problems and notes (``ok`` when it has no problems). A config that
    cannot be read raises its error (``ConfigError``): nothing else can be checked then."""
    checks: list[dict[str, Any]] = []

    def check(name: str, fn: Callable[[list[str]], list[str]]) -> list[str]:
        notes: list[str] = []
        try:
            problems = fn(notes)
        except ConnectorError as exc:
            problems = [str(exc)]
        checks.append({"check": name, "ok": not problems, "problems": problems, "notes": notes})
        return problems

    loaded = config_mod.load(config_path)
    cfg = loaded.config
    found: dict[str, Any] = {}

    def install_key(notes: list[str]) -> list[str]:
        kind, _, name = cfg.identity.secret.partition(":")
        if kind == "file" and cfg.identity.create_secret and not loaded.resolve(name).exists():
            notes.append(f"{loaded.resolve(name)} is not made yet: the first sync makes it")
            return []
        found["secret"] = loaded.secret(cfg.identity.secret, ["identity", "secret"])
        return []

    def mapping_and_schedule(_notes: list[str]) -> list[str]:
        mapping = mapping_mod.load(cfg.mapping.preset, base=loaded.base)
        load_schedule(cfg.retention.schedule, base=loaded.base, overrides=cfg.retention.overrides,
                      classes=set(mapping.classes))
        found["mapping"] = mapping
        return [] if mapping.parts else ["mapping has no parts"]

    def state_store(notes: list[str]) -> list[str]:
        exists, version = peek(loaded.state_url(), cfg.state.schema_)
        if not exists:
            notes.append("not made yet: the first sync makes it")
        elif version != head_revision():
            notes.append(f"at migration {version or '(none)'}; the next sync brings it to {head_revision()}")
        else:
            found["state"] = True
        return []

    check("config", lambda _: [])
    check("install key", install_key)
    check("mapping and schedule", mapping_and_schedule)
    check("state store", state_store)
    check("file modes", lambda _: private_problems(loaded))
    identity = Identity(found.get("secret") or os.urandom(32), cfg.identity.key)
    context = SourceContext(pseudonymize=identity.pseudonym_of, base=loaded.base)
    check("LAS source", lambda _: adapters.build_source(loaded, context).check())

    def dms(_notes: list[str]) -> list[str]:
        with closing(adapters.build_store(loaded, index_key=identity.index_key)) as store:
            return store.check()

    check("DMS", dms)
    if found.get("state") and found.get("secret") and found.get("mapping"):
        state = StateStore(loaded.state_url(), cfg.state.schema_, upgrade=False)
        try:
            app = App(loaded, identity, found["mapping"], state,
                      AuditLog(state, identity.audit_key, loaded.audit_head_file()))
            check("audit log", lambda _: app.audit.verify(file_anchors(app)).problems)
        finally:
            state.close()
    return checks


def private_problems(loaded: config_mod.LoadedConfig) -> list[str]:
    """Files and folders of the connector's that others may read: the state (and SQLite's side
    files), the audit head, the install key, the filesystem DMS, lists, certificates and
    exports. Every one should be 0600 (a folder 0700); the connector makes them so."""
    cfg = loaded.config
    roots: list[Path] = []
    url = loaded.state_url()
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):])
        roots += [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    head = loaded.audit_head_file()
    if head is not None:
        roots.append(head)
    kind, _, name = cfg.identity.secret.partition(":")
    if kind == "file":
        roots.append(loaded.resolve(name))
    dms_root = cfg.dms.settings().get("root")
    if cfg.dms.type == "filesystem" and isinstance(dms_root, str):
        roots.append(loaded.resolve(dms_root))
    roots += [loaded.resolve(cfg.destruction.output), loaded.resolve(EXPORT_FOLDER)]
    wide: list[str] = []
    for root in roots:
        for path in _walk(root):
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                want = "700" if path.is_dir() else "600"
                wide.append(f"{path} is {oct(mode)[2:]}: others may read it (chmod {want})")
                if len(wide) >= 20:
                    return [*wide, "... and perhaps more (the first 20 are shown)"]
    return wide


def _walk(root: Path) -> Iterator[Path]:
    if not root.exists() or root.is_symlink():
        return
    yield root
    if root.is_dir():
        for folder, dirs, files in os.walk(root):
            for n in (*dirs, *files):
                p = Path(folder) / n
                if not p.is_symlink():
                    yield p
