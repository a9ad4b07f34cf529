"""``leerdossier run``: the background service (see ``connector.service``). Registered on the
main command group by ``connector.cli``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from connector.app.service import make_cycle, single_instance
from connector.cli._common import EXIT_SAFETY, config_option, fail, opened
from connector.errors import ConfigError, SafetyStop
from connector.logs import json_logs
from connector.service import Health, Metrics, Schedule, Service, serve

log = logging.getLogger("leerdossier.service")


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
            with single_instance(app):
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
