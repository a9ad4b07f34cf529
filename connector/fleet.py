"""Scaling out: many schools, several ``leerdossier fleet worker`` processes, one PostgreSQL.

    fleet.toml --[schools]--> one configuration file per school (its own LAS, DMS, state schema)
    every tick of the schedule: one ``sync_school`` job per school (a periodic job; the
        deferral is deduplicated in the database, so a tick makes one job per school however
        many workers run)
    any worker takes any school's job; a job holds the school's lock, so no school runs twice at
        once (and the school's own state lock stands behind it)
    a worker that dies stops sending heartbeats; the other workers put its job back in the queue
        and one of them resumes the sync where the journal and the staging left it

The engine is procrastinate: jobs, locks, periodic jobs and stalled-job recovery in the same
PostgreSQL that holds the schools' state, so an integrator runs one database and no broker.
Only this module imports it; the single-school service (``leerdossier run``) and the embedded
default never load it.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
from croniter import croniter
from procrastinate import exceptions as pexc
from procrastinate.schema import SchemaManager
from procrastinate.worker import Worker
from pydantic import Field

from connector import config as config_mod
from connector import tomlfile
from connector.errors import ConfigError, ConnectorError
from connector.model import Frozen
from connector.service import parse_every

log = logging.getLogger("leerdossier.fleet")

SYNC_TASK = "leerdossier.sync_school"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_QUEUE_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class FleetSection(Frozen):

    url: str
    """The PostgreSQL database of the job queue; usually the one that holds the schools' state."""
    queue_schema: str = Field(default="leerdossier_queue", pattern=_QUEUE_SCHEMA.pattern)
    """The schema for the queue's tables (created by the first worker)."""
    schools: list[str] = Field(min_length=1)
    """Glob patterns of school configuration files, relative to the fleet file. A school's name
    is its file name without ``.toml``; names must be unique."""
    every: str | None = "1h"
    """How often each school is synced: ``30s``, ``15m``, ``1h``, ``6h``, ``1d`` (an interval
    that divides a minute, an hour or a day), or give ``cron`` and set this to "". Both empty:
    no schedule; cycles come only from ``leerdossier fleet cycle`` (an outside scheduler)."""
    cron: str | None = None
    """A cron expression in UTC; a sixth field gives seconds."""
    concurrency: int = Field(default=1, ge=1, le=32)
    """Jobs at once per worker process. A sync is mostly Python work: scale with processes
    (workers), not with this."""
    heartbeat: float = Field(default=10.0, gt=0)
    """Seconds between a worker's heartbeats."""
    stalled_after: float = Field(default=60.0, gt=0)
    """Seconds without a heartbeat after which a worker counts as dead and its job goes back to
    the queue. Keep it several heartbeats long."""
    stop_timeout: float = Field(default=60.0, gt=0)
    """After SIGTERM: how long the job in flight may take to reach a clean point."""
    cpu_policy: str = Field(default="normal", pattern="^(batch|normal)$")
    """How Linux schedules the worker: "normal", or "batch" (SCHED_BATCH: a batch process never
    preempts another when it wakes). Batch pays where the workers fill the machine's cores (one
    per core): on 2 cores, 2 workers synced 6-9 % more pupils per second under batch. With
    cores to spare it costs: a worker that wakes waits for the core its database connection
    runs on instead of taking the idle one, and 1 worker on 2 cores synced 5-12 % fewer
    (``bench/scale_bench.py --cpu-policy``). Where the process may not change its policy
    (systemd's system-call filter), ``CPUSchedulingPolicy=`` in the unit sets it instead."""
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    """The workers' log level (JSON lines on stderr). A school's own ``[logging]`` applies to its
    single-school commands, not to the fleet's workers, which serve every school."""


class FleetFile(Frozen):
    fleet: FleetSection


@dataclass(frozen=True)
class Fleet:
    path: Path
    settings: FleetSection
    schools: dict[str, Path]
    cron: str | None
    """None: no schedule (cycles only from ``fleet cycle``)."""

    @property
    def conninfo(self) -> str:
        return libpq_url(self.settings.url)


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://`` (SQLAlchemy's spelling) or ``postgres://`` -> ``postgresql://``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ConfigError("fleet.url: the job queue needs a PostgreSQL URL (postgresql://...)")
    return "postgresql://" + rest


def cron_for(every: str) -> str:
    """An interval that divides a minute, an hour or a day, as a cron expression (the periodic
    jobs are cron-based, aligned to the clock, so every worker agrees on the ticks)."""
    seconds = int(parse_every(every).total_seconds())
    if seconds < 60 and 60 % seconds == 0:
        return f"* * * * * */{seconds}"
    minutes, rest = divmod(seconds, 60)
    if not rest and minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    hours, rest = divmod(seconds, 3600)
    if not rest and hours < 24 and 24 % hours == 0:
        return f"0 */{hours} * * *"
    if seconds == 86400:
        return "0 0 * * *"
    raise ConfigError(f"fleet.every: {every!r} does not divide a minute, an hour or a day; give 'cron' instead")


def load(path: Path) -> Fleet:
    """Read the fleet file and find its schools. Refuses what would let two schools share a
    state store, or a school keep its state where other machines cannot reach it."""
    fleet_file, text = tomlfile.read_model(path, FleetFile)
    section = fleet_file.fleet
    libpq_url(section.url)
    if section.every and section.cron:
        raise tomlfile.problem(path, text, ["fleet", "cron"], "give either 'every' or 'cron', not both")
    if section.cron and not croniter.is_valid(section.cron):
        raise tomlfile.problem(path, text, ["fleet", "cron"], f"{section.cron!r} is not a cron expression")
    cron = section.cron or (cron_for(section.every) if section.every else None)
    base = path.resolve().parent
    schools: dict[str, Path] = {}
    for pattern in section.schools:
        matches = sorted(glob.glob(str(base / pattern)))
        if not matches:
            raise tomlfile.problem(path, text, ["fleet", "schools"], f"{pattern!r} matches no file")
        for match in matches:
            school = Path(match)
            name = school.name.removesuffix(".toml")
            if not _NAME.match(name):
                raise ConfigError(f"{school}: a school's file name must be letters, digits, '_', '.' "
                                  "or '-' (it names the school's jobs)")
            if name in schools and schools[name] != school:
                raise ConfigError(f"two school files are both named {name!r}: {schools[name]} and {school}")
            schools[name] = school
    return Fleet(path.resolve(), section, schools, cron)


def check_schools(fleet: Fleet, visit: Callable[[config_mod.LoadedConfig], None] | None = None) -> list[str]:
    """Problems with the schools' configurations, each naming the school (empty: none).
    ``visit`` is called with each configuration that loaded (``fleet check`` opens the school's
    state store there); a ``ConnectorError`` it raises is that school's problem."""
    problems: list[str] = []
    stores: dict[tuple[str, str | None], str] = {}
    for name, path in fleet.schools.items():
        try:
            loaded = config_mod.load(path)
        except ConfigError as exc:
            problems.append(f"{name}: {exc}")
            continue
        url, schema = loaded.state_url(), loaded.config.state.schema_
        if not url.startswith(("postgresql", "postgres:")):
            problems.append(f"{name}: [state] url must be PostgreSQL in a fleet (any worker may run the school)")
            continue
        key = (url, schema)
        if key in stores:
            problems.append(f"{name}: shares its state store with {stores[key]} (give each school its own "
                            "[state] schema)")
        stores[key] = name
        if visit is not None:
            try:
                visit(loaded)
            except ConnectorError as exc:
                problems.append(f"{name}: {exc}")
    return problems


# -- the engine --------------------------------------------------------------------------------
SchoolRunner = Callable[[str, Callable[[], bool]], dict[str, Any]]
"""Runs one school's cycle: (school name, "should I stop?") -> summary with a ``status``."""


class Interrupted(Exception):
    """The worker was asked to stop before the school's cycle ended: the job goes back to the
    queue and another worker resumes it from the journal."""


class CycleFailed(Exception):
    """The cycle ended without success; the job is marked failed (the next tick tries again)."""


def build_app(fleet: Fleet, run_school: SchoolRunner, stopping: threading.Event,
              periodic: bool = True) -> procrastinate.App:
    """The procrastinate app: the sync task and, with ``periodic``, its schedule per school."""
    connector = procrastinate.PsycopgConnector(
        conninfo=fleet.conninfo, kwargs={"options": f"-csearch_path={fleet.settings.queue_schema}"})
    app = procrastinate.App(connector=connector)
    retry = procrastinate.RetryStrategy(max_attempts=1000, wait=1, retry_exceptions={Interrupted})

    @app.task(name=SYNC_TASK, retry=retry)
    def sync_school(timestamp: int, school: str) -> None:
        summary = run_school(school, stopping.is_set)
        status = summary.get("status", "ok")
        if stopping.is_set():
            raise Interrupted(school)  # what was skipped is done by the worker that takes it over
        if status not in ("ok", "busy"):
            raise CycleFailed(f"{school}: {status}")

    cron = fleet.cron
    if periodic and cron:
        for name in fleet.schools:
            app.periodic(cron=cron, periodic_id=name, task_kwargs={"school": name},
                         lock=lock_of(name), queueing_lock=lock_of(name))(sync_school)
    return app


def apply_cpu_policy(policy: str) -> str:
    """Put this process under ``policy`` (``cpu_policy``) before it starts its threads, which
    inherit it. Returns the policy in force: "batch", "normal", or "unchanged" where this
    system or the process's sandbox does not allow the change."""
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is None:
        return "unchanged"
    wanted = batch if policy == "batch" else os.SCHED_OTHER
    try:
        if os.sched_getscheduler(0) != wanted:
            os.sched_setscheduler(0, wanted, os.sched_param(0))
    except OSError:  # a system-call filter (systemd's @resources) or a real-time policy set from outside
        return "unchanged"
    return policy


def lock_of(school: str) -> str:
    return f"school:{school}"


def ensure_schema(fleet: Fleet) -> None:
    """Create the queue's schema and tables once; several workers starting at the same moment
    take turns (an advisory lock), so they never apply it twice."""
    schema = fleet.settings.queue_schema
    try:
        with psycopg.connect(fleet.conninfo, autocommit=False) as conn:
            conn.execute("select pg_advisory_xact_lock(hashtext('leerdossier/fleet-schema'))")
            conn.execute(f'create schema if not exists "{schema}"')
            conn.execute(f'set local search_path to "{schema}"')
            row = conn.execute("select to_regclass('procrastinate_jobs')").fetchone()
            if row is None or row[0] is None:
                conn.execute(SchemaManager.get_schema())
                log.info("job queue created", extra={"schema": schema})
            conn.commit()
    except psycopg.Error as exc:
        # the class only: a server message may quote values
        raise ConfigError(f"fleet.url: the job queue's database cannot be used ({exc.__class__.__name__})") from None


def defer_cycle(fleet: Fleet, names: list[str] | None = None) -> dict[str, str]:
    """Queue one job per school now (besides the schedule): ``{school: "queued" | "waiting"}``,
    "waiting" when the school already has a job waiting."""
    ensure_schema(fleet)
    app = build_app(fleet, lambda school, stop: {"status": "ok"}, threading.Event(), periodic=False)
    result: dict[str, str] = {}
    stamp = int(time.time())
    with app.open():
        for name in names or list(fleet.schools):
            if name not in fleet.schools:
                raise ConfigError(f"no school named {name!r} in {fleet.path.name}")
            task = app.tasks[SYNC_TASK].configure(lock=lock_of(name), queueing_lock=lock_of(name))
            try:
                task.defer(timestamp=stamp, school=name)
                result[name] = "queued"
            except pexc.AlreadyEnqueued:
                result[name] = "waiting"
    return result


def job_counts(fleet: Fleet) -> dict[str, dict[str, int]]:
    """``{school: {status: n}}`` from the queue (sync jobs)."""
    ensure_schema(fleet)
    counts: dict[str, dict[str, int]] = {name: {} for name in fleet.schools}
    with psycopg.connect(fleet.conninfo) as conn:
        conn.execute(f'set search_path to "{fleet.settings.queue_schema}"')
        rows = conn.execute("select args->>'school', status::text, count(*) from procrastinate_jobs "
                            "where task_name = %s group by 1, 2", (SYNC_TASK,)).fetchall()
    for school, status, n in rows:
        counts.setdefault(str(school), {})[str(status)] = int(n)
    return counts


async def recover_stalled(app: procrastinate.App, stalled_after: float) -> int:
    """Put the jobs of workers silent for ``stalled_after`` seconds back in the queue. Several
    workers may try the same job at once; only one succeeds, the others find it moved on."""
    recovered = 0
    for job in await app.job_manager.get_stalled_jobs(task_name=SYNC_TASK, seconds_since_heartbeat=stalled_after):
        try:
            await app.job_manager.retry_job(job)
        except pexc.ConnectorException:
            continue  # another worker was first, or the job finished after all
        recovered += 1
        log.warning("job of a silent worker put back in the queue",
                    extra={"job": job.id, "school": job.task_kwargs.get("school")})
    return recovered


def run_worker(fleet: Fleet, run_school: SchoolRunner, stopping: threading.Event, *, once: bool = False,
               name: str | None = None, on_started: Callable[[Callable[[], None]], None] | None = None) -> None:
    """Run one worker until ``stop`` is called (``on_started`` receives it) or, with ``once``,
    until the queue holds no job it can take."""
    ensure_schema(fleet)
    settings = fleet.settings
    app = build_app(fleet, run_school, stopping, periodic=not once)

    async def main() -> None:
        async with app.open_async():
            worker = Worker(app, concurrency=settings.concurrency, wait=not once, name=name,
                            install_signal_handlers=False, update_heartbeat_interval=settings.heartbeat,
                            stalled_worker_timeout=settings.stalled_after, listen_notify=True,
                            fetch_job_polling_interval=min(5.0, settings.heartbeat))
            loop = asyncio.get_running_loop()

            def stop() -> None:
                stopping.set()
                loop.call_soon_threadsafe(worker.stop)

            if on_started:
                on_started(stop)
            await recover_stalled(app, settings.stalled_after)
            watchdog = asyncio.create_task(_recover_loop(app, settings.stalled_after))
            try:
                await worker.run()  # type: ignore[no-untyped-call]
            finally:
                watchdog.cancel()

    asyncio.run(main())


async def _recover_loop(app: procrastinate.App, stalled_after: float) -> None:
    while True:
        await asyncio.sleep(max(1.0, stalled_after / 3))
        try:
            await recover_stalled(app, stalled_after)
        except pexc.ConnectorException:
            log.warning("could not look for stalled jobs (database unavailable); trying again")
