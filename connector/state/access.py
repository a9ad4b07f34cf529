"""Access facts: birth dates and guardians (as the LAS says and as a person recorded),
grants, linked accounts and the access last applied in the DMS."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from connector.state.db import Database, _upsert_many, _yes_no, insert_many, now
from connector.state.schema import (
    accounts,
    acl_applied,
    dossiers,
    grants,
    guardians,
    pupil_access,
    staging_access,
    transfers,
)


class AccessStore(Database):

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
        """A guardian recorded by a person (source ``manual``), inside the caller's transaction; the authority
        is a person's word, kept apart from the LAS's."""
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

    def add_grant(self, conn: Connection, external_id: str, kind: str, grantee: str, parts: tuple[str, ...],
                  basis: str, start: date, until: date, reason: str, by: str) -> int:
        """A grant of access by consent or legal duty, inside the caller's transaction; returns its id."""
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
        """When the dossier's access next changes by the calendar, and the rights waiting for a linked
        account."""
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
        """Link a principal's (the pupil's, a guardian's) DMS account, replacing an earlier link."""
        conn.execute(delete(accounts).where(accounts.c.external_id == external_id, accounts.c.principal == principal))
        conn.execute(insert(accounts).values(external_id=external_id, principal=principal, account=account,
                                             by=by, at=now()))

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

    def recipients(self, today: date) -> dict[str, Any]:
        """Counts for the processing register (no names): dossiers with guardians from the
        source or recorded by a person, grants in force today by kind and basis, and transfers
        by kind and receiving party."""
        with self.engine.connect() as conn:
            with_guardians = int(conn.execute(select(func.count(guardians.c.external_id.distinct()))).scalar_one())
            in_force = [dict(r) for r in conn.execute(
                select(grants.c.kind, grants.c.basis, func.count(grants.c.external_id.distinct()).label("dossiers"))
                .where(grants.c.start <= today, grants.c.until >= today, grants.c.revoked.is_(None))
                .group_by(grants.c.kind, grants.c.basis).order_by(grants.c.kind, grants.c.basis)).mappings()]
            sent = [dict(r) for r in conn.execute(
                select(transfers.c.kind, transfers.c.receiving, func.count().label("transfers"))
                .group_by(transfers.c.kind, transfers.c.receiving)
                .order_by(transfers.c.kind, transfers.c.receiving)).mappings()]
        return {"dossiers_with_guardians": with_guardians, "grants": in_force, "transfers": sent}

    def revoke_grant(self, conn: Connection, grant_id: int, on: date) -> dict[str, Any] | None:
        """End a grant on ``on``; the grant as it was, or None when there is no such grant."""
        row = conn.execute(select(grants).where(grants.c.id == grant_id)).mappings().first()
        if row is None:
            return None
        conn.execute(update(grants).where(grants.c.id == grant_id).values(revoked=on))
        return dict(row)
