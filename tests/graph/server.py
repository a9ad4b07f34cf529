"""A stateful Microsoft Graph test server: the part of Graph v1.0 the SharePoint adapter uses
(sites, drives, driveItems, listItem fields, list columns, permissions, retention labels, delta)
and the Microsoft identity platform's token endpoint, in memory, answering in Graph's shapes.

    python -m tests.graph.server --port N        serves it on 127.0.0.1:N until stopped

The tests put Prism in front of it (``prism proxy --errors``, Microsoft's published schema in
``shared/specs/msgraph``), so every request the adapter makes and every answer given here is
checked against Microsoft's metadata. What the tests do to the tenant (add users and groups,
labels, a document placed by staff, faults) goes to ``/_control/...`` directly, never through
the proxy.

Behaviour kept as Graph and SharePoint have it, where the adapter depends on it:
- paths are percent-decoded segment by segment (Prism forwards them encoded); a site is found
  by its id (``host,guid,guid``) or by ``host:/sites/path``; an item by id or by
  ``{parent-id}:/{name}:`` below a folder;
- a page holds at most ``page_size`` items and points to the next with ``@odata.nextLink`` on
  the public base (Prism's address when the tests set it); ``delta`` pages too and ends with a
  ``@odata.deltaLink`` whose token, asked again, gives only what changed since;
- a folder made twice with ``conflictBehavior: fail`` is a 409 ``nameAlreadyExists``;
- permissions: an item inherits its parent's until an invite breaks inheritance (the parent's
  are copied unless ``retainInheritedPermissions`` is false); an inherited permission cannot be
  removed on the child;
- a file under a retention label whose settings forbid deletion cannot be deleted (423);
- DELETE moves an item to the site's recycle bin; ``permanentDelete`` removes it for good;
  both are 404 for what is gone;
- a bearer token from the token endpoint is required; ``/_control/expire`` makes every token
  issued so far invalid (401), as an expired one is;
- ``/_control/faults`` queues faults for the next matching requests: a status (429 or 503 with
  ``Retry-After``, 500, 502, 504) or a lost answer (the request is carried out and the
  connection closed without an answer).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

JSON = dict[str, Any]
HOST = "contoso.sharepoint.com"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Answer(Exception):
    """An answer other than the normal one: a status with Graph's error envelope."""

    def __init__(self, status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.headers = status, code, message or code, headers or {}


@dataclass
class Item:
    id: str
    name: str
    parent: str | None
    folder: bool
    content: bytes = b""
    fields: JSON = field(default_factory=dict)
    unique: list[JSON] | None = None
    """Permissions of its own (inheritance broken), or None: the parent's."""
    label: JSON | None = None
    created: str = field(default_factory=now)
    modified: str = field(default_factory=now)
    version: int = 1
    state: str = "live"
    """live, recycled (the site's recycle bin) or purged."""
    changed: int = 0
    list_item: str = ""


@dataclass
class Fault:
    method: str
    contains: str
    status: int = 0
    retry_after: str | None = None
    lost: bool = False
    times: int = 1
    skip: int = 0
    """Matching requests to let through before the fault strikes."""


class Tenant:
    """The state of one test tenant: one site with one document library."""

    def __init__(self, page_size: int = 50) -> None:
        self.lock = threading.RLock()
        self.page_size = page_size
        self.public = ""
        self.site_id = f"{HOST},{uuid.UUID(int=1)},{uuid.UUID(int=2)}"
        self.site_path = "/sites/school"
        self.drive_id = "b!" + base64.urlsafe_b64encode(b"leerdossier-test-drive").decode().rstrip("=")
        self.list_id = str(uuid.UUID(int=3))
        self.columns: list[JSON] = []
        self.items: dict[str, Item] = {}
        self.counter = itertools.count(1)
        self.tick = itertools.count(1)
        self.root = self._new("root", None, True)
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.users: dict[str, set[str]] = {}
        """user principal name -> the group ids they are in."""
        self.labels: dict[str, JSON] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.denied: str | None = None
        self.deltas: dict[str, int] = {}

    def _new(self, name: str, parent: str | None, folder: bool, content: bytes = b"") -> Item:
        n = next(self.counter)
        item = Item(id=f"01TEST{n:020d}", name=name, parent=parent, folder=folder, content=content,
                    list_item=str(n))
        item.changed = next(self.tick)
        self.items[item.id] = item
        return item

    # -- lookups ------------------------------------------------------------------------------
    def item(self, ref: str) -> Item:
        """An item by id, ``root``, or ``{id}:/{path}:`` below a folder."""
        base, sep, rest = ref.partition(":")
        start = self.root if base == "root" else self.items.get(base)
        if start is None or start.state != "live":
            raise Answer(404, "itemNotFound", "The resource could not be found.")
        if not sep:
            return start
        current = start
        for name in [p for p in rest.strip(":").split("/") if p]:
            current = self.child(current, name) or self._missing()
        return current

    def _missing(self) -> Item:
        raise Answer(404, "itemNotFound", "The resource could not be found.")

    def child(self, folder: Item, name: str) -> Item | None:
        return next((i for i in self.items.values() if i.parent == folder.id and i.state == "live"
                     and i.name.lower() == name.lower()), None)

    def children(self, folder: Item) -> list[Item]:
        return sorted((i for i in self.items.values() if i.parent == folder.id and i.state == "live"),
                      key=lambda i: i.id)

    def ancestors(self, item: Item) -> Iterator[Item]:
        current: Item | None = item
        while current is not None:
            yield current
            current = self.items.get(current.parent) if current.parent else None

    def effective(self, item: Item) -> list[JSON]:
        """The item's permissions: its own, or those it inherits (marked ``inheritedFrom``)."""
        for holder in self.ancestors(item):
            if holder.unique is not None:
                if holder is item:
                    return [dict(p) for p in holder.unique]
                return [dict(p, inheritedFrom={"driveId": self.drive_id, "id": holder.id}) for p in holder.unique]
        return []

    def readable(self, user: str, below: str) -> set[str]:
        """The files below folder ``below`` that ``user`` may open, by the permissions alone."""
        groups = self.users.get(user, set())
        out = set()
        for item in self.items.values():
            if item.folder or item.state != "live" or below not in {a.id for a in self.ancestors(item)}:
                continue
            for p in self.effective(item):
                who = p.get("grantedToV2", {})
                email = who.get("user", {}).get("email", "")
                if email.lower() == user.lower() or who.get("group", {}).get("id") in groups:
                    out.add(item.id)
        return out

    # -- shapes -------------------------------------------------------------------------------
    def drive_item(self, item: Item, expand: str = "") -> JSON:
        data: JSON = {
            "id": item.id, "name": item.name, "createdDateTime": item.created, "lastModifiedDateTime": item.modified,
            "eTag": f'"{{{item.id}}},{item.version}"', "cTag": f'"c:{{{item.id}}},{item.version}"',
            "webUrl": f"https://{HOST}{self.site_path}/Leerlingdossiers/{item.name}",
            "parentReference": {"driveId": self.drive_id, "driveType": "documentLibrary", "siteId": self.site_id,
                                **({"id": item.parent} if item.parent else {})},
            "sharepointIds": {"listId": self.list_id, "listItemId": item.list_item, "siteId": self.site_id},
            "size": len(item.content),
        }
        if item.folder:
            data["folder"] = {"childCount": len(self.children(item))}
            if item is self.root:
                data["root"] = {}
        else:
            data["file"] = {"mimeType": "application/octet-stream",
                            "hashes": {"sha256Hash": hashlib.sha256(item.content).hexdigest().upper()}}
        if "listItem" in expand:
            data["listItem"] = self.list_item(item, "fields" in expand)
        return data

    def list_item(self, item: Item, with_fields: bool = True) -> JSON:
        data: JSON = {"id": item.list_item, "createdDateTime": item.created, "lastModifiedDateTime": item.modified,
                      "eTag": f'"{{{item.id}}},{item.version}"',
                      "sharepointIds": {"listId": self.list_id, "listItemId": item.list_item, "siteId": self.site_id}}
        if with_fields:
            data["fields"] = self.fields(item)
        return data

    def fields(self, item: Item) -> JSON:
        return {"@odata.etag": f'"{{{item.id}}},{item.version}"', "id": item.list_item, "FileLeafRef": item.name,
                **item.fields}

    def touch(self, item: Item) -> None:
        item.version += 1
        item.modified = now()
        item.changed = next(self.tick)

    def page(self, values: list[JSON], path: str, query: dict[str, str], extra: JSON | None = None) -> JSON:
        start = int(query.get("$skiptoken", "0") or 0)
        top = min(int(query.get("$top", self.page_size) or self.page_size), self.page_size)
        out: JSON = {"value": values[start:start + top]}
        if start + top < len(values):
            keep = {k: v for k, v in query.items() if k not in ("$skiptoken",)}
            qs = "&".join(f"{k}={v}" for k, v in keep.items())
            out["@odata.nextLink"] = f"{self.public}{path}?{qs + '&' if qs else ''}$skiptoken={start + top}"
        elif extra:
            out.update(extra)
        return out


class Handler(BaseHTTPRequestHandler):
    server: GraphServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms wait on the second

    def log_message(self, format: str, *args: Any) -> None:
        return None

    # -- plumbing -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        tenant = self.server.tenant
        split = urlsplit(self.path)
        segments = [unquote(s) for s in split.path.split("/")]
        path = "/".join(segments)
        self.link_path = split.path
        """The path as it came (percent-encoded): what a next page's link repeats."""
        query = {unquote(k): v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        lost = False
        try:
            with tenant.lock:
                if not path.startswith("/_control/"):
                    tenant.requests.append((method, path))
                    fault = self._fault(method, path)
                    if fault is not None and fault.lost:
                        lost = True
                    elif fault is not None:
                        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                        raise Answer(fault.status, "serviceNotAvailable" if fault.status != 429 else "TooManyRequests",
                                     "Injected by the test.", headers)
                status, payload, headers = self._route(method, path, segments, query, body)
        except Answer as answer:
            status, payload, headers = answer.status, {"error": {"code": answer.code, "message": answer.message}}, \
                answer.headers
        if lost:  # carried out, but the answer never arrives
            self.close_connection = True
            self.connection.close()
            return
        self._answer(status, payload, headers)

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.server.tenant.faults:
            if fault.method in (method, "*") and fault.contains in path and fault.times > 0:
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                return fault
        return None

    def _answer(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        if isinstance(payload, bytes):
            data, kind = payload, "application/octet-stream"
        elif payload is None:
            data, kind = b"", ""
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, body: bytes) -> JSON:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise Answer(400, "invalidRequest", "The body is not JSON.") from None
        if not isinstance(data, dict):
            raise Answer(400, "invalidRequest", "The body is not an object.")
        return data

    def _authorised(self, path: str) -> None:
        tenant = self.server.tenant
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in tenant.tokens:
            raise Answer(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
        if tenant.denied and tenant.denied in path:
            raise Answer(403, "accessDenied", "Access denied.")

    # -- routes -------------------------------------------------------------------------------
    def _route(self, method: str, path: str, seg: list[str], query: dict[str, str],
               body: bytes) -> tuple[int, Any, dict[str, str]]:
        tenant = self.server.tenant
        if path.startswith("/_control/"):
            return self._control(method, seg[2], query, body)
        if path.startswith("/login/"):
            return self._login(method, seg, body)
        if path.startswith("/upload/"):
            return self._upload_part(seg[2], body)
        self._authorised(path)
        parts = seg[1:]
        if parts[0] == "sites" and len(parts) >= 2:
            site = parts[1]
            if site not in (tenant.site_id, f"{HOST}:{tenant.site_path}", f"{HOST}:{tenant.site_path}:"):
                raise Answer(404, "itemNotFound", "Requested site could not be found")
            rest = parts[2:]
            if not rest and method == "GET":
                return 200, {"id": tenant.site_id, "name": "school", "displayName": "School",
                             "webUrl": f"https://{HOST}{tenant.site_path}", "createdDateTime": now(),
                             "lastModifiedDateTime": now(), "siteCollection": {"hostname": HOST}}, {}
            if rest == ["drives"] and method == "GET":
                return 200, tenant.page([self._drive()], self.link_path, query), {}
            if len(rest) == 3 and rest[0] == "lists" and rest[1] == tenant.list_id and rest[2] == "columns":
                return self._columns(method, path, query, body)
            raise Answer(404, "itemNotFound")
        if parts[0] == "security" and parts[1:] == ["labels", "retentionLabels"] and method == "GET":
            return 200, tenant.page(list(tenant.labels.values()), self.link_path, query), {}
        if parts[0] == "drives" and len(parts) >= 2:
            if parts[1] != tenant.drive_id:
                raise Answer(404, "itemNotFound", "The drive could not be found.")
            rest = parts[2:]
            if not rest and method == "GET":
                return 200, self._drive(), {}
            if rest and rest[0] == "root" and (len(rest) == 1 or rest[1] == "delta()"):
                if len(rest) == 1 and method == "GET":
                    return 200, tenant.drive_item(tenant.root), {}
                return self._delta(tenant.root, query, path)
            if len(rest) >= 2 and rest[0] == "items":
                return self._items(method, rest[1], rest[2:], path, query, body)
        raise Answer(404, "itemNotFound", "Unknown path.")

    def _drive(self) -> JSON:
        tenant = self.server.tenant
        return {"id": tenant.drive_id, "name": "Leerlingdossiers", "driveType": "documentLibrary",
                "createdDateTime": now(), "lastModifiedDateTime": now(), "webUrl": f"https://{HOST}/sites/school/LD",
                "sharePointIds": {"listId": tenant.list_id, "siteId": tenant.site_id}}

    def _items(self, method: str, ref: str, rest: list[str], path: str, query: dict[str, str],
               body: bytes) -> tuple[int, Any, dict[str, str]]:
        tenant = self.server.tenant
        expand = query.get("$expand", "")
        # a path below a folder whose last segment does not exist yet: PUT content / upload session
        if rest and rest[0] in ("content", "createUploadSession") and method in ("PUT", "POST") and ":" in ref:
            base, _, name = ref.rstrip(":").rpartition(":/")
            parent = tenant.item(base)
            existing = tenant.child(parent, name)
            if rest[0] == "content":
                if existing is None:
                    existing = tenant._new(name, parent.id, False, body)
                    return 201, tenant.drive_item(existing), {}
                self._writable(existing)
                existing.content = body
                tenant.touch(existing)
                return 200, tenant.drive_item(existing), {}
            session = uuid.uuid4().hex
            self.server.sessions[session] = {"parent": parent.id, "name": name, "data": b"",
                                             "size": int(self._json(body).get("item", {}).get("fileSize", 0))}
            return 200, {"uploadUrl": f"{self.server.direct}/upload/{session}",
                         "expirationDateTime": "2099-01-01T00:00:00Z", "nextExpectedRanges": ["0-"]}, {}
        item = tenant.item(ref)
        if not rest:
            if method == "GET":
                return 200, tenant.drive_item(item, expand), {}
            if method == "PATCH":
                data = self._json(body)
                target = (data.get("parentReference") or {}).get("id")
                if target:  # a move
                    self._move(item, tenant.item(str(target)), query.get("@microsoft.graph.conflictBehavior", "fail"))
                if "name" in data:
                    item.name = str(data["name"])
                tenant.touch(item)
                return 200, tenant.drive_item(item), {}
            if method == "DELETE":
                self._deletable(item)
                self._remove(item, "recycled")
                return 204, None, {}
        head = rest[0]
        if head == "children":
            if method == "GET":
                values = [tenant.drive_item(i, expand) for i in tenant.children(item)]
                return 200, tenant.page(values, self.link_path, query), {}
            if method == "POST":
                data = self._json(body)
                name = str(data.get("name", ""))
                if not name or "folder" not in data:
                    raise Answer(400, "invalidRequest", "Only folders are made this way here.")
                existing = tenant.child(item, name)
                if existing is not None:
                    if data.get("@microsoft.graph.conflictBehavior", "fail") == "fail":
                        raise Answer(409, "nameAlreadyExists", "The specified item name already exists.")
                    return 200, tenant.drive_item(existing), {}
                made = tenant._new(name, item.id, True)
                tenant.touch(item)
                return 201, tenant.drive_item(made), {}
        if head == "content":
            if item.folder:
                raise Answer(400, "invalidRequest", "A folder has no content.")
            if method == "GET":
                return 200, item.content, {}
            if method == "PUT":
                self._writable(item)
                item.content = body
                tenant.touch(item)
                return 200, tenant.drive_item(item), {}
        if head == "permanentDelete" and method == "POST":
            self._deletable(item)
            self._remove(item, "purged")
            return 204, None, {}
        if head == "listItem":
            if rest[1:] == [] and method == "GET":
                return 200, tenant.list_item(item, "fields" in expand), {}
            if rest[1:] == ["fields"]:
                if method == "PATCH":
                    data = self._json(body)
                    known = {c["name"] for c in tenant.columns}
                    unknown = sorted(k for k in data if k not in known and not k.startswith("@"))
                    if unknown:
                        raise Answer(400, "invalidRequest", f"Field '{unknown[0]}' is not recognized")
                    if item.label and not item.label.get("retentionSettings", {}).get("isMetadataUpdateAllowed", True):
                        raise Answer(423, "resourceLocked", "The item is locked by a retention label.")
                    for k, v in data.items():
                        if v is None:
                            item.fields.pop(k, None)
                        else:
                            item.fields[k] = v
                    tenant.touch(item)
                return 200, tenant.fields(item), {}
        if head == "permissions":
            if len(rest) == 1 and method == "GET":
                return 200, tenant.page(tenant.effective(item), self.link_path, query), {}
            if len(rest) == 2 and method == "DELETE":
                own = item.unique or []
                match = [p for p in own if p["id"] == rest[1]]
                if not match:
                    if any(p["id"] == rest[1] for p in tenant.effective(item)):
                        raise Answer(400, "invalidRequest", "An inherited permission cannot be removed here.")
                    raise Answer(404, "itemNotFound", "The permission could not be found.")
                own.remove(match[0])
                return 204, None, {}
        if head == "invite" and method == "POST":
            return 200, {"value": self._invite(item, self._json(body))}, {}
        if head == "retentionLabel":
            return self._label(method, item, body)
        if head in ("delta()",) or head.startswith("delta(token="):
            return self._delta(item, query, path, head)
        raise Answer(405 if head in ("children", "content", "permissions", "listItem") else 404, "invalidRequest",
                     "Unknown operation.")

    def _invite(self, item: Item, data: JSON) -> list[JSON]:
        tenant = self.server.tenant
        roles = data.get("roles") or []
        if not data.get("requireSignIn") or data.get("sendInvitation"):
            raise Answer(400, "invalidRequest", "This tenant allows only sign-in invitations without e-mail.")
        if item.unique is None:
            inherited = tenant.effective(item) if data.get("retainInheritedPermissions", True) else []
            item.unique = [{k: v for k, v in p.items() if k != "inheritedFrom"} for p in inherited]
        made = []
        for recipient in data.get("recipients") or []:
            if recipient.get("objectId"):
                who: JSON = {"group": {"id": recipient["objectId"], "displayName": recipient["objectId"]}}
            elif recipient.get("email"):
                who = {"user": {"email": recipient["email"], "displayName": recipient["email"]}}
            else:
                raise Answer(400, "invalidRequest", "A recipient needs an email or objectId.")
            permission = {"id": uuid.uuid4().hex, "roles": list(roles), "grantedToV2": who}
            item.unique.append(permission)
            made.append(permission)
        return made

    def _label(self, method: str, item: Item, body: bytes) -> tuple[int, Any, dict[str, str]]:
        tenant = self.server.tenant
        if method == "GET":
            if item.label is None:
                raise Answer(404, "itemNotFound", "No retention label is applied.")
            return 200, item.label, {}
        if method == "PATCH":
            name = self._json(body).get("name")
            if name not in tenant.labels:
                raise Answer(400, "invalidRequest", "The retention label does not exist in this tenant.")
            label = tenant.labels[name]
            item.label = {"name": name, "isLabelAppliedExplicitly": True, "labelAppliedDateTime": now(),
                          "retentionSettings": label["_settings"]}
            tenant.touch(item)
            return 200, item.label, {}
        if method == "DELETE":
            item.label = None
            return 204, None, {}
        raise Answer(405, "invalidRequest")

    def _columns(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        tenant = self.server.tenant
        if method == "GET":
            return 200, tenant.page(tenant.columns, self.link_path, query), {}
        data = self._json(body)
        if any(c["name"] == data.get("name") for c in tenant.columns):
            raise Answer(409, "nameAlreadyExists", "A column with that name already exists.")
        column = dict(data, id=str(uuid.uuid4()))
        tenant.columns.append(column)
        return 201, column, {}

    def _delta(self, folder: Item, query: dict[str, str], path: str,
               head: str = "delta()") -> tuple[int, Any, dict[str, str]]:
        tenant = self.server.tenant
        token = query.get("token") or (head[len("delta(token='"):-2] if head.startswith("delta(token=") else "")
        since = 0
        if token == "latest":  # no items: only a link from now on
            new = uuid.uuid4().hex
            tenant.deltas[new] = max(i.changed for i in tenant.items.values())
            link = f"{tenant.public}/drives/{tenant.drive_id}/items/{folder.id}/delta(token='{new}')"
            return 200, {"value": [], "@odata.deltaLink": link}, {}
        if token:
            if token not in tenant.deltas:
                raise Answer(410, "resyncRequired", "The delta token is no longer valid.")
            since = tenant.deltas[token]
        below = [i for i in tenant.items.values() if i.changed > since and i is not folder
                 and folder.id in {a.id for a in tenant.ancestors(i)} - {i.id}]
        values = []
        for i in sorted(below, key=lambda i: i.changed):
            data = tenant.drive_item(i)
            if i.state != "live":
                data = {"id": i.id, "deleted": {"state": "deleted"}, "createdDateTime": i.created,
                        "lastModifiedDateTime": i.modified, "parentReference": data["parentReference"]}
            values.append(data)
        new = uuid.uuid4().hex
        tenant.deltas[new] = max([since, *(i.changed for i in below)])
        link = f"{tenant.public}/drives/{tenant.drive_id}/items/{folder.id}/delta(token='{new}')"
        return 200, tenant.page(values, self.link_path, {k: v for k, v in query.items() if k != "token"} |
                                ({"token": token} if token and "token" in query else {}),
                                {"@odata.deltaLink": link}), {}

    def _move(self, item: Item, folder: Item, conflict: str) -> None:
        tenant = self.server.tenant
        if not folder.folder or item.id in {a.id for a in tenant.ancestors(folder)}:
            raise Answer(400, "invalidRequest", "An item moves into a folder that is not below it.")
        if tenant.child(folder, item.name) is not None:
            if conflict != "rename":
                raise Answer(409, "nameAlreadyExists", "The specified item name already exists.")
            stem, dot, ext = item.name.rpartition(".")
            item.name = f"{stem} 1{dot}{ext}" if dot else f"{item.name} 1"
        item.parent = folder.id

    def _writable(self, item: Item) -> None:
        if item.label and not item.label.get("retentionSettings", {}).get("isContentUpdateAllowed", True):
            raise Answer(423, "resourceLocked", "The item is locked by a retention label.")

    def _deletable(self, item: Item) -> None:
        tenant = self.server.tenant
        for i in tenant.items.values():
            if i.state == "live" and item.id in {a.id for a in tenant.ancestors(i)} and i.label \
                    and not i.label.get("retentionSettings", {}).get("isDeleteAllowed", True):
                raise Answer(423, "resourceLocked", "The item is locked by a retention label and cannot be deleted.")

    def _remove(self, item: Item, state: str) -> None:
        tenant = self.server.tenant
        for i in list(tenant.items.values()):
            if i.state == "live" and item.id in {a.id for a in tenant.ancestors(i)}:
                i.state = state
                i.changed = next(tenant.tick)

    def _upload_part(self, session: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        tenant = self.server.tenant
        upload = self.server.sessions.get(session)
        if upload is None:
            raise Answer(404, "itemNotFound", "The upload session is gone.")
        if self.headers.get("Authorization"):
            raise Answer(401, "invalidRequest", "An upload URL takes no Authorization header.")
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", self.headers.get("Content-Range", ""))
        if not match or int(match[1]) != len(upload["data"]) or int(match[2]) - int(match[1]) + 1 != len(body):
            raise Answer(416, "invalidRange", "The Content-Range does not match the expected range.")
        upload["data"] += body
        if len(upload["data"]) < int(match[3]):
            return 202, {"expirationDateTime": "2099-01-01T00:00:00Z",
                         "nextExpectedRanges": [f"{len(upload['data'])}-"]}, {}
        parent = tenant.item(upload["parent"])
        existing = tenant.child(parent, upload["name"])
        if existing is None:
            existing = tenant._new(upload["name"], parent.id, False, upload["data"])
        else:
            existing.content = upload["data"]
            tenant.touch(existing)
        del self.server.sessions[session]
        return 201, tenant.drive_item(existing), {}

    def _login(self, method: str, seg: list[str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        tenant = self.server.tenant
        tid = seg[2]
        authority = f"{self.server.login}/{tid}"
        if seg[3:] == ["discovery", "instance"]:  # the platform's aliases of its own host
            host = self.server.login.split("://", 1)[1]
            discovery = f"{self.server.login}/{{tenant}}/v2.0/.well-known/openid-configuration"
            return 200, {"tenant_discovery_endpoint": discovery,
                         "api-version": "1.1", "metadata": [{"preferred_network": host, "preferred_cache": host,
                                                             "aliases": [host]}]}, {}
        if seg[3:] == ["v2.0", ".well-known", "openid-configuration"]:
            return 200, {"token_endpoint": f"{authority}/oauth2/v2.0/token",
                         "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                         "issuer": f"{authority}/v2.0", "device_authorization_endpoint":
                         f"{authority}/oauth2/v2.0/devicecode"}, {}
        if seg[3:] == ["oauth2", "v2.0", "token"] and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.server.client_id:
                return 400, {"error": "invalid_client", "error_description": "AADSTS700016: unknown client"}, {}
            secret_ok = form.get("client_secret") == self.server.client_secret
            if not secret_ok and not form.get("client_assertion"):
                return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: invalid secret"}, {}
            token = uuid.uuid4().hex
            tenant.tokens.add(token)
            tenant.tokens_issued += 1
            return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": token}, {}
        raise Answer(404, "invalidRequest")

    def _control(self, method: str, what: str, query: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        tenant = self.server.tenant
        data = self._json(body) if method == "POST" else {}
        if what == "public":
            tenant.public = str(data["url"]).rstrip("/")
        elif what == "faults":
            tenant.faults.append(Fault(method=data.get("method", "*"), contains=data.get("contains", ""),
                                       status=int(data.get("status", 0)), retry_after=data.get("retry_after"),
                                       lost=bool(data.get("lost", False)), times=int(data.get("times", 1)),
                                       skip=int(data.get("skip", 0))))
        elif what == "clear_faults":
            tenant.faults.clear()
        elif what == "principal":
            tenant.users.setdefault(str(data["user"]), set()).update(data.get("groups", []))
        elif what == "readable":
            return 200, {"ids": sorted(tenant.readable(query["user"], query["below"]))}, {}
        elif what == "label":
            settings = {"isDeleteAllowed": bool(data.get("isDeleteAllowed", True)),
                        "isContentUpdateAllowed": bool(data.get("isContentUpdateAllowed", True)),
                        "isMetadataUpdateAllowed": bool(data.get("isMetadataUpdateAllowed", True)),
                        "behaviorDuringRetentionPeriod": data.get("behavior", "retain")}
            tenant.labels[data["name"]] = {"id": uuid.uuid4().hex, "displayName": data["name"],
                                           "createdDateTime": now(), "lastModifiedDateTime": now(),
                                           "_settings": settings}
        elif what == "grant":  # the site's owner shares a folder by hand (a raw permission)
            item = tenant.item(str(data["id"]))
            if item.unique is None:  # sharing breaks inheritance: what was inherited becomes its own
                item.unique = [{k: v for k, v in p.items() if k != "inheritedFrom"} for p in tenant.effective(item)]
            item.unique.append(dict(data["permission"], id=uuid.uuid4().hex))
        elif what == "expire":
            tenant.tokens.clear()
        elif what == "deny":
            tenant.denied = data.get("contains")
        elif what == "place":  # staff put a file in a folder through SharePoint or Teams
            parent = tenant.item(str(data["parent"]))
            made = tenant._new(str(data["name"]), parent.id, False, str(data.get("content", "")).encode())
            made.fields.update(data.get("fields", {}))
            return 201, {"id": made.id}, {}
        elif what == "move":  # staff move a file by hand
            item = tenant.items[str(data["id"])]
            self._move(item, tenant.item(str(data["parent"])), "rename")
            tenant.touch(item)
        elif what == "item":
            item = tenant.items[query["id"]]
            return 200, {"id": item.id, "name": item.name, "parent": item.parent, "state": item.state,
                         "fields": item.fields, "label": item.label, "unique": item.unique is not None,
                         "content": base64.b64encode(item.content).decode()}, {}
        elif what == "stats":
            return 200, {"requests": tenant.requests, "tokens_issued": tenant.tokens_issued}, {}
        elif what == "reset_stats":
            tenant.requests.clear()
        else:
            raise Answer(404, "invalidRequest", "Unknown control.")
        return 200, {"ok": True}, {}


class GraphServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0, page_size: int = 50, client_id: str = "ld-test-client",
                 client_secret: str = "ld-test-client-secret-0123", tls: tuple[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.tenant = Tenant(page_size)
        self.sessions: dict[str, JSON] = {}
        self.client_id, self.client_secret = client_id, client_secret
        self.direct = f"http://127.0.0.1:{self.server_address[1]}"
        self.login = "https://login.microsoftonline.com"
        self.tenant.public = self.direct
        self.secure: GraphServer | None = None
        if tls is not None:  # the identity platform speaks https only: a second listener, the same tenant
            import ssl

            self.secure = GraphServer(0, page_size, client_id, client_secret)
            self.secure.tenant, self.secure.sessions = self.tenant, self.sessions
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.secure.socket = context.wrap_socket(self.secure.socket, server_side=True)
            self.login = self.secure.login = f"https://127.0.0.1:{self.secure.server_address[1]}/login"

    @property
    def url(self) -> str:
        return self.direct

    def start(self) -> GraphServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        if self.secure is not None:
            self.secure.start()
        return self

    def stop(self) -> None:
        for server in (self, self.secure):
            if server is not None:
                server.shutdown()
                server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--page-size", type=int, default=50)
    args = parser.parse_args()
    server = GraphServer(args.port, args.page_size)
    print(f"Graph test server on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        time.sleep(0)


if __name__ == "__main__":
    main()
