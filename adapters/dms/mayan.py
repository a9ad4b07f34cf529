"""Mayan EDMS (REST API v4) as a DocumentStore.

    dossier   = a root cabinet "<title> [ld-<key>]" with a sub-cabinet per part ("I. Deel I: ...")
                plus a dossier card: a small document in the root cabinet whose metadata holds
                the dossier's key (``ld_dossier``) and its properties (``ld_p_<name>``)
    document  = a Mayan document in a part's sub-cabinet; its class, part and retention tag are
                metadata types (``ld_class``, ``ld_part``, ``ld_retention_*``)
    destroy   = Mayan's own trash (DELETE /documents/{id}/); purge = delete from the trash

``<key>`` is a keyed hash of the external id (the install's index key): a dossier is found by it,
never by name, and no identifier is readable in Mayan. Mayan's search matches words, not exact
values, so every hit is verified. Metadata types and the document type are created by ``init``
(``leerdossier dms init``) and, when missing, on first use; both are idempotent.

Errors: timeouts, connection errors, 5xx and 429 are TransientError (429 with its Retry-After);
other 4xx are PermanentError. Messages carry the method, the endpoint path and the status, never
a response body. Timeouts are always set.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

import httpx
from pydantic import BaseModel, Field

from adapters._http import map_methods, same_origin
from connector.config import SecretRef
from connector.errors import ConfigError, PermanentError, TransientError
from connector.model import DmsGrant, DocumentRef, DossierRef, DossierSpec, Frozen, RetentionTag, StoreCapabilities
from connector.ports import BaseDocumentStore, StoreContext, read_back
from connector.retrying import retry_after

log = logging.getLogger("leerdossier.dms.mayan")
CARD_LABEL = "dossierkaart"
RESERVED = {"ld_dossier", "ld_class", "ld_part", "ld_card"}


class MayanSettings(Frozen):
    url: str = Field(pattern=r"^https?://")
    token: SecretRef
    """The API token, by reference (``env:NAME`` or ``file:PATH``)."""
    timeout: float = Field(default=15.0, gt=0, le=300)
    document_type: str = "Leerlingdossier"
    poll_timeout: float = Field(default=60.0, gt=0)
    """How long to wait for Mayan to finish processing an upload."""


PORT_METHODS = ("init", "find_dossier", "create_dossier", "update_dossier", "documents", "add_document", "read",
                "tag", "destroy", "purge", "in_trash", "set_access", "read_access")


class MayanStore(BaseDocumentStore):
    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities(trash=True, acl=True)
    settings_model: ClassVar[type[BaseModel]] = MayanSettings

    def __init__(self, settings: MayanSettings, context: StoreContext | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        context = context or StoreContext()
        if context.secret is None:
            raise ConfigError("dms.token: no way to read the secret reference")
        token = context.secret(settings.token).decode().strip()
        self.settings = settings
        if len(context.index_key) < 16:
            raise ConfigError("mayan: no index key (the core hands it one from the install secret): a label "
                              "keyed with a known key would let anyone test candidate numbers")
        self._key = context.index_key
        self._context = context
        self._client = httpx.Client(
            base_url=settings.url.rstrip("/") + "/api/v4", timeout=httpx.Timeout(settings.timeout),
            headers={"Accept": "application/json", "Authorization": f"Token {token}"}, transport=transport,
        )
        self._doc_type: int | None = None
        self._metadata_types: dict[str, int] | None = None
        self._attached: set[int] = set()
        self._roles: dict[str, int] = {}
        self._readers_role: int | None = None
        self._readers_groups: set[int] = set()

    # -- plumbing -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, ok_404: bool = False, **kwargs: Any) -> httpx.Response | None:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise TransientError(f"{method} {path}: timed out") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{method} {path}: {exc.__class__.__name__}") from None
        status = response.status_code
        if status == 404 and ok_404:
            return None
        if 300 <= status < 400:  # never followed: the token goes with every request
            raise PermanentError(f"{method} {path}: {status} redirect; not followed")
        if status == 429:
            raise TransientError(f"{method} {path}: 429 throttled",
                                 delay=retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise TransientError(f"{method} {path}: {status}")
        if status >= 400:
            raise PermanentError(f"{method} {path}: {status}")
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        assert response is not None
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:  # a proxy's or a maintenance page, not Mayan's API
            raise TransientError(f"{method} {path}: {response.status_code} answer is not JSON") from None

    def _paged(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every result of a list endpoint, following ``next`` (which carries the query itself)."""
        url: str | None = path
        query: dict[str, Any] | None = dict(params or {}, page_size=100)
        seen: set[str] = set()
        while url:
            if url in seen:
                raise PermanentError(f"GET {path}: pagination loops")
            seen.add(url)
            page = self._json("GET", url, params=query) if query is not None else self._json("GET", url)
            yield from page.get("results", [])
            url, query = self._next(path, page.get("next")), None

    def _next(self, path: str, link: Any) -> str | None:
        """The path of Mayan's ``next`` link below the client's base URL, or None at the end: only
        its path and query, against the configured URL (a proxy that makes Mayan write http://
        links changes nothing); another host, or a path outside the API, is refused."""
        return same_origin(self._client.base_url, f"GET {path}", link)

    def close(self) -> None:
        self._client.close()

    def check(self) -> list[str]:
        """Mayan answers and the token may read what the connector uses; changes nothing (the
        document and metadata types are made by ``dms init`` or on first use)."""
        try:
            self._json("GET", "/")
            next(self._paged("/document_types/"), None)
            next(self._paged("/cabinets/"), None)
        except (TransientError, PermanentError) as exc:
            return [f"Mayan at {self.settings.url}: {exc}"]
        return []

    # -- setup (idempotent) ---------------------------------------------------------------------
    def init(self) -> dict[str, Any]:
        """Create the document type and the connector's metadata types when missing."""
        doc_type = self._document_type()
        for name in sorted(RESERVED):
            self._metadata_type(name)
        return {"document_type": doc_type, "metadata_types": len(self._types())}

    def _document_type(self) -> int:
        if self._doc_type is None:
            wanted = self.settings.document_type
            found = [t for t in self._paged("/document_types/") if t["label"] == wanted]
            if not found:
                # Mayan's own trash/delete periods stay off: the connector destroys only behind an
                # approved list and purges itself, re-checking holds (see README).
                self._json("POST", "/document_types/", json={"label": wanted, "trash_time_period": None,
                                                             "delete_time_period": None})
                found = [t for t in self._paged("/document_types/") if t["label"] == wanted]
            self._doc_type = int(min(t["id"] for t in found))
        return self._doc_type

    def _types(self) -> dict[str, int]:
        if self._metadata_types is None:
            self._metadata_types = {t["name"]: int(t["id"]) for t in self._paged("/metadata_types/")}
        return self._metadata_types

    def _metadata_type(self, name: str) -> int:
        types = self._types()
        if name not in types:
            try:
                created = self._json("POST", "/metadata_types/", json={"name": name, "label": name[:48]})
                types[name] = int(created["id"])
            except PermanentError:  # created meanwhile (or by an earlier, interrupted run)
                self._metadata_types = None
                types = self._types()
                if name not in types:
                    raise
        type_id = self._types()[name]
        doc_type = self._document_type()
        if type_id not in self._attached:
            linked = {int(m["metadata_type"]["id"]) for m in
                      self._paged(f"/document_types/{doc_type}/metadata_types/")}
            if type_id not in linked:
                self._json("POST", f"/document_types/{doc_type}/metadata_types/",
                           json={"metadata_type_id": type_id, "required": False})
            self._attached |= linked | {type_id}
        return type_id

    # -- keys and search ------------------------------------------------------------------------
    def key(self, external_id: str) -> str:
        return self._context.label(external_id)

    def _root_cabinets(self, key: str) -> list[dict[str, Any]]:
        hits = self._paged("/search/advanced/cabinets.cabinetsearchresult/", {"label": f"={key}", "_match_all": "true"})
        # search matches words: keep only an exact, top-level "... [key]"
        return sorted((c for c in hits if c.get("parent_id") is None and c["label"].endswith(f"[{key}]")),
                      key=lambda c: int(c["id"]))

    def _cards(self, key: str) -> list[int]:
        hits = self._paged("/search/advanced/documents.documentsearchresult/",
                           {"metadata__metadata_type__name": "ld_dossier", "metadata__value": f"={key}",
                            "_match_all": "true"})
        cards = []
        for doc in hits:
            meta = self._metadata(int(doc["id"]))
            if meta.get("ld_dossier", (None, None))[1] == key:
                cards.append(int(doc["id"]))
        return sorted(cards)

    def _metadata(self, doc_id: int) -> dict[str, tuple[int, str | None]]:
        """name -> (metadata id, value)."""
        return {m["metadata_type"]["name"]: (int(m["id"]), m["value"])
                for m in self._paged(f"/documents/{doc_id}/metadata/")}

    def _set_metadata(self, doc_id: int, values: dict[str, str | None]) -> None:
        current = self._metadata(doc_id)
        for name, value in values.items():
            if name in current:
                meta_id, old = current[name]
                if value is None:
                    self._request("DELETE", f"/documents/{doc_id}/metadata/{meta_id}/")
                elif old != value:
                    self._json("PATCH", f"/documents/{doc_id}/metadata/{meta_id}/", json={"value": value[:255]})
            elif value is not None:
                self._json("POST", f"/documents/{doc_id}/metadata/",
                           json={"metadata_type_id": self._metadata_type(name), "value": value[:255]})

    # -- dossiers -------------------------------------------------------------------------------
    def find_dossier(self, external_id: str) -> DossierRef | None:
        key = self.key(external_id)
        cabinets = self._root_cabinets(key)
        cards = self._cards(key) if cabinets else []
        if not cabinets or not cards:
            return None  # not there, or a creation that did not finish: create_dossier completes it
        return DossierRef(id=f"{cabinets[0]['id']}:{cards[0]}", external_id=external_id)

    def create_dossier(self, spec: DossierSpec) -> DossierRef:
        key = self.key(spec.external_id)
        cabinets = self._root_cabinets(key)
        if cabinets:
            cabinet = int(cabinets[0]["id"])
        else:
            try:
                cabinet = int(self._json("POST", "/cabinets/", json={"label": _label(spec.title, key),
                                                                      "parent": None})["id"])
            except TransientError:
                found = self._root_cabinets(key)  # the answer may have been lost after Mayan created it
                if not found:
                    raise
                cabinet = int(found[0]["id"])
        cards = self._cards(key)
        card = cards[0] if cards else self._upload(CARD_LABEL, b"Leerlingdossier (dossierkaart)\n",
                                                   {"ld_dossier": key, "ld_card": "yes"})
        ref = DossierRef(id=f"{cabinet}:{card}", external_id=spec.external_id)
        self.update_dossier(ref, spec)
        return ref

    def update_dossier(self, ref: DossierRef, spec: DossierSpec) -> None:
        cabinet, card = _ids(ref)
        root = self._json("GET", f"/cabinets/{cabinet}/", ok_404=False)
        label = _label(spec.title, self.key(spec.external_id))
        if root["label"] != label:
            self._json("PATCH", f"/cabinets/{cabinet}/", json={"label": label})
        children = {c["label"] for c in root.get("children", [])}
        for part in spec.parts:
            if _part_label(part.code, part.name) not in children:
                # a 400 "parent, label must make a unique set" means it is there already
                with contextlib.suppress(PermanentError):
                    self._json("POST", "/cabinets/", json={"label": _part_label(part.code, part.name),
                                                           "parent": cabinet})
        self._add_to_cabinet(cabinet, card)
        current = {k: v for k, (_i, v) in self._metadata(card).items() if k.startswith("ld_p_")}
        wanted: dict[str, str | None] = {f"ld_p_{k}"[:48]: v for k, v in spec.properties.items()}
        wanted |= {k: None for k in current if k not in wanted}
        wanted["ld_p_departure"] = spec.departure.isoformat() if spec.departure else None
        wanted["ld_p_school"] = spec.school
        self._set_metadata(card, wanted)

    def _add_to_cabinet(self, cabinet: int, doc_id: int) -> None:
        inside = {int(c["id"]) for c in self._paged(f"/documents/{doc_id}/cabinets/")}
        if cabinet not in inside:
            self._json("POST", f"/cabinets/{cabinet}/documents/add/", json={"document": doc_id})

    def _parts(self, cabinet: int) -> dict[str, int]:
        root = self._json("GET", f"/cabinets/{cabinet}/")
        return {c["label"].split(". ", 1)[0]: int(c["id"]) for c in root.get("children", [])}

    # -- documents ------------------------------------------------------------------------------
    def documents(self, ref: DossierRef) -> Iterator[DocumentRef]:
        """Each document of the dossier once, under its own part (``ld_part``), wherever it sits:
        Mayan lets a document sit in several cabinets. One without ``ld_part`` belongs to the
        part whose cabinet holds it; one without ``ld_part`` in several parts' cabinets is
        ambiguous and left out (logged), so that nothing acts on it until a person moves it."""
        for doc, meta, own, _codes in self._placed(ref):
            if own is None:
                continue
            yield DocumentRef(
                id=str(doc["id"]), dossier_id=ref.id, part=own, doc_class=meta.get("ld_class"),
                name=doc["label"], metadata={_plain(k): v for k, v in meta.items() if k not in RESERVED},
                added=doc.get("datetime_created"),
            )

    def _placed(self, ref: DossierRef) -> Iterator[tuple[dict[str, Any], dict[str, str], str | None, set[str]]]:
        """(document, its metadata, its own part or None, the parts whose cabinets hold it) for
        every document in the dossier's part cabinets but the dossier card, each once."""
        cabinet, _card = _ids(ref)
        parts = self._parts(cabinet)
        found: dict[int, tuple[dict[str, Any], set[str]]] = {}
        for code, sub in sorted(parts.items()):
            for doc in self._paged(f"/cabinets/{sub}/documents/"):
                found.setdefault(int(doc["id"]), (doc, set()))[1].add(code)
        for doc_id, (doc, codes) in sorted(found.items()):
            meta = {name: value for name, (_i, value) in self._metadata(doc_id).items() if value is not None}
            if meta.get("ld_card") == "yes":
                continue
            own = meta.get("ld_part") if meta.get("ld_part") in parts else (min(codes) if len(codes) == 1 else None)
            if own is None:
                log.warning("document sits in the cabinets of several parts and has no ld_part: left alone and "
                            "readable by nobody the connector manages until a person moves it",
                            extra={"document": doc_id, "parts": sorted(codes)})
            elif codes != {own}:
                log.warning("document of one part also sits in the cabinet of another: its access follows its own "
                            "part; a person should move it", extra={"document": doc_id, "part": own,
                                                                    "cabinets": sorted(codes)})
            yield doc, meta, own, codes

    def _upload(self, name: str, content: bytes, metadata: dict[str, str]) -> int:
        response = self._json("POST", "/documents/upload/",
                              data={"document_type_id": str(self._document_type()), "label": name},
                              files={"file": (name, content)})
        doc_id = int(response["id"])
        self._wait_processed(doc_id)
        self._set_metadata(doc_id, dict(metadata))
        return doc_id

    def _wait_processed(self, doc_id: int) -> None:
        """Mayan processes uploads in the background: poll, bounded, until the file is stored."""
        deadline = time.monotonic() + self.settings.poll_timeout
        delay = 0.1
        while True:
            doc = self._json("GET", f"/documents/{doc_id}/")
            if doc.get("file_latest"):
                return
            if time.monotonic() > deadline:
                raise TransientError(f"GET /documents/{doc_id}/: not processed within "
                                     f"{self.settings.poll_timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def add_document(self, ref: DossierRef, part: str, doc_class: str | None, name: str, content: BinaryIO,
                     metadata: dict[str, str]) -> DocumentRef:
        cabinet, _card = _ids(ref)
        parts = self._parts(cabinet)
        if part not in parts:
            raise PermanentError(f"add document: dossier has no part {part!r}")
        values = {_mayan(k): v for k, v in metadata.items()} | {"ld_part": part}
        if doc_class:
            values["ld_class"] = doc_class
        doc_id = self._upload(name, content.read(), values)
        self._add_to_cabinet(parts[part], doc_id)
        return DocumentRef(id=str(doc_id), dossier_id=ref.id, part=part, doc_class=doc_class, name=name,
                           metadata=dict(metadata))

    def read(self, doc: DocumentRef) -> bytes:
        info = self._json("GET", f"/documents/{doc.id}/")
        latest = info.get("file_latest") or {}
        response = self._request("GET", f"/documents/{doc.id}/files/{latest.get('id')}/download/")
        assert response is not None
        return response.content

    def tag(self, doc: DocumentRef, tag: RetentionTag) -> None:
        self._set_metadata(int(doc.id), {_mayan(k): v for k, v in tag.metadata().items()})

    def destroy(self, doc: DocumentRef) -> None:
        """Mayan's own delete: into its trash. Already trashed or gone counts as done."""
        self._request("DELETE", f"/documents/{doc.id}/", ok_404=True)

    def purge(self, doc: DocumentRef) -> None:
        """Delete a trashed document for good. Already gone counts as done."""
        self._request("DELETE", f"/trashed_documents/{doc.id}/", ok_404=True)

    def in_trash(self, doc: DocumentRef) -> bool:
        return self._request("GET", f"/trashed_documents/{doc.id}/", ok_404=True) is not None

    # -- access ---------------------------------------------------------------------------------
    # Mayan gives access per object to a role (user -> group -> role). The connector manages one
    # role per principal, labelled "ld-group-<group>" (a staff group: the school's Mayan group of
    # that name) or "ld-user-<hash>" (a linked account, with a group of its own holding only that
    # user; the label does not show the account). ACLs of roles it does not manage are left alone.
    # Cabinet ACLs do not pass down to documents (they do pass down to the cabinets below), so
    # the part's cabinet and every document of the part get their own; the root cabinet none.
    # Document metadata is readable through its metadata type: one managed role,
    # "ld-metadata-readers", may read the connector's document metadata types (class, part,
    # retention tag) on documents its members may view; every managed group is in it.
    def set_access(self, ref: DossierRef, part: str, grants: tuple[DmsGrant, ...]) -> None:
        cabinet, _card = _ids(ref)
        parts = self._parts(cabinet)
        if part not in parts:
            raise PermanentError(f"set access: dossier has no part {part!r}")
        roles = {self._role_for(g): g for g in grants}
        self._set_acls("cabinets", "cabinet", parts[part], set(roles), CABINET_VIEW)
        for doc, meta, own, codes in self._placed(ref):
            doc_id = int(doc["id"])
            if own == part:
                # a document's access follows its own part and class, never the cabinets it sits in
                allowed = {role for role, g in roles.items()
                           if g.classes is None or meta.get("ld_class") in g.classes}
                self._set_acls("documents", "document", doc_id, allowed, DOCUMENT_VIEW)
            elif own is None and part in codes:
                self._set_acls("documents", "document", doc_id, set(), DOCUMENT_VIEW)  # ambiguous: nobody
            elif part in codes and own is not None:
                # another part's document in this part's cabinet: never wider than its own part's
                # principals, even when its own part is not applied again now
                theirs = set(self._managed_acls("cabinets", "cabinet", parts[own]))
                current = set(self._managed_acls("documents", "document", doc_id))
                if current - theirs:
                    self._set_acls("documents", "document", doc_id, current & theirs, DOCUMENT_VIEW)
        # No grant on the root cabinet: Mayan applies a cabinet's ACL to every cabinet below it,
        # so a view there would open every part. Grants left there by an earlier version go.
        self._set_acls("cabinets", "cabinet", cabinet, set(), CABINET_VIEW)

    def read_access(self, ref: DossierRef) -> dict[str, tuple[DmsGrant, ...]]:
        """Read back from Mayan's ACLs: the managed roles on each part's cabinet and on each of
        its documents, each role's principal read from its label (a group) or from the members
        of its group (a user account)."""
        cabinet, _card = _ids(ref)
        parts = self._parts(cabinet)
        principals: dict[int, set[tuple[str, str]]] = {}

        def holders(app: str, model: str, object_id: int) -> set[tuple[str, str]]:
            out: set[tuple[str, str]] = set()
            for acl in self._paged(f"/objects/{app}/{model}/{object_id}/acls/"):
                role = acl.get("role") or {}
                label = str(role.get("label", ""))
                if label.startswith(MANAGED_ROLE):
                    role_id = int(role["id"])
                    if role_id not in principals:
                        principals[role_id] = self._principals_of(role_id, label)
                    out |= principals[role_id]
            return out

        docs: dict[str, list[tuple[str | None, set[tuple[str, str]]]]] = {code: [] for code in parts}
        for doc, meta, own, _codes in self._placed(ref):
            if own is not None and own in docs:
                docs[own].append((meta.get("ld_class"), holders("documents", "document", int(doc["id"]))))
        found = {code: read_back(holders("cabinets", "cabinet", parts[code]), docs[code]) for code in parts}
        return {code: grants for code, grants in found.items() if grants}

    def _principals_of(self, role_id: int, label: str) -> set[tuple[str, str]]:
        """Who a managed role stands for: the group its label names, or the user accounts in the
        groups of a user's role."""
        rest = label[len(MANAGED_ROLE):]
        if rest.startswith("group-"):
            return {(rest[len("group-"):], "group")}
        return {(str(u["username"]), "user") for g in self._paged(f"/roles/{role_id}/groups/")
                for u in self._paged(f"/groups/{g['id']}/users/")}

    def _managed_acls(self, app: str, model: str, object_id: int) -> dict[int, int]:
        """role id -> acl id, for the roles the connector manages, on one object."""
        out = {}
        for acl in self._paged(f"/objects/{app}/{model}/{object_id}/acls/"):
            role = acl.get("role") or {}
            if str(role.get("label", "")).startswith(MANAGED_ROLE):
                out[int(role["id"])] = int(acl["id"])
        return out

    def _set_acls(self, app: str, model: str, object_id: int, roles: set[int], permissions: tuple[str, ...]) -> None:
        current = self._managed_acls(app, model, object_id)
        for role_id, acl_id in current.items():
            if role_id not in roles:
                self._request("DELETE", f"/objects/{app}/{model}/{object_id}/acls/{acl_id}/", ok_404=True)
        for role_id in sorted(roles - set(current)):
            acl = self._json("POST", f"/objects/{app}/{model}/{object_id}/acls/", json={"role_id": role_id})
            for permission in permissions:
                self._json("POST", f"/objects/{app}/{model}/{object_id}/acls/{acl['id']}/permissions/add/",
                           json={"permission": permission})

    def _role_for(self, grant: DmsGrant) -> int:
        """The managed role for a grant's principal, made (with its group) the first time."""
        if grant.kind == "group":
            label = f"{MANAGED_ROLE}group-{grant.principal}"[:128]
            group_name = grant.principal
        else:
            digest = hmac.new(self._key, f"user:{grant.principal}".encode(), hashlib.sha256).hexdigest()[:20]
            label = group_name = f"{MANAGED_ROLE}user-{digest}"
        cached = self._roles.get(label)
        if cached is not None:
            return cached
        group = self._find("/groups/", "name", group_name)
        if group is None:
            group = self._json("POST", "/groups/", json={"name": group_name})
        if grant.kind == "user":
            user = self._find("/users/", "username", grant.principal)
            if user is None:
                raise PermanentError("set access: the linked account does not exist in Mayan")
            members = {int(u["id"]) for u in self._paged(f"/groups/{group['id']}/users/")}
            if int(user["id"]) not in members:
                self._json("POST", f"/groups/{group['id']}/users/add/", json={"user": int(user["id"])})
        role = self._find("/roles/", "label", label)
        if role is None:
            role = self._json("POST", "/roles/", json={"label": label})
        in_role = {int(g["id"]) for g in self._paged(f"/roles/{role['id']}/groups/")}
        if int(group["id"]) not in in_role:
            self._json("POST", f"/roles/{role['id']}/groups/add/", json={"group": int(group["id"])})
        self._in_readers(int(group["id"]))
        self._roles[label] = int(role["id"])
        return int(role["id"])

    def _readers(self) -> int:
        """The role that may read the connector's document metadata (made once, idempotent)."""
        if self._readers_role is None:
            role = self._find("/roles/", "label", READERS_ROLE) or self._json("POST", "/roles/",
                                                                             json={"label": READERS_ROLE})
            role_id = int(role["id"])
            for name in DOCUMENT_METADATA:
                type_id = self._metadata_type(name)
                granted = set(self._managed_acls("metadata", "metadatatype", type_id))
                if role_id not in granted:
                    self._set_acls("metadata", "metadatatype", type_id, granted | {role_id},
                                   ("metadata.metadata_document_view",))
            self._readers_role = role_id
            self._readers_groups = {int(g["id"]) for g in self._paged(f"/roles/{role_id}/groups/")}
        return self._readers_role

    def _in_readers(self, group_id: int) -> None:
        role_id = self._readers()
        if group_id not in self._readers_groups:
            self._json("POST", f"/roles/{role_id}/groups/add/", json={"group": group_id})
            self._readers_groups.add(group_id)

    def _find(self, path: str, field: str, value: str) -> dict[str, Any] | None:
        return next((x for x in self._paged(path) if x.get(field) == value), None)


map_methods(MayanStore, PORT_METHODS, "Mayan")

MANAGED_ROLE = "ld-"
READERS_ROLE = f"{MANAGED_ROLE}metadata-readers"
DOCUMENT_METADATA = ("ld_class", "ld_part", *(f"ld_{k}" for k in (
    "retention_class", "retention_category", "retention_kind", "retention_period", "retention_due",
    "retention_blocked", "retention_basis")))
"""The document metadata types a principal who may view a document may read on it (never the
dossier card's ``ld_dossier`` or ``ld_p_*``: the card is granted to nobody)."""
CABINET_VIEW = ("cabinets.cabinet_view",)
DOCUMENT_VIEW = ("documents.document_view", "documents.document_file_view",
                 "document_downloads.document_file_download", "metadata.metadata_document_view")


def _ids(ref: DossierRef) -> tuple[int, int]:
    cabinet, _, card = ref.id.partition(":")
    if not (cabinet.isdigit() and card.isdigit()):
        raise PermanentError(f"not a Mayan dossier reference: {ref.id!r}")
    return int(cabinet), int(card)


def _label(title: str, key: str) -> str:
    suffix = f" [{key}]"
    return title[: 128 - len(suffix)] + suffix


def _part_label(code: str, name: str) -> str:
    return f"{code}. {name}"[:128]


def _mayan(key: str) -> str:
    return key if key.startswith("ld_") else f"ld_{key}"[:48]


def _plain(name: str) -> str:
    return name[3:] if name.startswith("ld_") else name
