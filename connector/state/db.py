"""Engines, migrations, locks and bulk helpers of the state store, and ``Database``: the
connection, transaction and lock every part of the store works through."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import itemgetter
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
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    cast,
    column,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from connector.errors import ConfigError, InvalidState, SafetyStop
from connector.state.schema import BASELINE, metadata, sources

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

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


def update_many(conn: Connection, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    """UPDATE these rows (all with the same keys, ``key`` naming the row): one statement from a
    JSON recordset on PostgreSQL; on SQLite one prepared statement the driver runs for every row,
    with the values as plain tuples (building SQLAlchemy parameters per row cost more than the
    UPDATE itself)."""
    if not rows:
        return
    names = [n for n in rows[0] if n != key]
    if conn.dialect.name == "postgresql":
        values = _rows_select(table, rows).subquery("v")
        conn.execute(update(table).where(table.c[key] == values.c[key]).values(
            {n: values.c[n] for n in names}))
        return
    compiled = update(table).where(table.c[key] == bindparam("key_")).values(
        {n: bindparam(n) for n in names}).compile(dialect=conn.dialect)
    order = [key if p == "key_" else p for p in compiled.positiontup or ()]
    get = itemgetter(*order)
    days = [i for i, n in enumerate(order) if isinstance(table.c[n].type, Date)]
    params: list[Any] = [get(r) for r in rows]
    if days:  # as SQLAlchemy's SQLite Date stores a day: YYYY-MM-DD
        params = [tuple(v.isoformat() if i in days and v is not None else v for i, v in enumerate(p)) for p in params]
    conn.exec_driver_sql(str(compiled), params)


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


def move(conn: Connection, table: Table, machine: str, target: str, *where: ColumnElement[bool],
         expect: int | None = None, **values: Any) -> int:
    """Move the rows of TABLE that WHERE selects to status TARGET of MACHINE, only from the
    statuses that may move there (``schema.MOVES``); returns how many moved. With ``expect``:
    fewer is an ``InvalidState`` (the row is missing or in a status it may not leave that way)."""
    stmt = update(table).where(*where, table.c.status.in_(sources(machine, target))).values(status=target, **values)
    moved = int(conn.execute(stmt).rowcount)
    if expect is not None and moved != expect:
        raise InvalidState(f"{table.name}: {expect - moved} row(s) are not in a status that may move to {target!r}")
    return moved


def now() -> str:
    """The current time as stored: UTC, ISO 8601 to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


AFTER_COMMIT = "leerdossier.after_commit"


def after_commit(conn: Connection, key: str, fn: Any) -> None:
    """Run ``fn`` once the transaction of ``conn`` (opened with ``StateStore.transaction``) has
    committed; a later registration under the same ``key`` replaces an earlier one."""
    conn.info.setdefault(AFTER_COMMIT, {})[key] = fn


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-32768")  # 32 MiB page cache: lookups stay in memory at 100k+ dossiers
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA wal_autocheckpoint=16384")
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
        """Close every pooled engine (a worker stopping)."""
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


class Database:
    """One state store's engine: its transactions, its locks, its schema."""

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
        """Close the engine, when this store made it (a shared one stays open for the others)."""
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
