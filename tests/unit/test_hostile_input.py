"""Regression tests for hostile input, leaks and faults (one per defect, named after it)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.las._edex import refuse_doctype
from connector.errors import SourceError


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: a loop that never ends is a test that fails."""

    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("head", [
    b'<?xml version="1.0"?>\n<!--' + b"x" * 70_000,  # a comment still open where the head ends
    b'<?xml version="1.0"' + b" " * 70_000,  # a declaration still open
    b"<!-- a -->" * 3 + b"<!--",
])
def test_an_unterminated_prolog_is_refused_and_never_loops(head: bytes) -> None:
    with within(5), pytest.raises(SourceError, match="prolog"):
        refuse_doctype(head[:65536], "export.xml")


def test_a_prolog_that_ends_is_read_as_before(tmp_path: Path) -> None:
    with within(5):
        refuse_doctype(b'<?xml version="1.0"?>\n<!-- ok -->\n<?pi x?>\n<EDEX/>', "export.xml")
        with pytest.raises(SourceError, match="DTD"):
            refuse_doctype(b'<?xml version="1.0"?><!-- c --><!DOCTYPE x [<!ENTITY a "b">]><x/>', "export.xml")


BAD_DATES = ["31-01-2031", "2031-13-01", "2031-02-30", "tomorrow", "2031-1-1"]


@pytest.mark.parametrize("bad", BAD_DATES)
def test_a_badly_typed_date_is_one_clear_message_in_every_command(tmp_path: Path, bad: str) -> None:
    from click.testing import CliRunner

    from connector.cli import main
    from tests.conftest import acting, write_config

    c = str(write_config(tmp_path, tmp_path / "x.xml"))
    who = acting("maker")
    commands = [
        ["destruction", "list", "create", "--config", c, "--today", bad, *who],
        ["destruction", "list", "execute", "--config", c, "1", "--today", bad, *who],
        ["destruction", "purge", "--config", c, "--today", bad, *who],
        ["pupil", "left", "--config", c, "K", "--date", bad, *who],
        ["pupil", "exam-result", "--config", c, "K", "--date", bad, *who],
        ["okr", "sent", "--config", c, "K", "--date", bad, "--to", "12AB", "--by", "x"],
        ["transfer", "--config", c, "K", "--part", "II", "--to-folder", str(tmp_path), "--today", bad, *who],
        ["access", "apply", "--config", c, "--all", "--today", bad],
        ["access", "show", "--config", c, "K", "--on", bad, "--by", "adm", "--reason", "test"],
        ["request", "open", "--config", c, "K", "--kind", "copy", "--requester", "x", "--received", bad, *who],
    ]
    for args in commands:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 2, (args, result.output)
        assert f"expected YYYY-MM-DD, got '{bad}'" in result.output, (args, result.output)


def test_terminal_escape_sequences_in_data_are_never_printed_raw(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from connector.cli import main
    from examples.synth import Synth, write
    from tests.conftest import acting, add_users, write_config

    export = write(tmp_path / "export.xml", Synth(pupils=5, duplicates=0, leavers=0.0))
    cfg = write_config(tmp_path, export)
    add_users(cfg)
    c = str(cfg)
    runner = CliRunner()
    assert runner.invoke(main, ["sync", "--config", c], catch_exceptions=False).exit_code == 0
    hostile = "klacht \x1b[31mrood\x1b[0m \x1b]8;;http://example.invalid\x07link\x1b]8;;\x07 \u202egnirts\x9b"
    added = runner.invoke(main, ["hold", "add", "--config", c, "LL000001", "--reason", hostile, *acting("maker")],
                          catch_exceptions=False)
    assert added.exit_code == 0, added.output
    shown = runner.invoke(main, ["hold", "list", "--config", c], catch_exceptions=False)
    assert "klacht" in shown.output and "rood" in shown.output
    for bad in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert bad not in shown.output


@pytest.mark.parametrize("error", [OSError(28, "No space left on device /var/lib/x"), ValueError("row 7: Jansen"),
                                   RecursionError("deep"), KeyError("bsn")])
def test_the_service_survives_any_error_in_a_cycle(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    from connector.service import Health, Metrics, Schedule, run_cycle

    metrics, health = Metrics(), Health(Schedule("1h", None))
    calls = []

    def cycle(_should_stop: object, _metrics: object) -> dict[str, str]:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return {"status": "ok"}

    assert run_cycle(cycle, lambda: False, metrics, health) == "failed"
    assert health.last_status == "failed" and health.last_error == f"unexpected {error.__class__.__name__}"
    assert "Jansen" not in caplog.text and "/var/lib" not in caplog.text
    assert run_cycle(cycle, lambda: False, metrics, health) == "ok"  # the next cycle runs


DUPLICATE_CHILD = """
import re, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from examples.synth import Synth, write
from tests.conftest import make_world
from adapters.las.edexml import EdexmlSettings, EdexmlSource
from connector.ports import SourceContext
from connector.sync import SyncOptions, sync
from datetime import date
folder = Path({folder!r})
export = write(folder / "x.xml", Synth(pupils={n}, duplicates=0, leavers=0.0))
text = re.sub(r"<bsn>\\d+</bsn>", "<bsn>999999990</bsn>", export.read_text(encoding="utf-8"))
export.write_text(text, encoding="utf-8")
w = make_world(folder)
source = EdexmlSource(EdexmlSettings(path=export), SourceContext(pseudonymize=w.identity.pseudonym_of))
started = time.perf_counter()
report = sync(source, w.store, w.state, w.audit, w.identity, w.mapping, SyncOptions(dry_run=True), date.today())
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
groups = [d for d in report.suspected_duplicates if d.get("group")]
print(len(groups), groups[0]["group"] if groups else 0, len(report.suspected_duplicates), round(seconds, 1), peak)
"""


def test_a_placeholder_bsn_shared_by_thousands_is_one_group_not_millions_of_pairs(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    n = 3000
    code = DUPLICATE_CHILD.format(root=str(ROOT), folder=str(tmp_path), n=n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    groups, size, entries, _seconds, peak_mb = out.stdout.split()
    assert int(groups) == 1 and int(size) == n  # one group of all of them, with a size
    assert int(entries) < 50  # not n² / 2 = 4.5 million pairs
    assert int(peak_mb) < 400, f"peak {peak_mb} MB"  # the quadratic version took 7.1 GB here


def test_what_the_connector_creates_is_private_whatever_the_umask(tmp_path: Path) -> None:
    import os

    from click.testing import CliRunner

    from connector.cli import main
    from examples.synth import Synth, write
    from tests.conftest import write_config

    export = write(tmp_path / "export.xml", Synth(pupils=5, duplicates=0, leavers=0.0))
    cfg = write_config(tmp_path, export)
    before = os.umask(0o022)  # a shell's usual umask
    try:
        assert CliRunner().invoke(main, ["sync", "--config", str(cfg)], catch_exceptions=False).exit_code == 0
    finally:
        os.umask(before)
    made = [tmp_path / "state.db", tmp_path / "dms", *(tmp_path / "dms").rglob("*")]
    assert len(made) > 10
    for path in made:
        mode = path.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{path.relative_to(tmp_path)} is {oct(mode)}"


@pytest.mark.parametrize("content", [
    b"[las]\ntype = \"edexml\"\npath = \"caf\xe9.xml\"\n",  # Windows-1252, not UTF-8
    b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",  # nested deeper than the parser's recursion
    b"a = { b = " * 3000 + b"1" + b" }" * 3000 + b"\n",
    b"\xff\xfe[\x00l\x00a\x00s\x00]\x00",  # UTF-16
    b"n = " + b"9" * 5000 + b"\n",  # more digits than Python turns into an int (found by bench/fuzz_soak.py)
])
def test_a_config_that_is_not_utf8_or_nests_too_deeply_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    from connector import config
    from connector.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_bytes(content)
    with within(20), pytest.raises(ConfigError, match="config.toml"):
        config.load(path)


def test_a_secret_in_the_environment_is_as_long_as_one_in_a_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from connector import config
    from connector.errors import ConfigError
    from tests.conftest import write_config

    cfg = write_config(tmp_path, tmp_path / "x.xml", identity={"secret": "env:LD_SHORT", "create_secret": False})
    loaded = config.load(cfg)
    monkeypatch.setenv("LD_SHORT", "kort")
    with pytest.raises(ConfigError, match="too short"):
        loaded.secret("env:LD_SHORT", ["identity", "secret"])
    monkeypatch.setenv("LD_SHORT", "lang-genoeg-geheim-0123456789")
    assert loaded.secret("env:LD_SHORT", ["identity", "secret"]) == b"lang-genoeg-geheim-0123456789"


def test_the_service_makes_no_empty_list_when_nothing_is_due(tmp_path: Path) -> None:
    from connector import destruction
    from connector.app import open_app
    from connector.app.service import make_cycle
    from connector.service import Metrics
    from examples.synth import Synth, write
    from tests.conftest import write_config

    export = write(tmp_path / "export.xml", Synth(pupils=5, duplicates=0, leavers=0.0))
    cfg = write_config(tmp_path, export)
    cfg.write_text(cfg.read_text() + '\n[service]\njobs = ["sync", "destruction_list", "purge"]\n')
    app = open_app(cfg, setup_logging=False)
    try:
        cycle = make_cycle(app)
        for _ in range(3):
            assert cycle(lambda: False, Metrics())["status"] == "ok"
        with pytest.raises(Exception, match="no destruction list"):
            destruction.load_list(app.state, 1)
        assert not any(e["action"] == "destruction.list.created" for e in app.audit.entries())
    finally:
        app.state.close()


def test_an_error_never_repeats_a_typed_key(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from connector.cli import main
    from tests.conftest import write_config

    c = str(write_config(tmp_path, tmp_path / "x.xml"))
    result = CliRunner().invoke(main, ["pupil", "facts", "--config", c, "554911796"], catch_exceptions=False)
    assert result.exit_code == 1 and "no dossier" in result.output and "554911796" not in result.output
