"""``leerdossier run``: the long-running service for one school's configuration.

    every interval (or cron expression):  sync -> what follows it (retag, access)
                                          [tags refresh] [destruction list] [purge]
    never an unapproved destruction: lists are created, a named person approves and executes.

One instance per state store (a lock the kernel drops when the process dies). SIGTERM/SIGINT
asks the cycle in flight to stop between DMS operations (the rest waits in the journal); the
process then exits 0. A loopback-only HTTP endpoint serves ``/healthz`` (last successful run,
its age, the lag behind the schedule) and ``/metrics`` (Prometheus text format).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from croniter import croniter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from connector.errors import ConfigError, ConnectorError, SafetyStop, SourceError, TransientError
from connector.ports import DMS_CALLS, DocumentStore

log = logging.getLogger("leerdossier.service")



def parse_every(value: str) -> timedelta:
    """``90s``, ``15m``, ``6h``, ``1d`` -> a timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(value[:-1]) * units[value[-1]]
    except (KeyError, ValueError, IndexError):
        raise ConfigError(f"service.every: {value!r} is not an interval such as '90s', '15m', '6h' or '1d'") from None
    if seconds <= 0:
        raise ConfigError("service.every: the interval must be positive")
    return timedelta(seconds=seconds)


def loopback(listen: str) -> tuple[str, int]:
    """``host:port``, refused unless the host is a loopback address (the endpoint has no
    authentication, so it must not be reachable from the network)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError
    except ValueError:
        raise ConfigError(f"service.listen: {listen!r} must be a loopback address and port, "
                          "e.g. 127.0.0.1:9464") from None
    return host, number


class Schedule:
    def __init__(self, every: str | None, cron: str | None) -> None:
        if bool(every) == bool(cron):
            raise ConfigError("service: give either 'every' (an interval) or 'cron' (a cron expression)")
        if cron and not croniter.is_valid(cron):
            raise ConfigError(f"service.cron: {cron!r} is not a valid cron expression")
        self.every = parse_every(every) if every else None
        self.cron = cron

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment + self.every
        nxt: datetime = croniter(self.cron or "", moment.astimezone()).get_next(datetime)  # local time
        return nxt

    def period(self, moment: datetime) -> timedelta:
        """The time between two runs around ``moment`` (for the health check's lag)."""
        first = self.next_after(moment)
        return self.next_after(first) - first


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("leerdossier_runs", "Service cycles by outcome.", ["status"], registry=r)
        self.operations = Counter("leerdossier_operations", "DMS operations by kind and outcome.",
                                  ["kind", "outcome"], registry=r)
        self.retries = Counter("leerdossier_dms_retries", "DMS calls that failed transiently (and were retried "
                               "or counted as failed).", registry=r)
        self.latency = Histogram("leerdossier_dms_latency_seconds", "DMS call latency.", ["call"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.rejected = Counter("leerdossier_rejected_records", "LAS records rejected (record and field reported).",
                                registry=r)
        self.due = Gauge("leerdossier_destruction_due_items", "Documents due for destruction today.", registry=r)
        self.requests_attention = Gauge("leerdossier_requests_attention",
                                        "Open requests four weeks old or older.", registry=r)
        self.last_success = Gauge("leerdossier_last_success_timestamp_seconds",
                                  "When the last cycle succeeded (Unix time).", registry=r)
        self.journal = Gauge("leerdossier_journal_unfinished", "Journal rows new, sent or failed.", registry=r)


class InstrumentedStore:
    """Times every DMS call into the latency histogram and counts transient failures."""

    def __init__(self, inner: DocumentStore, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.capabilities = inner.capabilities

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name not in DMS_CALLS:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return target(*args, **kwargs)
            except TransientError:
                self._metrics.retries.inc()
                raise
            finally:
                self._metrics.latency.labels(name).observe(time.perf_counter() - started)
        return call


@dataclass
class Health:
    schedule: Schedule | None
    """None: cycles come from outside (``fleet cycle`` run by another scheduler), so no age is
    too old; only a failed last cycle makes the service unhealthy."""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_success: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    next_run: datetime | None = None

    def report(self, now: datetime) -> tuple[int, dict[str, Any]]:
        reference = self.last_success or self.started
        age = (now - reference).total_seconds()
        lag = max(0.0, (now - self.next_run).total_seconds()) if self.next_run else 0.0
        fresh = self.schedule is None or age <= 2 * self.schedule.period(now).total_seconds() + 60
        healthy = fresh and self.last_status not in ("failed",)
        body = {"status": "ok" if healthy else "failing", "last_success": _iso(self.last_success),
                "age_seconds": round(age, 1), "lag_seconds": round(lag, 1), "last_status": self.last_status,
                "last_error": self.last_error, "next_run": _iso(self.next_run)}
        return (200 if healthy else 503), body


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        return None


def serve(listen: str, health: Health, metrics: Metrics) -> WSGIServer:
    """The loopback HTTP endpoint, in a daemon thread: /healthz and /metrics."""
    host, port = loopback(listen)
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            code, body = health.report(datetime.now(UTC))
            start(f"{code} {'OK' if code == 200 else 'Service Unavailable'}",
                  [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        if path == "/metrics":
            result: Iterable[bytes] = metrics_app(environ, start)
            return result
        start("404 Not Found", [("Content-Type", "text/plain")])
        return [b"/healthz or /metrics"]

    server = make_server(host, port, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


Cycle = Callable[[Callable[[], bool], Metrics], dict[str, Any]]
"""One cycle of work: given "should I stop?" and the metrics, returns a summary (no PII)."""


class Service:
    def __init__(self, schedule: Schedule, cycle: Cycle, metrics: Metrics, health: Health,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.schedule = schedule
        self.cycle = cycle
        self.metrics = metrics
        self.health = health
        self.clock = clock
        self.stop = threading.Event()

    def run(self, max_cycles: int | None = None) -> None:
        """Run cycles on the schedule until asked to stop (the first one at once)."""
        cycles = 0
        due = self.clock()
        while not self.stop.is_set():
            wait = (due - self.clock()).total_seconds()
            if wait > 0 and self.stop.wait(wait):
                break
            self.once()
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                break
            due = self.schedule.next_after(max(due, self.clock() - timedelta(seconds=1)))
            if due < self.clock():
                due = self.schedule.next_after(self.clock())  # missed runs are not caught up one by one
            self.health.next_run = due
        log.info("service stopped")

    def once(self) -> None:
        run_cycle(self.cycle, self.stop.is_set, self.metrics, self.health, self.clock)


def run_cycle(cycle: Cycle, should_stop: Callable[[], bool], metrics: Metrics, health: Health,
              clock: Callable[[], datetime] = lambda: datetime.now(UTC), **log_extra: str) -> str:
    """Run one cycle; its outcome goes to the metrics, the health record and the log. Returns
    the status: ``ok``, ``stopped`` (a safety rail), ``failed``, ``halted``, ``failed-operations``."""
    started = clock()
    try:
        summary = cycle(should_stop, metrics)
        status = summary.get("status", "ok")
        health.last_error = summary.get("error")
    except SafetyStop as stop:
        status, health.last_error = "stopped", stop.rail
    except (SourceError, ConfigError, ConnectorError) as exc:
        status, health.last_error = "failed", exc.__class__.__name__ + ": " + str(exc)[:200]
        log.error("cycle failed", extra={"error": exc.__class__.__name__, **log_extra})
    except Exception as exc:  # anything else (a full disk, a library's own error): the next cycle runs
        # the message of a foreign exception may hold values (a path, a row): only its class is kept
        status, health.last_error = "failed", f"unexpected {exc.__class__.__name__}"
        log.error("cycle failed on an unexpected error", extra={"error": exc.__class__.__name__, **log_extra})
    metrics.runs.labels(status).inc()
    health.last_status = status
    if status == "ok":
        health.last_success = clock()
        metrics.last_success.set(health.last_success.timestamp())
    log.info("cycle finished", extra={"status": status, "seconds": round((clock() - started).total_seconds(), 2),
                                      **log_extra})
    return str(status)


def record_operations(metrics: Metrics, report: dict[str, Any]) -> None:
    """Count a sync report's operations into the metrics (by kind and outcome)."""
    metrics.operations.labels("create_dossier", "done").inc(report.get("dossiers_created", 0))
    metrics.operations.labels("update_dossier", "done").inc(report.get("dossiers_updated", 0))
    metrics.operations.labels("any", "failed").inc(len(report.get("failed", [])))
    metrics.operations.labels("any", "deferred").inc(report.get("deferred", 0))
    metrics.rejected.inc(len(report.get("rejected", [])))
