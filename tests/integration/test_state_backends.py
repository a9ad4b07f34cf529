"""The state store on both backends: the migrations build exactly the schema the code uses, a
store made before migrations is adopted, the CLI runs on PostgreSQL as on SQLite, and schools'
stores share one engine in a fleet worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, inspect, text

from connector.cli import main
from connector.errors import SafetyStop
from connector.state import SharedEngines, StateStore, meta, metadata
from examples.synth import Synth, write
from tests.conftest import write_config
from tests.integration.postgres import fresh_database


def _no_drift(url: str) -> None:
    state = StateStore(url)
    with state.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        assert "alembic_version" in inspect(conn).get_table_names()
    state.close()
    assert diffs == [], diffs


def test_the_migrations_build_the_schema_on_sqlite(tmp_path: Path) -> None:
    _no_drift(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.postgres
def test_the_migrations_build_the_schema_on_postgres() -> None:
    with fresh_database() as url:
        _no_drift(url)


def test_a_store_made_before_migrations_is_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    old = create_engine(url)
    keep = [t for name, t in metadata.tables.items() if name not in ("acl_applied", "accounts", "grants")]
    metadata.create_all(old, tables=keep)  # an older version's tables, without alembic
    with old.begin() as conn:
        conn.execute(insert(meta).values(key="schema", value="2"))
    old.dispose()
    _no_drift(url)  # missing tables added, recorded at the baseline


@pytest.mark.postgres
def test_the_cli_on_a_postgres_state_store(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", Synth(pupils=25, duplicates=0))
    with fresh_database() as url:
        config = write_config(tmp_path, export, state={"url": url.replace("+psycopg", "")})
        run = CliRunner()
        first = run.invoke(main, ["sync", "--config", str(config), "--json"])
        assert first.exit_code == 0, first.output
        assert json.loads(first.stdout)["dossiers_created"] == 25
        second = json.loads(run.invoke(main, ["sync", "--config", str(config), "--json"]).stdout)
        assert second["dms_writes"] == 0
        verify = run.invoke(main, ["audit", "verify", "--config", str(config)])
        assert verify.exit_code == 0
        assert not (tmp_path / "state.db").exists()  # everything went to PostgreSQL


def test_a_store_at_an_older_migration_is_brought_to_the_newest(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from connector.state import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")  # the first release's schema
        assert "ix_journal_run_id" in {i["name"] for i in inspect(conn).get_indexes("journal")}
    engine.dispose()
    _no_drift(url)  # opening it ran the newer migrations
    engine = create_engine(url)
    with engine.connect() as conn:
        assert {i["name"] for i in inspect(conn).get_indexes("journal")} == {"ix_journal_open", "ix_journal_target"}
    engine.dispose()


@pytest.mark.postgres
def test_schools_on_a_shared_engine_keep_to_their_own_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet worker opens school after school on one engine: each store reads and writes its
    own schema only, the migrations build each schema exactly, and a store at the newest
    migration opens without running alembic again."""
    from alembic import command

    upgrades: list[object] = []
    upgrade = command.upgrade
    monkeypatch.setattr(command, "upgrade", lambda *a, **k: (upgrades.append(a), upgrade(*a, **k)))
    shared = SharedEngines()
    with fresh_database() as url:
        try:
            a, b = StateStore(url, "school_a", shared), StateStore(url, "school_b", shared)
            assert len(upgrades) == 2 and a.engine.pool is b.engine.pool
            run = a.begin_run("sync")
            a.finish_run(run, "ok", "01XY", 3, {})
            assert [r["school"] for r in a.last_runs(5)] == ["01XY"] and b.last_runs(5) == []
            a.close()
            b.close()
            again = StateStore(url, "school_a", shared)
            assert [r["school"] for r in again.last_runs(5)] == ["01XY"]
            assert len(upgrades) == 2  # at the newest already: two catalog reads, no alembic
            again.close()
            for schema in ("school_a", "school_b"):  # exactly the model's tables, in each schema
                own = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
                with own.connect() as conn:
                    assert compare_metadata(MigrationContext.configure(conn), metadata) == []
                own.dispose()
            with create_engine(url).connect() as conn:
                assert "runs" not in inspect(conn).get_table_names(schema="public")
        finally:
            shared.dispose()


@pytest.mark.postgres
def test_a_lock_taken_on_a_shared_engine_is_released_and_a_lost_server_is_survived() -> None:
    """The pooled connection that held a school's lock goes back to the pool without it; after
    the server dropped every connection (a restart), the next job's store opens on new ones."""
    shared = SharedEngines()
    with fresh_database() as url:
        try:
            school = StateStore(url, "school_a", shared)
            other = StateStore(url, "school_a")  # another worker's process
            with school.exclusive("service"), pytest.raises(SafetyStop), other.exclusive("service"):
                pass
            school.close()
            with other.exclusive("service"):  # released, though its connection is still pooled
                pass
            other.close()
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                ended = conn.execute(text("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                          "where datname = current_database() and pid <> pg_backend_pid()"))
                assert ended.scalar_one() >= 1  # the pooled connections are gone
            admin.dispose()
            reopened = StateStore(url, "school_a", shared)
            assert reopened.last_runs(5) == []
            reopened.close()
        finally:
            shared.dispose()
