"""The connector's configuration: one TOML file, validated, with errors naming key and line.

Secrets are never written in the file: a secret setting holds a reference, ``env:NAME`` (an
environment variable) or ``file:PATH`` (a file readable only by the service account).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from connector import tomlfile
from connector.errors import ConfigError
from connector.model import Frozen, IdentityScheme


def _secret_ref(value: str) -> str:
    if not (value.startswith("env:") or value.startswith("file:")) or len(value) < 5:
        raise ValueError("a secret is given by reference only: 'env:NAME' or 'file:PATH'")
    return value


SecretRef = Annotated[str, AfterValidator(_secret_ref)]


class _Section(Frozen):
    """A table of the configuration file: unknown keys are refused."""


class AdapterSection(BaseModel):
    """``[las]`` and ``[dms]``: ``type`` picks the adapter; the adapter validates the rest."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class StateSection(_Section):
    url: str = "sqlite:///var/state.db"
    audit_head: str | None = None
    """A file that anchors the audit log's head outside the database (default: beside a
    SQLite state file; give one for PostgreSQL)."""
    schema_: str | None = Field(default=None, alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """PostgreSQL only: the schema that holds this school's state, so that many schools share
    one database (a fleet, README "Scaling out"). Created on first use."""


class IdentitySection(_Section):
    key: IdentityScheme = "las_key"
    secret: SecretRef = "file:var/install.key"  # noqa: S105 (a reference, not a secret)
    create_secret: bool = Field(
        default=False,
        description="Create the secret file (random, mode 0600) when it does not exist yet.",
    )
    rekey_min_share: float = Field(default=0.9, ge=0.0, le=1.0)
    """``identity rekey`` stops, changing nothing, when fewer of the old export's dossiers than
    this share find their new key."""


class MappingSection(_Section):
    preset: str = "po"


class SafetySection(_Section):
    min_snapshot_ratio: float = Field(default=0.8, ge=0.0, le=1.0)
    hold_suspected_duplicates: bool = True
    max_duplicate_group: int = Field(default=10, ge=2)
    """More pupils than this sharing one BSN (or birth date and name) are reported once, as a
    group (a placeholder value in the export), with all of them held, instead of as pairs."""
    max_new_departures: int | None = Field(default=None, ge=0)
    """A snapshot in which more pupils than this gain a departure date stops before any write
    (rail ``mass_departure``). Default: 10 % of the school's last good snapshot, at least 25."""
    max_departure_future_days: int = Field(default=92, ge=0, le=366)
    """A departure date (from the LAS or by hand) further ahead than this is a rejected record."""


class RetentionSection(_Section):
    schedule: str = "retention-po"
    """A preset from mappings/ (retention-po, policy-2010-primenius) or a path."""
    overrides: str | None = None
    """The school's own override file (periods and their basis), if any."""


class DestructionSection(_Section):
    max_per_run: int = Field(default=500, ge=1)
    """A destruction run that would destroy more documents than this stops before it starts."""
    trash_grace_days: int = Field(default=30, ge=0)
    """Where the DMS has a trash: days before ``destruction purge`` empties it for good."""
    output: str = "var/destruction"
    """Folder for destruction lists and certificates (JSON, HTML, PDF)."""
    approvals: int = Field(default=1, ge=1, le=5)
    """How many different approvers (none of them the list's maker) a list needs."""
    cooling_off_days: int = Field(default=7, ge=0, le=90)
    """Days between a list's final approval and the first day it may be carried out, in which
    anyone may still cancel it."""


class TestingSection(_Section):
    """For installs that are tests or demos, never for a school's real dossiers."""

    simulated_clock: bool = False
    """Let execute, purge and removal at the source run on ``--today``; everything they produce
    then says "gesimuleerde datum: geen geldige verklaring"."""


class SchoolSection(_Section):
    """Who the school is and who answers for its dossiers: on lists, certificates, exports,
    manifests and the processing register. The LAS exports give a school only by its code."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    """The school's name, for every school code not named in ``names``."""
    names: dict[str, str] = Field(default_factory=dict)
    """School code (BRIN with vestiging, as the sync reports it) -> the school's name."""
    controller: str | None = Field(default=None, min_length=1, max_length=200)
    """The controller (verwerkingsverantwoordelijke): the school's board (bevoegd gezag)."""
    controller_contact: str | None = Field(default=None, max_length=200)
    fg: str | None = Field(default=None, min_length=1, max_length=200)
    """The data protection officer (functionaris gegevensbescherming)."""
    fg_contact: str | None = Field(default=None, max_length=200)


MANIFEST_FIELDS = ("naam", "geboortedatum", "onderwijsnummer", "school")
"""What a manifest for a receiving party may carry besides the pseudonymous key: the pupil's
name, birth date, persoonsgebonden nummer (BSN or onderwijsnummer, as the LAS gives it) and the
sending school's name and code."""


def _manifest(fields: list[str]) -> list[str]:
    unknown = sorted(set(fields) - set(MANIFEST_FIELDS))
    if unknown:
        raise ValueError(f"unknown manifest field(s) {', '.join(unknown)}; choose from {', '.join(MANIFEST_FIELDS)}")
    return fields


Manifest = Annotated[list[str], AfterValidator(_manifest)]


class DestinationSection(_Section):
    manifest: Manifest


class TransferSection(_Section):
    """What a receiving party finds in the manifest of a transferred dossier part."""

    manifest: Manifest = Field(default_factory=lambda: list(MANIFEST_FIELDS))
    """For every receiving party not named in ``destinations`` (default: all four)."""
    destinations: dict[str, DestinationSection] = Field(default_factory=dict)
    """Receiving party (``--receiving``: a BRIN or another name) -> its own manifest fields,
    e.g. ``[transfer.destinations.archief] manifest = ["geboortedatum"]``."""

    def fields_for(self, receiving: str | None) -> list[str]:
        """The manifest fields for ``receiving`` (None: the default)."""
        own = self.destinations.get(receiving) if receiving else None
        return list(own.manifest if own is not None else self.manifest)


class OkrSection(_Section):
    okr_class: str = "onderwijskundig_rapport"
    evidence_class: str = "informatie_ouders_okr"
    """The class of the document that shows the parents were informed (a letter or a meeting report)."""


class AccessSection(_Section):
    """Who may see what (DESIGN.md "Access"). Role names are the DMS's groups; parts and
    classes are the mapping's."""

    adult_age: int = Field(default=16, ge=12, le=18)
    """From this age the pupil exercises the rights (parents then only with the pupil's consent)."""
    roles: dict[str, list[str]] = Field(default_factory=dict)
    """Staff role -> the dossier parts it works with, e.g. ``leerkracht = ["I", "II"]``."""
    roles_after_departure: dict[str, list[str]] = Field(default_factory=lambda: {"administratie": ["I"]})
    """What each staff role keeps from a pupil's departure date on (a role not named: nothing)."""
    information_classes: list[str] = Field(default_factory=list)
    """What a parent without parental authority is informed of (e.g. ``["rapport"]``)."""
    request_warn_days: int = Field(default=28, ge=1)
    """A request this many days old (four weeks) is flagged in ``status`` and the report."""
    export_days: int = Field(default=30, ge=1, le=366)
    """A copy made with ``export`` is removed this many days after it was made (audited): it
    is handed over, not kept (a person keeps in the dossier what must be kept)."""
    correction_comment_class: str = "zienswijze_ouders"
    """The class of the document keeping a parent's written view when a correction is refused."""


class ServiceSection(_Section):
    """``leerdossier run``: when it works and what it does besides the sync."""

    every: str | None = "1h"
    """An interval: ``90s``, ``15m``, ``6h``, ``1d`` (or give ``cron`` and set this to "")."""
    cron: str | None = None
    """A cron expression, e.g. ``"30 6 * * 1-5"`` (06:30 on weekdays, local time of the machine)."""
    jobs: list[str] = Field(default_factory=lambda: ["sync"])
    """Besides ``sync`` (which always applies access and retags): ``access`` (apply what the
    calendar changed today), ``destruction_list`` (create a list; a person approves and
    executes it), ``purge`` (empty the DMS trash after the grace period). Never an unapproved
    destruction."""
    listen: str = "127.0.0.1:9464"
    """Loopback address for /healthz and /metrics (never on the network: no authentication)."""
    stop_timeout: float = Field(default=60.0, gt=0)
    """Seconds a stop may take (the operation in flight is finished, the rest stays journalled)."""


class ExecutionSection(_Section):
    concurrency: int = Field(default=1, ge=1, le=32)
    breaker: int = Field(default=10, ge=1)
    """Operations in a row that failed on transient errors (after their retries) before a run
    stops sending to the DMS; the rest waits in the journal for the next run."""
    """DMS calls in flight at once. A single-worker Mayan on 2 cores stops scaling at 1
    (bench/mayan_bench.py: 1.63, 1.59, 1.59 dossiers/s bare at 1, 2, 4); raise it for a DMS
    with more workers, after measuring with the bench."""


def _discovery(url: str) -> str:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError("give the provider's discovery URL over https (http only on this machine, for tests)")
    return url


class OidcSection(_Section):
    """Sign in through the school's identity provider (Microsoft Entra ID, Entree Federatie)."""

    discovery_url: Annotated[str, AfterValidator(_discovery)]
    """The provider's ``.well-known/openid-configuration``."""
    client_id: str = Field(min_length=1)
    client_secret: SecretRef
    """By reference: env:NAME or file:PATH (mode 0600)."""
    claim: str = Field(default="preferred_username", pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
    """The ID token's claim whose value is the name of a user of this install (who has the
    roles); someone the provider knows but this install does not is refused."""
    redirect_uri: str | None = None
    """The callback as the provider knows it (default: this page's /aanmelden/oidc/terug as the
    reverse proxy presents it)."""
    label: str = Field(default="Aanmelden via de school", min_length=1, max_length=80)


class WebSection(_Section):
    """``leerdossier web``: the page for the people who answer for the dossiers."""

    listen: str = Field(default="127.0.0.1:8080", pattern=r"^[0-9A-Za-z.:\[\]-]+:[0-9]{1,5}$")
    """Where it listens: a loopback address, behind the school's reverse proxy for TLS."""
    secure_cookies: bool = True
    """Session cookies only over HTTPS (the reverse proxy's TLS; browsers count
    http://localhost as secure too). Off only for a test install without TLS."""
    idle_minutes: int = Field(default=30, ge=1, le=720)
    """A session ends after this long without a request."""
    max_login_failures: int = Field(default=5, ge=1, le=100)
    """Failed logins for one user name, or from one address, before logins pause."""
    lockout_minutes: int = Field(default=15, ge=1, le=1440)
    """How long logins pause after too many failures."""
    oidc: OidcSection | None = None


class LoggingSection(_Section):
    level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    format: str = Field(default="text", pattern="^(text|json)$")
    """``json``: one JSON object per line (the service always logs JSON)."""


class Config(_Section):
    las: AdapterSection
    dms: AdapterSection
    state: StateSection = Field(default_factory=StateSection)
    identity: IdentitySection = Field(default_factory=IdentitySection)
    mapping: MappingSection = Field(default_factory=MappingSection)
    safety: SafetySection = Field(default_factory=SafetySection)
    retention: RetentionSection = Field(default_factory=RetentionSection)
    destruction: DestructionSection = Field(default_factory=DestructionSection)
    okr: OkrSection = Field(default_factory=OkrSection)
    school: SchoolSection = Field(default_factory=SchoolSection)
    transfer: TransferSection = Field(default_factory=TransferSection)
    access: AccessSection = Field(default_factory=AccessSection)
    service: ServiceSection = Field(default_factory=ServiceSection)
    execution: ExecutionSection = Field(default_factory=ExecutionSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    web: WebSection = Field(default_factory=WebSection)
    testing: TestingSection = Field(default_factory=TestingSection)


class LoadedConfig:
    """A validated config plus where it came from, to resolve relative paths and explain errors."""

    def __init__(self, path: Path, text: str, config: Config) -> None:
        self.path = path
        self.text = text
        self.config = config
        self.base = path.parent

    def resolve(self, value: str | Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        return tomlfile.resolve_path(self.base, value)

    def state_url(self) -> str:
        url = self.config.state.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(self.resolve(url[len(prefix):]))
        return url

    def audit_head_file(self) -> Path | None:
        """Where the audit log's head is anchored outside the database: ``[state] audit_head``,
        or beside a SQLite state file."""
        if self.config.state.audit_head:
            return self.resolve(self.config.state.audit_head)
        url = self.state_url()
        if url.startswith("sqlite:///") and ":memory:" not in url:
            return Path(url[len("sqlite:///"):] + ".audit-head")
        return None

    def problem(self, loc: list[str], message: str) -> ConfigError:
        return tomlfile.problem(self.path, self.text, loc, message)

    def explain(self, err: ValidationError, section: str) -> ConfigError:
        return tomlfile.explain(self.path, self.text, err, prefix=[section])

    def secret(self, ref: str, loc: list[str], create: bool = False) -> bytes:
        """Read a secret by reference. Its value never appears in a message."""
        kind, _, name = ref.partition(":")
        if kind == "env":
            value = os.environ.get(name)
            if not value:
                raise self.problem(loc, f"environment variable {name} is not set or empty")
            if len(value.strip()) < 16:
                raise self.problem(loc, f"environment variable {name} holds too short a secret (< 16 chars)")
            return value.encode()  # as given: the install's pseudonyms are keyed with it
        path = self.resolve(name)
        if not path.exists() and create:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        try:
            mode = path.stat().st_mode
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise self.problem(loc, f"secret file {path} cannot be read ({exc.strerror})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise self.problem(loc, f"secret file {path} is readable by others; chmod 600 it")
        if len(value) < 16:
            raise self.problem(loc, f"secret file {path} holds too short a secret (< 16 chars)")
        return value.encode()


def load(path: str | Path) -> LoadedConfig:
    p = Path(path)
    config, text = tomlfile.read_model(p, Config)
    return LoadedConfig(p.resolve(), text, config)
