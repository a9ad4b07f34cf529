"""``leerdossier run``: the background service (see ``connector.service``). Registered on the
main command group by ``connector.cli``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any, cast

import click

from connector import destruction, inspection, rights
from connector.app import App
from connector.cli._common import EXIT_SAFETY, config_option, fail, opened
from connector.cli.destruction import write_list_files
from connector.clock import REAL
from connector.errors import ConfigError, SafetyStop
from connector.logs import json_logs
from connector.ports import DocumentStore
from connector.service import Health, InstrumentedStore, Metrics, Schedule, Service, record_operations, serve
from connector.state import OPEN
from connector.users import SERVICE

log = logging.getLogger("leerdossier.service")
ACTOR = "leerdossier run"
JOBS = ("sync", "access", "destruction_list", "purge")


def make_cycle(app: App) -> Any:
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


@click.command("run")
@config_option
@click.option("--cycles", type=int, help="Stop after this many cycles (for tests and one-off runs).")
def run_cmd(config_path: Path, cycles: int | None) -> None:
    """Run as a service: sync (and the configured jobs) on the schedule in [service], with
    /healthz and /metrics on a loopback address. SIGTERM or SIGINT stops it cleanly."""
    with opened(config_path, False) as app:
        cfg = app.loaded.config
        try:
            schedule = Schedule(cfg.service.every or None, cfg.service.cron)
            cycle = make_cycle(app)
        except ConfigError as exc:
            fail(str(exc), False)
        json_logs(cfg.logging.level)
        metrics = Metrics()
        health = Health(schedule)
        service = Service(schedule, cycle, metrics, health)
        try:
            with app.state.exclusive("service"):
                server = serve(cfg.service.listen, health, metrics)
                stopping = threading.Event()

                def on_signal(signum: int, _frame: Any) -> None:
                    log.info("stop requested", extra={"signal": signal.Signals(signum).name})
                    stopping.set()
                    service.stop.set()
                    timer = threading.Timer(cfg.service.stop_timeout, give_up)
                    timer.daemon = True
                    timer.start()

                signal.signal(signal.SIGTERM, on_signal)
                signal.signal(signal.SIGINT, on_signal)
                log.info("service started", extra={"listen": cfg.service.listen,
                                                    "schedule": cfg.service.cron or cfg.service.every})
                try:
                    service.run(max_cycles=cycles)
                finally:
                    server.shutdown()
        except SafetyStop as stop:
            click.echo(f"error: {stop}", err=True)
            sys.exit(EXIT_SAFETY)


def give_up() -> None:
    log.error("stop took longer than service.stop_timeout; exiting (the journal has the rest)")
    logging.shutdown()
    import os
    os._exit(1)
