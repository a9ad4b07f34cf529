"""One conformance suite for every PupilSource: EDEXML, UWLR (over HTTP), OSO and CSV.

The same made-up school goes in through each format; the same Pupil values come out (within
what the format carries); a bad record is rejected naming record and field and the rest goes
on; hostile XML is refused; a resumed read continues after the cursor of the same snapshot and
starts over on a changed one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.las.oso import GESLACHT
from connector.errors import RejectedRecord, SourceError
from connector.model import Pupil
from connector.ports import PupilSource, SourceRecord
from examples.synth import Synth, people
from tests.las.sources import CARRIES, KINDS, build
from tests.las.uwlr_server import Scenario

pytestmark = pytest.mark.las

SYNTH = Synth(pupils=60, leavers=0.2, seed=11)
BAD_DATE = {"xml": "2015-02-30", "csv": "30-02-2015"}


def expected(kind: str) -> dict[str, dict[str, object]]:
    """What each pupil must look like through ``kind``, from the generator's own values."""
    out = {}
    oso_code = {v: k for k, v in GESLACHT.items()}
    for p in people(SYNTH):
        want: dict[str, object] = {
            "key": p.key, "achternaam": p.achternaam, "voorvoegsel": p.voorvoegsel or None,
            "voornamen": p.voornamen, "roepnaam": p.roepnaam, "geboortedatum": p.geboortedatum,
            "jaargroep": str(p.jaargroep), "instroomdatum": p.instroomdatum, "uitstroomdatum": p.uitstroomdatum,
            "pgn": p.bsn, "pgn_kind": "bsn", "eckid": p.eckid, "geslacht": p.geslacht,
            "groep": f"Groep {p.groep[1:]}", "vestiging": p.vestiging,
            "guardians": [(g.achternaam, g.voorletters, g.relatie, g.gezag) for g in p.guardians],
        }
        if "geslacht_oso" in CARRIES[kind]:
            # OSO code list 14 has no "not specified" (9): it arrives as unknown (0)
            want["geslacht_oso"] = p.geslacht if p.geslacht in oso_code else "0"
        out[p.key] = {f: want[f] for f in CARRIES[kind] if f in want or f == "geslacht_oso"}
    return out


def observed(kind: str, item: Pupil) -> dict[str, object]:
    data = item.model_dump()
    data["guardians"] = [(g.achternaam, g.voorletters, g.relatie, g.gezag) for g in item.guardians]
    data["geslacht_oso"] = item.geslacht
    return {f: data[f] for f in CARRIES[kind]}


def read_all(source: PupilSource, **kw: str | None) -> list[Pupil | RejectedRecord]:
    """The source's pupils; a source that also gives records unvalidated (``records``) is read
    that way too, and each record, validated, must be exactly what ``pupils`` gave."""
    records = getattr(source, "records", None)
    raw = list(records(**kw)) if records is not None else None
    items = list(source.pupils(**kw))  # read last: the source's report and cursor are this read's
    if raw is not None:
        built = [r.build() if isinstance(r, SourceRecord) else r for r in raw]
        assert [_same(i) for i in built] == [_same(i) for i in items]
        assert any(isinstance(r, SourceRecord) for r in raw) or not items
    return items


def _same(item: Pupil | RejectedRecord) -> object:
    return item.model_dump() if isinstance(item, Pupil) else item.as_dict() | {"pseudonym": item.pseudonym}


@pytest.mark.parametrize("kind", KINDS)
def test_same_pupils_in_same_pupil_values_out(kind: str, tmp_path: Path) -> None:
    with build(kind, tmp_path, SYNTH) as source:
        items = read_all(source)
        assert source.report.school is not None and source.report.school.code == SYNTH.brin
    assert all(isinstance(i, Pupil) for i in items), [i for i in items if isinstance(i, RejectedRecord)]
    want = expected(kind)
    got = {i.key: observed(kind, i) for i in items if isinstance(i, Pupil)}
    assert list(got) == list(want)  # every pupil, once, in the snapshot's order
    assert got == want
    assert all(i.school.code == SYNTH.brin for i in items if isinstance(i, Pupil))
    leavers = [k for k, v in want.items() if v["uitstroomdatum"]]
    assert leavers, "the school has leavers, so departure facts are compared"


def _corrupt(kind: str, tmp_path: Path, scenario: Scenario) -> None:
    first = next(people(SYNTH))
    if kind == "csv":
        path = tmp_path / "export.csv"
        old = first.geboortedatum.strftime("%d-%m-%Y")
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(f";{old};", f";{BAD_DATE['csv']};", 1), encoding="utf-8")
        return
    old = f"<geboortedatum>{first.geboortedatum.isoformat()}</geboortedatum>"
    new = f"<geboortedatum>{BAD_DATE['xml']}</geboortedatum>"
    if kind == "uwlr":
        scenario.mangle = lambda body: body.replace(old, new, 1)
        return
    path = tmp_path / "export.xml" if kind == "edexml" else tmp_path / "oso" / f"{first.key}.xml"
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_record_is_rejected_with_record_and_field_and_the_rest_goes_on(kind: str, tmp_path: Path) -> None:
    scenario = Scenario()
    with build(kind, tmp_path, SYNTH, scenario) as source:
        _corrupt(kind, tmp_path, scenario)
        items = read_all(source)
    rejected = [i for i in items if isinstance(i, RejectedRecord)]
    assert len(rejected) == 1
    assert len([i for i in items if isinstance(i, Pupil)]) == SYNTH.pupils - 1
    r = rejected[0]
    first = next(people(SYNTH))
    assert r.pseudonym == f"p-{SYNTH.brin}-{first.key}"
    assert r.record.startswith(r.pseudonym) and re.search(r"line \d+", r.record)
    assert "geboortedatum" in r.field.lower()
    message = str(r)
    for secret in (BAD_DATE["xml"], BAD_DATE["csv"], first.achternaam, first.bsn, first.key):
        assert secret not in message.replace(r.pseudonym, "")


HOSTILE = ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
           '<!ENTITY xxe SYSTEM "file:///etc/passwd">]>')


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "csv"])
def test_hostile_xml_is_refused(kind: str, tmp_path: Path) -> None:
    scenario = Scenario()

    def mangle(body: str) -> str:
        head, _, rest = body.partition("?>")
        return f"{head}?>{HOSTILE}{rest}".replace("<achternaam>", "<achternaam>&lol2;&xxe;", 1)

    with build(kind, tmp_path, SYNTH, scenario) as source:
        if kind == "uwlr":
            scenario.mangle = mangle
        else:
            files = [tmp_path / "export.xml"] if kind == "edexml" else sorted((tmp_path / "oso").glob("*.xml"))[:1]
            for f in files:
                f.write_text(mangle(f.read_text(encoding="utf-8")), encoding="utf-8")
        with pytest.raises(SourceError, match="DTD"):
            read_all(source)


def test_csv_refuses_an_export_without_the_layouts_columns(tmp_path: Path) -> None:
    with build("csv", tmp_path, SYNTH) as source:
        path = tmp_path / "export.csv"
        path.write_text(path.read_text(encoding="utf-8").replace("Leerlingnummer", "Nummer", 1), encoding="utf-8")
        assert "Leerlingnummer" in " ".join(source.check())
        with pytest.raises(SourceError, match="Leerlingnummer"):
            read_all(source)


@pytest.mark.parametrize("kind", KINDS)
def test_a_resumed_read_continues_after_the_cursor_of_the_same_snapshot(kind: str, tmp_path: Path) -> None:
    with build(kind, tmp_path, SYNTH) as source:
        items = source.pupils()
        first = [next(items) for _ in range(25)]
        cursor = source.cursor()
        items.close()  # the run died here
        assert cursor is not None
        rest = read_all(source, resume=cursor)
        assert source.report.resumed_at == 25
        keys = [i.key for i in first if isinstance(i, Pupil)] + [i.key for i in rest if isinstance(i, Pupil)]
        assert keys == [p.key for p in people(SYNTH)]
        assert source.cursor() is not None and f'"position":{SYNTH.pupils}' in (source.cursor() or "")


@pytest.mark.parametrize("kind", KINDS)
def test_a_resumed_read_of_a_changed_snapshot_starts_again(kind: str, tmp_path: Path) -> None:
    scenario = Scenario()
    with build(kind, tmp_path, SYNTH, scenario) as source:
        items = source.pupils()
        for _ in range(25):
            next(items)
        cursor = source.cursor()
        items.close()
        changed = Synth(pupils=SYNTH.pupils + 1, leavers=SYNTH.leavers, seed=SYNTH.seed)
        if kind == "uwlr":
            scenario.synth = changed
        else:
            with build(kind, tmp_path, changed):
                pass  # rewrites the same files with one pupil more
        again = read_all(source, resume=cursor)
        assert source.report.resumed_at == 0
        assert len(again) == changed.pupils
