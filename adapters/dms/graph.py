"""Microsoft 365: pupil dossiers in a SharePoint Online document library, through Microsoft Graph v1.0.

    library   = one document library (a drive) per school, or a folder per school in one library
                (``folder``)
    dossier   = a folder "<title> [ld-<key>]" with a subfolder per part ("I. Deel I ..."); the
                folder's library columns hold the dossier's key (``ldDossier``), school,
                departure and properties
    document  = a file in a part's folder; its part, class, other metadata and retention tag are
                library columns (``ldPart``, ``ldClass``, ``ldMetadata``, ``ldRetention*``); where
                the tenant has Microsoft Purview retention labels, ``labels`` maps a retention
                category to a label applied to the file
    destroy   = ``permanentDelete``: gone from the library and its recycle bin at once (the
                connector's cooling-off period is the window for second thoughts; see README)
    access    = per part folder: inheritance broken, ``invite`` (read, sign-in required, no
                e-mail) and removal of what the connector gave and no longer gives

``<key>`` is a keyed hash of the external id (the install's index key): a dossier is found by the
key column, never by its title, and no identifier is readable in SharePoint. A folder whose key
column is not written yet is a creation that did not finish: not found, and completed by the next
``create_dossier``.

Errors: timeouts, connection errors, 5xx and 429 are TransientError (429 and 503 with their
Retry-After); 401 once renews the token, then is a PermanentError; 403 names the permission the
app registration lacks; other 4xx are PermanentError. Messages name the operation and the status,
never a URL (folder names carry pupils' names), a token or an answer's body.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import ssl
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar
from urllib.parse import quote, unquote

import httpx
from pydantic import BaseModel, Field, model_validator

from adapters._http import map_methods, same_origin
from connector.config import SecretRef
from connector.errors import ConfigError, PermanentError, TransientError
from connector.model import DmsGrant, DocumentRef, DossierRef, DossierSpec, Frozen, RetentionTag, StoreCapabilities
from connector.ports import BaseDocumentStore, StoreContext, read_back
from connector.retrying import retry_after

log = logging.getLogger("leerdossier.dms.graph")

LOGIN_URL = "https://login.microsoftonline.com"
SIMPLE_UPLOAD_LIMIT = 4 * 1024 * 1024
"""Graph takes a file up to 4 MB in one PUT; a larger one goes through an upload session."""
CHUNK = 320 * 1024 * 16
"""An upload session's chunk: 5 MiB, a multiple of 320 KiB as Graph asks."""

COLUMNS: dict[str, tuple[str, str]] = {
    # internal name: (kind, Dutch display name)
    "ldDossier": ("text", "Dossiersleutel"),
    "ldSchool": ("text", "School"),
    "ldDeparture": ("text", "Uitschrijfdatum"),
    "ldProperties": ("note", "Dossiergegevens"),
    "ldPart": ("text", "Dossierdeel"),
    "ldClass": ("text", "Documentsoort"),
    "ldMetadata": ("note", "Overige kenmerken"),
    "ldAccess": ("note", "Toegang gegeven door de connector"),
    "ldRetentionClass": ("text", "Bewaarklasse"),
    "ldRetentionCategory": ("text", "Bewaarcategorie"),
    "ldRetentionKind": ("text", "Soort bewaartermijn"),
    "ldRetentionPeriod": ("text", "Bewaartermijn"),
    "ldRetentionDue": ("text", "Vernietigen vanaf (of open)"),
    "ldRetentionBlocked": ("boolean", "Geblokkeerd"),
    "ldRetentionBasis": ("text", "Grondslag"),
}
TAG_COLUMNS = {f"retention_{n}": f"ldRetention{n.capitalize()}"
               for n in ("class", "category", "kind", "period", "due", "blocked", "basis")}
OWN = "own"
"""In a document's ``ldAccess``: it has permissions of its own (they no longer follow its folder's)."""
FORBIDDEN = re.compile(r'["*:<>?/\\|#%\x00-\x1f]')


class SharePointSettings(Frozen):
    tenant: str = Field(min_length=3, pattern=r"^[A-Za-z0-9.-]+$")
    """The tenant's id (a GUID) or its domain (``school.onmicrosoft.com``)."""
    client_id: str = Field(min_length=3)
    """The app registration's application (client) id."""
    client_secret: SecretRef | None = None
    """The app's client secret, by reference (``env:NAME`` or ``file:PATH``); or a certificate."""
    certificate: SecretRef | None = None
    """A PEM file (by reference) with the app's certificate and its private key."""
    site: str = Field(min_length=3)
    """The site: its id (``host,guid,guid``) or ``host:/sites/path``."""
    drive: str = "Documenten"
    """The document library: its name as the site shows it, or its drive id (``b!...``)."""
    folder: str = ""
    """A folder in the library that holds the pupils' folders ("" = the library's top); a school
    in a library it shares with others gets a folder of its own."""
    groups: dict[str, str] = Field(default_factory=dict)
    """Staff role -> the object id of the Microsoft 365 group that holds it."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Retention category -> the name of a Microsoft Purview retention label to apply."""
    graph_url: str = Field(default="https://graph.microsoft.com/v1.0", pattern=r"^https?://")
    login_url: str = Field(default=LOGIN_URL, pattern=r"^https://")
    """The Microsoft identity platform (a national cloud has its own)."""
    scope: str = "https://graph.microsoft.com/.default"
    timeout: float = Field(default=30.0, gt=0, le=300)

    @model_validator(mode="after")
    def _one_credential(self) -> SharePointSettings:
        if (self.client_secret is None) == (self.certificate is None):
            raise ValueError("give exactly one of client_secret and certificate (each by reference)")
        return self


@functools.lru_cache(maxsize=4)
def _tls(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """One verifying TLS context per trust store (loading it costs some 50 ms; a store has three
    clients and a service opens a store every cycle). ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are
    honoured, as httpx does."""
    return httpx.create_ssl_context(trust_env=True)


def tls() -> ssl.SSLContext:
    return _tls(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


class _TokenHttp:
    """The HTTP client msal uses for the token endpoint: httpx with the store's timeout, never
    following a redirect (it would carry the client's secret elsewhere)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def get(self, url: str, params: Any = None, headers: Any = None, **_: Any) -> httpx.Response:
        return self._client.get(url, params=params, headers=headers)

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None, **_: Any) -> httpx.Response:
        if isinstance(data, dict):
            return self._client.post(url, params=params, data=data, headers=headers)
        return self._client.post(url, params=params, content=data, headers=headers)

    def close(self) -> None:
        self._client.close()


class Tokens:
    """Access tokens for Graph from the Microsoft identity platform (client credentials, a
    secret or a certificate), through msal: cached until shortly before they expire, renewed
    then or when Graph refuses one. A token is never logged nor put in a message."""

    def __init__(self, settings: SharePointSettings, context: StoreContext,
                 transport: httpx.BaseTransport | None) -> None:
        import msal

        assert context.secret is not None
        if settings.client_secret is not None:
            credential: Any = context.secret(settings.client_secret).decode().strip()
        else:
            assert settings.certificate is not None
            credential = _certificate(context.secret(settings.certificate))
        self._http = _TokenHttp(httpx.Client(timeout=httpx.Timeout(settings.timeout), transport=transport,
                                             follow_redirects=False, verify=tls()))
        self._scope = settings.scope
        self._lock = threading.Lock()
        try:
            self._app = msal.ConfidentialClientApplication(
                settings.client_id, client_credential=credential, authority=f"{settings.login_url}/{settings.tenant}",
                http_client=self._http, token_cache=msal.TokenCache(),
                # another identity host than Microsoft's global one (a national cloud's, a test's)
                # is used as given: msal's instance discovery asks the global host about it
                instance_discovery=settings.login_url == LOGIN_URL)
        except ValueError as exc:  # the tenant's discovery document: unknown tenant, wrong login URL
            raise PermanentError(f"token: the tenant is not known to the identity platform ({type(exc).__name__})") \
                from None
        except httpx.HTTPError as exc:
            raise TransientError(f"token: the identity platform did not answer ({type(exc).__name__})") from None

    def token(self, renew: bool = False) -> str:
        with self._lock:
            try:
                if renew:
                    self._app.remove_tokens_for_client()
                result = self._app.acquire_token_for_client(scopes=[self._scope])
            except httpx.HTTPError as exc:
                raise TransientError(f"token: the identity platform did not answer ({type(exc).__name__})") from None
            except Exception as exc:  # msal's own errors (its throttling, an answer it cannot read)
                raise TransientError(f"token: {type(exc).__name__}") from None
        if "access_token" in result:
            return str(result["access_token"])
        error = str(result.get("error", "unknown"))
        error = error if re.fullmatch(r"[a-z_]{1,64}", error) else "unknown"
        codes = re.findall(r"AADSTS\d+", str(result.get("error_description", "")))[:1]
        detail = f"{error}{' ' + codes[0] if codes else ''}"
        if error in ("temporarily_unavailable", "server_error"):
            raise TransientError(f"token: the identity platform is unavailable ({detail})")
        raise PermanentError(f"token: refused ({detail}): check tenant, client_id and the secret or certificate")

    def close(self) -> None:
        self._http.close()


def _certificate(pem: bytes) -> dict[str, str]:
    """msal's certificate credential from one PEM holding the certificate and its private key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    text = pem.decode(errors="replace")
    blocks = re.findall(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", text, flags=re.S)
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, flags=re.S)
    keys = [b for b in re.finditer(r"-----BEGIN ([A-Z ]*PRIVATE KEY)-----.*?-----END \1-----", text, flags=re.S)]
    if not certs or not keys:
        raise ConfigError(f"dms.certificate: the PEM needs the certificate and its private key (found {blocks})")
    try:
        cert = x509.load_pem_x509_certificate(certs[0].encode())
    except ValueError:
        raise ConfigError("dms.certificate: the certificate cannot be read") from None
    return {"private_key": keys[0].group(0), "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303
            "public_certificate": certs[0]}


PORT_METHODS = ("init", "find_dossier", "create_dossier", "update_dossier", "documents", "add_document", "read",
                "tag", "destroy", "set_access", "read_access", "changes", "check")


class SharePointStore(BaseDocumentStore):
    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities(trash=False, acl=True)
    settings_model: ClassVar[type[BaseModel]] = SharePointSettings

    def __init__(self, settings: SharePointSettings, context: StoreContext | None = None,
                 transport: httpx.BaseTransport | None = None,
                 login_transport: httpx.BaseTransport | None = None) -> None:
        context = context or StoreContext()
        if context.secret is None:
            raise ConfigError("dms: no way to read the secret reference")
        if len(context.index_key) < 16:
            raise ConfigError("sharepoint: no index key (the core hands it one from the install secret)")
        self.settings = settings
        self.context = context
        self._key = context.index_key
        self._tokens = Tokens(settings, context, login_transport)
        self._token: str | None = None
        self._client = httpx.Client(base_url=settings.graph_url.rstrip("/"), timeout=httpx.Timeout(settings.timeout),
                                    headers={"Accept": "application/json"}, transport=transport,
                                    follow_redirects=False, verify=tls())
        self._files = httpx.Client(timeout=httpx.Timeout(settings.timeout), transport=transport,
                                   follow_redirects=False, verify=tls())
        """For pre-authenticated URLs (an upload session, a download): never the token."""
        self._site: str | None = None
        self._drive: str | None = None
        self._list: str | None = None
        self._top: str | None = None
        self._columns: set[str] | None = None
        self._index: dict[str, str] | None = None
        """dossier key -> folder id, for the dossiers whose creation finished."""
        self._parts: dict[str, dict[str, str]] = {}
        """dossier folder id -> part code -> part folder id."""
        self._unfinished: dict[str, str] = {}
        """dossier key -> a folder whose creation was cut off before its key was written."""
        self._owner: dict[str, str] = {}
        """folder id -> the dossier folder it is in (for the change feed)."""

    # -- plumbing -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, what: str, ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """One call to Graph, its failures in the error root. ``what`` names the operation in
        messages (never the path: it may hold a folder's name); statuses in ``ok`` are returned."""
        extra = kwargs.pop("headers", None) or {}
        for attempt in (1, 2):  # a token refused (expired or revoked) is renewed once
            if self._token is None or attempt == 2:
                self._token = self._tokens.token(renew=attempt == 2)
            headers = extra | {"Authorization": f"Bearer {self._token}"}
            try:
                response = self._client.request(method, path, headers=headers, **kwargs)
            except httpx.TimeoutException:
                raise TransientError(f"{what}: timed out") from None
            except httpx.HTTPError as exc:
                raise TransientError(f"{what}: {exc.__class__.__name__}") from None
            status = response.status_code
            if status != 401:
                break
        if status < 300 or status in ok:
            return response
        code = _error_code(response)
        if 300 <= status < 400:
            raise PermanentError(f"{what}: {status} redirect; not followed")
        if status in (429, 503):
            raise TransientError(f"{what}: {status} throttled", delay=retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise TransientError(f"{what}: {status}")
        if status == 401:
            raise PermanentError(f"{what}: 401 the token is refused ({code}): check the app registration")
        if status == 403:
            raise PermanentError(f"{what}: 403 access denied ({code}): Sites.Selected with write access on site "
                                 f"{self.settings.site} is missing for the app registration")
        raise PermanentError(f"{what}: {status} {code}".rstrip())

    def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = self._request(method, path, what, **kwargs)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise TransientError(f"{what}: {response.status_code} answer is not JSON") from None

    def _paged(self, path: str, what: str, params: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every value of a collection, following ``@odata.nextLink`` on the configured origin only."""
        url: str | None = path
        query = params
        seen: set[str] = set()
        while url:
            if url in seen:
                raise PermanentError(f"{what}: pagination loops")
            seen.add(url)
            page = self._json("GET", url, what, params=query)
            yield from page.get("value", [])
            url, query = same_origin(self._client.base_url, what, page.get("@odata.nextLink"), exact=True), None

    def close(self) -> None:
        self._client.close()
        self._files.close()
        self._tokens.close()

    # -- where things are -------------------------------------------------------------------
    def _drive_path(self) -> str:
        if self._drive is None:
            site = self._json("GET", f"/sites/{quote(self.settings.site, safe=':')}", "find the site")
            self._site = str(site["id"])
            wanted = self.settings.drive
            if wanted.startswith("b!"):
                drive = self._json("GET", f"/drives/{quote(wanted, safe='')}", "find the library")
            else:
                drives = [d for d in self._paged(f"/sites/{_seg(self._site)}/drives", "list the libraries")
                          if d.get("name") == wanted]
                if not drives:
                    raise PermanentError(f"find the library: the site has no document library {wanted!r}")
                drive = drives[0]
            self._drive = str(drive["id"])
            self._list = str((drive.get("sharePointIds") or {}).get("listId") or "")
            if not self._list:
                raise PermanentError("find the library: the drive is not a SharePoint document library")
        return f"/drives/{_seg(self._drive)}"

    def _item(self, item_id: str) -> str:
        return f"{self._drive_path()}/items/{_seg(item_id)}"

    def _below(self, parent_id: str, name: str) -> str:
        """The path of the item called ``name`` in folder ``parent_id`` (``{id}:/{name}:``)."""
        return f"{self._drive_path()}/items/{quote(f'{parent_id}:/{name}:', safe=':')}"

    def _folder(self, create: bool) -> str | None:
        """The id of the folder holding the pupils' folders (made when ``create``)."""
        if self._top is None:
            root = self._json("GET", f"{self._drive_path()}/root", "find the library's top")
            current = str(root["id"])
            for name in [p for p in self.settings.folder.split("/") if p.strip()]:
                response = self._request("GET", self._below(current, _safe(name)), "find the dossiers' folder",
                                         ok=(404,))
                if response.status_code == 404:
                    if not create:
                        return None
                    current = self._make_folder(current, _safe(name))
                else:
                    current = str(response.json()["id"])
            self._top = current
        return self._top

    def _make_folder(self, parent: str, name: str) -> str:
        """A folder ``name`` in ``parent``, made or, when it is there already, found (a repeat
        after a lost answer makes no second one)."""
        response = self._request("POST", f"{self._item(parent)}/children", "make a folder", ok=(409,),
                                 json={"name": name, "folder": {}, "@microsoft.graph.conflictBehavior": "fail"})
        if response.status_code == 409:
            return str(self._json("GET", self._below(parent, name), "find a folder")["id"])
        return str(response.json()["id"])

    def _fields(self, item_id: str, values: dict[str, Any], what: str) -> None:
        self._ensure_columns()
        self._json("PATCH", f"{self._item(item_id)}/listItem/fields", what, json=values)

    # -- setup ------------------------------------------------------------------------------
    def _columns_path(self) -> str:
        self._drive_path()
        return f"/sites/{_seg(self._site or '')}/lists/{_seg(self._list or '')}/columns"

    def _column_names(self) -> set[str]:
        return {str(c.get("name")) for c in self._paged(self._columns_path(), "list the library's columns")}

    def _ensure_columns(self) -> int:
        """Make the connector's library columns that are missing; returns how many were made."""
        if self._columns is not None:
            return 0
        present = self._column_names()
        made = 0
        for name, (kind, label) in COLUMNS.items():
            if name in present:
                continue
            body: dict[str, Any] = {"name": name, "displayName": label, "description": "leerdossier-connector",
                                    "indexed": name in ("ldDossier", "ldRetentionDue")}
            if kind == "boolean":
                body["boolean"] = {}
            else:
                body["text"] = {"allowMultipleLines": kind == "note", "maxLength": 255} if kind == "text" else \
                    {"allowMultipleLines": True}
            response = self._request("POST", self._columns_path(), "make a library column", ok=(409,), json=body)
            made += response.status_code != 409
        self._columns = set(COLUMNS)
        return made

    def init(self) -> dict[str, Any]:
        """Make the library columns when missing and check that every mapped retention label
        exists in the tenant; idempotent."""
        made = self._ensure_columns()
        if self.settings.labels:
            known = {str(label.get("displayName")) for label in
                     self._paged("/security/labels/retentionLabels", "list the retention labels")}
            missing = sorted(set(self.settings.labels.values()) - known)
            if missing:
                raise PermanentError(f"the tenant has no retention label {', '.join(missing)} (dms.labels)")
        return {"columns_made": made, "columns": len(COLUMNS), "labels": len(self.settings.labels)}

    def check(self) -> list[str]:
        """The site, the library and the connector's columns can be read, and nobody broad (the
        site's members or visitors, everyone, a sharing link) can read the folder that holds the
        dossiers: what it grants reaches every pupil's folder. Changes nothing."""
        problems = []
        try:
            present = self._column_names()
            missing = sorted(set(COLUMNS) - present)
            if missing:
                problems.append(f"SharePoint library {self.settings.drive!r}: {len(missing)} of the connector's "
                                "columns are not made yet (leerdossier dms init makes them)")
            top = self._folder(create=False) or str(self._json("GET", f"{self._drive_path()}/root",
                                                              "find the library's top")["id"])
            broad = [p for p in self._paged(f"{self._item(top)}/permissions", "list permissions") if _broad(p)]
            if broad:
                problems.append(f"SharePoint library {self.settings.drive!r}: {len(broad)} permission(s) for the "
                                "site's members or visitors, everyone, or a sharing link can read the folder that "
                                "holds the dossiers, and so every pupil's dossier; keep that folder to the "
                                "dossiers' administrators (README, Microsoft 365)")
        except (TransientError, PermanentError) as exc:
            problems.append(f"SharePoint site {self.settings.site}: {exc}")
        return problems

    # -- dossiers ---------------------------------------------------------------------------
    def key(self, external_id: str) -> str:
        return self.context.label(external_id)

    def _load_index(self) -> dict[str, str]:
        """Every finished dossier below the folder, by key: read once, then kept up to date."""
        if self._index is None:
            index: dict[str, str] = {}
            top = self._folder(create=False)
            if top is not None:
                for child in self._paged(f"{self._item(top)}/children", "list the dossiers",
                                         {"$expand": "listItem($expand=fields)"}):
                    fields = (child.get("listItem") or {}).get("fields") or {}
                    key = fields.get("ldDossier")
                    name = str(child.get("name", ""))
                    if "folder" not in child:
                        continue
                    if isinstance(key, str) and key.startswith("ld-"):  # staff may have renamed it
                        index.setdefault(key, str(child["id"]))
                    elif key is None and (found := re.search(r"\[(ld-[0-9a-f]{20})\]$", name)):
                        self._unfinished.setdefault(found.group(1), str(child["id"]))
            self._index = index
        return self._index

    def find_dossier(self, external_id: str) -> DossierRef | None:
        folder = self._load_index().get(self.key(external_id))
        return DossierRef(id=folder, external_id=external_id) if folder else None

    def create_dossier(self, spec: DossierSpec) -> DossierRef:
        key = self.key(spec.external_id)
        found = self._load_index().get(key)
        if found is not None:
            ref = DossierRef(id=found, external_id=spec.external_id)
            self.update_dossier(ref, spec)
            return ref
        top = self._folder(create=True)
        assert top is not None
        try:
            folder = self._create(top, key, spec)
        except TransientError:
            # the folder may have been made with its answer lost: the next create reads the
            # dossiers' folder again and finds it by the key in its name, whatever the title
            self._index = None
            raise
        self._load_index()[key] = folder
        return DossierRef(id=folder, external_id=spec.external_id)

    def _create(self, top: str, key: str, spec: DossierSpec) -> str:
        # a creation cut off before its key was written is completed, whatever its title was then
        label = _label(spec.title, key)
        folder = self._unfinished.get(key)
        if folder is not None:
            self._json("PATCH", self._item(folder), "rename a dossier", json={"name": label})
        else:
            folder = self._make_folder(top, label)
            self._unfinished[key] = folder
        self._parts[folder] = {part.code: self._make_folder(folder, _safe(f"{part.code}. {part.name}"))
                               for part in spec.parts}
        self._fields(folder, _dossier_fields(spec, key), "record the dossier's key")  # last: marks it finished
        self._unfinished.pop(key, None)
        return folder

    def update_dossier(self, ref: DossierRef, spec: DossierSpec) -> None:
        key = self.key(spec.external_id)
        response = self._request("GET", self._item(ref.id), "read a dossier", ok=(404,),
                                 params={"$expand": "listItem($expand=fields)"})
        if response.status_code == 404:
            raise PermanentError("update dossier: the dossier's folder is not there")
        item = response.json()
        fields = (item.get("listItem") or {}).get("fields") or {}
        if fields.get("ldDossier") not in (None, key):
            raise PermanentError("update dossier: the folder belongs to another dossier")
        label = _label(spec.title, key)
        if item.get("name") != label:
            self._json("PATCH", self._item(ref.id), "rename a dossier", json={"name": label})
        parts = self._part_folders(ref.id, refresh=True)
        for part in spec.parts:
            if part.code not in parts:
                parts[part.code] = self._make_folder(ref.id, _safe(f"{part.code}. {part.name}"))
        wanted = _dossier_fields(spec, key)
        if any(fields.get(k) != v for k, v in wanted.items()):
            self._fields(ref.id, wanted, "update a dossier")
        self._load_index()[key] = ref.id

    def stored(self, ref: DossierRef) -> dict[str, Any]:
        """The dossier's properties and departure as SharePoint holds them (for tests and doctor)."""
        fields = self._json("GET", f"{self._item(ref.id)}/listItem/fields", "read a dossier")
        return {"properties": json.loads(fields.get("ldProperties") or "{}"),
                "departure": fields.get("ldDeparture") or None, "school": fields.get("ldSchool")}

    def _part_folders(self, folder: str, refresh: bool = False) -> dict[str, str]:
        if refresh or folder not in self._parts:
            parts: dict[str, str] = {}
            for child in self._paged(f"{self._item(folder)}/children", "list a dossier's parts"):
                code, dot, _ = str(child.get("name", "")).partition(". ")
                if "folder" in child and dot and code:
                    parts.setdefault(code, str(child["id"]))
            self._parts[folder] = parts
        return self._parts[folder]

    # -- documents --------------------------------------------------------------------------
    def documents(self, ref: DossierRef) -> Iterator[DocumentRef]:
        """Each file of the dossier's part folders (and folders below them) once, under its own
        part (``ldPart`` where it names a part of the dossier, else the folder it is in)."""
        for folder_part, item in self._files_of(ref):
            fields = (item.get("listItem") or {}).get("fields") or {}
            yield _document(ref, item, fields, folder_part, self._part_folders(ref.id))

    def _files_of(self, ref: DossierRef) -> Iterator[tuple[str, dict[str, Any]]]:
        """(the part whose folder holds it, the file with its fields) for every file of the dossier."""
        for code, folder in sorted(self._part_folders(ref.id, refresh=True).items()):
            pending = [folder]
            while pending:
                current = pending.pop()
                for child in self._paged(f"{self._item(current)}/children", "list a part's documents",
                                         {"$expand": "listItem($expand=fields)"}):
                    if "folder" in child:
                        pending.append(str(child["id"]))
                    elif "file" in child:
                        yield code, child

    def add_document(self, ref: DossierRef, part: str, doc_class: str | None, name: str, content: BinaryIO,
                     metadata: dict[str, str]) -> DocumentRef:
        parts = self._part_folders(ref.id)
        if part not in parts:
            parts = self._part_folders(ref.id, refresh=True)
            if part not in parts:
                raise PermanentError(f"add document: dossier has no part {part!r}")
        data = content.read()
        safe = _safe(name)
        if len(data) <= SIMPLE_UPLOAD_LIMIT:
            item = self._json("PUT", f"{self._below(parts[part], safe)}/content", "upload a document",
                              params={"@microsoft.graph.conflictBehavior": "rename"}, content=data,
                              headers={"Content-Type": "application/octet-stream"})
        else:
            item = self._upload_session(parts[part], safe, data)
        extra = {k: v for k, v in metadata.items() if k not in TAG_COLUMNS}
        values: dict[str, Any] = {"ldPart": part, "ldClass": doc_class,
                                  "ldMetadata": json.dumps(extra, sort_keys=True) if extra else None}
        values |= {TAG_COLUMNS[k]: _column_value(k, v) for k, v in metadata.items() if k in TAG_COLUMNS}
        self._fields(str(item["id"]), {k: v for k, v in values.items() if v is not None}, "describe a document")
        return DocumentRef(id=str(item["id"]), dossier_id=ref.id, part=part, doc_class=doc_class, name=name,
                           metadata=dict(metadata))

    def _upload_session(self, parent: str, name: str, data: bytes) -> dict[str, Any]:
        session = self._json("POST", f"{self._below(parent, name)}/createUploadSession", "start an upload",
                             json={"item": {"@microsoft.graph.conflictBehavior": "rename"}})
        url = str(session["uploadUrl"])
        if not (url.startswith("https://") or self.settings.graph_url.startswith("http://")):
            raise PermanentError("upload: the upload session's address is not https; not used")
        total = len(data)
        offset = 0
        while True:
            chunk = data[offset:offset + CHUNK]
            end = offset + len(chunk) - 1
            try:  # a pre-authenticated URL: the token never goes there
                response = self._files.put(url, content=chunk, headers={
                    "Content-Range": f"bytes {offset}-{end}/{total}", "Content-Length": str(len(chunk))})
            except httpx.HTTPError as exc:
                raise TransientError(f"upload: {exc.__class__.__name__}") from None
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(f"upload: {response.status_code}",
                                     delay=retry_after(response.headers.get("Retry-After")))
            if response.status_code >= 400:
                raise PermanentError(f"upload: {response.status_code} {_error_code(response)}".rstrip())
            offset = end + 1
            if response.status_code in (200, 201):
                done: dict[str, Any] = response.json()
                return done
            if offset >= total:
                raise PermanentError("upload: the upload session did not finish the file")

    def read(self, doc: DocumentRef) -> bytes:
        response = self._request("GET", f"{self._item(doc.id)}/content", "read a document", ok=(302,))
        if response.status_code == 302:  # a pre-authenticated download URL: fetched without the token
            location = response.headers.get("Location", "")
            if not location.startswith("https://"):
                raise PermanentError("read a document: the download address is not https; not followed")
            try:
                response = self._files.get(location)
            except httpx.HTTPError as exc:
                raise TransientError(f"read a document: {exc.__class__.__name__}") from None
            if response.status_code != 200:
                raise (TransientError if response.status_code >= 500 else PermanentError)(
                    f"read a document: {response.status_code}")
        return response.content

    def tag(self, doc: DocumentRef, tag: RetentionTag) -> None:
        self._fields(doc.id, {TAG_COLUMNS[k]: _column_value(k, v) for k, v in tag.metadata().items()},
                     "tag a document")
        label = self.settings.labels.get(tag.category)
        if label is not None:
            response = self._request("PATCH", f"{self._item(doc.id)}/retentionLabel", "apply a retention label",
                                     ok=(400, 403, 409, 423), json={"name": label})
            if response.status_code >= 400:
                current = self._label(doc)
                if current != label:
                    raise PermanentError(f"apply a retention label: {response.status_code}; the document keeps "
                                         f"label {current or '(none)'!r} and does not take {label!r}")

    def _label(self, doc: DocumentRef) -> str | None:
        response = self._request("GET", f"{self._item(doc.id)}/retentionLabel", "read a retention label", ok=(404,))
        if response.status_code == 404 or not response.content:
            return None
        name = response.json().get("name")
        return str(name) if name else None

    def destroy(self, doc: DocumentRef) -> None:
        """``permanentDelete``: out of the library and its recycle bin at once, and only while the
        file is still in its dossier (staff may have moved it to another pupil's folder or out of
        the dossiers: then it is a PermanentError and nothing is deleted). Already gone is done.
        A retention label that forbids deletion is a PermanentError naming the label."""
        inside = self._inside(doc.id, doc.dossier_id)
        if inside is None:
            log.warning("document to delete is not in the library any more (deleted before, or by hand: then it "
                        "may sit in the site's recycle bin)", extra={"document": doc.id})
            return
        if not inside:
            raise PermanentError("delete a document: it is no longer in its dossier (moved by hand); not deleted")
        response = self._request("POST", f"{self._item(doc.id)}/permanentDelete", "delete a document",
                                 ok=(204, 404, 403, 409, 423))
        if response.status_code in (204, 404):
            return
        label = self._label(doc)
        if label:
            raise PermanentError(f"delete a document: retention label {label!r} forbids deleting it "
                                 f"({response.status_code})")
        if response.status_code == 403:
            raise PermanentError(f"delete a document: 403 access denied ({_error_code(response)}): Sites.Selected "
                                 f"with write access on site {self.settings.site} is missing")
        raise PermanentError(f"delete a document: {response.status_code} {_error_code(response)}".rstrip())

    def _inside(self, item_id: str, dossier_id: str) -> bool | None:
        """Whether the item is (still) below the dossier's folder; None when it is gone."""
        current = item_id
        for _ in range(16):
            response = self._request("GET", self._item(current), "find a document's dossier", ok=(404,))
            if response.status_code == 404:
                return None if current == item_id else False
            parent = (response.json().get("parentReference") or {}).get("id")
            if parent == dossier_id:
                return True
            if not parent:
                return False
            current = str(parent)
        return False

    # -- changes ------------------------------------------------------------------------------
    def changes(self, since: str | None) -> tuple[frozenset[str] | None, str | None]:
        """The library's delta query on the dossiers' folder: the dossiers in which something was
        added, changed, moved or deleted since the token ``since`` (staff working through
        SharePoint or Teams), and the next token. The first time (or when Graph says the token
        is too old) it says nothing and hands the latest token: every dossier is looked at once."""
        top = self._folder(create=False)
        if top is None:
            return None, None
        if since is None:
            return None, self._latest(top)
        for dossier, parts in self._parts.items():
            for folder in parts.values():
                self._owner.setdefault(folder, dossier)
        url: str | None = f"{self._item(top)}/delta(token='{quote(since, safe='')}')"
        changed: set[str] = set()
        token: str | None = None
        while url:
            response = self._request("GET", url, "read the library's changes", ok=(410,))
            if response.status_code == 410:  # resyncRequired: the token is too old
                return None, self._latest(top)
            page = response.json()
            for item in page.get("value", []):
                owner = self._dossier_of(item, top)
                if owner is not None:
                    changed.add(owner)
            token = _delta_token(page.get("@odata.deltaLink")) or token
            url = same_origin(self._client.base_url, "read the library's changes", page.get("@odata.nextLink"),
                              exact=True)
        if token is None:
            raise PermanentError("read the library's changes: the answer ended without a delta link")
        return frozenset(changed), token

    def _latest(self, top: str) -> str:
        page = self._json("GET", f"{self._item(top)}/delta()", "start reading the library's changes",
                          params={"token": "latest"})
        token = _delta_token(page.get("@odata.deltaLink"))
        if token is None:
            raise PermanentError("start reading the library's changes: no delta link in the answer")
        return token

    def _dossier_of(self, item: dict[str, Any], top: str) -> str | None:
        """The dossier folder an item of the delta belongs to (None: outside every dossier). The
        folders it passes on the way up are remembered."""
        item_id = str(item.get("id", ""))
        parent = (item.get("parentReference") or {}).get("id")
        if not parent or item_id == top:
            return None
        if parent == top:
            return item_id
        chain: list[str] = []
        current = str(parent)
        for _ in range(16):  # a part, and folders staff made inside a part
            if current in self._owner:
                owner = self._owner[current]
                break
            response = self._request("GET", self._item(current), "read the library's changes", ok=(404,))
            if response.status_code == 404:
                return None  # gone with its whole folder
            above = (response.json().get("parentReference") or {}).get("id")
            chain.append(current)
            if above == top:
                owner = current
                break
            if not above:
                return None
            current = str(above)
        else:
            return None
        for folder in chain:
            self._owner[folder] = owner
        return owner

    # -- access -----------------------------------------------------------------------------
    # Grants are per part folder: the folder's inheritance is broken by the first invite and the
    # documents in it inherit from it. A document gets permissions of its own only where the
    # folder cannot say it: a grant limited to some classes (information for a parent without
    # authority). A document whose ``ldPart`` names another part than the folder it sits in
    # (staff moved it by hand) goes back to its own part's folder, so that it opens only as its
    # own part allows. What the connector gave is written in the item's ``ldAccess`` column
    # before it is given, so a permission it did not give is never taken away and one it gave
    # is never forgotten.
    def set_access(self, ref: DossierRef, part: str, grants: tuple[DmsGrant, ...]) -> None:
        parts = self._part_folders(ref.id, refresh=True)
        if part not in parts:
            raise PermanentError(f"set access: dossier has no part {part!r}")
        wanted = {self._grantee(g) for g in grants if g.classes is None}
        fields = self._json("GET", f"{self._item(parts[part])}/listItem/fields", "read a part's access")
        given = set(_given(fields))
        self._apply(parts[part], wanted, given, fields)
        for code, item in list(self._files_of(ref)):
            doc_fields = (item.get("listItem") or {}).get("fields") or {}
            doc = _document(ref, item, doc_fields, code, parts)
            if code == part and doc.part != part:
                self._move(doc, parts[doc.part], doc_fields, given)
            elif code == part:
                extra = {self._grantee(g) for g in grants if g.classes is not None and doc.doc_class in g.classes}
                if extra or OWN in _given(doc_fields):  # permissions of its own: the folder's and the class grants
                    self._apply(doc.id, wanted | extra | {OWN}, given | set(_given(doc_fields)), doc_fields)
                elif given - wanted:
                    self._revoke(doc.id, given - wanted)

    def read_access(self, ref: DossierRef) -> dict[str, tuple[DmsGrant, ...]]:
        """Read back from SharePoint's permissions (their own and inherited ones) on each part's
        folder and on each file in it: a Microsoft 365 group of ``dms.groups`` as its role, any
        other group by its id, a person by their e-mail address (lower case)."""
        roles = {group: role for role, group in self.settings.groups.items()}

        def holders(item_id: str) -> set[tuple[str, str]]:
            out: set[tuple[str, str]] = set()
            for permission in self._paged(f"{self._item(item_id)}/permissions", "read access"):
                holder = _holder(permission)
                if holder is None or not set(permission.get("roles") or ["read"]) & {"read", "write", "owner"}:
                    continue
                kind, _, who = holder.partition(":")
                out.add((roles.get(who, who), "group") if kind == "g" else (who, "user"))
            return out

        parts = self._part_folders(ref.id, refresh=True)
        docs: dict[str, list[tuple[str | None, set[tuple[str, str]]]]] = {code: [] for code in parts}
        for code, item in self._files_of(ref):
            doc = _document(ref, item, (item.get("listItem") or {}).get("fields") or {}, code, parts)
            docs[code].append((doc.doc_class, holders(doc.id)))
        found = {code: read_back(holders(folder), docs[code]) for code, folder in parts.items()}
        return {code: grants for code, grants in found.items() if grants}

    def _move(self, doc: DocumentRef, folder: str, fields: dict[str, Any], left: set[str]) -> None:
        """Put a document back in its own part's folder (within the dossier: nothing leaves it);
        ``left`` is what the connector gave on the folder it leaves."""
        log.warning("document of one part sat in the folder of another: moved back to its own part's folder",
                    extra={"document": doc.id, "part": doc.part})
        self._json("PATCH", self._item(doc.id), "move a document to its part",
                   params={"@microsoft.graph.conflictBehavior": "rename"}, json={"parentReference": {"id": folder}})
        if OWN in _given(fields):  # its own permissions went with it: no wider than its part's now
            theirs = set(_given(self._json("GET", f"{self._item(folder)}/listItem/fields", "read a part's access")))
            self._apply(doc.id, theirs | {OWN}, set(_given(fields)) | left, fields)

    def _revoke(self, item_id: str, gone: set[str]) -> None:
        """Take the connector's grants that ended off a file whose permissions are its own because
        staff shared it by hand (SharePoint then copied the folder's grants onto it)."""
        for permission in self._paged(f"{self._item(item_id)}/permissions", "list permissions"):
            if not permission.get("inheritedFrom") and _holder(permission) in gone:
                self._request("DELETE", f"{self._item(item_id)}/permissions/{_seg(str(permission['id']))}",
                              "take access away", ok=(404,))

    def _apply(self, item_id: str, wanted: set[str], managed: set[str], fields: dict[str, Any]) -> None:
        """Make ``wanted`` exactly the grantees the connector gives on the item: give what is
        missing, take away what it gave (``managed``) and no longer gives; nothing else is touched.
        Only what the connector itself gave is recorded: a grantee who could already read the item
        (by a grant of their own, or inherited) keeps that when the connector stops giving."""
        recorded = set(_given(fields))
        people = wanted - {OWN}
        own = {OWN} if OWN in wanted else set()
        permissions = list(self._paged(f"{self._item(item_id)}/permissions", "list permissions"))
        missing = sorted(people - {_holder(p) for p in permissions})
        if (set(missing) | own) - recorded:  # written first: a crash after the invite forgets nothing
            self._fields(item_id, {"ldAccess": json.dumps(sorted(recorded | set(missing) | own))}, "record access")
        if missing:
            self._json("POST", f"{self._item(item_id)}/invite", "give access", json={
                "recipients": [_recipient(g) for g in missing], "roles": ["read"], "requireSignIn": True,
                "sendInvitation": False, "retainInheritedPermissions": True})
            # the first invite breaks inheritance and keeps what was inherited as the item's own
            permissions = list(self._paged(f"{self._item(item_id)}/permissions", "list permissions"))
        for permission in permissions:
            grantee = _holder(permission)
            if not permission.get("inheritedFrom") and grantee in (managed | recorded) and grantee not in people:
                self._request("DELETE", f"{self._item(item_id)}/permissions/{_seg(str(permission['id']))}",
                              "take access away", ok=(404,))
        final = (recorded & people) | set(missing) | own
        if final != recorded:
            self._fields(item_id, {"ldAccess": json.dumps(sorted(final)) if final else None}, "record access")

    def _grantee(self, grant: DmsGrant) -> str:
        if grant.kind == "group":
            group = self.settings.groups.get(grant.principal)
            if group is None:
                raise PermanentError(f"set access: no Microsoft 365 group for role {grant.principal!r} (dms.groups)")
            return f"g:{group}"
        return f"u:{grant.principal.lower()}"


map_methods(SharePointStore, PORT_METHODS, "Graph")


def _seg(value: str) -> str:
    """One path segment: an id with commas (a site's) or other reserved characters, encoded."""
    return quote(value, safe="")


def _safe(name: str) -> str:
    """A name SharePoint takes for a file or folder: no reserved characters, no leading or
    trailing spaces or dots, at most 200 characters (the extension kept)."""
    clean = FORBIDDEN.sub("_", name).strip().strip(".").strip()
    if clean.startswith("~$") or "_vti_" in clean.lower():
        clean = "_" + clean.replace("~$", "_")
    if len(clean) > 200:
        stem, dot, ext = clean.rpartition(".")
        clean = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else clean[:200]
    return clean or "document"


def _label(title: str, key: str) -> str:
    suffix = f" [{key}]"
    return _safe(title)[: 200 - len(suffix)].rstrip(" .") + suffix


def _dossier_fields(spec: DossierSpec, key: str) -> dict[str, Any]:
    return {"ldDossier": key, "ldSchool": spec.school,
            "ldDeparture": spec.departure.isoformat() if spec.departure else "",
            "ldProperties": json.dumps(dict(spec.properties), sort_keys=True)}


def _column_value(key: str, value: str) -> Any:
    return value == "yes" if key == "retention_blocked" else value


def _document(ref: DossierRef, item: dict[str, Any], fields: dict[str, Any], folder_part: str,
              parts: dict[str, str]) -> DocumentRef:
    own = fields.get("ldPart")
    part = own if isinstance(own, str) and own in parts else folder_part
    metadata: dict[str, str] = {}
    try:
        extra = json.loads(fields.get("ldMetadata") or "{}")
        metadata.update({str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {})
    except ValueError:
        log.warning("a document's ldMetadata is not JSON; left out", extra={"document": item.get("id")})
    if fields.get("ldRetentionCategory"):
        for key, column in TAG_COLUMNS.items():
            value = fields.get(column)
            metadata[key] = ("yes" if value else "no") if key == "retention_blocked" else str(value or "")
    doc_class = fields.get("ldClass")
    return DocumentRef(id=str(item["id"]), dossier_id=ref.id, part=part,
                       doc_class=str(doc_class) if doc_class else None, name=str(item.get("name", "")),
                       metadata=metadata, added=item.get("createdDateTime"))


def _given(fields: dict[str, Any]) -> list[str]:
    try:
        value = json.loads(fields.get("ldAccess") or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _holder(permission: dict[str, Any]) -> str | None:
    who = permission.get("grantedToV2") or {}
    group = (who.get("group") or {}).get("id")
    if group:
        return f"g:{group}"
    email = (who.get("user") or {}).get("email") or (permission.get("invitation") or {}).get("email")
    return f"u:{str(email).lower()}" if email else None


BROAD = re.compile(r"(members|leden|visitors|bezoekers|everyone|iedereen|all users|alle gebruikers)", re.I)


def _broad(permission: dict[str, Any]) -> bool:
    """A permission that reaches far more people than a dossier's: a sharing link for the
    organisation or anyone, or a grant to the site's members or visitors or to everyone."""
    link = permission.get("link") or {}
    if link.get("scope") in ("anonymous", "organization"):
        return True
    who = permission.get("grantedToV2") or {}
    names = [str((who.get(k) or {}).get("displayName") or "") for k in ("siteGroup", "group")]
    return any(BROAD.search(n) for n in names)


def _recipient(grantee: str) -> dict[str, str]:
    kind, _, value = grantee.partition(":")
    return {"objectId": value} if kind == "g" else {"email": value}


def _delta_token(link: Any) -> str | None:
    """The token of a delta link, in either form Graph writes (``delta(token='...')`` or ``?token=``)."""
    if not isinstance(link, str):
        return None
    found = re.search(r"token='([^']+)'", link) or re.search(r"[?&]token=([^&]+)", link)
    return unquote(found.group(1)) if found else None


def _error_code(response: httpx.Response) -> str:
    """Graph's error code (``itemNotFound``, ``accessDenied``...), never its message."""
    try:
        code = response.json().get("error", {}).get("code", "")
    except (ValueError, AttributeError):
        return ""
    return code if isinstance(code, str) and re.fullmatch(r"[A-Za-z.]{1,64}", code) else ""
