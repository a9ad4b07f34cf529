"""The UWLR adapter over real HTTP against the test UWLR server: requests that fit the published
schemas, faults and HTTP errors mapped to the connector's errors (no body or fault text in the
message), timeouts, retries, geenwijzigingen / geengegevens through the core, and a 50,000-pupil
answer."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from adapters.las.uwlr import UwlrSource, school_year
from connector.errors import SourceError, SourceRefused, SourceUnavailable
from connector.model import Pupil
from connector.sync import SyncOptions, sync
from examples.synth import Synth
from tests.conftest import make_world
from tests.las.sources import context, uwlr_settings
from tests.las.uwlr_server import Scenario, UwlrServer

pytestmark = pytest.mark.las

SYNTH = Synth(pupils=40, seed=3, duplicates=0)


def source(server: UwlrServer, **overrides: object) -> UwlrSource:
    import os
    os.environ["LD_TEST_UWLR_KEY"] = server.scenario.key
    return UwlrSource(uwlr_settings(server.url, server.scenario.synth, **overrides), context())


def serve(**scenario: object) -> UwlrServer:
    return UwlrServer(Scenario(synth=SYNTH, **scenario))  # type: ignore[arg-type]


def test_the_request_fits_the_published_schemas_and_the_answer_is_read() -> None:
    with serve() as server:
        items = list(source(server).pupils())
    assert len(items) == SYNTH.pupils and all(isinstance(i, Pupil) for i in items)
    req = server.scenario.requests[0]
    # the server validated header and body against the published XSDs; these are what it saw
    assert req["soapaction"].strip('"') == "HaalLeerlinggegevens" and req["key_ok"]
    assert (req["brin"], req["schooljaar"], req["klantcode"], req["laatst"]) == ("99XY", "2024-2025", "LD-TEST", None)
    assert server.scenario.invalid == []  # the answers it sent were valid UWLR


def test_a_wrong_key_is_refused_with_the_fault_code_only(caplog: pytest.LogCaptureFixture) -> None:
    with serve() as server:
        src = source(server)
        server.scenario.key = "another-key-entirely-0000"
        with pytest.raises(SourceRefused) as exc:
            list(src.pupils())
    assert "Client" in str(exc.value)
    assert "onbekend" not in str(exc.value) and "autorisatiesleutel" not in str(exc.value)
    assert len(server.scenario.requests) == 1  # a refusal is not retried


@pytest.mark.parametrize(("mode", "text"), [("fault-server", "SOAP fault Server"), ("http503", "HTTP 503"),
                                             ("http429", "HTTP 429")])
def test_a_las_that_cannot_answer_now_is_retried_then_reported_unavailable(mode: str, text: str) -> None:
    with serve(mode=mode) as server, pytest.raises(SourceUnavailable) as exc:
        list(source(server, attempts=2).pupils())
    assert text in str(exc.value)
    assert "Jan Jansen" not in str(exc.value) and "maintenance" not in str(exc.value)
    assert len(server.scenario.requests) == 2


def test_retry_after_is_honoured() -> None:
    with serve(mode="http503") as server:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            list(source(server, attempts=2).pupils())
    assert time.monotonic() - started >= 1.0  # the server said Retry-After: 1


def test_a_slow_las_times_out() -> None:
    with serve(mode="slow", delay=2.0) as server, pytest.raises(SourceUnavailable, match="timed out"):
        list(source(server, attempts=1, read_timeout=0.5).pupils())


def test_an_unreachable_las_is_unavailable_and_doctor_says_so() -> None:
    with serve() as server:
        url = server.url
    src = UwlrSource(uwlr_settings(url, SYNTH, attempts=1, connect_timeout=1), context())
    with pytest.raises(SourceUnavailable, match="connection failed"):
        list(src.pupils())
    assert any("not reachable" in p for p in src.check())


def test_a_broken_answer_is_a_source_error() -> None:
    with serve(mode="garbage") as server, pytest.raises(SourceError, match="not well-formed"):
        list(source(server).pupils())


def test_neither_key_nor_pupils_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serve() as server:
        items = [i for i in source(server).pupils() if isinstance(i, Pupil)]
    assert server.scenario.key not in caplog.text
    assert items[0].achternaam not in caplog.text and "<leerling" not in caplog.text


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_so_the_key_never_reaches_another_origin(status: int) -> None:
    """The request carries the autorisatiesleutel: a LAS (or something in between) answering
    with a redirect to another origin gets a clear refusal, and the other origin nothing."""
    import os
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    received: list[bytes] = []

    def elsewhere(environ: dict, start: object) -> list[bytes]:
        received.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start("200 OK", [("Content-Type", "text/xml")])  # type: ignore[operator]
        return [b""]

    other = make_server("127.0.0.1", 0, elsewhere, handler_class=Quiet)
    target = f"http://127.0.0.1:{other.server_port}/uwlr"

    def redirecting(environ: dict, start: object) -> list[bytes]:
        start(f"{status} Moved", [("Location", target), ("Content-Length", "0")])  # type: ignore[operator]
        return [b""]

    las = make_server("127.0.0.1", 0, redirecting, handler_class=Quiet)
    for server in (other, las):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        os.environ["LD_TEST_UWLR_KEY"] = "geheime-sleutel-123"
        src = UwlrSource(uwlr_settings(f"http://127.0.0.1:{las.server_port}/uwlr", SYNTH), context())
        with pytest.raises(SourceRefused, match="redirect; not followed"):
            list(src.pupils())
        assert received == []
    finally:
        for server in (other, las):
            server.shutdown()
            server.server_close()


def test_school_year_auto_follows_the_dutch_school_year() -> None:
    from datetime import date
    assert school_year(date(2026, 7, 31)) == "2025-2026"
    assert school_year(date(2026, 8, 1)) == "2026-2027"


def _sync(world, src: UwlrSource, **options: object):  # type: ignore[no-untyped-def]
    from datetime import date
    options.setdefault("source_key", "uwlr-test")
    return sync(src, world.store, world.state, world.audit, world.identity, world.mapping,
                SyncOptions(**options), date(2026, 11, 24))  # type: ignore[arg-type]


def test_an_unchanged_las_answers_geenwijzigingen_and_the_run_writes_nothing(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve() as server:
        first = _sync(world, source(server))
        assert first.dossiers_created == SYNTH.pupils and server.scenario.requests[0]["laatst"] is None
        second = _sync(world, source(server))
        assert server.scenario.requests[1]["laatst"] is not None
    assert second.unchanged and second.dms_writes == 0 and second.vanished == [] and second.stopped_by is None
    assert world.state.last_runs(1)[0]["status"] == "unchanged"


def test_a_changed_mapping_asks_for_the_whole_snapshot_again(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve() as server:
        _sync(world, source(server))
        _sync(world, source(server), source_key="uwlr-test-other-mapping")
    assert server.scenario.requests[1]["laatst"] is None


def test_an_empty_answer_after_a_full_one_is_stopped_by_the_snapshot_rail(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve() as server:
        _sync(world, source(server))
        server.scenario.mode = "empty"
        report = _sync(world, source(server, ask_for_changes=False))
    assert report.stopped_by == "min_snapshot_ratio" and report.dms_writes == 0
    assert any("geengegevens" in w for w in report.warnings)


def test_a_pupil_missing_after_the_summer_is_reported_not_left(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with serve() as server:
        _sync(world, source(server))
        server.scenario.synth = Synth(pupils=SYNTH.pupils - 1, seed=SYNTH.seed, duplicates=0)
        server.scenario.changed_at = server.scenario.changed_at.replace(year=2030)
        report = _sync(world, source(server))
    assert len(report.vanished) == 1 and report.vanished[0]["note"].startswith("vanished without departure")
    assert report.stopped_by is None


@pytest.mark.slow
def test_a_50000_pupil_answer_is_streamed() -> None:
    big = Synth(pupils=50_000, seed=5, duplicates=0)
    with UwlrServer(Scenario(synth=big)) as server:
        n = sum(1 for i in source(server).pupils() if isinstance(i, Pupil))
    assert n == 50_000
