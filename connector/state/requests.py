"""Data subjects' requests and the exports made for them."""

from __future__ import annotations

from datetime import date
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from connector.state.db import Database, move, now
from connector.state.rows import DossierRow
from connector.state.schema import exports, requests_t


class RequestsStore(Database):

    # -- exports for data subjects ----------------------------------------------------------------
    def record_export(self, conn: Connection, row: DossierRow, path: str, made: date, expires: date,
                      by: str) -> int:
        """Record a copy made for a data subject, to be removed on ``expires``; returns its id."""
        result = conn.execute(insert(exports).values(external_id=row.external_id, pseudonym=row.pseudonym,
                                                     path=path, made=made, expires=expires, by=by))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def exports_due(self, today: date) -> list[dict[str, Any]]:
        """Exports whose keeping time has passed and that are not removed yet."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(exports).where(
                exports.c.removed.is_(None), exports.c.expires <= today).order_by(exports.c.id)).mappings()]

    def export_removed(self, conn: Connection, export_id: int) -> None:
        """Mark a copy removed."""
        conn.execute(update(exports).where(exports.c.id == export_id).values(removed=now()))

    def open_request(self, conn: Connection, row: DossierRow, kind: str, requester: str, received: date,
                     due: date, hold_id: int, by: str) -> int:
        """Record a data subject's request with its term and the hold it placed; returns its id."""
        result = conn.execute(insert(requests_t).values(
            external_id=row.external_id, pseudonym=row.pseudonym, kind=kind, requester=requester,
            received=received, due=due, hold_id=hold_id, status="open", by=by, at=now()))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def request(self, request_id: int) -> dict[str, Any] | None:
        """One request, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(requests_t).where(requests_t.c.id == request_id)).mappings().first()
        return dict(row) if row else None

    def requests(self, status: str | None = "open", external_id: str | None = None) -> list[dict[str, Any]]:
        """Requests (by status, of one dossier or all), the nearest deadline first."""
        q = select(requests_t).order_by(requests_t.c.due, requests_t.c.id)
        if status:
            q = q.where(requests_t.c.status == status)
        if external_id:
            q = q.where(requests_t.c.external_id == external_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def update_request(self, conn: Connection, request_id: int, **values: Any) -> None:
        """Change a request; closing it only from open."""
        status = values.pop("status", None)
        if status is not None:
            move(conn, requests_t, "request", status, requests_t.c.id == request_id, expect=1, **values)
        elif values:
            conn.execute(update(requests_t).where(requests_t.c.id == request_id).values(**values))
