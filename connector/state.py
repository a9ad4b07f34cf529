"""The state store: what the connector recorded of the DMS, the journal, runs and the audit log.

SQLite by default (WAL, so a killed process loses nothing that was committed); any SQLAlchemy
URL works for the same schema, so the PostgreSQL backend is this module with another URL.
SQLAlchemy Core (not the ORM): one schema and one set of queries for both databases.

Journal rows are a small state machine: ``new`` (planned) -> ``sent`` (about to call the DMS)
-> ``done`` | ``failed``. A row is written and committed before the DMS is called; the next
run finishes every row that is not ``done``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    column,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement, TextClause

from connector.errors import ConfigError, SafetyStop
from connector.model import (
    DOSSIER_KINDS,
    GUARDED_KINDS,
    DocumentRef,
    DossierSpec,
    Operation,
    PupilFacts,
    RecordedDossier,
    RetentionTag,
)

metadata = MetaData()
"""The schema as this version uses it. Changes go with a migration in connector/migrations/
(``alembic revision --autogenerate`` against a store at the previous head)."""

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("school", String(32)),
    Column("started", String(40), nullable=False),
    Column("finished", String(40)),
    Column("status", String(16), nullable=False),  # running | ok | stopped | failed | dry-run
    Column("pupils_seen", Integer),
    Column("report", Text),
)

dossiers = Table(
    "dossiers", metadata,
    Column("external_id", String(300), primary_key=True),
    Column("pseudonym", String(40), nullable=False, index=True),
    Column("school", String(32), nullable=False, index=True),
    Column("ref_id", String(300)),
    Column("fingerprint", String(64)),
    Column("spec", Text),
    Column("departure", Date),
    Column("dup_pgn", String(64), index=True),
    Column("dup_nb", String(64), index=True),
    Column("vanished_since", Date),
    Column("updated", String(40)),
)

documents = Table(
    "documents", metadata,
    Column("id", String(300), primary_key=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("dossier_id", String(300)),
    Column("part", String(32), nullable=False),
    Column("doc_class", String(64)),
    Column("category", String(64)),
    Column("kind", String(8)),
    Column("due", Date, index=True),
    Column("blocked", Integer),
    Column("unclassified", Integer),
    Column("basis", Text),
    Column("tag", Text),  # the tag as last written to the DMS (JSON)
    Column("status", String(12), nullable=False, default="present"),  # present | trashed | destroyed
    Column("updated", String(40)),
)

facts = Table(
    "facts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # departure | referred | reunion_consent | reenrolled
    Column("on", Date),  # None: the fact was withdrawn
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
    Column("note", Text),
)

holds = Table(
    "holds", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("part", String(32)),  # None: the whole dossier
    Column("reason", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
    Column("removed_by", String(200)),
    Column("removed_at", String(40)),
    Column("removed_reason", Text),
)

transfers = Table(
    "transfers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("kind", String(16), nullable=False),  # okr | export
    Column("on", Date, nullable=False),
    Column("receiving", Text),  # BRIN of the receiving school, or the destination (a folder, a DMS)
    Column("part", String(32)),
    Column("status", String(16), nullable=False),  # transferred | incomplete | failed
    Column("detail", Text),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

destruction_lists = Table(
    "destruction_lists", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", String(40), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("status", String(16), nullable=False),  # draft | approved | executed | cancelled
    Column("digest", String(64), nullable=False),
    Column("approved_by", String(200)),
    Column("approved_role", String(200)),
    Column("approved_at", String(40)),
    Column("approved_digest", String(64)),
    Column("executed_at", String(40)),
    Column("kind", String(16), nullable=False, server_default="destruction"),  # destruction | transfer
    Column("receiving", Text),  # a transfer list: where the copies went
    Column("required_approvals", Integer, nullable=False, server_default="1"),
    Column("anchor_seq", Integer),  # the audit log's head when the list was made
    Column("anchor_hash", String(64)),
    Column("certified_seq", Integer),  # ... and when its certificate was last written
    Column("certified_hash", String(64)),
)

destruction_approvals = Table(
    # one row per approval of a list by an identified user, signed with the install key over the
    # list's digest, the user, the time and the items they rejected
    "destruction_approvals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_id", Integer, nullable=False, index=True),
    Column("approver", String(120), nullable=False),
    Column("role", String(200)),
    Column("at", String(40), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("rejected", Text, nullable=False),  # JSON: item id -> reason
    Column("signature", String(64), nullable=False),
    Column("anchor_seq", Integer),
    Column("anchor_hash", String(64)),
)

users = Table(
    # the people (and the service) who act on dossiers: list, approve, execute, hold, record facts
    "users", metadata,
    Column("name", String(120), primary_key=True),
    Column("display", String(200)),
    Column("roles", Text, nullable=False),  # JSON list: maker | approver | executor | admin
    Column("secret", Text),  # a slow hash (scrypt); None: signs in only through OpenID Connect
    Column("oidc_issuer", String(300)),
    Column("oidc_subject", String(300)),
    Column("created_by", String(120), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("disabled_by", String(120)),
    Column("disabled_at", String(40)),
)

destruction_items = Table(
    "destruction_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_id", Integer, nullable=False, index=True),
    Column("doc_id", String(300), nullable=False),
    Column("dossier_id", String(300), nullable=False),
    Column("external_id", String(300), nullable=False),
    Column("pseudonym", String(40), nullable=False),
    Column("school", String(32), nullable=False),
    Column("part", String(32), nullable=False),
    Column("doc_class", String(64)),
    Column("category", String(64), nullable=False),
    Column("basis", Text, nullable=False),
    Column("due", Date, nullable=False),
    Column("decision", String(12), nullable=False, default="pending"),  # pending | approved | rejected
    Column("reason", Text),
    Column("status", String(12), nullable=False, default="listed"),  # listed | sent | destroyed | failed | skipped
    Column("detail", Text),
    Column("done_at", String(40)),
    Column("verified", String(64)),  # a transfer list: SHA-256 of the copy read back at the destination
    Column("trashed_on", Date),  # the day (by the act's clock) the DMS put it in its trash: the grace starts
    Column("purged_at", String(40)),
)

staging = Table(
    "staging", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("pseudonym", String(40), nullable=False),
    Column("external_id", String(300)),
    Column("fingerprint", String(64)),
    Column("spec", Text),
    Column("dup_pgn", String(64)),
    Column("dup_nb", String(64)),
    Column("rejected", Integer, nullable=False, default=0),
    Column("departure", Date),
    Index("staging_pseudonym", "run_id", "pseudonym"),
    Index("staging_external_id", "run_id", "external_id"),
    Index("staging_dup_pgn", "run_id", "dup_pgn"),
    Index("staging_dup_nb", "run_id", "dup_nb"),
)

pupil_access = Table(
    # what a dossier's access rights are computed from, as last applied from the LAS
    "pupil_access", metadata,
    Column("external_id", String(300), primary_key=True),
    Column("pseudonym", String(40), nullable=False),
    Column("birth_date", Date),
    Column("fingerprint", String(64), nullable=False),
    Column("updated", String(40), nullable=False),
)

guardians = Table(
    # parents and carers: from the LAS (source "las", replaced by each sync) or recorded by a
    # person (source "manual"); authority and DMS account may be recorded by a person for both
    "guardians", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guardian_id", String(40), nullable=False),
    Column("external_id", String(300), nullable=False, index=True),
    Column("source", String(8), nullable=False),
    Column("display", Text),  # name as the source gives it, for the person linking an account
    Column("relation", String(8)),
    Column("authority", String(8)),  # yes | no | None (unknown), as the source says
    Column("authority_recorded", String(8)),  # yes | no, recorded by a person (see connector.acl.authority)
    Column("authority_seen", String(8)),  # what the source said when the person recorded it
    Column("deceased", Integer, nullable=False, default=0),  # as the source says (a sync rewrites it)
    Column("deceased_recorded", Integer),  # 1: a person recorded the death; no sync touches it
    Column("account", String(200)),  # the guardian's account in the DMS, linked by a person
    Column("by", String(200)),
    Column("at", String(40), nullable=False),
    Column("removed_at", String(40)),
    Index("guardians_current", "external_id", "guardian_id", "removed_at"),
)

grants = Table(
    "grants", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # parent_after_adult_age | third_party
    Column("grantee", String(200), nullable=False),
    Column("parts", Text, nullable=False),  # JSON list
    Column("basis", String(16), nullable=False),  # consent | legal_duty
    Column("start", Date, nullable=False),
    Column("until", Date, nullable=False),
    Column("revoked", Date),
    Column("reason", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

requests_t = Table(
    # parents' and pupils' requests (inspection, copy, correction, erasure) and their deadlines
    "requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("requester", String(200), nullable=False),  # who asks: g-..., "pupil", or as recorded
    Column("received", Date, nullable=False),
    Column("due", Date, nullable=False),
    Column("extended_reason", Text),
    Column("hold_id", Integer),
    Column("status", String(8), nullable=False),  # open | closed
    Column("outcome", String(16)),
    Column("closed", Date),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

exports = Table(
    # the copies made for data subjects (``export``): removed when ``[access] export_days`` pass
    "exports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("path", Text, nullable=False),
    Column("made", Date, nullable=False),
    Column("expires", Date, nullable=False, index=True),
    Column("removed", String(40)),
    Column("by", String(200), nullable=False),
)

acl_applied = Table(
    # the access the connector last set in the DMS, per dossier part, and the next day on which
    # the calendar alone changes it (a 16th birthday, a grant starting or ending)
    "acl_applied", metadata,
    Column("external_id", String(300), primary_key=True),
    Column("part", String(32), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("principals", Text, nullable=False),  # JSON: the pseudonymous principals (role:, guardian:, ...)
    Column("applied", String(40), nullable=False),
    Column("next_change", Date, index=True),
    Column("waiting", Text),  # JSON: principals with a right but no linked DMS account
)

accounts = Table(
    # a person's account in the DMS, linked by a person: the pupil's own ("pupil")
    "accounts", metadata,
    Column("external_id", String(300), primary_key=True),
    Column("principal", String(40), primary_key=True),
    Column("account", String(200), nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

staging_access = Table(
    # access facts of this run's snapshot, only for dossiers whose recorded ones differ
    "staging_access", metadata,
    Column("run_id", Integer, nullable=False, index=True),
    Column("external_id", String(300), nullable=False),
    Column("pseudonym", String(40), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("payload", Text, nullable=False),
)

cursors = Table(
    # "run:<id>": how far an unfinished run has staged its snapshot (written in the same
    # transaction as the staged rows); "applied:<source key>": the cursor of the last run that
    # was applied completely (a source may ask for changes since then).
    "cursors", metadata,
    Column("key", String(120), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated", String(40), nullable=False),
)

OPEN = ("new", "sent", "failed")
"""Journal statuses of rows not yet finished: the ones a run resumes or supersedes."""
OPEN_SQL = "status IN ({})".format(", ".join(f"'{st}'" for st in OPEN))

journal = Table(
    "journal", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),  # not indexed: nothing reads the journal by run
    Column("kind", String(32), nullable=False),
    Column("external_id", String(300), nullable=False),
    Column("target", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(12), nullable=False),  # new|sent|done|failed|superseded
    Column("attempts", Integer, nullable=False, default=0),
    Column("ref_id", String(300)),
    Column("error", Text),
    Column("dup_pgn", String(64)),
    Column("dup_nb", String(64)),
    Column("updated", String(40), nullable=False),
    # only the unfinished rows: the ones a run looks for. Done and superseded rows, nearly all
    # of a journal kept for years, have no entry, and marking a row done writes none.
    Index("ix_journal_open", "status", postgresql_where=text(OPEN_SQL), sqlite_where=text(OPEN_SQL)),
)

dismissed = Table(
    "duplicate_dismissals", metadata,
    Column("a", String(40), primary_key=True),
    Column("b", String(40), primary_key=True),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

audit_log = Table(
    "audit", metadata,
    Column("seq", Integer, primary_key=True),
    Column("at", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(64)),
    Column("details", Text, nullable=False),
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("audit_subject", "subject"),
)

audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64)),  # keyed over (seq, hash): the head cannot be rewound without the key
)


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"


# alembic's own table, read to see whether a store is at the newest migration already
_alembic_version = Table("alembic_version", MetaData(), Column("version_num", String(32), primary_key=True))


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest migration (read from the migration scripts once per process)."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(engine: Engine, schema: str | None = None) -> None:
    """Bring the state store's schema to the newest migration (alembic). A store made before
    migrations existed gets its missing tables once and is recorded at the baseline. A store at
    the newest already costs two catalog reads, not a run of alembic (a fleet worker opens a
    school's store for every job). ``schema``: PostgreSQL; created when missing."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        if schema is not None:
            # for what alembic writes as plain SQL; the engine's schema_translate_map places the
            # tables it builds from the model in the same schema
            conn.execute(text(f'set local search_path to "{schema}"'))
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" in tables and conn.execute(
                select(_alembic_version.c.version_num)).scalar() == head_revision():
            return
        if schema is not None:
            conn.execute(text(f'create schema if not exists "{schema}"'))
        cfg.attributes["connection"] = conn
        if "alembic_version" not in tables and "meta" in tables:
            metadata.create_all(conn)
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")


def _yes_no(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value if value in ("yes", "no") else None
    return "yes" if value else "no"


def _rows_select(table: Table, rows: list[dict[str, Any]]) -> Select[Any]:
    """PostgreSQL: ``rows`` (all with the same keys, columns of ``table``) as one SELECT over
    json_to_recordset() of a single JSON parameter. A statement so built takes any number of
    rows, where an executemany has the server bind and execute one statement per row, work that
    every worker of a fleet waits for on the one database. (One JSON text, not an array per
    column: the driver escapes array elements one by one in Python, which cost more than it
    saved.)"""
    names = list(rows[0])
    payload = json.dumps(rows, default=str, separators=(",", ":"))
    values = func.json_to_recordset(cast(bindparam(None, payload, String), postgresql.JSON)).table_valued(
        *[column(name, table.c[name].type) for name in names]).render_derived(with_types=True)
    return select(*[values.c[name] for name in names])


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT these rows (all with the same keys): one statement on PostgreSQL, an executemany
    on SQLite (in-process, where a statement per row costs nothing extra)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(insert(table).from_select(list(rows[0]), _rows_select(table, rows)))
    else:
        conn.execute(insert(table), rows)


def _upsert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE for these rows, in this connection's
    database: one statement, not an UPDATE and then an INSERT per row. ``rows`` must not repeat a
    key (PostgreSQL refuses to update a row twice in one statement)."""
    if not rows:
        return
    key = list(table.primary_key.columns)
    names = {k.name for k in key}
    columns = [name for name in rows[0] if name not in names]
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt, params = postgresql.insert(table).from_select(list(rows[0]), _rows_select(table, rows)), None
    else:
        stmt, params = sqlite.insert(table), rows
    conn.execute(stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in columns}), params)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


AFTER_COMMIT = "leerdossier.after_commit"


def after_commit(conn: Connection, key: str, fn: Any) -> None:
    """Run ``fn`` once the transaction of ``conn`` (opened with ``StateStore.transaction``) has
    committed; a later registration under the same ``key`` replaces an earlier one."""
    conn.info.setdefault(AFTER_COMMIT, {})[key] = fn


@dataclass(frozen=True)
class Staged:
    pseudonym: str
    external_id: str | None = None
    spec: DossierSpec | None = None
    dup_pgn: str | None = None
    dup_nb: str | None = None
    access: str | None = None
    """JSON of the access facts the source delivered (birth date, guardians), when it has any."""


@dataclass(frozen=True)
class DossierRow:
    external_id: str
    pseudonym: str
    school: str
    ref_id: str | None
    departure: date | None
    vanished_since: date | None = None


_DOSSIER_ROW = (dossiers.c.external_id, dossiers.c.pseudonym, dossiers.c.school, dossiers.c.ref_id,
                dossiers.c.departure, dossiers.c.vanished_since)
"""The columns of a DossierRow, in its field order."""

FACT_KINDS = ("departure", "referred", "reunion_consent", "reenrolled", "exam_result")


@dataclass(frozen=True)
class Change:
    """A staged dossier that differs from what was recorded (or was never recorded)."""

    id: int
    spec: DossierSpec
    recorded: RecordedDossier | None
    dup_pgn: str | None
    dup_nb: str | None


@dataclass(frozen=True)
class JournalRow:
    id: int
    run_id: int
    kind: str
    status: str
    attempts: int
    operation: Operation
    dup_pgn: str | None
    dup_nb: str | None


@dataclass(frozen=True)
class Suspected:
    """Two pupils that look like one child; or, with ``members``, a group too large to be one
    child (a placeholder BSN, a default birth date), reported once as a group."""

    a: str
    b: str
    basis: str  # "bsn/onderwijsnummer" | "geboortedatum en naam"
    members: tuple[str, ...] = ()

    def pseudonyms(self) -> tuple[str, ...]:
        return self.members or (self.a, self.b)

    def as_dict(self) -> dict[str, Any]:
        if self.members:
            return {"a": self.a, "b": self.b, "basis": self.basis, "group": len(self.members),
                    "members": list(self.members[:20])}
        return {"a": self.a, "b": self.b, "basis": self.basis}


GROUP_LIMIT = 10
"""More pupils than this sharing one keyed hash are a group, reported once, not as pairs."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-32768")  # 32 MiB page cache: lookups stay in memory at 100k+ dossiers
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def _postgres_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]  # psycopg 3, not the older psycopg2
    return url


def _shown(url: str) -> str:
    """The URL without its password, for an error message."""
    try:
        return repr(make_url(url))
    except SQLAlchemyError:
        return "(an unreadable URL)"


class SharedEngines:
    """One SQLAlchemy engine per PostgreSQL database for a process that opens many state stores,
    one after another or at once: a fleet worker opens a school's store for every job. The
    stores share the engine's connection pool and its cache of compiled statements, and each
    reaches its school's schema through ``schema_translate_map``; without this, every job opened
    new server connections (a server process each, whose caches start cold) and compiled every
    statement again. The owner disposes of it when the process ends."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def engine(self, url: str) -> Engine:
        """The engine of this database, its pooled connections checked with one round trip (a
        worker waits an hour between cycles, and the server may have restarted since)."""
        url = _postgres_url(url)
        with self._lock:
            engine = self._engines.get(url)
            if engine is None:
                # lifo: the same few connections serve job after job, their server caches warm
                engine = self._engines[url] = create_engine(url, hide_parameters=True, pool_use_lifo=True)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("select 1")
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # the server closed it: SQLAlchemy has dropped every connection pooled before,
            # so the store's own statements connect anew
        return engine

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def peek(url: str, schema: str | None = None) -> tuple[bool, str | None]:
    """For a check that must change nothing: whether the state store exists, and its migration
    (None: no migration recorded yet). A SQLite file is opened read-only and never made."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if not path.exists():
            return False, None
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    engine = create_engine(_postgres_url(url), hide_parameters=True)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names(schema=schema))
            if "alembic_version" not in tables:
                return bool(tables), None
            if schema:
                conn = conn.execution_options(schema_translate_map={None: schema})
            return True, conn.execute(select(_alembic_version.c.version_num)).scalar()
    except SQLAlchemyError as exc:
        raise ConfigError(f"state store {_shown(url)}: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()


class StateStore:
    def __init__(self, url: str, schema: str | None = None, shared: SharedEngines | None = None,
                 upgrade: bool = True) -> None:
        """``schema``: PostgreSQL only; this store's tables live in that schema of the database
        (created when missing), so that several schools' stores share one database. ``shared``:
        take the engine from there (PostgreSQL) instead of opening one of this store's own.
        ``upgrade``: bring the schema to the newest migration (False: a check that only reads)."""
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        url = _postgres_url(url)
        self._own = shared is None or not url.startswith("postgresql")
        try:
            # hide_parameters: an SQL error must never print the values (external ids may be a BSN)
            if schema is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
                raise ConfigError(f"state.schema: {schema!r} is not a lower-case SQL identifier")
            self.schema = schema
            if self._own:
                connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
                engine = create_engine(url, hide_parameters=True, connect_args=connect_args)
            else:
                assert shared is not None
                engine = shared.engine(url)
            if engine.dialect.name == "sqlite":
                if schema:
                    raise ConfigError("state.schema: only a PostgreSQL state store has schemas")
                event.listen(engine, "connect", _sqlite_pragmas)
            elif schema:
                # every statement names the schema (a shared engine's connections serve every school)
                engine = engine.execution_options(schema_translate_map={None: schema})
            self.engine: Engine = engine
            if upgrade:
                migrate(self.engine, schema)
        except SQLAlchemyError as exc:
            raise ConfigError(f"state store {_shown(url)}: {exc.__class__.__name__}") from None

    def close(self) -> None:
        if self._own:
            self.engine.dispose()

    @contextmanager
    def _advisory_lock(self, name: str) -> Iterator[None]:
        """PostgreSQL: a session advisory lock on a connection of its own; the server releases it
        when that connection ends, a dead process included. A connection that may still hold it
        is closed, never handed back to a shared pool."""
        # advisory locks are per database: the schema is part of the key
        scope = f"leerdossier/{self.schema}/{name}" if self.schema else f"leerdossier/{name}"
        key = int.from_bytes(hashlib.sha256(scope.encode()).digest()[:8], "big", signed=True)
        conn = self.engine.connect()
        try:
            if not conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                raise SafetyStop("single_instance", f"another {name} is running on this state store "
                                 "(its PostgreSQL advisory lock is held); nothing was changed")
            conn.commit()
            released = False
            try:
                yield
            finally:
                try:
                    released = bool(conn.execute(text("select pg_advisory_unlock(:k)"), {"k": key}).scalar())
                    conn.commit()
                finally:
                    if not released:
                        conn.invalidate()  # its server session ends, and the lock with it
        finally:
            conn.close()

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the named lock of this state store, or stop (rail ``single_instance``) when
        another process holds it. For SQLite an ``flock`` on a file beside the database: the
        kernel releases it when its process dies, so a crash never leaves it stuck. (Other
        backends bring their own lock with the service.)"""
        database = self.engine.url.database
        if self.engine.dialect.name == "postgresql":
            with self._advisory_lock(name):
                yield
            return
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:" or fcntl is None:
            yield
            return
        path = Path(f"{database}.{name}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SafetyStop("single_instance", f"another {name} is running on this state store "
                                 f"({path.name} is locked); nothing was changed") from None
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction. What was registered with ``after_commit`` on its connection runs
        once it has committed (the audit log's head file), and never when it did not."""
        info: dict[Any, Any] = {}
        try:
            with self.engine.begin() as conn:
                info = conn.info  # the pooled connection's own: emptied of ours below, whatever happens
                info.pop(AFTER_COMMIT, None)
                yield conn
        except BaseException:
            info.pop(AFTER_COMMIT, None)
            raise
        for fn in info.pop(AFTER_COMMIT, {}).values():
            fn()

    # -- runs -------------------------------------------------------------------------------
    def begin_run(self, kind: str) -> int:
        with self.transaction() as conn:
            result = conn.execute(insert(runs).values(kind=kind, started=now(), status="running"))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def forget_plans(self) -> None:
        """Remove the run rows of plans (dry runs): a plan leaves no run behind."""
        with self.transaction() as conn:
            conn.execute(delete(runs).where(runs.c.kind == "plan"))

    def finish_run(self, run_id: int, status: str, school: str | None, pupils_seen: int | None,
                   report: dict[str, Any], applied: tuple[str, str] | None = None) -> None:
        """Close a run. ``applied`` = (source key, cursor): the snapshot was applied completely;
        the next run may ask its source for changes since that cursor."""
        with self.transaction() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                finished=now(), status=status, school=school, pupils_seen=pupils_seen,
                report=json.dumps(report, sort_keys=True, default=str),
            ))
            conn.execute(delete(cursors).where(cursors.c.key == f"run:{run_id}"))
            if applied is not None:
                self._put_cursor(conn, f"applied:{applied[0]}", applied[1])

    @staticmethod
    def _put_cursor(conn: Connection, key: str, value: str) -> None:
        conn.execute(delete(cursors).where(cursors.c.key == key))
        conn.execute(insert(cursors).values(key=key, value=value, updated=now()))

    def applied_cursor(self, source_key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(cursors.c.value).where(cursors.c.key == f"applied:{source_key}")).scalar()

    def interrupted(self, run_id: int) -> tuple[int, str] | None:
        """Sync runs before ``run_id`` that never finished (the process died) are marked
        ``interrupted``; the latest one that staged part of its snapshot is returned with its
        cursor, so this run can adopt what it staged."""
        with self.transaction() as conn:
            dead = list(conn.execute(select(runs.c.id).where(
                runs.c.status == "running", runs.c.kind == "sync", runs.c.id < run_id)).scalars())
            if not dead:
                return None
            conn.execute(update(runs).where(runs.c.id.in_(dead)).values(status="interrupted", finished=now()))
            found = conn.execute(select(cursors.c.key, cursors.c.value).where(
                cursors.c.key.in_([f"run:{i}" for i in dead]))).all()
            conn.execute(delete(cursors).where(cursors.c.key.in_([f"run:{i}" for i in dead])))
            latest = max(((int(k.split(":")[1]), v) for k, v in found), default=None)
            for i in dead:
                if latest is None or i != latest[0]:
                    conn.execute(delete(staging).where(staging.c.run_id == i))
            return latest

    def adopt_staging(self, old_run: int, run_id: int) -> None:
        """Take over what an interrupted run staged (its source continues after it)."""
        with self.transaction() as conn:
            conn.execute(update(staging).where(staging.c.run_id == old_run).values(run_id=run_id))
            conn.execute(update(staging_access).where(staging_access.c.run_id == old_run).values(run_id=run_id))

    # -- access facts -------------------------------------------------------------------------
    def apply_access(self, run_id: int, skip: frozenset[str]) -> list[tuple[str, str]]:
        """Record the access facts this run's snapshot changed (birth date, the LAS's guardians;
        a person's recorded authority and account links are kept for the same guardian).
        Returns (external id, pseudonym) of every dossier whose facts changed."""
        changed: list[tuple[str, str]] = []
        with self.transaction() as conn:
            rows = [r for r in conn.execute(select(staging_access).where(staging_access.c.run_id == run_id)).all()
                    if r.pseudonym not in skip]
            stamp = now()
            for i in range(0, len(rows), 500):  # a few statements per page of pupils, not per pupil
                page = rows[i:i + 500]
                ids = [r.external_id for r in page]
                data = {r.external_id: json.loads(r.payload) for r in page}
                conn.execute(delete(pupil_access).where(pupil_access.c.external_id.in_(ids)))
                insert_many(conn, pupil_access, [
                    {"external_id": r.external_id, "pseudonym": r.pseudonym, "fingerprint": r.fingerprint,
                     "updated": stamp, "birth_date": date.fromisoformat(data[r.external_id]["birth"])
                     if data[r.external_id].get("birth") else None} for r in page])
                current: dict[str, dict[str, Any]] = {eid: {} for eid in ids}
                for g in conn.execute(select(guardians).where(
                        guardians.c.external_id.in_(ids), guardians.c.source == "las",
                        guardians.c.removed_at.is_(None))).all():
                    current[g.external_id][g.guardian_id] = g
                new: list[dict[str, Any]] = []
                for r in page:
                    mine = current[r.external_id]
                    incoming = {g["id"]: g for g in data[r.external_id].get("guardians", [])}
                    gone = [gid for gid in mine if gid not in incoming]
                    if gone:
                        conn.execute(update(guardians).where(
                            guardians.c.external_id == r.external_id, guardians.c.source == "las",
                            guardians.c.guardian_id.in_(gone), guardians.c.removed_at.is_(None))
                            .values(removed_at=stamp))
                    for gid, g in incoming.items():
                        values = {"display": g.get("display"), "relation": g.get("relation"),
                                  "authority": _yes_no(g.get("authority")), "deceased": int(bool(g.get("deceased")))}
                        if gid in mine:
                            conn.execute(update(guardians).where(guardians.c.id == mine[gid].id).values(**values))
                        else:
                            new.append({"guardian_id": gid, "external_id": r.external_id, "source": "las",
                                        "by": "LAS", "at": stamp, **values})
                    changed.append((r.external_id, r.pseudonym))
                insert_many(conn, guardians, new)
        return changed

    def access_page(self, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        """For a page of dossiers at once (a few queries, not a few per dossier): birth date,
        current guardians, grants, linked accounts, and the access last applied per part."""
        out: dict[str, dict[str, Any]] = {
            eid: {"birth": None, "guardians": [], "grants": [], "accounts": {}, "applied": {}}
            for eid in external_ids}
        with self.engine.connect() as conn:
            for i in range(0, len(external_ids), 900):
                ids = external_ids[i:i + 900]
                for eid, birth in conn.execute(select(pupil_access.c.external_id, pupil_access.c.birth_date)
                                               .where(pupil_access.c.external_id.in_(ids))):
                    out[eid]["birth"] = birth
                for g in conn.execute(select(guardians).where(guardians.c.external_id.in_(ids),
                                                              guardians.c.removed_at.is_(None))
                                      .order_by(guardians.c.guardian_id)).mappings():
                    out[g["external_id"]]["guardians"].append(dict(g))
                for g in conn.execute(select(grants).where(grants.c.external_id.in_(ids))
                                      .order_by(grants.c.id)).mappings():
                    out[g["external_id"]]["grants"].append(dict(g) | {"parts": tuple(json.loads(g["parts"]))})
                for eid, principal, account in conn.execute(
                        select(accounts.c.external_id, accounts.c.principal, accounts.c.account)
                        .where(accounts.c.external_id.in_(ids))):
                    out[eid]["accounts"][principal] = account
                for r in conn.execute(select(acl_applied).where(acl_applied.c.external_id.in_(ids))):
                    out[r.external_id]["applied"][r.part] = (r.fingerprint, json.loads(r.principals), r.next_change,
                                                             json.loads(r.waiting or "[]"))
        return out

    def add_guardian(self, conn: Connection, external_id: str, guardian_id: str, display: str | None,
                     relation: str | None, authority: bool | None, by: str) -> None:
        conn.execute(insert(guardians).values(
            guardian_id=guardian_id, external_id=external_id, source="manual", display=display, relation=relation,
            authority=None, authority_recorded=_yes_no(authority), deceased=0, by=by, at=now()))

    def set_guardian(self, conn: Connection, external_id: str, guardian_id: str, **values: Any) -> bool:
        """Record a person's authority (``authority_recorded``, with what the source says at this
        moment in ``authority_seen``), account link or death (``deceased_recorded``). These
        columns are the person's own: a sync writes only ``authority`` and ``deceased``."""
        where = (guardians.c.external_id == external_id, guardians.c.guardian_id == guardian_id,
                 guardians.c.removed_at.is_(None))
        if "authority_recorded" in values:
            values["authority_recorded"] = _yes_no(values["authority_recorded"])
            values["authority_seen"] = guardians.c.authority  # the source's reading the person confirmed against
        result = conn.execute(update(guardians).where(*where).values(**values))
        return bool(result.rowcount)

    # -- exports for data subjects ----------------------------------------------------------------
    def record_export(self, conn: Connection, row: DossierRow, path: str, made: date, expires: date,
                      by: str) -> int:
        result = conn.execute(insert(exports).values(external_id=row.external_id, pseudonym=row.pseudonym,
                                                     path=path, made=made, expires=expires, by=by))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def exports_due(self, today: date) -> list[dict[str, Any]]:
        """Exports whose keeping time has passed and that are not removed yet."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(exports).where(
                exports.c.removed.is_(None), exports.c.expires <= today).order_by(exports.c.id)).mappings()]

    def export_removed(self, conn: Connection, export_id: int) -> None:
        conn.execute(update(exports).where(exports.c.id == export_id).values(removed=now()))

    def add_grant(self, conn: Connection, external_id: str, kind: str, grantee: str, parts: tuple[str, ...],
                  basis: str, start: date, until: date, reason: str, by: str) -> int:
        result = conn.execute(insert(grants).values(
            external_id=external_id, kind=kind, grantee=grantee, parts=json.dumps(list(parts)), basis=basis,
            start=start, until=until, reason=reason, by=by, at=now()))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def record_access_many(self, conn: Connection,
                           rows: list[tuple[str, str, str, list[str], date | None, list[str]]]) -> None:
        """``record_access`` for many (external id, part, fingerprint, principals, next change,
        waiting) at once."""
        if not rows:
            return
        stamp = now()
        latest = {(eid, part): {"external_id": eid, "part": part, "fingerprint": fp,
                                "principals": json.dumps(principals), "applied": stamp,
                                "next_change": upcoming, "waiting": json.dumps(waiting)}
                  for eid, part, fp, principals, upcoming, waiting in rows}  # the last per part wins
        _upsert_many(conn, acl_applied, list(latest.values()))

    def set_next_change(self, conn: Connection, external_id: str, next_change: date | None,
                        waiting: list[str]) -> None:
        conn.execute(update(acl_applied).where(acl_applied.c.external_id == external_id)
                     .values(next_change=next_change, waiting=json.dumps(waiting)))

    def waiting_for_accounts(self) -> dict[str, list[str]]:
        """Dossiers with rights that wait for a linked DMS account: external id -> principals."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(acl_applied.c.external_id, acl_applied.c.waiting).where(
                acl_applied.c.waiting.is_not(None), acl_applied.c.waiting != "[]")).all()
        return {eid: json.loads(w) for eid, w in rows}

    def access_unapplied(self) -> list[str]:
        """Dossiers in the DMS whose access was never applied (new ones)."""
        with self.engine.connect() as conn:
            applied = select(acl_applied.c.external_id).where(acl_applied.c.external_id == dossiers.c.external_id)
            return list(conn.execute(select(dossiers.c.external_id).where(
                dossiers.c.ref_id.is_not(None), ~applied.exists())).scalars())

    def access_due(self, today: date) -> list[str]:
        """Dossiers whose access the calendar changed by ``today`` (birthdays, grants)."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(acl_applied.c.external_id).distinct()
                                     .where(acl_applied.c.next_change <= today)).scalars())

    def link_account(self, conn: Connection, external_id: str, principal: str, account: str, by: str) -> None:
        conn.execute(delete(accounts).where(accounts.c.external_id == external_id, accounts.c.principal == principal))
        conn.execute(insert(accounts).values(external_id=external_id, principal=principal, account=account,
                                             by=by, at=now()))

    def completeness_facts(self) -> dict[str, Any]:
        """What the completeness report is computed from, in a few queries: per dossier the
        classes of its present documents and its untagged/unclassified counts, the latest OKR
        transfer, and the guardians whose authority nobody knows."""
        with self.engine.connect() as conn:
            classes: dict[str, set[str]] = {}
            untagged: dict[str, int] = {}
            unclassified: dict[str, int] = {}
            for eid, cls, tag, uncl in conn.execute(select(documents.c.external_id, documents.c.doc_class,
                                                           documents.c.tag, documents.c.unclassified)
                                                    .where(documents.c.status == "present")):
                if cls:
                    classes.setdefault(eid, set()).add(cls)
                if cls is None or uncl:
                    unclassified[eid] = unclassified.get(eid, 0) + 1
                if tag is None:
                    untagged[eid] = untagged.get(eid, 0) + 1
            okr = {r.external_id: r for r in conn.execute(select(transfers).where(transfers.c.kind == "okr")
                                                          .order_by(transfers.c.id))}
            unknown: dict[str, int] = dict(conn.execute(select(guardians.c.external_id, func.count()).where(
                guardians.c.removed_at.is_(None), guardians.c.deceased == 0, guardians.c.deceased_recorded.is_(None),
                guardians.c.authority.is_(None), guardians.c.authority_recorded.is_(None))
                .group_by(guardians.c.external_id)).all())
            with_guardians = set(conn.execute(select(guardians.c.external_id).distinct()
                                              .where(guardians.c.removed_at.is_(None))).scalars())
        return {"classes": classes, "untagged": untagged, "unclassified": unclassified, "okr": okr,
                "unknown_authority": unknown, "with_guardians": with_guardians,
                "recorded_guardians": self.recorded_guardians(None)}

    def recorded_guardians(self, external_ids: list[str] | None) -> dict[str, list[dict[str, Any]]]:
        """The current guardians of these dossiers (None: of all) about whom a person recorded
        authority or death."""
        out: dict[str, list[dict[str, Any]]] = {}
        recorded = (guardians.c.removed_at.is_(None),
                    or_(guardians.c.authority_recorded.is_not(None), guardians.c.deceased_recorded.is_not(None)))
        pages = [None] if external_ids is None else [external_ids[i:i + 900] for i in range(0, len(external_ids), 900)]
        with self.engine.connect() as conn:
            for ids in pages:
                q = select(guardians).where(*recorded).order_by(guardians.c.external_id, guardians.c.guardian_id)
                if ids is not None:
                    q = q.where(guardians.c.external_id.in_(ids))
                for g in conn.execute(q).mappings():
                    out.setdefault(g["external_id"], []).append(dict(g))
        return out

    def last_sync_report(self, school: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            report = conn.execute(select(runs.c.report).where(
                runs.c.school == school, runs.c.kind == "sync", runs.c.status.in_(("ok", "stopped")))
                .order_by(runs.c.id.desc()).limit(1)).scalar()
        return json.loads(report) if report else None

    def open_request(self, conn: Connection, row: DossierRow, kind: str, requester: str, received: date,
                     due: date, hold_id: int, by: str) -> int:
        result = conn.execute(insert(requests_t).values(
            external_id=row.external_id, pseudonym=row.pseudonym, kind=kind, requester=requester,
            received=received, due=due, hold_id=hold_id, status="open", by=by, at=now()))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def request(self, request_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(requests_t).where(requests_t.c.id == request_id)).mappings().first()
        return dict(row) if row else None

    def requests(self, status: str | None = "open", external_id: str | None = None) -> list[dict[str, Any]]:
        q = select(requests_t).order_by(requests_t.c.due, requests_t.c.id)
        if status:
            q = q.where(requests_t.c.status == status)
        if external_id:
            q = q.where(requests_t.c.external_id == external_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def update_request(self, conn: Connection, request_id: int, **values: Any) -> None:
        conn.execute(update(requests_t).where(requests_t.c.id == request_id).values(**values))

    def revoke_grant(self, conn: Connection, grant_id: int, on: date) -> dict[str, Any] | None:
        row = conn.execute(select(grants).where(grants.c.id == grant_id)).mappings().first()
        if row is None:
            return None
        conn.execute(update(grants).where(grants.c.id == grant_id).values(revoked=on))
        return dict(row)

    def last_good_snapshot(self, school: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(runs.c.pupils_seen).where(
                    runs.c.school == school, runs.c.status == "ok", runs.c.kind == "sync",
                ).order_by(runs.c.id.desc()).limit(1)
            ).scalar()

    def last_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]

    # -- staging: the snapshot as seen in this run ----------------------------------------------
    def stage(self, run_id: int, rows: list[Staged], cursor: str | None = None) -> None:
        """Stage a batch of the snapshot, with the source's cursor after it in the same
        transaction. The full spec is kept only for dossiers whose recorded state differs
        (looked up here, one indexed query per batch): in a steady state almost nothing but keys
        and hashes is written."""
        if not rows and cursor is None:
            return
        with self.transaction() as conn:
            if cursor is not None:
                self._put_cursor(conn, f"run:{run_id}", cursor)
            if not rows:
                return
            ids = [r.external_id for r in rows if r.external_id is not None]
            recorded = dict(conn.execute(
                select(dossiers.c.external_id, dossiers.c.fingerprint)
                .where(dossiers.c.external_id.in_(ids), dossiers.c.ref_id.is_not(None))
            ).all()) if ids else {}
            values = []
            for r in rows:
                fingerprint = r.spec.fingerprint if r.spec else None
                changed = r.spec is not None and recorded.get(r.external_id) != fingerprint
                values.append({
                    "run_id": run_id, "pseudonym": r.pseudonym, "external_id": r.external_id,
                    "fingerprint": fingerprint,
                    "spec": r.spec.model_dump_json() if changed and r.spec else None,
                    "dup_pgn": r.dup_pgn, "dup_nb": r.dup_nb, "rejected": 0 if r.spec else 1,
                    "departure": r.spec.departure if r.spec else None,
                })
            insert_many(conn, staging, values)
            self._stage_access(conn, run_id, rows)

    @staticmethod
    def _stage_access(conn: Connection, run_id: int, rows: list[Staged]) -> None:
        with_access = [r for r in rows if r.access is not None and r.external_id is not None and r.spec is not None]
        if not with_access:
            return
        recorded = dict(conn.execute(
            select(pupil_access.c.external_id, pupil_access.c.fingerprint)
            .where(pupil_access.c.external_id.in_([r.external_id for r in with_access]))).all())
        changed = []
        for r in with_access:
            fp = hashlib.sha256((r.access or "").encode()).hexdigest()
            if recorded.get(r.external_id) != fp:
                changed.append({"run_id": run_id, "external_id": r.external_id, "pseudonym": r.pseudonym,
                                "fingerprint": fp, "payload": r.access})
        insert_many(conn, staging_access, changed)

    def drop_staging(self, run_id: int) -> None:
        with self.transaction() as conn:
            others = conn.execute(select(staging.c.id).where(staging.c.run_id != run_id).limit(1)).first()
            if others is None:
                conn.execute(delete(staging))  # no WHERE: SQLite truncates instead of row-by-row
            else:
                conn.execute(delete(staging).where(staging.c.run_id == run_id))
            conn.execute(delete(staging_access).where(staging_access.c.run_id == run_id))

    def repeated_keys(self, run_id: int) -> list[str]:
        """Pseudonyms that occur more than once in one snapshot (ambiguous: not planned)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(staging.c.pseudonym).where(staging.c.run_id == run_id)
                .group_by(staging.c.pseudonym).having(func.count() > 1)
            ).scalars()
            return sorted(rows)

    def shared_dossier_keys(self, run_id: int) -> list[str]:
        """Pseudonyms of different records in one snapshot that share a dossier key (two pupils
        with one BSN, onderwijsnummer or ECK-iD under that ``[identity] key``): no dossier can be
        told to belong to one of them, so none is planned."""
        with self.engine.connect() as conn:
            shared = (select(staging.c.external_id).where(staging.c.run_id == run_id,
                                                          staging.c.external_id.is_not(None))
                      .group_by(staging.c.external_id).having(func.count(staging.c.pseudonym.distinct()) > 1))
            return sorted(set(conn.execute(select(staging.c.pseudonym).where(
                staging.c.run_id == run_id, staging.c.external_id.in_(shared))).scalars()))

    def suspected_duplicates(self, run_id: int, group_limit: int = GROUP_LIMIT) -> list[Suspected]:
        """Pupils that look like one child: within the snapshot, and against recorded dossiers
        of other keys. Dismissed pairs are left out. More than ``group_limit`` pupils sharing
        one hash (a placeholder value) are one group, not n² pairs: memory and time stay linear
        in the number of pupils."""
        found: dict[tuple[str, str], set[str]] = {}
        groups_out: list[Suspected] = []
        with self.engine.connect() as conn:
            for col, basis in (("dup_pgn", "bsn/onderwijsnummer"), ("dup_nb", "geboortedatum en naam")):
                sizes: dict[str, int] = dict(conn.execute(
                    select(staging.c[col], func.count(staging.c.pseudonym.distinct()))
                    .where(staging.c.run_id == run_id, staging.c[col].is_not(None))
                    .group_by(staging.c[col]).having(func.count(staging.c.pseudonym.distinct()) > 1)).all())
                large = {v for v, n in sizes.items() if n > group_limit}
                groups: dict[str, set[str]] = {}
                for i in range(0, len(sizes), 900):
                    values = list(sizes)[i:i + 900]
                    for value, pseudonym in conn.execute(select(staging.c[col], staging.c.pseudonym).where(
                            staging.c.run_id == run_id, staging.c[col].in_(values))):
                        groups.setdefault(value, set()).add(pseudonym)
                pairs = [(a, b) for value, members in groups.items() if value not in large
                         for a in members for b in members if a < b]
                for value in sorted(large, key=lambda v: sorted(groups[v])[0]):
                    members = tuple(sorted(groups[value]))
                    groups_out.append(Suspected(members[0], members[-1], basis, members))
                # recorded dossiers of pupils absent from this snapshot (left, vanished, re-keyed)
                # that share a hash with a pupil in it; pupils in it were compared just above
                absent = ~exists().where(staging.c.run_id == run_id, staging.c.pseudonym == dossiers.c.pseudonym)
                s2 = staging.alias("s2")
                query = select(s2.c.pseudonym, dossiers.c.pseudonym).join(
                    s2, and_(s2.c.run_id == run_id, s2.c[col] == dossiers.c[col])
                ).where(dossiers.c[col].is_not(None), absent)
                if large:
                    query = query.where(s2.c[col].not_in(list(large)))
                recorded = conn.execute(query).all()
                for a, b in [*pairs, *recorded]:
                    x, y = sorted((a, b))
                    found.setdefault((x, y), set()).add(basis)
            gone = {(r.a, r.b) for r in conn.execute(select(dismissed.c.a, dismissed.c.b))}
        return [*groups_out, *(Suspected(a, b, " + ".join(sorted(bases)))
                               for (a, b), bases in sorted(found.items()) if (a, b) not in gone)]

    def dismiss_duplicate(self, a: str, b: str, by: str) -> None:
        x, y = sorted((a, b))
        with self.transaction() as conn:
            exists_ = conn.execute(select(dismissed.c.a).where(dismissed.c.a == x, dismissed.c.b == y)).first()
            if not exists_:
                conn.execute(insert(dismissed).values(a=x, b=y, by=by, at=now()))

    def changes(self, run_id: int, after: int, limit: int) -> list[Change]:
        """Staged dossiers whose recorded state differs (or is missing), a page at a time."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(staging.c.id, staging.c.spec, staging.c.dup_pgn, staging.c.dup_nb,
                       dossiers.c.external_id, dossiers.c.pseudonym, dossiers.c.ref_id,
                       dossiers.c.fingerprint, dossiers.c.spec.label("recorded_spec"))
                .select_from(staging.outerjoin(dossiers, dossiers.c.external_id == staging.c.external_id))
                .where(staging.c.run_id == run_id, staging.c.spec.is_not(None), staging.c.id > after,
                       or_(dossiers.c.external_id.is_(None), dossiers.c.ref_id.is_(None),
                           dossiers.c.fingerprint != staging.c.fingerprint))
                .order_by(staging.c.id).limit(limit)
            ).all()
        out = []
        for r in rows:
            spec = DossierSpec.model_validate_json(r.spec)
            recorded = None
            if r.external_id is not None:
                recorded = RecordedDossier(
                    external_id=r.external_id, pseudonym=r.pseudonym, ref_id=r.ref_id,
                    fingerprint=r.fingerprint,
                    spec=DossierSpec.model_validate_json(r.recorded_spec) if r.recorded_spec else None,
                )
            out.append(Change(r.id, spec, recorded, r.dup_pgn, r.dup_nb))
        return out

    def refresh_seen(self, run_id: int, school: str, today: date, write: bool = True
                     ) -> tuple[list[tuple[str, str, date]], list[str]]:
        """Record who was seen; mark dossiers of this school that vanished without a departure
        date (kept, reported). Returns every such dossier (external id, pseudonym, first missed)
        and the external ids of dossiers that were missing and are back. ``write=False``: only
        report."""
        seen = exists().where(staging.c.run_id == run_id, staging.c.pseudonym == dossiers.c.pseudonym)
        missing = and_(dossiers.c.school == school, dossiers.c.departure.is_(None), ~seen)
        listing = select(dossiers.c.external_id, dossiers.c.pseudonym, dossiers.c.vanished_since).where(
            missing).order_by(dossiers.c.pseudonym)
        back = select(dossiers.c.external_id).where(dossiers.c.school == school, seen,
                                                    dossiers.c.vanished_since.is_not(None))
        if not write:
            with self.engine.connect() as conn:
                rows = conn.execute(listing).all()
                returned = list(conn.execute(back).scalars())
            return [(r[0], r[1], r[2] or today) for r in rows], returned
        # only rows whose value changes are written: a sync that finds everyone present and
        # unchanged rewrites no dossier row (each rewrite is a dead row and its index entries)
        with self.transaction() as conn:
            returned = list(conn.execute(back).scalars())
            conn.execute(update(dossiers).where(dossiers.c.school == school, seen,
                                                dossiers.c.vanished_since.is_not(None))
                         .values(vanished_since=None))
            for col in ("dup_pgn", "dup_nb"):
                newer = (select(staging.c[col]).where(staging.c.run_id == run_id,
                                                     staging.c.external_id == dossiers.c.external_id,
                                                     staging.c.rejected == 0)
                         .limit(1).scalar_subquery())
                conn.execute(update(dossiers).where(dossiers.c.school == school, seen,
                                                    dossiers.c[col].is_distinct_from(newer))
                             .values({col: newer}))
            conn.execute(update(dossiers).where(missing, dossiers.c.vanished_since.is_(None))
                         .values(vanished_since=today))
            rows = conn.execute(listing).all()
        return [(r[0], r[1], r[2]) for r in rows], returned

    def pupil_dates(self, external_id: str) -> tuple[date | None, date | None]:
        """The birth date and the enrolment date (instroomdatum) as last recorded from the LAS,
        where the source gave them: what a departure date recorded by hand is checked against."""
        with self.engine.connect() as conn:
            born = conn.execute(select(pupil_access.c.birth_date)
                                .where(pupil_access.c.external_id == external_id)).scalar()
            spec = conn.execute(select(dossiers.c.spec).where(dossiers.c.external_id == external_id)).scalar()
        enrolled = None
        if spec:
            value = json.loads(spec).get("properties", {}).get("instroomdatum")
            try:
                enrolled = date.fromisoformat(value) if value else None
            except ValueError:
                enrolled = None
        return born, enrolled

    def new_departures(self, run_id: int) -> int:
        """Recorded dossiers that had no departure date and gain one in this snapshot."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(
                staging.join(dossiers, dossiers.c.external_id == staging.c.external_id)).where(
                staging.c.run_id == run_id, staging.c.rejected == 0, staging.c.departure.is_not(None),
                dossiers.c.departure.is_(None), dossiers.c.ref_id.is_not(None))).scalar() or 0)

    def departure_ending(self, run_id: int) -> list[tuple[str, date | None]]:
        """Pupils in this snapshot without a departure date who had one (from the LAS, or
        recorded by a person), with the LAS's departure as recorded before this snapshot: each
        may be a re-enrolment, whatever else changed."""
        with self.engine.connect() as conn:
            staged = select(staging.c.external_id).where(
                staging.c.run_id == run_id, staging.c.rejected == 0, staging.c.external_id.is_not(None),
                staging.c.departure.is_(None))
            from_las = dict(conn.execute(select(dossiers.c.external_id, dossiers.c.departure).where(
                dossiers.c.external_id.in_(staged), dossiers.c.departure.is_not(None))).all())
            by_hand = set(conn.execute(select(facts.c.external_id).where(
                facts.c.external_id.in_(staged), facts.c.kind == "departure")).scalars())
        return sorted((eid, from_las.get(eid)) for eid in set(from_las) | by_hand)

    def dossier_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(dossiers)).scalar() or 0)

    def recorded(self, external_id: str) -> RecordedDossier | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(dossiers).where(dossiers.c.external_id == external_id)).first()
        if r is None:
            return None
        return RecordedDossier(
            external_id=r.external_id, pseudonym=r.pseudonym, ref_id=r.ref_id,
            fingerprint=r.fingerprint, spec=DossierSpec.model_validate_json(r.spec) if r.spec else None,
        )

    def dossier_rows(self, external_ids: list[str] | None = None) -> list[DossierRow]:
        stmt = select(*_DOSSIER_ROW).order_by(dossiers.c.external_id)
        if external_ids is not None:
            stmt = stmt.where(dossiers.c.external_id.in_(external_ids))
        with self.engine.connect() as conn:
            return [DossierRow(*r) for r in conn.execute(stmt).all()]

    def find_pupil(self, pseudonyms: list[str]) -> list[DossierRow]:
        """Dossiers whose pseudonymous key is one of these."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_DOSSIER_ROW).where(dossiers.c.pseudonym.in_(pseudonyms))).all()
        return [DossierRow(*r) for r in rows]

    def schools(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(dossiers.c.school).distinct()).scalars())

    # -- facts that move retention clocks ---------------------------------------------------------
    def record_fact(self, conn: Connection, external_id: str, kind: str, on: date | None, by: str,
                    note: str | None = None) -> None:
        if kind not in FACT_KINDS:
            raise ValueError(f"unknown fact {kind!r}")
        conn.execute(insert(facts).values(external_id=external_id, kind=kind, on=on, by=by, at=now(), note=note))

    def facts_for(self, external_id: str, las_departure: date | None) -> PupilFacts:
        """The latest recorded value of each fact (None when withdrawn). A departure date from
        the LAS wins over one recorded by hand."""
        return self.facts_map({external_id: las_departure})[external_id]

    def facts_map(self, departures: dict[str, date | None]) -> dict[str, PupilFacts]:
        """``facts_for`` for many dossiers at once (external id -> LAS departure)."""
        latest: dict[str, dict[str, date | None]] = {}
        ids = list(departures)
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 900):
                for eid, kind, on in conn.execute(select(facts.c.external_id, facts.c.kind, facts.c.on)
                                                  .where(facts.c.external_id.in_(ids[i:i + 900]))
                                                  .order_by(facts.c.id)):
                    latest.setdefault(eid, {})[kind] = on
        out = {}
        for eid, las in departures.items():
            f = latest.get(eid, {})
            out[eid] = PupilFacts(departure=las or f.get("departure"), referred=f.get("referred"),
                                  reunion_consent=f.get("reunion_consent"), reenrolled=f.get("reenrolled"),
                                  exam_result=f.get("exam_result"))
        return out

    def holds_map(self) -> dict[str, set[str | None]]:
        """Active holds: external id -> parts held (None: the whole dossier)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(holds.c.external_id, holds.c.part).where(holds.c.removed_at.is_(None))).all()
        out: dict[str, set[str | None]] = {}
        for eid, part in rows:
            out.setdefault(eid, set()).add(part)
        return out

    def holds_map_for(self, external_id: str) -> set[str | None]:
        """The parts of one dossier under an active hold (None: the whole dossier)."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(holds.c.part).where(holds.c.external_id == external_id,
                                                               holds.c.removed_at.is_(None))).scalars())

    def present_documents(self, *where: ColumnElement[bool], page: int = 10_000
                          ) -> Iterator[tuple[list[Any], dict[str, PupilFacts]]]:
        """Recorded documents still in the DMS (and matching ``where``), a page at a time in
        document-id order, each page with the facts of its pupils: what every retention pass
        over the whole state starts from. Memory is flat in the number of documents."""
        after = ""
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(documents.c.id, documents.c.external_id, documents.c.dossier_id, documents.c.part,
                           documents.c.doc_class, documents.c.tag, dossiers.c.pseudonym, dossiers.c.school,
                           dossiers.c.departure)
                    .join(dossiers, dossiers.c.external_id == documents.c.external_id)
                    .where(documents.c.status == "present", documents.c.id > after, *where)
                    .order_by(documents.c.id).limit(page)).all()
            if not rows:
                return
            after = rows[-1].id
            yield list(rows), self.facts_map({r.external_id: r.departure for r in rows})

    def fact_history(self, external_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(facts).where(facts.c.external_id == external_id).order_by(facts.c.id))
            return [dict(r._mapping) for r in rows]

    # -- documents as tagged ----------------------------------------------------------------------
    def document_tags(self, external_id: str) -> dict[str, tuple[str | None, str]]:
        """doc id -> (tag JSON as last written, status)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(documents.c.id, documents.c.tag, documents.c.status)
                                .where(documents.c.external_id == external_id)).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    def mark_gone(self, conn: Connection, doc_ids: list[str]) -> None:
        """Documents that left the DMS by another route than the connector."""
        if doc_ids:
            conn.execute(update(documents).where(documents.c.id.in_(doc_ids), documents.c.status == "present")
                         .values(status="gone", updated=now()))

    # -- holds ------------------------------------------------------------------------------
    def add_hold(self, conn: Connection, row: DossierRow, part: str | None, reason: str, by: str) -> int:
        result = conn.execute(insert(holds).values(external_id=row.external_id, pseudonym=row.pseudonym,
                                                   part=part, reason=reason, by=by, at=now()))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def remove_hold(self, conn: Connection, hold_id: int, by: str, reason: str) -> dict[str, Any] | None:
        row = conn.execute(select(holds).where(holds.c.id == hold_id, holds.c.removed_at.is_(None))).first()
        if row is None:
            return None
        conn.execute(update(holds).where(holds.c.id == hold_id)
                     .values(removed_by=by, removed_at=now(), removed_reason=reason))
        return dict(row._mapping)

    def active_holds(self, external_id: str | None = None) -> list[dict[str, Any]]:
        stmt = select(holds).where(holds.c.removed_at.is_(None)).order_by(holds.c.id)
        if external_id is not None:
            stmt = stmt.where(holds.c.external_id == external_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def on_hold(self, external_id: str, part: str) -> bool:
        """Is this dossier, or this part of it, under a hold right now?"""
        with self.engine.connect() as conn:
            return conn.execute(select(holds.c.id).where(
                holds.c.external_id == external_id, holds.c.removed_at.is_(None),
                or_(holds.c.part.is_(None), holds.c.part == part)).limit(1)).first() is not None

    # -- journal ----------------------------------------------------------------------------
    def journal_add(self, conn: Connection, run_id: int,
                    ops: list[tuple[Operation, str | None, str | None]]) -> list[int]:
        if not ops:
            return []
        stamp = now()
        # one batched INSERT ... RETURNING; the ids come back in the order of ``ops``
        result = conn.execute(insert(journal).returning(journal.c.id, sort_by_parameter_order=True), [
            {"run_id": run_id, "kind": op.kind, "external_id": op.external_id, "target": op.target,
             "pseudonym": op.pseudonym, "payload": op.model_dump_json(), "status": "new", "attempts": 0,
             "dup_pgn": dup_pgn, "dup_nb": dup_nb, "updated": stamp} for op, dup_pgn, dup_nb in ops])
        return [int(row[0]) for row in result]

    def journal_mark(self, op_id: int, status: str, error: str | None = None,
                     conn: Connection | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated": now(), "error": error}
        if status == "sent":
            values["attempts"] = journal.c.attempts + 1
        stmt = update(journal).where(journal.c.id == op_id).values(values)
        if conn is not None:
            conn.execute(stmt)
        else:
            with self.transaction() as c:
                c.execute(stmt)

    def journal_mark_many(self, op_ids: list[int], status: str) -> None:
        """``journal_mark`` for many rows in one transaction (no error text)."""
        values: dict[str, Any] = {"status": status, "updated": now(), "error": None}
        if status == "sent":
            values["attempts"] = journal.c.attempts + 1
        with self.transaction() as conn:
            for i in range(0, len(op_ids), 900):
                conn.execute(update(journal).where(journal.c.id.in_(op_ids[i:i + 900])).values(values))

    def journal_unmark(self, conn: Connection, op_ids: list[int]) -> None:
        """Rows marked ``sent`` but never handed to the DMS (the run halted first): back to
        ``new``, their attempt not counted."""
        conn.execute(update(journal).where(journal.c.id.in_(op_ids), journal.c.status == "sent")
                     .values(status="new", attempts=journal.c.attempts - 1, updated=now()))

    def pending(self, kinds: tuple[str, ...] | None = None) -> list[JournalRow]:
        """Journal rows not yet done (``new``, ``sent``; ``failed`` ones are retried too)."""
        # the index's own predicate, as literal SQL: a planner proves that a query may use a
        # partial index only from values it can see, not from parameters
        cond: ColumnElement[bool] | TextClause = text(OPEN_SQL)
        if kinds is not None:
            cond = and_(cond, journal.c.kind.in_(kinds))
        with self.engine.connect() as conn:
            rows = conn.execute(select(journal).where(cond)
                                .order_by(journal.c.id)).all()
        return [
            JournalRow(id=r.id, run_id=r.run_id, kind=r.kind, status=r.status, attempts=r.attempts,
                       operation=Operation.model_validate_json(r.payload), dup_pgn=r.dup_pgn,
                       dup_nb=r.dup_nb)
            for r in rows
        ]

    def skip(self, op_id: int, op: Operation, reason: str) -> None:
        """A guarded operation was not sent: record why (journal row and destruction item)."""
        with self.transaction() as conn:
            conn.execute(update(journal).where(journal.c.id == op_id)
                         .values(status="skipped", error=reason, updated=now()))
            if op.item_id is not None and op.kind == "destroy_document":
                # an item done already stays done: a late duplicate never rewrites it
                conn.execute(update(destruction_items).where(destruction_items.c.id == op.item_id,
                                                             destruction_items.c.status != "destroyed")
                             .values(status="skipped", detail=reason, done_at=now()))
            elif op.item_id is not None:  # a purge held back: the document stays in the trash
                conn.execute(update(destruction_items).where(destruction_items.c.id == op.item_id)
                             .values(detail=f"kept in the trash: {reason}"))

    def overview(self) -> dict[str, Any]:
        """Counts an operator checks: documents by status, open destruction lists, active holds,
        and documents whose removal at the source after a transfer did not finish."""
        with self.engine.connect() as conn:
            docs: dict[str, int] = {r[0]: int(r[1]) for r in conn.execute(
                select(documents.c.status, func.count()).group_by(documents.c.status))}
            lists: dict[str, int] = {r[0]: int(r[1]) for r in conn.execute(
                select(destruction_lists.c.status, func.count()).group_by(destruction_lists.c.status))}
            active_holds = conn.execute(select(func.count()).select_from(holds)
                                        .where(holds.c.removed_at.is_(None))).scalar()
            stuck = conn.execute(select(dossiers.c.pseudonym).join(
                documents, documents.c.external_id == dossiers.c.external_id
            ).where(documents.c.status == "transferring").distinct()).scalars().all()
        return {"documents": docs, "destruction_lists": lists,
                "active_holds": int(active_holds or 0), "transfer_unfinished": sorted(stuck)}

    def journal_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(journal.c.status, func.count()).group_by(journal.c.status)).all()
        return {r[0]: int(r[1]) for r in rows}

    def record_done(self, conn: Connection, op_id: int, op: Operation, ref_id: str,
                    dup_pgn: str | None, dup_nb: str | None, trashed: bool = False, on: date | None = None) -> None:
        """Mark a journal row done and record what the DMS now holds (inside the caller's
        transaction, together with the audit entry)."""
        if op.kind not in GUARDED_KINDS:
            self.record_done_many(conn, [(op_id, op, ref_id, dup_pgn, dup_nb)])
            return
        stamp = now()
        conn.execute(update(journal).where(journal.c.id == op_id)
                     .values(status="done", ref_id=ref_id, error=None, updated=stamp))
        if op.document is None:
            return
        if op.kind == "purge_document":
            conn.execute(update(documents).where(documents.c.id == op.document.id)
                         .values(status="destroyed", updated=stamp))
            if op.item_id is not None:
                conn.execute(update(destruction_items).where(destruction_items.c.id == op.item_id)
                             .values(purged_at=stamp, detail=None))
            return
        conn.execute(update(documents).where(documents.c.id == op.document.id)
                     .values(status="trashed" if trashed else "destroyed", updated=stamp))
        if op.item_id is not None:
            conn.execute(update(destruction_items).where(destruction_items.c.id == op.item_id)
                         .values(status="destroyed", done_at=stamp, trashed_on=on or date.today(),
                                 detail="in the DMS trash until purged" if trashed else None))

    def record_done_many(self, conn: Connection, done: list[tuple[int, Operation, str, str | None, str | None]]
                         ) -> None:
        """Mark creates, updates and tags done (op id, operation, DMS id, duplicate keys), in
        order, and record what the DMS now holds: a few pipelined statements for the group. An
        older unfinished row for the same dossier or document, of the same family, is superseded:
        it must never be replayed over this newer state."""
        if not done:
            return
        if any(op.kind in GUARDED_KINDS for _, op, *_ in done):
            raise ValueError("destroys and purges are recorded one by one")
        stamp = now()
        marks = [{"id": op_id, "ref_id": ref_id} for op_id, _, ref_id, _, _ in done]
        if conn.dialect.name == "postgresql":  # one UPDATE ... FROM the rows, not one per row
            given = _rows_select(journal, marks).subquery()
            conn.execute(update(journal).where(journal.c.id == given.c.id)
                         .values(status="done", ref_id=given.c.ref_id, error=None, updated=stamp))
        else:
            conn.execute(update(journal).where(journal.c.id == bindparam("oid"))
                         .values(status="done", ref_id=bindparam("ref"), error=None, updated=stamp),
                         [{"oid": m["id"], "ref": m["ref_id"]} for m in marks])
        for family in (DOSSIER_KINDS, ("tag_document",)):
            newest: dict[str, int] = {}  # target -> its newest operation done now
            for op_id, op, *_ in done:
                if op.kind in family and op_id > newest.get(op.target, 0):
                    newest[op.target] = op_id
            self._supersede(conn, family, newest, stamp)
        # the last state per dossier and per document wins, as it would one by one
        dossier_rows = {op.external_id: {"external_id": op.external_id, **self._dossier_values(op, ref_id, pgn, nb)}
                        for _, op, ref_id, pgn, nb in done if op.kind in DOSSIER_KINDS}
        _upsert_many(conn, dossiers, list(dossier_rows.values()))
        document_rows = {op.document.id: {"id": op.document.id,
                                          **self._document_values(op.external_id, op.document, op.tag)}
                         for _, op, *_ in done
                         if op.kind == "tag_document" and op.document is not None and op.tag is not None}
        _upsert_many(conn, documents, list(document_rows.values()))

    @staticmethod
    def _supersede(conn: Connection, family: tuple[str, ...], newest: dict[str, int], stamp: str) -> None:
        """Mark ``superseded`` the unfinished rows of this family older than the newest one done
        for their target. One query per few hundred targets finds them (in a sync that resumes
        nothing there are none), instead of one UPDATE per operation that looks for them."""
        targets = list(newest)
        older: list[int] = []
        for i in range(0, len(targets), 900):
            found = conn.execute(select(journal.c.id, journal.c.target).where(
                journal.c.target.in_(targets[i:i + 900]), journal.c.kind.in_(family), text(OPEN_SQL)))
            older += [row.id for row in found if row.id < newest[row.target]]
        for i in range(0, len(older), 900):
            conn.execute(update(journal).where(journal.c.id.in_(older[i:i + 900]))
                         .values(status="superseded", updated=stamp))

    @staticmethod
    def _dossier_values(op: Operation, ref_id: str, dup_pgn: str | None, dup_nb: str | None) -> dict[str, Any]:
        spec = op.dossier_spec()
        return dict(
            pseudonym=op.pseudonym, school=spec.school, ref_id=ref_id, fingerprint=spec.fingerprint,
            spec=spec.model_dump_json(), departure=spec.departure, dup_pgn=dup_pgn, dup_nb=dup_nb,
            vanished_since=None, updated=now(),
        )

    @staticmethod
    def _document_values(external_id: str, doc: DocumentRef, tag: RetentionTag) -> dict[str, Any]:
        return dict(
            external_id=external_id, dossier_id=doc.dossier_id, part=doc.part, doc_class=tag.doc_class,
            category=tag.category, kind=tag.kind, due=tag.due, blocked=int(tag.blocked),
            unclassified=int(tag.unclassified), basis=tag.basis, tag=tag.model_dump_json(),
            status="present", updated=now(),
        )

    def record_document(self, conn: Connection, external_id: str, doc: DocumentRef, tag: RetentionTag) -> None:
        _upsert_many(conn, documents, [{"id": doc.id, **self._document_values(external_id, doc, tag)}])
