"""Runs, the staged snapshot of each run, its cursor, suspected duplicates and what the
snapshot says of departures and vanished pupils."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from connector.model import DossierSpec, RecordedDossier
from connector.state.db import Database, insert_many, now
from connector.state.rows import GROUP_LIMIT, Change, Staged, Suspected
from connector.state.schema import cursors, dismissed, dossiers, facts, pupil_access, runs, staging, staging_access


class SnapshotStore(Database):
    # -- runs -------------------------------------------------------------------------------
    def begin_run(self, kind: str) -> int:
        """Start a run of ``kind`` (sync, tags, ...); returns its id."""
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

    def store_cursor(self, store_key: str) -> str | None:
        """Where the DMS's change feed stood when its changes were last all handled, or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(cursors.c.value).where(cursors.c.key == f"dms:{store_key}")).scalar()

    def put_store_cursor(self, store_key: str, value: str) -> None:
        """Keep the DMS's change-feed cursor (after the changes up to it were handled)."""
        with self.transaction() as conn:
            self._put_cursor(conn, f"dms:{store_key}", value)

    def applied_cursor(self, source_key: str) -> str | None:
        """The source's cursor as of the last applied snapshot, or None."""
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

    def last_sync_report(self, school: str) -> dict[str, Any] | None:
        """The report of the school's last sync that finished (ok or stopped by a rail), or None."""
        with self.engine.connect() as conn:
            report = conn.execute(select(runs.c.report).where(
                runs.c.school == school, runs.c.kind == "sync", runs.c.status.in_(("ok", "stopped")))
                .order_by(runs.c.id.desc()).limit(1)).scalar()
        return json.loads(report) if report else None

    def synced_schools(self) -> list[str]:
        """The schools a sync has read (also those without any dossier yet: a first snapshot whose
        pupils were all held still has suspicions for a person)."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(runs.c.school).distinct().where(
                runs.c.kind == "sync", runs.c.school.is_not(None))).scalars())

    def last_good_snapshot(self, school: str) -> int | None:
        """How many pupils the school's last good sync saw (the truncated-snapshot rail's yardstick)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(runs.c.pupils_seen).where(
                    runs.c.school == school, runs.c.status == "ok", runs.c.kind == "sync",
                ).order_by(runs.c.id.desc()).limit(1)
            ).scalar()

    def last_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
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
            ids = [r.external_id for r in rows if r.external_id is not None and r.spec is not None]
            recorded = dict(conn.execute(
                select(dossiers.c.external_id, dossiers.c.fingerprint)
                .where(dossiers.c.external_id.in_(ids), dossiers.c.ref_id.is_not(None))
            ).all()) if ids else {}
            values = []
            for r in rows:
                if r.kept:
                    values.append({
                        "run_id": run_id, "pseudonym": r.pseudonym, "external_id": r.external_id,
                        "fingerprint": r.fingerprint, "spec": None, "dup_pgn": r.dup_pgn, "dup_nb": r.dup_nb,
                        "dup_eck": r.dup_eck, "rejected": 0, "departure": r.departure, "via": None,
                        "via_kind": None, "digest": r.digest})
                    continue
                fingerprint = r.spec.fingerprint if r.spec else None
                changed = r.spec is not None and recorded.get(r.external_id) != fingerprint
                values.append({
                    "run_id": run_id, "pseudonym": r.pseudonym, "external_id": r.external_id,
                    "fingerprint": fingerprint,
                    "spec": r.spec.model_dump_json() if changed and r.spec else None,
                    "dup_pgn": r.dup_pgn, "dup_nb": r.dup_nb, "dup_eck": r.dup_eck, "rejected": 0 if r.spec else 1,
                    "departure": r.spec.departure if r.spec else None, "via": r.via, "via_kind": r.via_kind,
                    "digest": r.digest,
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

    def digested(self, pseudonyms: list[str]) -> dict[str, Staged]:
        """The dossiers of these pseudonyms that exist in the DMS and keep the digest of the
        record they were last made from, each as the record would be staged from its row."""
        out: dict[str, Staged] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(pseudonyms), 900):
                for r in conn.execute(select(
                        dossiers.c.pseudonym, dossiers.c.external_id, dossiers.c.fingerprint, dossiers.c.departure,
                        dossiers.c.dup_pgn, dossiers.c.dup_nb, dossiers.c.dup_eck, dossiers.c.source_digest)
                        .where(dossiers.c.pseudonym.in_(pseudonyms[i:i + 900]), dossiers.c.ref_id.is_not(None),
                               dossiers.c.source_digest.is_not(None))).all():
                    out[r[0]] = Staged(pseudonym=r[0], external_id=r[1], fingerprint=r[2], departure=r[3],
                                       dup_pgn=r[4], dup_nb=r[5], dup_eck=r[6], digest=r[7], kept=True)
        return out

    def keep_digests(self, run_id: int, school: str) -> None:
        """After a run that applied its snapshot completely: each dossier of the school keeps the
        digest of the record it is now made from (a record of its own key, staged as made,
        whose fingerprint the dossier has; the digest binds that fingerprint too, so a later
        write of the row undoes it); any other dossier seen loses its digest. Only rows whose
        digest changes are written."""
        newer = (select(staging.c.digest).where(
            staging.c.run_id == run_id, staging.c.pseudonym == dossiers.c.pseudonym, staging.c.via.is_(None),
            staging.c.rejected == 0, staging.c.external_id == dossiers.c.external_id,
            staging.c.fingerprint == dossiers.c.fingerprint).limit(1).scalar_subquery())
        seen = exists().where(staging.c.run_id == run_id, staging.c.pseudonym == dossiers.c.pseudonym)
        with self.transaction() as conn:
            conn.execute(update(dossiers).where(dossiers.c.school == school, seen,
                                                dossiers.c.source_digest.is_distinct_from(newer))
                         .values(source_digest=newer))

    def drop_staging(self, run_id: int) -> None:
        """Remove a run's staged records (all of them, at once, when no other run has any)."""
        with self.transaction() as conn:
            others = conn.execute(select(staging.c.id).where(staging.c.run_id != run_id).limit(1)).first()
            if others is None:
                conn.execute(delete(staging))  # no WHERE: SQLite truncates instead of row-by-row
            else:
                conn.execute(delete(staging).where(staging.c.run_id == run_id))
            conn.execute(delete(staging_access).where(staging_access.c.run_id == run_id))

    def repeated_keys(self, run_id: int) -> list[str]:
        """Pseudonyms that occur more than once in one snapshot (ambiguous: not planned). A record
        of a dossier's own key after another key was linked to it is seen, not used: it does not
        count."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(staging.c.pseudonym).where(staging.c.run_id == run_id,
                                                  staging.c.via_kind.is_distinct_from("retired"))
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
            for col, basis in (("dup_pgn", "bsn/onderwijsnummer"), ("dup_nb", "geboortedatum en naam"),
                               ("dup_eck", "ECK-iD")):
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

    def dismissed_pairs(self) -> set[tuple[str, str]]:
        """The pairs of pseudonyms a person recorded as two different children."""
        with self.engine.connect() as conn:
            return {(str(r.a), str(r.b)) for r in conn.execute(select(dismissed.c.a, dismissed.c.b))}

    @staticmethod
    def dismiss_duplicate(conn: Connection, a: str, b: str, by: str) -> None:
        """Record that A and B are different children (once; a repeat changes nothing)."""
        x, y = sorted((a, b))
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
            for col in ("dup_pgn", "dup_nb", "dup_eck"):
                newer = (select(staging.c[col]).where(staging.c.run_id == run_id,
                                                     staging.c.external_id == dossiers.c.external_id,
                                                     staging.c.rejected == 0)
                         .limit(1).scalar_subquery())
                conn.execute(update(dossiers).where(dossiers.c.school == school, seen,
                                                    dossiers.c[col].is_distinct_from(newer))
                             .values({col: newer, "source_digest": None}))
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
