"""The state store on both backends: the migrations build exactly the schema the code uses, a
store made before migrations is adopted, and the CLI runs on PostgreSQL as on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, inspect

from connector.cli import main
from connector.state import StateStore, meta, metadata
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
