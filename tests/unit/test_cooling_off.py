"""The cooling-off period between a list's final approval and its execution, and a list sent
back by its approver: nothing is removed before the period ends, whichever way the removal is
asked for (the executor's list-level check and the gate's check of every item), anyone may
cancel in the meantime, and a list sent back removes nothing and gives its items to the next."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector import destruction
from connector.clock import Clock
from connector.errors import InvalidState, NotPermitted
from connector.model import DocumentRef, Operation
from tests.conftest import APPROVER, MAKER, World
from tests.unit.test_destruction_gate import CLOCK, KEY, SCHEDULE, TODAY, left_long_ago


def made(w: World) -> int:
    list_id, n = destruction.create_list(w.state, w.audit, SCHEDULE, TODAY, MAKER, CLOCK)
    assert n == 1
    return list_id


def execute(w: World, list_id: int, clock: Clock) -> destruction.ExecuteReport:
    return destruction.execute(w.store, w.state, w.audit, SCHEDULE, list_id, clock, 100, MAKER, KEY)


def test_nothing_is_removed_before_the_cooling_off_period_ends(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport"])
    list_id = made(world)
    result = destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, "directeur", {}, CLOCK,
                                 cooling_off_days=7)
    assert result["cooling_off_until"] == (TODAY + timedelta(days=7)).isoformat()
    for days in (0, 1, 6):
        with pytest.raises(InvalidState, match="cooling-off period until"):
            execute(world, list_id, Clock(TODAY + timedelta(days=days)))
    # the gate itself refuses each item too, whatever path asks it
    _head, items = destruction.load_list(world.state, list_id)
    item = items[0]
    gate = destruction.Gate(world.state, SCHEDULE, Clock(TODAY + timedelta(days=6)), KEY, 1, 0)
    op = Operation(kind="destroy_document", external_id=item["external_id"], pseudonym=item["pseudonym"],
                   document=DocumentRef(id=item["doc_id"], dossier_id=item["dossier_id"], part=item["part"],
                                        doc_class=item["doc_class"], name=item["doc_id"]),
                   item_id=item["id"])
    assert "cooling-off" in str(gate.check(op))
    assert world.state.overview()["documents"].get("present") == 1
    later = destruction.Gate(world.state, SCHEDULE, Clock(TODAY + timedelta(days=7)), KEY, 1, 0)
    assert later.check(op) is None
    report = execute(world, list_id, Clock(TODAY + timedelta(days=7)))
    assert report.destroyed == 1


def test_anyone_may_cancel_in_the_cooling_off_period(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport"])
    list_id = made(world)
    destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK, cooling_off_days=7)
    destruction.cancel(world.state, world.audit, list_id, MAKER, "ouders melden bezwaar")
    with pytest.raises(InvalidState):
        execute(world, list_id, Clock(TODAY + timedelta(days=30)))
    again, n = destruction.create_list(world.state, world.audit, SCHEDULE, TODAY, MAKER, CLOCK)
    assert n == 1 and again != list_id  # the item is offered again


def test_a_list_sent_back_removes_nothing_and_its_items_go_on_the_next(world: World) -> None:
    left_long_ago(world, ["K1"], ["rapport"])
    list_id = made(world)
    with pytest.raises(NotPermitted):
        destruction.send_back(world.state, world.audit, list_id, MAKER, "zelf terugsturen")  # not an approver
    destruction.send_back(world.state, world.audit, list_id, APPROVER, "rapport nog nodig, later opnieuw")
    head, _ = destruction.load_list(world.state, list_id)
    assert head["status"] == "sent_back"
    with pytest.raises(InvalidState):
        destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)
    with pytest.raises(InvalidState):
        execute(world, list_id, Clock(TODAY + timedelta(days=30)))
    steps = [e for e in world.audit.entries(None, actions=("destruction.list.sent_back",))
             if e["details"]["list"] == list_id]
    assert steps and steps[0]["details"]["comment"] == "rapport nog nodig, later opnieuw"
    _again, n = destruction.create_list(world.state, world.audit, SCHEDULE, TODAY, MAKER, CLOCK)
    assert n == 1


def test_a_list_assigned_to_one_reviewer_is_reviewed_by_them_and_can_be_reassigned(world: World) -> None:
    from tests.conftest import APPROVER2

    left_long_ago(world, ["K1"], ["rapport"])
    list_id = made(world)
    with pytest.raises(NotPermitted):
        destruction.assign(world.state, world.audit, list_id, APPROVER, APPROVER2)  # not its maker nor an admin
    with pytest.raises(NotPermitted):
        destruction.assign(world.state, world.audit, list_id, MAKER, MAKER)  # the maker never reviews
    destruction.assign(world.state, world.audit, list_id, MAKER, APPROVER2)
    with pytest.raises(NotPermitted, match="assigned to"):
        destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)
    with pytest.raises(NotPermitted, match="assigned to"):
        destruction.send_back(world.state, world.audit, list_id, APPROVER, "anders")
    destruction.assign(world.state, world.audit, list_id, MAKER, APPROVER)  # reassigned
    destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)
    head, _ = destruction.load_list(world.state, list_id)
    assert head["status"] == "approved" and head["reviewer"] is None
    with pytest.raises(InvalidState):
        destruction.assign(world.state, world.audit, list_id, MAKER, APPROVER2)  # no longer under review
