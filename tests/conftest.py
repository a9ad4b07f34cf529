from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from adapters.dms.filesystem import FilesystemSettings, FilesystemStore
from connector.audit import AuditLog
from connector.errors import RejectedRecord
from connector.execute import RetryPolicy
from connector.identity import Identity
from connector.mapping import Mapping
from connector.mapping import load as load_mapping
from connector.model import Pupil, School
from connector.ports import SourceReport
from connector.state import SharedEngines, StateStore
from connector.sync import SyncOptions, SyncReport, sync
from connector.users import User

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SAMPLE = ROOT / "examples" / "obs-de-sample.edexml.xml"
XSD = ROOT / "adapters" / "las" / "xsd"
SECRET = b"test-secret-0123456789abcdef"


def need(ok: bool, what: str) -> None:
    """A test that needs a tool or server this machine lacks: under ``CI=true`` it fails, never
    skips; elsewhere it skips, saying what is missing."""
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(what)
        pytest.skip(what)


TEST_SECRET = "test-user-secret-0123"
"""The secret of every test user (in the environment as LD_TEST_SECRET)."""


def acting(name: str) -> list[str]:
    """The CLI arguments that make a command act as test user ``name``."""
    return ["--as", name, "--secret", "env:LD_TEST_SECRET"]


TEST_USERS = {"admin": ["admin"], "maker": ["maker", "executor"], "approver": ["approver"],
              "approver2": ["approver"]}
"""The users ``add_users`` makes: the maker of lists also executes them; two approvers."""


def add_users(config: Path, names: dict[str, list[str]] | None = None) -> None:
    """Add the test users to the install of ``config`` (the first, admin, needs no --as)."""
    from click.testing import CliRunner

    from connector.cli import main

    for name, roles in (names or TEST_USERS).items():
        extra = [] if name == "admin" else acting("admin")
        args = ["user", "add", "--config", str(config), name, *[arg for r in roles for arg in ("--role", r)],
                "--new-secret", "env:LD_TEST_SECRET", *extra]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output


def write_config(folder: Path, export: Path, to: Path | None = None, simulated: bool = True,
                 **sections: dict[str, object]) -> Path:
    """A config for the embedded default in ``folder`` (or in the file ``to``: relative paths
    in it are then relative to ``to``'s folder); ``sections`` override keys. ``simulated``: an
    install marked for tests, whose irreversible commands take ``--today``."""
    base: dict[str, dict[str, object]] = {
        "las": {"type": "edexml", "path": str(export)},
        "dms": {"type": "filesystem", "root": "dms"},
        "state": {"url": "sqlite:///state.db"},
        "identity": {"key": "las_key", "secret": "file:install.key", "create_secret": True},
        "mapping": {"preset": "po"},
        "safety": {"min_snapshot_ratio": 0.8},
        "logging": {"level": "DEBUG"},
        # a test carries out a list on the day it is approved; the cooling-off tests set it
        "destruction": {"cooling_off_days": 0},
    }
    if simulated:
        base["testing"] = {"simulated_clock": True}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        for k, v in values.items():
            lines.append(f"{k} = {_toml(v)}")
        lines.append("")
    path = to or folder / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(x)}' for k, x in v.items()) + " }"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class ListSource:
    """A PupilSource over a list (a test double of the port; adapters are tested on their own)."""

    items: list[Pupil | RejectedRecord]
    school: School = field(default_factory=lambda: School(brin="99XY", dependancecode="00"))
    report: SourceReport = field(default_factory=SourceReport)

    snapshot: str = "list-1"
    position: int = 0

    def pupils(self, since: str | None = None, resume: str | None = None):
        self.report = SourceReport(school=self.school)
        self.position = 0
        skip = 0
        if resume:
            snapshot, _, n = resume.partition(":")
            skip = int(n) if snapshot == self.snapshot else 0
        self.report.resumed_at = skip
        for item in self.items:
            self.position += 1
            if self.position > skip:
                yield item

    def cursor(self) -> str:
        return f"{self.snapshot}:{self.position}"

    def check(self) -> list[str]:
        return []


@dataclass
class World:
    """State, store and audit in a folder, to run the core directly."""

    folder: Path
    state: StateStore
    store: FilesystemStore
    audit: AuditLog
    identity: Identity
    mapping: Mapping

    def sync(self, items: list[Pupil | RejectedRecord], today: date = date(2026, 11, 24),
             store: object | None = None, **options: object) -> SyncReport:
        opts = SyncOptions(retry=RetryPolicy(attempts=2, initial=0.0, maximum=0.0), **options)  # type: ignore[arg-type]
        return sync(ListSource(items), store or self.store, self.state, self.audit, self.identity,
                    self.mapping, opts, today)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The core's world on each state backend: SQLite (the embedded default) and PostgreSQL, the
    latter as a fleet worker opens a school's store (its own schema, on a shared engine)."""
    if request.param == "sqlite":
        yield make_world(tmp_path)
        return
    from tests.integration.postgres import fresh_database

    shared = SharedEngines()
    with fresh_database() as url:
        w = make_world(tmp_path, url, schema="school_t", shared=shared)
        yield w
        w.state.close()
        shared.dispose()


def reopen(w: World) -> World:
    """The same world as a new process would open it (same folder, same state store)."""
    return make_world(w.folder, w.state.engine.url.render_as_string(hide_password=False), schema=w.state.schema)


def make_world(folder: Path, url: str | None = None, schema: str | None = None,
               shared: SharedEngines | None = None) -> World:
    state = StateStore(url or f"sqlite:///{folder / 'state.db'}", schema, shared)
    identity = Identity(SECRET, "las_key")
    return World(folder, state, filesystem_store(folder / "dms", identity.index_key),
                 AuditLog(state, identity.audit_key), identity, load_mapping("po"))


TEST_INDEX_KEY = b"test-index-key-0123456789abcdef"


def filesystem_store(root: Path, index_key: bytes = TEST_INDEX_KEY) -> FilesystemStore:
    """A filesystem store as the core opens it: with an index key (from the install secret)."""
    from connector.ports import StoreContext

    return FilesystemStore(FilesystemSettings(root=root), StoreContext(index_key=index_key))


def pupil(key: str, **fields: object) -> Pupil:
    data: dict[str, object] = {"key": key, "school": School(brin="99XY", dependancecode="00"),
                               "achternaam": f"Achter{key}", "roepnaam": "Roep",
                               "geboortedatum": date(2015, 3, 1), "jaargroep": "5",
                               "instroomdatum": date(2019, 8, 20)}
    data.update(fields)
    return Pupil.model_validate(data)


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEERDOSSIER_CONFIG", raising=False)
    os.environ.pop("LEERDOSSIER_CONFIG", None)
    monkeypatch.setenv("LD_TEST_SECRET", TEST_SECRET)


MAKER = User(name="maker", roles=frozenset({"maker", "executor"}))
APPROVER = User(name="approver", roles=frozenset({"approver"}))
APPROVER2 = User(name="approver2", roles=frozenset({"approver"}))
"""Identified users for tests of the core (which takes a User; the CLI authenticates one)."""


@pytest.fixture(scope="session")
def mayan_server():  # type: ignore[no-untyped-def]
    """A real Mayan EDMS for the whole session. It fails (never skips) when Mayan cannot start;
    deselect these tests locally with -m 'not mayan'."""
    from tests.integration import mayan_server as ms

    try:
        server = ms.start()
    except ms.MayanUnavailable as exc:
        pytest.fail(f"Mayan EDMS could not be started: {exc}")
    yield server
    server.stop()


def mayan_store(server, **settings: object):  # type: ignore[no-untyped-def]
    from adapters.dms.mayan import MayanSettings, MayanStore
    from connector.ports import StoreContext

    context = StoreContext(secret=lambda ref: server.token.encode(), index_key=os.urandom(32))
    return MayanStore(MayanSettings(url=server.url, token="env:UNUSED", **settings), context)  # type: ignore[arg-type]
