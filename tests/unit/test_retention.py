"""The retention rule and schedules: seed policy 2010 (Bijlage 2) row by row, and the PO preset."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.errors import ConfigError
from connector.mapping import load as load_mapping
from connector.model import PupilFacts
from connector.retention import add_period, is_due, load_schedule, period_days, tag

CLASSES = {c for p in load_mapping("po").parts for c in p.classes}
LEFT = date(2026, 7, 10)
POLICY = load_schedule("policy-2010-primenius", classes=CLASSES)
PO = load_schedule("retention-po", classes=CLASSES)


# Bijlage 2 of the 2010 policy, row by row: (what, class, facts, due)
@pytest.mark.parametrize(("row", "doc_class", "facts", "due"), [
    ("gegevens voor het berekenen van betalingen: 8 weken nadat leerling van school is",
     "bekostiging", PupilFacts(departure=LEFT), date(2026, 9, 4)),
    ("ouderverklaring leerlinggewicht is bekostigingsgegeven: 8 weken",
     "ouderverklaring_gewicht", PupilFacts(departure=LEFT), date(2026, 9, 4)),
    ("leerlingadministratie (deel 1): 5 jaar nadat de leerling is uitgeschreven",
     "inschrijving", PupilFacts(departure=LEFT), date(2031, 7, 10)),
    ("verzuim is deel 1: 5 jaar", "verzuim", PupilFacts(departure=LEFT), date(2031, 7, 10)),
    ("deel 2: onderwijskundig rapport 2 jaar nadat een leerling van school is",
     "onderwijskundig_rapport", PupilFacts(departure=LEFT), date(2028, 7, 10)),
    ("deel 2: psychologisch rapport 2 jaar", "psychologisch_rapport", PupilFacts(departure=LEFT), date(2028, 7, 10)),
    ("uitzondering: doorverwezen naar speciaal onderwijs: 3 jaar", "psychologisch_rapport",
     PupilFacts(departure=LEFT, referred=date(2026, 3, 1)), date(2029, 7, 10)),
    ("uitzondering geldt deel 2, niet deel 1", "inschrijving",
     PupilFacts(departure=LEFT, referred=date(2026, 3, 1)), date(2031, 7, 10)),
    ("naam, adres, schoolperiode mogen bewaard blijven (met toestemming)", "reuniegegevens",
     PupilFacts(departure=LEFT, reunion_consent=date(2026, 6, 1)), None),
    ("zonder toestemming volgen ze deel 1", "reuniegegevens", PupilFacts(departure=LEFT), date(2031, 7, 10)),
])
def test_policy_2010_bijlage_2(row: str, doc_class: str, facts: PupilFacts, due: date | None) -> None:
    t = tag(facts, doc_class, POLICY)
    assert t.due == due, row
    assert t.kind == "maximum" and "2010" in t.basis


@pytest.mark.parametrize(("doc_class", "facts", "category", "due"), [
    ("inschrijving", PupilFacts(departure=LEFT), "administratie", date(2031, 7, 10)),
    ("bekostiging", PupilFacts(departure=LEFT), "administratie", date(2031, 7, 10)),  # no 8-week rule
    ("rapport", PupilFacts(departure=LEFT), "dossier", date(2028, 7, 10)),
    ("handelingsplan", PupilFacts(departure=LEFT, referred=date(2025, 1, 1)), "dossier", date(2029, 7, 10)),
    ("reuniegegevens", PupilFacts(departure=LEFT), "reunie", date(2028, 7, 10)),
    ("reuniegegevens", PupilFacts(departure=LEFT, reunion_consent=date(2026, 1, 1)), "reunie", None),
    ("vrijstelling_leerplicht", PupilFacts(departure=LEFT), "archiefwet", None),
])
def test_po_preset(doc_class: str, facts: PupilFacts, category: str, due: date | None) -> None:
    t = tag(facts, doc_class, PO)
    assert (t.category, t.due) == (category, due)


def test_no_departure_means_an_open_clock() -> None:
    t = tag(PupilFacts(), "rapport", PO)
    assert t.due is None and not is_due(t, date(2099, 1, 1))


def test_reenrolment_stops_a_running_clock() -> None:
    t = tag(PupilFacts(departure=LEFT, reenrolled=date(2026, 8, 20)), "rapport", PO)
    assert t.due is None


def test_blocked_is_never_due() -> None:
    t = tag(PupilFacts(departure=date(1990, 1, 1)), "vrijstelling_leerplicht", PO)
    assert t.blocked and t.due is None and not is_due(t, date(2099, 1, 1))


def test_unclassified_gets_the_longest_period_and_is_flagged() -> None:
    t = tag(PupilFacts(departure=LEFT), None, PO)
    assert t.unclassified and t.due == date(2031, 7, 10)
    for cls in CLASSES:
        other = tag(PupilFacts(departure=LEFT, referred=LEFT), cls, PO)
        if other.due is not None:
            assert tag(PupilFacts(departure=LEFT, referred=LEFT), None, PO).due >= other.due  # type: ignore[operator]
    assert tag(PupilFacts(departure=LEFT), "no-such-class", PO).unclassified


def test_tag_as_dms_metadata() -> None:
    md = tag(PupilFacts(departure=LEFT), "rapport", PO).metadata()
    assert md["retention_due"] == "2028-07-10" and md["retention_category"] == "dossier"
    assert md["retention_kind"] == "maximum" and md["retention_blocked"] == "no"


def test_period_arithmetic() -> None:
    assert add_period(date(2024, 2, 29), "1y") == date(2025, 2, 28)
    assert add_period(date(2026, 1, 31), "1m") == date(2026, 2, 28)
    assert add_period(date(2026, 7, 10), "8w") == date(2026, 9, 4)
    assert add_period(date(2026, 7, 10), "open") is None
    assert period_days("5y") > period_days("3y") > period_days("6m") > period_days("8w")


def test_school_override_is_applied_and_recorded(tmp_path: Path) -> None:
    f = tmp_path / "school.toml"
    f.write_text('[overrides.dossier]\nperiod = "1y"\nbasis = "Schoolbeleid 2026 §3: 1 jaar"\n')
    s = load_schedule("retention-po", overrides=f, classes=CLASSES)
    t = tag(PupilFacts(departure=LEFT), "rapport", s)
    assert t.due == date(2027, 7, 10) and t.override == "Schoolbeleid 2026 §3: 1 jaar"
    assert s.overrides == {"dossier": "Schoolbeleid 2026 §3: 1 jaar"}


def _schedule_file(tmp_path: Path, extra: str, replace: tuple[str, str] | None = None) -> Path:
    text = (Path(__file__).resolve().parents[2] / "mappings" / "retention-po.toml").read_text(encoding="utf-8")
    if replace:
        text = text.replace(*replace)
    f = tmp_path / "schedule.toml"
    f.write_text(text + extra, encoding="utf-8")
    return f


@pytest.mark.parametrize(("extra", "replace", "where", "what"), [
    ("", ('rapport = "dossier"', 'rapport = "nope"'), "classes.rapport", "unknown category"),
    ("", ('period = "5y"', 'period = "-5y"'), "categories.administratie.period", "period"),
    ("", ('\nrapport = "dossier"\n', "\n"), "classes", "no category: rapport"),
    ("", ('kind = "maximum"\nbasis = "AP', 'kind = "forever"\nbasis = "AP'), "categories.dossier.kind", "Input"),
])
def test_invalid_schedule_names_file_line_and_key(tmp_path: Path, extra: str, replace: tuple[str, str],
                                                  where: str, what: str) -> None:
    f = _schedule_file(tmp_path, extra, replace)
    with pytest.raises(ConfigError) as info:
        load_schedule(f, classes=CLASSES)
    msg = str(info.value)
    assert f"{f}:" in msg and where in msg and what in msg
    assert msg.split(":")[1].isdigit()


@pytest.mark.parametrize(("toml", "what"), [
    ('[overrides.nope]\nperiod = "1y"\nbasis = "x y z"\n', "unknown category"),
    ('[overrides.archiefwet]\nperiod = "1y"\nbasis = "x y z"\n', "blocked"),
    ('[overrides.dossier]\nperiod = "1y"\n', "basis"),
])
def test_invalid_override(tmp_path: Path, toml: str, what: str) -> None:
    f = tmp_path / "school.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match=what):
        load_schedule("retention-po", overrides=f, classes=CLASSES)


def test_a_minimum_period_is_never_shortened(tmp_path: Path) -> None:
    f = _schedule_file(tmp_path, '\n[categories.examen]\nname = "Examenwerk"\nperiod = "6m"\nkind = "minimum"\n'
                       'basis = "Eindexamenbesluit VO art. 57"\n')
    o = tmp_path / "school.toml"
    o.write_text('[overrides.examen]\nperiod = "3m"\nbasis = "Schoolbeleid"\n')
    with pytest.raises(ConfigError, match="shortens a minimum period"):
        load_schedule(f, overrides=o)
    o.write_text('[overrides.examen]\nperiod = "1y"\nbasis = "Schoolbeleid: langer"\n')
    assert load_schedule(f, overrides=o).categories["examen"].period == "1y"


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)), st.sampled_from(sorted(CLASSES)),
       st.booleans(), st.booleans(), st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31)))
def test_nothing_is_due_before_its_period_has_passed(left: date, cls: str, referred: bool, consent: bool,
                                                     today: date) -> None:
    facts = PupilFacts(departure=left, referred=left if referred else None,
                       reunion_consent=left if consent else None)
    for schedule in (PO, POLICY):
        t = tag(facts, cls, schedule)
        if is_due(t, today):
            assert t.due is not None and today >= t.due > left
            assert not t.blocked and t.kind == "maximum"
            # never earlier than the shortest period in the schedule
            assert (today - left).days >= 7 * 8


VO_CLASSES = set(load_mapping("vo").classes)
VO = load_schedule("retention-vo", classes=VO_CLASSES)
VSO = load_schedule("retention-vso", classes=set(load_mapping("vso").classes))
RESULT = date(2026, 6, 15)


@pytest.mark.parametrize(("schedule", "doc_class", "facts", "category", "kind", "due"), [
    (VO, "inschrijving", PupilFacts(departure=LEFT), "administratie", "maximum", date(2031, 7, 10)),
    (VO, "rapport", PupilFacts(departure=LEFT), "dossier", "maximum", date(2028, 7, 10)),
    (VO, "examenwerk_centraal", PupilFacts(exam_result=RESULT), "examenwerk", "minimum", date(2026, 12, 15)),
    (VO, "schoolexamen", PupilFacts(exam_result=RESULT), "schoolexamen", "maximum", date(2028, 6, 15)),
    (VO, "schoolexamen", PupilFacts(departure=LEFT), "schoolexamen", "maximum", None),  # no result: open
    (VO, "cijferlijst", PupilFacts(departure=LEFT), "archiefwet", "maximum", None),
    (VO, "diploma", PupilFacts(departure=LEFT), "archiefwet", "maximum", None),
    (VO, "psychologisch_rapport", PupilFacts(departure=LEFT), "psychologisch_vo", "maximum", date(2031, 7, 10)),
    (VSO, "ontwikkelingsperspectief", PupilFacts(departure=LEFT), "dossier", "maximum", date(2029, 7, 10)),
    (VSO, "toelaatbaarheidsverklaring", PupilFacts(departure=LEFT), "dossier", "maximum", date(2029, 7, 10)),
    (VSO, "diploma", PupilFacts(departure=LEFT), "archiefwet", "maximum", None),
])
def test_vo_and_vso_presets(schedule, doc_class: str, facts: PupilFacts, category: str, kind: str,  # type: ignore[no-untyped-def]
                            due: date | None) -> None:
    t = tag(facts, doc_class, schedule)
    assert (t.category, t.kind, t.due) == (category, kind, due)


def test_a_minimum_category_is_never_due() -> None:
    t = tag(PupilFacts(departure=LEFT, exam_result=RESULT), "examenwerk_centraal", VO)
    assert not is_due(t, date(2099, 1, 1))


def test_the_vo_psychological_report_can_be_set_between_3_and_5_years(tmp_path: Path) -> None:
    o = tmp_path / "school.toml"
    o.write_text('[overrides.psychologisch_vo]\nperiod = "3y"\nbasis = "Schoolbeleid VO: 3 jaar"\n')
    s = load_schedule("retention-vo", overrides=o, classes=VO_CLASSES)
    assert tag(PupilFacts(departure=LEFT), "psychologisch_rapport", s).due == date(2029, 7, 10)
    o.write_text('[overrides.psychologisch_vo]\nperiod = "2y"\nbasis = "Schoolbeleid VO: 2 jaar"\n')
    with pytest.raises(ConfigError, match="shortest period allowed"):
        load_schedule("retention-vo", overrides=o, classes=VO_CLASSES)


def test_a_mapping_extends_another(tmp_path: Path) -> None:
    vo = load_mapping("vo")
    po = load_mapping("po")
    assert set(po.classes) < set(vo.classes)
    assert {"cijferlijst", "diploma", "examenwerk_centraal"} <= set(vo.classes) - set(po.classes)
    assert len(vo.rules) == len(po.rules) + 1
    f = tmp_path / "own.toml"
    f.write_text('[mapping]\nname = "own"\nextends = "nope"\n')
    with pytest.raises(ConfigError, match="extends"):
        load_mapping(f)


@given(st.sampled_from(["1d", "8w", "3m", "6m", "1y", "2y", "3y", "5y", "10y"]),
       st.sampled_from(["1d", "8w", "3m", "6m", "1y", "2y", "3y", "5y", "10y"]))
def test_an_override_never_shortens_a_minimum(minimum: str, override: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "s.toml"
        f.write_text('[schedule]\nname = "t"\n[categories.keep]\nname = "k"\nperiod = "' + minimum
                     + '"\nkind = "minimum"\nbasis = "wet"\n[classes]\nrapport = "keep"\n')
        o = Path(tmp) / "o.toml"
        o.write_text(f'[overrides.keep]\nperiod = "{override}"\nbasis = "school"\n')
        try:
            s = load_schedule(f, overrides=o)
        except ConfigError as exc:
            assert period_days(override) < period_days(minimum) and "minimum" in str(exc)
            return
        assert period_days(s.categories["keep"].period) >= period_days(minimum)
