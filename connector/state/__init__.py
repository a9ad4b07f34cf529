"""The state store: what the connector recorded of the DMS, the journal, runs and the audit log.

SQLite by default (WAL, so a killed process loses nothing that was committed); any SQLAlchemy
URL works for the same schema, so the PostgreSQL backend is this module with another URL.
SQLAlchemy Core (not the ORM): one schema and one set of queries for both databases.

Journal rows are a small state machine: ``new`` (planned) -> ``sent`` (about to call the DMS)
-> ``done`` | ``failed``. A row is written and committed before the DMS is called; the next
run finishes every row that is not ``done``.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from connector.state.access import AccessStore
from connector.state.audit import AuditStore
from connector.state.db import (
    AFTER_COMMIT,
    MIGRATIONS,
    Database,
    SharedEngines,
    after_commit,
    head_revision,
    insert_many,
    migrate,
    now,
    peek,
)
from connector.state.destruction import DestructionStore
from connector.state.identities import ALIAS_KINDS, IdentityStore, Target
from connector.state.journal import JournalStore
from connector.state.records import RecordsStore
from connector.state.requests import RequestsStore
from connector.state.rows import FACT_KINDS, GROUP_LIMIT, Change, DossierRow, JournalRow, Staged, Suspected
from connector.state.schema import (
    BASELINE,
    OPEN,
    OPEN_ITEM,
    OPEN_LIST,
    OPEN_SQL,
    accounts,
    acl_applied,
    aliases,
    audit_head,
    audit_log,
    cursors,
    destruction_approvals,
    destruction_items,
    destruction_lists,
    dismissed,
    documents,
    dossiers,
    exports,
    facts,
    grants,
    guardians,
    holds,
    journal,
    meta,
    metadata,
    pupil_access,
    requests_t,
    runs,
    staging,
    staging_access,
    transfers,
    users,
)
from connector.state.snapshot import SnapshotStore
from connector.state.users import UsersStore


class StateStore(SnapshotStore, IdentityStore, AccessStore, RequestsStore, RecordsStore, JournalStore, UsersStore,
                 AuditStore, DestructionStore):
    """The state store: one class over the concerns of the modules beside it, each a part of
    the store on one engine (``Database``: its transactions, locks and schema)."""


__all__ = [
    "AFTER_COMMIT",
    "ALIAS_KINDS",
    "BASELINE",
    "FACT_KINDS",
    "GROUP_LIMIT",
    "MIGRATIONS",
    "OPEN",
    "OPEN_ITEM",
    "OPEN_LIST",
    "OPEN_SQL",
    "Change",
    "Connection",
    "Database",
    "DossierRow",
    "JournalRow",
    "SharedEngines",
    "Staged",
    "StateStore",
    "Suspected",
    "Target",
    "accounts",
    "acl_applied",
    "after_commit",
    "aliases",
    "audit_head",
    "audit_log",
    "cursors",
    "destruction_approvals",
    "destruction_items",
    "destruction_lists",
    "dismissed",
    "documents",
    "dossiers",
    "exports",
    "facts",
    "grants",
    "guardians",
    "head_revision",
    "holds",
    "insert_many",
    "journal",
    "meta",
    "metadata",
    "migrate",
    "now",
    "peek",
    "pupil_access",
    "requests_t",
    "runs",
    "staging",
    "staging_access",
    "transfers",
    "users"
]
