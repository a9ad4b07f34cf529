"""The state machines of the journal, lists, items, documents and requests: every status is
named, and a row never leaves a final status (a done operation is never replayed, a cancelled
list never becomes executed)."""

from __future__ import annotations

import pytest

from connector.errors import InvalidState
from connector.state.schema import MACHINES, MOVES, sources
from tests.conftest import World, pupil


def test_every_status_is_named_and_the_moves_stay_inside_their_machine() -> None:
    for machine, enum in MACHINES.items():
        named = {s.value for s in enum}
        assert set(MOVES[machine]) == named, machine
        assert all(moves <= named for moves in MOVES[machine].values()), machine
    assert "skipped" in {s.value for s in MACHINES["journal"]}  # skip() writes it
    assert sources("journal", "sent") == ("failed", "new", "sent")
    assert sources("list", "executed") == ("approved", "executed")


def test_a_done_operation_is_never_marked_again(world: World) -> None:
    from sqlalchemy import select

    from connector.state import journal

    world.sync([pupil("A1")])
    with world.state.engine.connect() as conn:
        done = conn.execute(select(journal.c.id).where(journal.c.status == "done")).scalars().first()
    assert done is not None
    for status in ("sent", "failed", "new"):
        with pytest.raises(InvalidState):
            world.state.journal_mark(done, status)
    with world.state.engine.connect() as conn:
        assert conn.execute(select(journal.c.status).where(journal.c.id == done)).scalar() == "done"


def test_a_cancelled_list_is_never_marked_executed_or_approved(world: World) -> None:
    from connector import destruction
    from tests.conftest import MAKER
    from tests.unit.test_destruction_gate import CLOCK, SCHEDULE

    world.sync([pupil("K1")])
    list_id, _n = destruction.create_list(world.state, world.audit, SCHEDULE, CLOCK.today(), MAKER, CLOCK)
    with world.state.transaction() as conn:
        world.state.update_list(conn, list_id, status="cancelled")
    with pytest.raises(InvalidState), world.state.transaction() as conn:
        world.state.update_list(conn, list_id, status="approved")
    with world.state.transaction() as conn:
        world.state.list_executed(conn, list_id)
    assert destruction.load_list(world.state, list_id)[0]["status"] == "cancelled"
