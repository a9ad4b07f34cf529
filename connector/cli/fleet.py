"""``leerdossier fleet``: many schools, several workers, one PostgreSQL (see ``connector.fleet``).
Registered on the main command group by ``connector.cli``. The engine (procrastinate) is loaded
only when one of these commands runs, so the single-school commands never need it."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click

from connector.app import LoadedConfig, SharedEngines, app_for
from connector.app import service as cycles
from connector.cli._common import echo, fail, json_option, out_console
from connector.cli.service import give_up
from connector.errors import ConnectorError
from connector.logs import json_logs
from connector.service import Health, Metrics, Schedule, serve

if TYPE_CHECKING:
    from connector.fleet import Fleet

log = logging.getLogger("leerdossier.fleet")

fleet_option = click.option(
    "--fleet", "fleet_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
    envvar="LEERDOSSIER_FLEET", help="Fleet file (TOML): the queue and the schools. Env: LEERDOSSIER_FLEET.")


def _engine(as_json: bool) -> ModuleType:
    """``connector.fleet``, or a clear error when the extra that brings its engine is missing."""
    try:
        from connector import fleet as fleet_mod
    except ImportError:
        fail("the fleet needs the 'fleet' extra: pip install 'leerdossier-connector[fleet]'", as_json)
    return fleet_mod


def _load(fleet_mod: ModuleType, fleet_path: Path, as_json: bool, check: bool = True,
          visit: Callable[[LoadedConfig], None] | None = None) -> Fleet:
    try:
        fleet: Fleet = fleet_mod.load(fleet_path)
        problems: list[str] = fleet_mod.check_schools(fleet, visit) if check else []
    except ConnectorError as exc:
        fail(str(exc), as_json)
    if problems:
        fail("the fleet's schools are not ready:\n  " + "\n  ".join(problems), as_json)
    return fleet


@click.group("fleet")
def fleet_group() -> None:
    """Many schools, several worker processes on one or more machines, one PostgreSQL
    (README, "Scaling out")."""


@fleet_group.command("check")
@fleet_option
@json_option
def check_cmd(fleet_path: Path, as_json: bool) -> None:
    """Check the fleet file, every school's configuration and the queue's database, and make
    each school's state store ready (its schema created or migrated), so the first cycle only
    syncs."""
    fleet_mod = _engine(as_json)
    fleet = _load(fleet_mod, fleet_path, as_json,
                  visit=lambda loaded: app_for(loaded, setup_logging=False).state.close())
    try:
        fleet_mod.ensure_schema(fleet)
    except ConnectorError as exc:
        fail(str(exc), as_json)
    when = f"on cron '{fleet.cron}' (UTC)" if fleet.cron else "when 'leerdossier fleet cycle' queues it (no schedule)"
    echo({"schools": sorted(fleet.schools), "cron": fleet.cron}, as_json, lambda: out_console.print(
        f"{len(fleet.schools)} schools ready; each synced {when}", highlight=False))


@fleet_group.command("cycle")
@fleet_option
@click.argument("schools", nargs=-1)
@json_option
def cycle_cmd(fleet_path: Path, schools: tuple[str, ...], as_json: bool) -> None:
    """Queue a sync of every school (or the SCHOOLS named) now, besides the schedule. A school
    that already has a job waiting gets no second one."""
    fleet_mod = _engine(as_json)
    fleet = _load(fleet_mod, fleet_path, as_json)
    try:
        result = fleet_mod.defer_cycle(fleet, list(schools) or None)
    except ConnectorError as exc:
        fail(str(exc), as_json)
    queued = sum(v == "queued" for v in result.values())
    echo(result, as_json, lambda: out_console.print(
        f"{queued} jobs queued, {len(result) - queued} schools already had one waiting", highlight=False))


@fleet_group.command("status")
@fleet_option
@json_option
def status_cmd(fleet_path: Path, as_json: bool) -> None:
    """Sync jobs per school by status (todo, doing, succeeded, failed)."""
    fleet_mod = _engine(as_json)
    fleet = _load(fleet_mod, fleet_path, as_json, check=False)
    try:
        counts = fleet_mod.job_counts(fleet)
    except ConnectorError as exc:
        fail(str(exc), as_json)

    def human() -> None:
        for school, by_status in sorted(counts.items()):
            text = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "no jobs yet"
            out_console.print(f"{school}: {text}", highlight=False)
    echo(counts, as_json, human)


@fleet_group.command("worker")
@fleet_option
@click.option("--once", is_flag=True, help="Stop when the queue holds no job this worker can take.")
@click.option("--name", help="This worker's name in the logs (default: host and process id).")
@click.option("--listen", help="Loopback address for this worker's /healthz and /metrics, e.g. 127.0.0.1:9465.")
def worker_cmd(fleet_path: Path, once: bool, name: str | None, listen: str | None) -> None:
    """Run one worker: it syncs whichever school's job is next, on the fleet's schedule.
    Start as many as the machines have cores. SIGTERM or SIGINT stops it cleanly; an
    interrupted school goes back to the queue."""
    fleet_mod = _engine(False)
    fleet = _load(fleet_mod, fleet_path, False)
    cpu_policy = fleet_mod.apply_cpu_policy(fleet.settings.cpu_policy)  # before any thread starts
    json_logs(fleet.settings.log_level, also=("procrastinate",))
    metrics = Metrics()
    health = Health(Schedule(None, fleet.cron) if fleet.cron else None)
    server = serve(listen, health, metrics) if listen else None
    stopping = threading.Event()
    engines = SharedEngines()  # one connection pool for every school's job, not new connections per job

    def run_school(school: str, should_stop: Callable[[], bool]) -> dict[str, Any]:
        return cycles.run_school(fleet.schools[school], engines, metrics, health, school, should_stop)

    def on_started(stop: Callable[[], None]) -> None:
        def on_signal(signum: int, _frame: Any) -> None:
            log.info("stop requested", extra={"signal": signal.Signals(signum).name})
            stop()
            timer = threading.Timer(fleet.settings.stop_timeout, give_up)
            timer.daemon = True
            timer.start()
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    label = name or f"{socket.gethostname()}-{os.getpid()}"
    log.info("worker started", extra={"worker": label, "schools": len(fleet.schools), "cron": fleet.cron,
                                      "cpu_policy": cpu_policy})
    try:
        fleet_mod.run_worker(fleet, run_school, stopping, once=once, name=label, on_started=on_started)
    finally:
        engines.dispose()
        if server:
            server.shutdown()
    log.info("worker stopped", extra={"worker": label})
