"""The embedded default DMS: dossiers as folders on disk.

    ROOT/
      store.json                       format version and a check value of the index key
      index/ab/<keyed hash of external id>   the dossier id (find is a lookup, not a scan)
      dossiers/<id[:2]>/<id>/dossier.json    dossier metadata
      dossiers/<id[:2]>/<id>/access.json     read access per part (groups, users), set by the connector
      dossiers/<id[:2]>/<id>/<part folder>/<doc id><ext>        a document
      dossiers/<id[:2]>/<id>/<part folder>/<doc id>.meta.json   its metadata
      trash/<YYYY-MM-DD>/<dossier id>/...    destroyed documents, until purged
      tmp/                                   work area for atomic writes

Every file is written atomically (temp file, fsync, rename, fsync of the folder). Creating a
dossier claims its index entry first with an exclusive link, so two runs, or a run repeated
after a crash, can never make two dossiers for one external id. Neither paths nor files
contain an external id (which may be a BSN, onderwijsnummer or ECK-iD): the index is keyed by
an HMAC with a key from the install secret (``StoreContext.index_key``, never stored here, so
whoever holds the store alone cannot test candidate numbers), ``dossier.json`` carries only
that keyed hash, and dossiers have random ids. ``store.json`` holds a check value of the key: a
store opened with another install's secret is refused instead of making every dossier anew.
A store of format 1 (index keyed with a salt kept in the store, the external id in each
``dossier.json``) is converted when first opened with a key; the conversion can be interrupted
and resumes.

Inside ``group()`` (the executor's groups of creates, updates and tags) the flushes are
gathered into one barrier at the end of the block, so a group costs two ``syncfs`` instead of
five fsyncs per new dossier. The executor records the group's operations only after the
barrier; a power failure before it leaves them ``sent``, and the next run does them again. So
that such a failure never leaves anything half-written where a reader or that repeat would
trust it:
- a new dossier is built in ``tmp/`` and moves into ``dossiers/`` only after the first barrier
  made it durable (and with it its index claim); the second barrier makes the moves durable;
- a file that replaces one (an update, a tag) still has its content flushed before the rename,
  so it is the old or the new one, never empty; only the folder's flush waits for the barrier;
- an index claim whose content was lost (empty after the failure) had nothing built on it and
  is set aside and claimed again.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from pydantic import BaseModel

from connector.errors import PermanentError, TransientError
from connector.model import DmsGrant, DocumentRef, DossierRef, DossierSpec, Frozen, RetentionTag, StoreCapabilities
from connector.ports import BaseDocumentStore, StoreContext

FORMAT = 2
_INDEX_NAME = re.compile(r"[0-9a-f]{64}")
_ENOSPC_LIKE = {28, 122}  # no space, quota: may clear up, so transient
_DOSSIER_ID = re.compile(r"[0-9a-f]{32}")
_DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
"""The shape of a document id: the store's own are 32 hex digits; documents placed by other
routes (a scanner) may use letters, digits, '-' and '_'. Nothing else is ever taken from a
metadata file: no dot, slash or glob character can reach a path."""
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}(\.[A-Za-z0-9]{1,10})?")
STALE = 3600.0
"""Seconds after which what a run left in tmp/ is no longer any live run's (a create takes
milliseconds, a group seconds)."""


class FilesystemSettings(Frozen):
    root: Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc_syncfs() -> Any:
    with contextlib.suppress(OSError, TypeError):
        return getattr(ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True), "syncfs", None)
    return None


_SYNCFS = _libc_syncfs()


def _syncfs(path: Path) -> None:
    """Flush everything written on the file system that holds ``path`` and wait for it: Linux's
    syncfs(2), which, unlike sync(2), reports a failed write-back; sync(2) elsewhere."""
    if _SYNCFS is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


class FilesystemStore(BaseDocumentStore):
    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities(trash=True, acl=True)
    settings_model: ClassVar[type[BaseModel]] = FilesystemSettings

    def __init__(self, settings: FilesystemSettings, context: StoreContext | None = None) -> None:
        self.root = (context or StoreContext()).resolve(settings.root)
        self._index_key = context.index_key if context is not None else b""
        self._key: bytes | None = None
        self._pending: dict[str, Path] | None = None
        """Inside ``group()``: the dossiers created in it (id -> their folder, still in tmp/)."""
        self._written = False

    # -- setup ------------------------------------------------------------------------------
    def _ready(self) -> bytes:
        if self._key is None:
            with _errors("open store"):
                if len(self._index_key) < 16:
                    raise PermanentError("filesystem store: no index key (the core hands it one from the install "
                                         "secret; give StoreContext(index_key=...))")
                key, check = self._keys()
                marker = self.root / "store.json"
                if not marker.exists():
                    for sub in ("index", "dossiers", "trash", "tmp"):
                        (self.root / sub).mkdir(parents=True, exist_ok=True)
                    # another thread or process may create it at the same moment: theirs wins
                    with contextlib.suppress(FileExistsError):
                        self._write_json(marker, {"format": FORMAT, "key_check": check}, exclusive=True)
                info = json.loads(marker.read_text(encoding="utf-8"))
                if info.get("format") == 1:
                    self._convert(key, check)
                    info = json.loads(marker.read_text(encoding="utf-8"))
                problem = self._marker_problem(info, check)
                if problem:
                    raise PermanentError(f"{problem} (opening it would make every dossier anew)")
                self._sweep()
                if (self.root / "index.old").exists():
                    self._finish_conversion(key)
                self._key = key
        return self._key

    def _marker_problem(self, info: Any, check: str) -> str | None:
        """Why store.json does not let this install use the store as it is, or None (a
        format-1 store is converted first)."""
        if info.get("format") != FORMAT:
            return f"store at {self.root} has format {info.get('format')}, expected {FORMAT}"
        if info.get("key_check") != check:
            return f"store at {self.root} belongs to another install secret: its index does not match this key"
        return None

    @staticmethod
    def _hmac(key: bytes, external_id: str) -> str:
        return hmac.new(key, external_id.encode(), hashlib.sha256).hexdigest()

    def _keys(self) -> tuple[bytes, str]:
        """The index key (from the install's) and the check value store.json keeps of it."""
        key = hmac.new(self._index_key, b"leerdossier/filesystem-index", hashlib.sha256).digest()
        return key, hmac.new(key, b"check", hashlib.sha256).hexdigest()[:16]

    def _convert(self, key: bytes, check: str) -> None:
        """Format 1 -> 2: build the index keyed with ``key`` from the external ids the dossiers
        carry, make it the store's (store.json says format 2), then take the external ids out
        of the dossiers and drop the salted index. Each step can be interrupted: until store.json
        changes, the new index is rebuilt from scratch; after, the rest is finished on open."""
        fresh, index, old = self.root / "index.new", self.root / "index", self.root / "index.old"
        shutil.rmtree(fresh, ignore_errors=True)
        if old.exists():  # an earlier conversion died between its renames: start again from the salted index
            shutil.rmtree(index, ignore_errors=True)
            os.rename(old, index)
        for meta in sorted((self.root / "dossiers").glob("*/*/dossier.json")):
            external_id = json.loads(meta.read_text(encoding="utf-8")).get("external_id")
            if not isinstance(external_id, str) or not _DOSSIER_ID.fullmatch(meta.parent.name):
                continue
            digest = self._hmac(key, external_id)
            self._write_bytes(fresh / digest[:2] / digest, meta.parent.name.encode("ascii"))
        fresh.mkdir(exist_ok=True)
        _syncfs(self.root)
        os.rename(index, old)
        os.rename(fresh, index)
        _fsync_dir(self.root)
        self._write_json(self.root / "store.json", {"format": FORMAT, "key_check": check})

    def _finish_conversion(self, key: bytes) -> None:
        for meta in sorted((self.root / "dossiers").glob("*/*/dossier.json")):
            doc = json.loads(meta.read_text(encoding="utf-8"))
            if "external_id" in doc:
                external_id = str(doc.pop("external_id"))
                doc["key"] = self._hmac(key, external_id)
                self._write_json(meta, doc)
        shutil.rmtree(self.root / "index.old")

    def _digest(self, external_id: str) -> str:
        """The index name of an external id (also kept in its dossier.json, for checks)."""
        return self._hmac(self._ready(), external_id)

    def _sweep(self) -> None:
        """Remove what killed runs left in tmp/: dossiers never moved in (they hold pupil
        metadata) and set-aside claims. Anything younger than ``STALE`` may be a live run's."""
        cutoff = datetime.now(UTC).timestamp() - STALE
        tmp = self.root / "tmp"
        for entry in tmp.iterdir() if tmp.is_dir() else ():
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove: left alone
                if entry.lstat().st_mtime < cutoff:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()

    def check(self) -> list[str]:
        """Whether the store can be used, changing nothing (a store not made yet is made by the
        first write, so only its nearest existing folder must be writable)."""
        try:
            if not self.root.exists():
                parent = next(p for p in self.root.parents if p.exists())
                if not os.access(parent, os.W_OK | os.X_OK):
                    return [f"filesystem store at {self.root} cannot be made: {parent} is not writable"]
                return []
            if not os.access(self.root, os.W_OK | os.X_OK):
                return [f"filesystem store at {self.root} is not writable"]
            marker = self.root / "store.json"
            if not marker.exists():
                return []
            info = json.loads(marker.read_text(encoding="utf-8"))
            if info.get("format") == 1:
                return []  # converted when it is first used with this install's key
            problem = self._marker_problem(info, self._keys()[1])
            if problem:
                return [problem]
        except (OSError, ValueError, AttributeError) as exc:
            return [f"filesystem store at {self.root} is not usable: {exc.__class__.__name__}"]
        return []

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Writes inside the block become durable together when it ends (see the module)."""
        if self._pending is not None:  # nested: the outer block's barrier covers this one
            yield
            return
        self._pending, self._written = {}, False
        try:
            yield
        finally:
            pending, self._pending = self._pending, None
            if self._written or pending:
                with _errors("make the group's writes durable"):
                    _syncfs(self.root)  # index claims, new dossiers' files, replaced files' renames
                    for dossier_id, work in pending.items():
                        self._move_in(work, dossier_id, flush=False)
                    if pending:
                        _syncfs(self.root)  # the moves

    # -- paths ------------------------------------------------------------------------------
    def _index_path(self, external_id: str) -> Path:
        digest = self._digest(external_id)
        return self.root / "index" / digest[:2] / digest

    def _dossier_dir(self, dossier_id: str) -> Path:
        """Where the dossier's files are: its folder, or, when created in the open group, the
        folder being built in tmp/."""
        if self._pending and dossier_id in self._pending:
            return self._pending[dossier_id]
        return self._final_dir(dossier_id)

    def _final_dir(self, dossier_id: str) -> Path:
        return self.root / "dossiers" / dossier_id[:2] / dossier_id

    # -- atomic writes ----------------------------------------------------------------------
    def _write_bytes(self, path: Path, data: bytes, exclusive: bool = False, fresh: bool = False) -> None:
        """``fresh``: nothing trusts this file before the open group's barrier (an index claim, a
        file of a dossier still in tmp/), so inside a group its content is not flushed now."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        grouped = self._pending is not None
        self._written = True
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                if not (grouped and fresh):
                    os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()  # a full disk leaves no half-written temp file behind
            raise
        try:
            if exclusive:
                os.link(tmp, path)  # fails if path exists: an atomic claim
            else:
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                if exclusive:
                    tmp.unlink()
        if not grouped:
            _fsync_dir(path.parent)

    def _write_json(self, path: Path, value: Any, exclusive: bool = False, fresh: bool = False) -> None:
        data = json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False, default=str)
        self._write_bytes(path, data.encode("utf-8"), exclusive=exclusive, fresh=fresh)

    # -- dossiers ---------------------------------------------------------------------------
    def find_dossier(self, external_id: str) -> DossierRef | None:
        with _errors("find dossier"):
            try:
                dossier_id = self._claimed_id(self._index_path(external_id))
            except FileNotFoundError:
                return None
            if dossier_id is None:
                return None  # a claim lost to a power failure; create_dossier claims again
            if not (self._dossier_dir(dossier_id) / "dossier.json").exists():
                return None  # claimed but never completed; create_dossier finishes it
            return DossierRef(id=dossier_id, external_id=external_id)

    def create_dossier(self, spec: DossierSpec) -> DossierRef:
        with _errors("create dossier"):
            dossier_id = self._claim(self._index_path(spec.external_id))
            ref = DossierRef(id=dossier_id, external_id=spec.external_id)
            if (self._dossier_dir(dossier_id) / "dossier.json").exists():
                self.update_dossier(ref, spec)
                return ref
            work = self.root / "tmp" / f"{dossier_id}.{uuid.uuid4().hex}"
            work.mkdir(parents=True)
            for part in spec.parts:
                (work / part.folder).mkdir()
            self._write_json(work / "dossier.json", self._dossier_doc(spec, created=True), fresh=True)
            if self._pending is not None:
                self._pending[dossier_id] = work  # moves in after the group's first barrier
            else:
                self._move_in(work, dossier_id)
            return ref

    def _claim(self, index: Path) -> str:
        """The dossier id of this index entry: claimed before (an earlier attempt, another run),
        or claimed now."""
        for _ in range(3):
            with contextlib.suppress(FileExistsError):
                self._write_bytes(index, uuid.uuid4().hex.encode("ascii"), exclusive=True, fresh=True)
            dossier_id = self._claimed_id(index)
            if dossier_id is not None:
                return dossier_id
            # A claim whose content never reached the disk: power failed inside a group, before
            # its barrier. Nothing was built on it (a new dossier moves in only after the
            # barrier), so it is set aside, whole, and claimed again.
            with contextlib.suppress(FileNotFoundError):
                os.rename(index, self.root / "tmp" / f"lost-claim.{uuid.uuid4().hex}")
        raise PermanentError("create dossier: its index entry is unreadable")

    @staticmethod
    def _claimed_id(index: Path) -> str | None:
        """The dossier id an index entry holds, or None when its content was lost."""
        dossier_id = index.read_bytes().decode("ascii", "replace").strip()
        return dossier_id if _DOSSIER_ID.fullmatch(dossier_id) else None

    def _move_in(self, work: Path, dossier_id: str, flush: bool = True) -> None:
        """Move a dossier built in tmp/ to its place; ``flush`` its new parent folder (the
        group's barrier after the moves does that instead)."""
        final = self._final_dir(dossier_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(work, final)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
            if not (final / "dossier.json").exists():
                raise
        if flush:
            _fsync_dir(final.parent)

    def update_dossier(self, ref: DossierRef, spec: DossierSpec) -> None:
        with _errors("update dossier"):
            folder = self._dossier_dir(ref.id)
            meta = folder / "dossier.json"
            if not meta.exists():
                raise PermanentError(f"update dossier: dossier {ref.id} does not exist")
            current = json.loads(meta.read_text(encoding="utf-8"))
            for part in spec.parts:
                (folder / part.folder).mkdir(exist_ok=True)
            doc = self._dossier_doc(spec, created=False)
            doc["created"] = current.get("created", doc["updated"])
            self._write_json(meta, doc)

    def read_dossier(self, ref: DossierRef) -> dict[str, Any]:
        """The dossier's metadata as stored (for inspection and tests)."""
        with _errors("read dossier"):
            data: dict[str, Any] = json.loads(
                (self._dossier_dir(ref.id) / "dossier.json").read_text(encoding="utf-8")
            )
            return data

    def dossier_count(self) -> int:
        """How many dossiers the index holds (for reports and tests): its entries, not a temp
        file a failed write left beside them."""
        return sum(1 for p in (self.root / "index").glob("*/*") if _INDEX_NAME.fullmatch(p.name))

    def _dossier_doc(self, spec: DossierSpec, created: bool) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        doc = {
            "key": self._digest(spec.external_id),  # never the external id itself (it may be a BSN)
            "school": spec.school,
            "title": spec.title,
            "properties": spec.properties,
            "departure": spec.departure.isoformat() if spec.departure else None,
            "parts": [p.model_dump() for p in spec.parts],
            "updated": now,
        }
        if created:
            doc["created"] = now
        return doc

    # -- documents --------------------------------------------------------------------------
    @staticmethod
    def _meta_problem(meta_file: Path, meta: Any) -> str | None:
        """Why a metadata file is not a document of this store (None: it is). Its id must have
        the store's shape and match the file's own name, and its content file must be a plain
        name in the same folder."""
        if not isinstance(meta, dict):
            return "not an object"
        doc_id, file = meta.get("id"), meta.get("file")
        if not isinstance(doc_id, str) or not _DOC_ID.fullmatch(doc_id):
            return "id"
        if meta_file.name != f"{doc_id}.meta.json":
            return "id does not match the file name"
        if not isinstance(file, str) or not _FILE.fullmatch(file) or file.split(".", 1)[0] != doc_id:
            return "file"
        if not isinstance(meta.get("part"), str) or not isinstance(meta.get("name"), str):
            return "part or name"
        return None

    def _meta_file(self, doc: DocumentRef) -> tuple[Path, dict[str, Any]] | None:
        """The document's metadata file, looked up by exact name in each part folder (never a
        glob with a value read from disk), with its content checked."""
        if not _DOC_ID.fullmatch(doc.id) or not _DOSSIER_ID.fullmatch(doc.dossier_id):
            raise PermanentError("document or dossier id of a shape this store never makes")
        folder = self._dossier_dir(doc.dossier_id)
        if not folder.is_dir():
            return None
        for part_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
            candidate = part_dir / f"{doc.id}.meta.json"
            if candidate.is_file() and not candidate.is_symlink():
                meta = json.loads(candidate.read_text(encoding="utf-8"))
                if self._meta_problem(candidate, meta) is None:
                    return candidate, meta
        return None

    @staticmethod
    def _content(meta_file: Path, meta: dict[str, Any]) -> Path:
        """The content file named by checked metadata, resolved inside the part folder."""
        path = (meta_file.parent / str(meta["file"])).resolve()
        if path.parent != meta_file.parent.resolve():
            raise PermanentError("document file outside its dossier folder")
        return path

    def documents(self, ref: DossierRef) -> Iterator[DocumentRef]:
        with _errors("list documents"):
            folder = self._dossier_dir(ref.id)
            if not folder.exists():
                raise PermanentError(f"list documents: dossier {ref.id} does not exist")
            seen: set[str] = set()
            for part_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
                for meta_file in sorted(part_dir.glob("*.meta.json")):
                    meta = json.loads(meta_file.read_text(encoding="utf-8"))
                    if self._meta_problem(meta_file, meta) is not None:
                        continue  # not one of ours (or tampered with): never listed, so never acted on
                    if meta["id"] in seen:
                        continue  # a copy placed in another part's folder: the document is listed once
                    seen.add(meta["id"])
                    yield DocumentRef(
                        id=meta["id"], dossier_id=ref.id, part=meta["part"],
                        doc_class=meta.get("class"), name=meta["name"],
                        metadata=meta.get("metadata", {}), added=meta.get("added"),
                    )

    def add_document(
        self, ref: DossierRef, part: str, doc_class: str | None, name: str, content: BinaryIO,
        metadata: dict[str, str],
    ) -> DocumentRef:
        with _errors("add document"):
            dossier = self.read_dossier(ref)
            folders = {p["code"]: p["folder"] for p in dossier["parts"]}
            if part not in folders:
                raise PermanentError(f"add document: dossier has no part {part!r}")
            doc_id = uuid.uuid4().hex
            suffix = "".join(c for c in Path(name).suffix if c.isalnum() or c == ".")[:10]
            part_dir = self._dossier_dir(ref.id) / folders[part]
            self._write_bytes(part_dir / f"{doc_id}{suffix}", content.read())
            meta = {
                "id": doc_id, "part": part, "class": doc_class, "name": name, "file": f"{doc_id}{suffix}",
                "metadata": metadata, "added": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self._write_json(part_dir / f"{doc_id}.meta.json", meta)
            return DocumentRef(id=doc_id, dossier_id=ref.id, part=part, doc_class=doc_class,
                               name=name, metadata=metadata, added=meta["added"])

    # -- access -------------------------------------------------------------------------------
    def set_access(self, ref: DossierRef, part: str, grants: tuple[DmsGrant, ...]) -> None:
        with _errors("set access"):
            folder = self._dossier_dir(ref.id)
            if not (folder / "dossier.json").exists():
                raise PermanentError(f"set access: dossier {ref.id} does not exist")
            path = folder / "access.json"
            current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            wanted = [g.model_dump(mode="json") for g in grants]
            if current.get(part, []) == wanted:
                return
            current[part] = wanted
            self._write_json(path, current)

    def access(self, ref: DossierRef) -> dict[str, tuple[DmsGrant, ...]]:
        """The read access set on the dossier, per part."""
        with _errors("read access"):
            path = self._dossier_dir(ref.id) / "access.json"
            data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            return {part: tuple(DmsGrant.model_validate(g) for g in grants) for part, grants in data.items()}

    def read_access(self, ref: DossierRef) -> dict[str, tuple[DmsGrant, ...]]:
        """The access file this store enforces (``may_read``), per part that anyone can open."""
        return {part: grants for part, grants in self.access(ref).items() if grants}

    def may_read(self, doc: DocumentRef, user: str, groups: tuple[str, ...] = ()) -> bool:
        """Whether ``user`` (member of ``groups``) may read ``doc`` by the access set on its part."""
        for grant in self.access(DossierRef(id=doc.dossier_id, external_id="")).get(doc.part, ()):
            who = grant.principal == user if grant.kind == "user" else grant.principal in groups
            if who and (grant.classes is None or doc.doc_class in grant.classes):
                return True
        return False

    def read_as(self, doc: DocumentRef, user: str, groups: tuple[str, ...] = ()) -> bytes:
        """The store's own read path for a person: refused unless the access set allows it."""
        if not self.may_read(doc, user, groups):
            raise PermanentError(f"read document: access to document {doc.id} is not granted to this user")
        return self.read(doc)

    def read(self, doc: DocumentRef) -> bytes:
        with _errors("read document"):
            found = self._meta_file(doc)
            if found is None:
                raise PermanentError(f"read document: document {doc.id} does not exist")
            return self._content(*found).read_bytes()

    def tag(self, doc: DocumentRef, tag: RetentionTag) -> None:
        """Write the retention tag into the document's metadata (atomically)."""
        with _errors("tag document"):
            found = self._meta_file(doc)
            if found is None:
                raise PermanentError(f"tag document: document {doc.id} does not exist")
            meta_file, meta = found
            meta.setdefault("metadata", {}).update(tag.metadata())
            self._write_json(meta_file, meta)

    def destroy(self, doc: DocumentRef) -> None:
        """Move the document to the trash (soft delete). Already gone counts as done.

        The content moves first and the metadata (which lists the document) last: a crash in
        between leaves the document listed, so the journal's retry finishes the move. A content
        file left behind without its metadata (a crash under an earlier order) is moved too,
        so "gone" always means the content is gone."""
        with _errors("destroy document"):
            found = self._meta_file(doc)  # refuses ids of a shape the store never makes
            folder = self._dossier_dir(doc.dossier_id)
            trash = self.root / "trash" / date.today().isoformat() / doc.dossier_id
            moved: list[Path] = []
            if found is not None:
                meta_file, meta = found
                trash.mkdir(parents=True, exist_ok=True)
                content = self._content(meta_file, meta)
                if content.exists():
                    os.rename(content, trash / content.name)
                    _fsync_dir(trash)
                os.rename(meta_file, trash / meta_file.name)  # unlisted from here on
                moved.append(meta_file)
            # a content file left behind without its metadata (a crash under an earlier order):
            # found by exact comparison of names, never by a pattern
            parts = [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()] if folder.is_dir() else []
            for part_dir in parts:
                for orphan in part_dir.iterdir():
                    if (orphan.is_file() and not orphan.name.endswith(".meta.json")
                            and orphan.name.split(".", 1)[0] == doc.id and _FILE.fullmatch(orphan.name)):
                        trash.mkdir(parents=True, exist_ok=True)
                        os.rename(orphan, trash / orphan.name)
                        moved.append(orphan)
            if moved:
                _fsync_dir(trash)
                for parent in {p.parent for p in moved}:
                    _fsync_dir(parent)

    def purge(self, doc: DocumentRef) -> None:
        """Delete one destroyed document from the trash for good. Already gone counts as done."""
        with _errors("purge document"):
            if not _DOC_ID.fullmatch(doc.id) or not _DOSSIER_ID.fullmatch(doc.dossier_id):
                raise PermanentError("document or dossier id of a shape this store never makes")
            trash = self.root / "trash"
            for day in (d for d in trash.iterdir() if d.is_dir() and not d.is_symlink()) if trash.is_dir() else ():
                folder = day / doc.dossier_id
                if not folder.is_dir() or folder.is_symlink():
                    continue
                for path in folder.iterdir():
                    if path.is_file() and path.name.split(".", 1)[0] == doc.id:
                        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _errors(operation: str) -> Iterator[None]:
    """Map OS errors to the connector's error classes; the message has no file content."""
    try:
        yield
    except (PermanentError, TransientError):
        raise
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno in _ENOSPC_LIKE:
            raise TransientError(f"{operation}: {exc.strerror}") from None
        raise PermanentError(f"{operation}: {exc.strerror or exc.__class__.__name__}") from None
    except (ValueError, KeyError) as exc:
        raise PermanentError(f"{operation}: corrupt store metadata ({exc.__class__.__name__})") from None
