"""What a sync records of the pupils it saw (duplicate keys, vanished since) follows the export,
and a sync that finds nothing changed rewrites no recorded dossier."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import literal_column, select

from connector.state import dossiers
from tests.conftest import World, pupil


def _rows(world: World) -> dict[str, dict[str, Any]]:
    """Each recorded dossier's duplicate keys and vanished date, and on PostgreSQL the version
    of its row (xmin changes whenever the row is written)."""
    version = "xmin::text" if world.state.engine.dialect.name == "postgresql" else "null"
    with world.state.engine.connect() as conn:  # through the model: the store's schema is named for it
        rows = conn.execute(select(dossiers.c.external_id, dossiers.c.dup_pgn, dossiers.c.dup_nb,
                                   dossiers.c.vanished_since, literal_column(version)))
        return {r[0].rsplit(":", 1)[1]: {"pgn": r[1], "nb": r[2], "vanished": r[3], "version": r[4]} for r in rows}


def test_recorded_keys_follow_the_export_and_an_unchanged_sync_rewrites_nothing(world: World) -> None:
    a = pupil("A1", pgn="123456782", pgn_kind="bsn")
    b, c = pupil("B2"), pupil("C3")
    assert not world.sync([a, b, c]).failed
    first = _rows(world)
    assert first["A1"]["pgn"] and first["A1"]["nb"] and first["B2"]["nb"]
    assert all(r["vanished"] is None for r in first.values())

    world.sync([a, b, c])
    assert _rows(world) == first  # same values and, on PostgreSQL, not one row written again

    renamed = pupil("A1", pgn="123456782", pgn_kind="bsn", achternaam="Anders")
    world.sync([renamed, b], accept_snapshot=True)
    second = _rows(world)
    assert second["A1"]["nb"] not in (None, first["A1"]["nb"])  # the name is part of the key
    assert second["A1"]["pgn"] == first["A1"]["pgn"]
    assert second["C3"]["vanished"] is not None
    assert second["B2"] == first["B2"]

    world.sync([renamed, b, c], accept_snapshot=True)
    third = _rows(world)
    assert third["C3"]["vanished"] is None  # back in the export
    assert third["B2"] == first["B2"]


def test_access_facts_and_the_audit_chain_are_recorded_alike_on_both_backends(world: World) -> None:
    """The facts a sync stages and records in batches (birth dates, a missing one included,
    guardians with and without authority) read back as given, and the audit entries written
    together keep a chain that verifies."""
    from connector.model import Guardian

    mother = Guardian(achternaam="Moeder", voorletters="A.", relatie="2", gezag=True)
    carer = Guardian(achternaam="Verzorger", relatie="3", gezag=None)
    a = pupil("A1", guardians=(mother, carer))
    b = pupil("B2", geboortedatum=None, guardians=(mother,))
    c = pupil("C3")
    assert not world.sync([a, b, c]).failed
    ids = {p.key: world.identity.external_id(p) for p in (a, b, c)}
    page = world.state.access_page(list(ids.values()))
    assert page[ids["A1"]]["birth"] == date(2015, 3, 1) and page[ids["B2"]]["birth"] is None
    assert sorted((g["relation"], g["authority"], g["display"]) for g in page[ids["A1"]]["guardians"]) == [
        ("2", "yes", "A. Moeder"), ("3", None, "Verzorger")]
    assert [g["relation"] for g in page[ids["B2"]]["guardians"]] == ["2"] and page[ids["C3"]]["guardians"] == []
    # a guardian gone from the LAS is marked removed, not forgotten; the others stay as they were
    assert not world.sync([pupil("A1", guardians=(mother,)), b, c]).failed
    assert [g["relation"] for g in world.state.access_page([ids["A1"]])[ids["A1"]]["guardians"]] == ["2"]
    verified = world.audit.verify()
    assert verified.ok and verified.entries == 5, verified.problems  # 3 created, 2 syncs finished
