"""The access rules as properties: nothing is granted without a basis; turning 16 ends parental
inspection unless the pupil consents; parents without authority are informed, never inspect."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.access import (
    AccessFacts,
    AccessPolicy,
    Grant,
    GuardianFacts,
    access_list,
    adult_from,
    age_on,
    diff,
    next_change,
)

POLICY = AccessPolicy(roles={"leerkracht": ("I", "II"), "administratie": ("I",)}, parts=("I", "II"),
                      information_classes=("rapport",))

guardians = st.lists(st.builds(GuardianFacts, id=st.sampled_from(["g-a", "g-b", "g-c"]),
                               authority=st.sampled_from([True, False, None]), deceased=st.booleans()),
                     max_size=3, unique_by=lambda g: g.id)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))


@st.composite
def grants(draw):  # type: ignore[no-untyped-def]
    out = []
    for i in range(draw(st.integers(0, 3))):
        start = draw(days)
        out.append(Grant(id=i + 1, kind=draw(st.sampled_from(["parent_after_adult_age", "third_party"])),
                         grantee=draw(st.sampled_from(["g-a", "g-b", "inspectie"])),
                         parts=tuple(draw(st.lists(st.sampled_from(["I", "II", "III"]), min_size=1, unique=True))),
                         basis=draw(st.sampled_from(["consent", "legal_duty"])), start=start,
                         until=start + timedelta(days=draw(st.integers(0, 800)))))
    return tuple(out)


@settings(max_examples=300, deadline=None)
@given(birth=st.one_of(st.none(), days), gs=guardians, gr=grants(), on=days)
def test_no_one_gets_access_without_a_basis(birth, gs, gr, on) -> None:  # type: ignore[no-untyped-def]
    facts = AccessFacts(pseudonym="p-x", birth_date=birth, guardians=tuple(gs), grants=gr)
    entries, _ = access_list(facts, POLICY, on)
    by_id = {g.id: g for g in gs}
    for e in entries:
        assert e.part in POLICY.parts
        if e.kind == "role":
            assert e.part in POLICY.roles[e.principal.removeprefix("role:")]
        elif e.kind == "pupil":
            assert birth is not None and age_on(birth, on) >= 16
        elif e.kind == "guardian":
            g = by_id[e.principal.removeprefix("guardian:")]
            assert not g.deceased and g.authority is not None and birth is not None
            if e.right == "information":
                assert g.authority is False and e.classes == POLICY.information_classes
            else:
                assert g.authority is True
                under_16 = age_on(birth, on) < 16
                consent = any(x.kind == "parent_after_adult_age" and x.grantee == g.id and x.in_force(on)
                              and e.part in x.parts for x in gr)
                assert under_16 or consent
        else:
            assert any(x.kind == "third_party" and x.in_force(on) and e.principal == f"third_party:{x.grantee}"
                       and e.part in x.parts for x in gr)
        assert e.until is None or e.until >= on
        assert e.basis


@settings(max_examples=300, deadline=None)
@given(birth=days, gs=guardians, gr=grants())
def test_turning_16_ends_parental_inspection_unless_the_pupil_consents(birth, gs, gr) -> None:  # type: ignore[no-untyped-def]
    facts = AccessFacts(pseudonym="p-x", birth_date=birth, guardians=tuple(gs), grants=gr)
    birthday = adult_from(birth, 16)
    before, _ = access_list(facts, POLICY, birthday - timedelta(days=1))
    after, _ = access_list(facts, POLICY, birthday)
    for g in gs:
        if g.authority is True and not g.deceased:
            assert any(e.principal == f"guardian:{g.id}" and e.right == "inspect" for e in before)
        consent = any(x.kind == "parent_after_adult_age" and x.grantee == g.id and x.in_force(birthday) for x in gr)
        inspects = [e for e in after if e.principal == f"guardian:{g.id}" and e.right == "inspect"]
        assert not inspects or (consent and g.authority is True)
        assert not any(e.principal == f"guardian:{g.id}" and e.right == "information" for e in after)
    assert {e.part for e in after if e.principal == "pupil"} == set(POLICY.parts)
    assert not any(e.principal == "pupil" for e in before)
    assert next_change(facts, POLICY, birthday - timedelta(days=1)) is not None


def test_a_parent_without_authority_is_informed_of_reports_only() -> None:
    facts = AccessFacts(pseudonym="p-x", birth_date=date(2015, 5, 1),
                        guardians=(GuardianFacts(id="g-a", authority=False),))
    entries, _ = access_list(facts, POLICY, date(2026, 11, 24))
    mine = [e for e in entries if e.principal == "guardian:g-a"]
    assert mine and all(e.right == "information" and e.classes == ("rapport",) for e in mine)


def test_unknown_authority_grants_nothing_and_says_so() -> None:
    facts = AccessFacts(pseudonym="p-x", birth_date=date(2015, 5, 1),
                        guardians=(GuardianFacts(id="g-a", authority=None),))
    entries, notes = access_list(facts, POLICY, date(2026, 11, 24))
    assert not [e for e in entries if e.kind == "guardian"]
    assert any("authority unknown" in n.note for n in notes)


def test_leap_day_birthday_and_diff() -> None:
    assert adult_from(date(2008, 2, 29), 16) == date(2024, 2, 29)
    assert adult_from(date(2009, 2, 28), 16) == date(2025, 2, 28)
    assert adult_from(date(2004, 2, 29), 17) == date(2021, 3, 1)
    facts = AccessFacts(pseudonym="p-x", birth_date=date(2010, 6, 1),
                        guardians=(GuardianFacts(id="g-a", authority=True),))
    before, _ = access_list(facts, POLICY, date(2026, 5, 31))
    after, _ = access_list(facts, POLICY, date(2026, 6, 1))
    grant, revoke = diff(before, after)
    assert {e.principal for e in revoke} == {"guardian:g-a"} and {e.principal for e in grant} == {"pupil"}


AFTER = POLICY.model_copy(update={"roles_after_departure": {"administratie": ("I",)}})


@settings(max_examples=300, deadline=None)
@given(birth=days, departure=st.one_of(st.none(), days), on=days, gs=guardians, gr=grants())
def test_after_departure_staff_keep_only_what_their_role_keeps(birth, departure, on, gs, gr) -> None:  # type: ignore[no-untyped-def]
    """From the departure date on, a staff role holds only the parts it keeps after departure
    (here: the administration part I; the teacher nothing); before it, every part it works with.
    Parents' and the pupil's own rights are the same with or without a departure."""
    facts = AccessFacts(pseudonym="p-x", birth_date=birth, guardians=gs, grants=gr, departure=departure)
    entries, _ = access_list(facts, AFTER, on)
    staff = {(e.principal, e.part) for e in entries if e.kind == "role"}
    if departure is not None and on >= departure:
        assert staff == {("role:administratie", "I")}
    else:
        assert staff == {("role:leerkracht", "I"), ("role:leerkracht", "II"), ("role:administratie", "I")}
    others, _ = access_list(facts.model_copy(update={"departure": None}), AFTER, on)
    assert [e for e in entries if e.kind != "role"] == [e for e in others if e.kind != "role"]
    if departure is not None and departure > on:
        upcoming = next_change(facts, AFTER, on)
        assert upcoming is not None and upcoming <= departure
