"""What the connector recorded of each dossier: its row, facts, holds and documents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from connector.model import DossierSpec, PupilFacts, RecordedDossier
from connector.state.db import Database, move, now, update_many
from connector.state.rows import _DOSSIER_ROW, FACT_KINDS, DossierRow
from connector.state.schema import (
    OPEN_ITEM,
    OPEN_LIST,
    destruction_items,
    destruction_lists,
    documents,
    dossiers,
    facts,
    guardians,
    holds,
    transfers,
)


class RecordsStore(Database):

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
                "unknown_authority": unknown, "with_guardians": with_guardians}

    def dossier_count(self) -> int:
        """How many dossiers are recorded."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(dossiers)).scalar() or 0)

    def recorded(self, external_id: str) -> RecordedDossier | None:
        """What is recorded of one dossier, or None."""
        with self.engine.connect() as conn:
            r = conn.execute(select(dossiers).where(dossiers.c.external_id == external_id)).first()
        if r is None:
            return None
        return RecordedDossier(
            external_id=r.external_id, pseudonym=r.pseudonym, ref_id=r.ref_id,
            fingerprint=r.fingerprint, spec=DossierSpec.model_validate_json(r.spec) if r.spec else None,
        )

    def dossier_rows(self, external_ids: list[str] | None = None) -> list[DossierRow]:
        """The recorded dossiers (all, or those with these external ids), by external id."""
        stmt = select(*_DOSSIER_ROW).order_by(dossiers.c.external_id)
        if external_ids is not None:
            stmt = stmt.where(dossiers.c.external_id.in_(external_ids))
        with self.engine.connect() as conn:
            return [DossierRow(*r) for r in conn.execute(stmt).all()]

    def external_ids_of(self, ref_ids: list[str]) -> list[str]:
        """The external ids of the dossiers the DMS knows by these references."""
        out: list[str] = []
        with self.engine.connect() as conn:
            for start in range(0, len(ref_ids), 500):
                chunk = ref_ids[start:start + 500]
                out += [r[0] for r in conn.execute(select(dossiers.c.external_id).where(dossiers.c.ref_id.in_(chunk)))]
        return sorted(out)

    def find_pupil(self, pseudonyms: list[str]) -> list[DossierRow]:
        """Dossiers whose pseudonymous key is one of these."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_DOSSIER_ROW).where(dossiers.c.pseudonym.in_(pseudonyms))).all()
        return [DossierRow(*r) for r in rows]

    def dossiers_per_school(self) -> dict[str, int]:
        """School code -> how many dossiers it has."""
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(
                select(dossiers.c.school, func.count()).group_by(dossiers.c.school))}

    def schools(self) -> list[str]:
        """The schools (BRIN) that have dossiers."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(dossiers.c.school).distinct()).scalars())

    # -- facts that move retention clocks ---------------------------------------------------------
    def record_fact(self, conn: Connection, external_id: str, kind: str, on: date | None, by: str,
                    note: str | None = None) -> None:
        """Record a fact (``on``) or its withdrawal (None), inside the caller's transaction; the history keeps
        every value."""
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
        """Every fact recorded for a pupil, in the order recorded."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(facts).where(facts.c.external_id == external_id).order_by(facts.c.id))
            return [dict(r._mapping) for r in rows]

    # -- documents as tagged ----------------------------------------------------------------------
    def dossier_documents(self, external_id: str) -> list[dict[str, Any]]:
        """The documents recorded of one dossier, by part and class: status and retention fields."""
        cols = (documents.c.id, documents.c.part, documents.c.doc_class, documents.c.category, documents.c.kind,
                documents.c.due, documents.c.blocked, documents.c.unclassified, documents.c.basis,
                documents.c.status)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(*cols).where(documents.c.external_id == external_id)
                                                  .order_by(documents.c.part, documents.c.doc_class,
                                                            documents.c.id)).mappings()]

    def document_tags(self, external_id: str) -> dict[str, tuple[str | None, str]]:
        """doc id -> (tag JSON as last written, status)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(documents.c.id, documents.c.tag, documents.c.status)
                                .where(documents.c.external_id == external_id)).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    def mark_gone(self, conn: Connection, doc_ids: list[str]) -> None:
        """Documents that left the DMS by another route than the connector."""
        if doc_ids:
            move(conn, documents, "document", "gone", documents.c.id.in_(doc_ids), updated=now())

    # -- holds ------------------------------------------------------------------------------
    def add_hold(self, conn: Connection, row: DossierRow, part: str | None, reason: str, by: str) -> int:
        """Place a hold on a dossier or one part (``part``), inside the caller's transaction; returns its id."""
        result = conn.execute(insert(holds).values(external_id=row.external_id, pseudonym=row.pseudonym,
                                                   part=part, reason=reason, by=by, at=now()))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def remove_hold(self, conn: Connection, hold_id: int, by: str, reason: str) -> dict[str, Any] | None:
        """Lift an active hold (kept, with who lifted it and why); the hold as it was, or None when it is not
        active."""
        row = conn.execute(select(holds).where(holds.c.id == hold_id, holds.c.removed_at.is_(None))).first()
        if row is None:
            return None
        conn.execute(update(holds).where(holds.c.id == hold_id)
                     .values(removed_by=by, removed_at=now(), removed_reason=reason))
        return dict(row._mapping)

    def active_holds(self, external_id: str | None = None) -> list[dict[str, Any]]:
        """The holds in force (of one dossier, or all), oldest first."""
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

    # -- tags and transfers -----------------------------------------------------------------------
    def retag_many(self, conn: Connection, updates: list[dict[str, Any]]) -> None:
        """Record recomputed tags: each update names the document (``id``) and the tag's columns."""
        update_many(conn, documents, "id", updates)

    def record_transfer(self, conn: Connection, row: DossierRow, kind: str, on: date, receiving: str,
                        part: str | None, status: str, detail: str | None, by: str) -> None:
        """An OKR sent (``kind = "okr"``) or a dossier part exported (``"export"``)."""
        conn.execute(insert(transfers).values(external_id=row.external_id, pseudonym=row.pseudonym, kind=kind,
                                              on=on, receiving=receiving, part=part, status=status, detail=detail,
                                              by=by, at=now()))

    def transfers_of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every transfer of KIND, oldest first."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(transfers).where(transfers.c.kind == kind)
                                                  .order_by(transfers.c.id)).mappings().all()]

    def classes_present(self, external_ids: list[str], classes: tuple[str, ...]) -> dict[str, set[str]]:
        """Per dossier, which of ``classes`` it holds as present documents (as last recorded)."""
        out: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(external_ids), 900):
                rows = conn.execute(select(documents.c.external_id, documents.c.doc_class).where(
                    documents.c.external_id.in_(external_ids[i:i + 900]), documents.c.doc_class.in_(classes),
                    documents.c.status == "present").distinct())
                for external_id, cls in rows:
                    out.setdefault(str(external_id), set()).add(str(cls))
        return out

    def due_by_category(self, today: date, horizons: tuple[int, ...] = (30, 90, 365)) -> dict[str, dict[int, int]]:
        """Per retention category, how many present documents (not blocked) fall due within each
        horizon of days from ``today`` (0: due already)."""
        # bounded by the furthest horizon, so that the index on ``due`` reads only what falls due
        present = and_(documents.c.due <= today + timedelta(days=max(horizons, default=0)),
                       documents.c.status == "present", func.coalesce(documents.c.blocked, 0) == 0)
        cols = [func.sum(case((documents.c.due <= today + timedelta(days=h), 1), else_=0)) for h in (0, *horizons)]
        stmt = select(documents.c.category, *cols).where(present).group_by(documents.c.category)
        with self.engine.connect() as conn:
            return {str(r[0] or "-"): {h: int(r[i + 1] or 0) for i, h in enumerate((0, *horizons))}
                    for r in conn.execute(stmt)}

    def due_candidates(self, today: date, exclude_listed: bool, page: int = 10_000
                       ) -> Iterator[tuple[list[Any], dict[str, PupilFacts]]]:
        """Present documents whose tag as last recorded says they may go by TODAY (an index
        prefilter: the due rule decides on today's facts), a page at a time with their facts;
        ``exclude_listed``: not those waiting on an open list."""
        where = [documents.c.kind == "maximum", documents.c.blocked == 0, documents.c.due.is_not(None),
                 documents.c.due <= today]
        if exclude_listed:
            listed = select(destruction_items.c.doc_id).join(
                destruction_lists, destruction_lists.c.id == destruction_items.c.list_id
            ).where(destruction_lists.c.status.in_(OPEN_LIST), destruction_items.c.status.in_(OPEN_ITEM),
                    destruction_items.c.decision != "rejected")
            where.append(documents.c.id.not_in(listed))
        yield from self.present_documents(*where, page=page)
