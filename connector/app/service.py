"""The service's cycle for one school, as ``leerdossier run`` and the fleet's workers run it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, cast

from connector import destruction, inspection, rights
from connector.app.context import App, open_app
from connector.app.lists import write_list_files
from connector.clock import REAL
from connector.errors import ConnectorError, SafetyStop
from connector.ports import DocumentStore
from connector.service import Health, InstrumentedStore, Metrics, record_operations, run_cycle
from connector.state import OPEN, SharedEngines
from connector.users import SERVICE

log = logging.getLogger("leerdossier.service")
fleet_log = logging.getLogger("leerdossier.fleet")
ACTOR = "leerdossier run"
JOBS = ("sync", "access", "destruction_list", "purge")


def make_cycle(app: App) -> Any:
    """One cycle of the service for this school: a sync, then the configured jobs (never an
    unapproved destruction: the service makes lists and purges what approved lists trashed),
    the removal of expired exports, and the gauges. The fleet runs the same cycle."""
    cfg = app.loaded.config
    unknown = sorted(set(cfg.service.jobs) - set(JOBS))
    if unknown:
        raise app.loaded.problem(["service", "jobs"], f"unknown job(s) {', '.join(unknown)} "
                                 f"(known: {', '.join(JOBS)})")

    def cycle(should_stop: Any, metrics: Metrics) -> dict[str, Any]:
        today = date.today()
        summary: dict[str, Any] = {"status": "ok"}
        def wrap(store: DocumentStore) -> DocumentStore:
            return cast(DocumentStore, InstrumentedStore(store, metrics))

        report = app.sync_once(app.sync_options(ACTOR, should_stop=should_stop), wrap_store=wrap, today=today)
        data = report.as_dict()
        record_operations(metrics, data)
        if report.stopped_by:
            summary.update(status="stopped", error=f"safety rail {report.stopped_by}")
        elif report.halted_by:
            summary.update(status="halted", error=report.halted_by)
        elif report.failed:
            summary.update(status="failed-operations", error=f"{len(report.failed)} operations failed")
        if summary["status"] != "ok" or should_stop():
            return summary
        with app.open_store() as opened:
            store = wrap(opened)
            if "access" in cfg.service.jobs and store.capabilities.acl:
                app.apply_access(store, None, ACTOR, today=today)
            if "destruction_list" in cfg.service.jobs and next(
                    destruction.due_documents(app.state, app.schedule(), today), None) is not None:
                # only when something is due: no empty list and audit entry every cycle
                list_id, n = destruction.create_list(app.state, app.audit, app.schedule(), today, SERVICE, REAL,
                                                     cfg.destruction.approvals)
                if n:
                    write_list_files(app, list_id)
                    log.info("destruction list created; it waits for the approval of identified people",
                             extra={"list": list_id, "items": n})
            if "purge" in cfg.service.jobs:
                # the service's own identity: it purges only what approved lists put in the trash
                destruction.purge(store, app.state, app.audit, app.schedule(), REAL,
                                  cfg.destruction.trash_grace_days, SERVICE, app.identity.approval_key,
                                  cfg.destruction.approvals)
        # a copy made for a data subject is handed over, not kept: removed when its days have passed
        inspection.remove_expired(app.state, app.audit, today, ACTOR)
        metrics.due.set(destruction.due_count(app.state, app.schedule(), today))
        open_requests = rights.request_rows(app.state, "open", cfg.access.request_warn_days, today)
        metrics.requests_attention.set(sum(r["state"] != "ok" for r in open_requests))
        counts = app.state.journal_counts()
        metrics.journal.set(sum(counts.get(k, 0) for k in OPEN))
        return summary

    return cycle


@contextmanager
def single_instance(app: App) -> Iterator[None]:
    """The service's lock on this school's state: a second service (or worker) on the same
    state stops with the ``single_instance`` rail instead of running beside it."""
    with app.state.exclusive("service"):
        yield


def run_school(config_path: Path, engines: SharedEngines, metrics: Metrics, health: Health, school: str,
               should_stop: Callable[[], bool]) -> dict[str, Any]:
    """One fleet job: one school's cycle under its lock, on the worker's shared connection pool.
    Its status: the cycle's, or ``failed`` (logged by error class, never with a message),
    ``busy`` (another worker holds the school) or ``stopped`` (a safety rail)."""
    try:
        app = open_app(config_path, setup_logging=False, shared=engines)
    except ConnectorError as exc:
        fleet_log.error("school configuration failed", extra={"school": school, "error": exc.__class__.__name__})
        return {"status": "failed"}
    try:
        cycle = make_cycle(app)
        with single_instance(app):
            return {"status": run_cycle(cycle, should_stop, metrics, health, school=school)}
    except SafetyStop as stop:
        # the job lock keeps a school to one worker; this is the state's own lock behind it
        fleet_log.warning("school busy elsewhere; skipped", extra={"school": school, "rail": stop.rail})
        return {"status": "busy" if stop.rail == "single_instance" else "stopped"}
    except ConnectorError as exc:
        fleet_log.error("school failed", extra={"school": school, "error": exc.__class__.__name__})
        return {"status": "failed"}
    finally:
        app.state.close()
