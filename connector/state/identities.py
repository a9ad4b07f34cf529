"""Other LAS keys of the same child: aliases a person linked, a change of LAS mapped, or an
ECK-iD found. An alias takes a record of that key to the dossier it belongs to."""

from __future__ import annotations

from dataclasses import dataclass

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.engine import Connection

from connector.state.db import Database, insert_many, now
from connector.state.schema import aliases, dossiers, staging, staging_access

ALIAS_KINDS = ("link", "rekey", "eckid")


@dataclass(frozen=True)
class Target:
    """Where a record goes: the dossier's external id and pseudonym, and why (an alias's kind;
    ``found``: an ECK-iD found it in this run; ``retired``: the record is of a dossier's own key
    after another key was linked to it)."""

    external_id: str
    pseudonym: str
    kind: str


class IdentityStore(Database):
    def identity_epoch(self) -> str:
        """Changes whenever an alias is made or taken back (a link, a change of LAS, an ECK-iD
        kept): what a record becomes may then differ though the record is the same."""
        with self.engine.connect() as conn:
            n, last = conn.execute(select(func.count(), func.max(aliases.c.at)).select_from(aliases)).one()
        return f"{n}:{last or ''}"

    def has_identities(self) -> bool:
        """Whether a sync must look for aliases and ECK-iDs at all (nothing to look up in a store
        without aliases or a single ECK-iD recorded: the usual case costs nothing)."""
        with self.engine.connect() as conn:
            return (conn.execute(select(aliases.c.pseudonym).limit(1)).first() is not None
                    or conn.execute(select(dossiers.c.external_id).where(dossiers.c.dup_eck.is_not(None))
                                    .limit(1)).first() is not None)

    def alias_targets(self, pseudonyms: list[str]) -> dict[str, Target]:
        """The dossier each of these pseudonyms is an alias of (only aliases whose dossier is
        recorded)."""
        if not pseudonyms:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(aliases.c.pseudonym, aliases.c.external_id, aliases.c.kind,
                                       dossiers.c.pseudonym.label("dossier"))
                                .join(dossiers, dossiers.c.external_id == aliases.c.external_id)
                                .where(aliases.c.pseudonym.in_(pseudonyms))).all()
        return {r.pseudonym: Target(r.external_id, r.dossier, r.kind) for r in rows}

    def linked_dossiers(self, external_ids: list[str]) -> set[str]:
        """Those of these dossiers that another key was linked to."""
        if not external_ids:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(select(aliases.c.external_id).distinct()
                                    .where(aliases.c.external_id.in_(external_ids))).scalars())

    def recorded_dossiers(self, external_ids: list[str]) -> set[str]:
        """Those of these external ids that have a dossier row."""
        if not external_ids:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(select(dossiers.c.external_id)
                                    .where(dossiers.c.external_id.in_(external_ids))).scalars())

    def by_eckid(self, hashes: list[str]) -> dict[str, list[tuple[str, str, str]]]:
        """Recorded dossiers by the keyed hash of their ECK-iD: hash -> [(external id, pseudonym,
        school)]."""
        if not hashes:
            return {}
        out: dict[str, list[tuple[str, str, str]]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(dossiers.c.dup_eck, dossiers.c.external_id, dossiers.c.pseudonym,
                                         dossiers.c.school).where(dossiers.c.dup_eck.in_(hashes))):
                out.setdefault(r.dup_eck, []).append((r.external_id, r.pseudonym, r.school))
        return out

    def settle_found(self, run_id: int) -> list[tuple[str, str]]:
        """Records an ECK-iD took to a dossier in this run, while another record of this snapshot
        went to the same dossier (its own key is still in the LAS, or two records share the
        ECK-iD): the ECK-iD does not decide which is the child's. Each such record is put back
        under its own key, unplanned, and is then a suspected duplicate by its ECK-iD; the
        dossier's access facts wait a run. Returns (own pseudonym, dossier pseudonym)."""
        other = staging.alias("other")
        clash = exists().where(other.c.run_id == run_id, other.c.external_id == staging.c.external_id,
                               other.c.id != staging.c.id)
        with self.transaction() as conn:
            rows = conn.execute(select(staging.c.id, staging.c.via, staging.c.pseudonym, staging.c.external_id)
                                .where(staging.c.run_id == run_id, staging.c.via_kind == "found", clash)).all()
            if not rows:
                return []
            conn.execute(delete(staging_access).where(staging_access.c.run_id == run_id, staging_access.c.external_id
                                                      .in_({r.external_id for r in rows})))
            for r in rows:
                conn.execute(update(staging).where(staging.c.id == r.id).values(
                    pseudonym=r.via, external_id=None, spec=None, fingerprint=None, departure=None, rejected=1,
                    via=None, via_kind=None))
        return sorted((str(r.via), str(r.pseudonym)) for r in rows)

    def keep_aliases(self, conn: Connection, run_id: int, by: str) -> list[tuple[str, str, str]]:
        """After an applied run: the ECK-iDs it followed become aliases (kind ``eckid``), and every
        alias it used is marked as used (from then on the dossier depends on that key's records,
        and the link is not undone). Returns the new aliases (own pseudonym, dossier pseudonym,
        external id)."""
        found = conn.execute(select(staging.c.via, staging.c.pseudonym, staging.c.external_id).where(
            staging.c.run_id == run_id, staging.c.via_kind == "found", staging.c.rejected == 0)).all()
        stamp = now()
        insert_many(conn, aliases, [{"pseudonym": r.via, "external_id": r.external_id, "kind": "eckid", "by": by,
                                     "at": stamp, "used_run": run_id} for r in found])
        used = select(staging.c.via).where(staging.c.run_id == run_id, staging.c.via.is_not(None),
                                           staging.c.via_kind.in_(ALIAS_KINDS))
        conn.execute(update(aliases).where(aliases.c.used_run.is_(None), aliases.c.pseudonym.in_(used))
                     .values(used_run=run_id))
        return [(str(r.via), str(r.pseudonym), str(r.external_id)) for r in found]

    # -- what a person or a change of LAS records --------------------------------------------------
    def alias_of(self, pseudonym: str) -> dict[str, object] | None:
        """The alias recorded for this pseudonym, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(aliases).where(aliases.c.pseudonym == pseudonym)).mappings().first()
        return dict(row) if row else None

    def aliases_of(self, external_id: str) -> list[dict[str, object]]:
        """The other keys linked to this dossier."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(aliases).where(aliases.c.external_id == external_id)
                                                  .order_by(aliases.c.at)).mappings()]

    def alias_count(self) -> dict[str, int]:
        """How many aliases there are, by kind."""
        with self.engine.connect() as conn:
            return {str(k): int(n) for k, n in conn.execute(select(aliases.c.kind, func.count())
                                                           .group_by(aliases.c.kind)).all()}

    @staticmethod
    def add_aliases(conn: Connection, rows: list[tuple[str, str]], kind: str, by: str) -> None:
        """Record these (pseudonym, dossier external id) aliases."""
        stamp = now()
        insert_many(conn, aliases, [{"pseudonym": p, "external_id": e, "kind": kind, "by": by, "at": stamp,
                                     "used_run": None} for p, e in rows])

    @staticmethod
    def remove_alias(conn: Connection, pseudonym: str) -> None:
        """Take back the alias of this pseudonym."""
        conn.execute(delete(aliases).where(aliases.c.pseudonym == pseudonym))
