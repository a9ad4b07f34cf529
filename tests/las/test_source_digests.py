"""A source's record digest stands for everything that shapes the record: when two exports give
one pupil the same digest, the pupil validated from each is the same, field for field. Exports
are changed the ways a LAS changes them from night to night: one pupil's field, a group's name,
the school year, a bad date, the export date (peildatum, which shapes nothing). For EDEXML and
for CSV, the two sources that give their records unvalidated."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.las.csv import CsvSettings, CsvSource
from adapters.las.edexml import EdexmlSettings, EdexmlSource
from connector.errors import RejectedRecord
from connector.model import Pupil
from connector.ports import SourceRecord
from examples.synth import Synth, people, write, write_csv
from tests.las.sources import context

pytestmark = pytest.mark.las

SYNTH = Synth(pupils=30, leavers=0.2, seed=5)


def digests(path: Path) -> dict[str, tuple[bytes, object]]:
    """Per pseudonym: the record's digest and the pupil (or rejection) it validates into."""
    source: EdexmlSource | CsvSource
    if path.suffix == ".csv":
        source = CsvSource(CsvSettings(path=path, layout="parnassys"), context())
    else:
        source = EdexmlSource(EdexmlSettings(path=path), context())
    out = {}
    for r in source.records():
        assert isinstance(r, SourceRecord)
        built = r.build()
        # the line in the file and the export's date shape no dossier (mapping.SOURCE_FIELDS has
        # neither): they may differ under one digest
        out[r.pseudonym] = (r.digest, built.model_dump(exclude={"line": True, "school": {"peildatum"}})
                            if isinstance(built, Pupil)
                            else (built.field, built.reason) if isinstance(built, RejectedRecord) else built)
    return out


def first_key() -> str:
    return next(people(SYNTH)).key


CHANGES: dict[str, Callable[[str], str]] = {
    "peildatum": lambda t: re.sub(r"<peildatum>[^<]+</peildatum>", "<peildatum>2024-12-01</peildatum>", t),
    "one pupil's year group": lambda t: re.sub(
        rf'(<leerling key="{first_key()}".*?<jaargroep>)(\d)', lambda m: m.group(1) + "7", t, count=1, flags=re.S),
    "a group's name": lambda t: re.sub(r"(<groep key=\"G\w+\"><naam>)Groep", r"\1Klas", t, count=1),
    "the school year": lambda t: t.replace("<schooljaar>2024-2025</schooljaar>",
                                           "<schooljaar>2025-2026</schooljaar>", 1),
    "a bad date": lambda t: re.sub(r"<geboortedatum>[^<]+</geboortedatum>",
                                   "<geboortedatum>2015-02-30</geboortedatum>", t, count=1),
}


CSV_CHANGES: dict[str, Callable[[str], str]] = {
    "one pupil's year group": lambda t: re.sub(rf"(?m)^({first_key()};(?:[^;\n]*;){{10}})(\d+)",
                                               lambda m: m.group(1) + "7", t, count=1),
    "a group's name": lambda t: re.sub(r";Groep (\w+);", r";Klas \1;", t, count=1),
    "a bad date": lambda t: re.sub(r"(?m)^(LL\d+;(?:[^;\n]*;){8})[0-9-]+;", r"\g<1>30-02-2015;", t, count=1),
    "a parent's authority": lambda t: t.replace(";Moeder;Ja;", ";Moeder;Nee;", 1),
}


@pytest.mark.parametrize(("kind", "change"), [("edexml", c) for c in CHANGES] + [("csv", c) for c in CSV_CHANGES])
def test_the_same_digest_means_the_same_pupil(kind: str, change: str, tmp_path: Path) -> None:
    suffix = ".csv" if kind == "csv" else ".xml"
    before = (write_csv if kind == "csv" else write)(tmp_path / f"a{suffix}", SYNTH)
    after = tmp_path / f"b{suffix}"
    text = before.read_text(encoding="utf-8")
    changed = (CSV_CHANGES if kind == "csv" else CHANGES)[change](text)
    assert changed != text, change
    after.write_text(changed, encoding="utf-8")
    a, b = digests(before), digests(after)
    same = [k for k in a if k in b and a[k][0] == b[k][0]]
    for k in same:
        assert a[k][1] == b[k][1], (change, k)
    differ = [k for k in a if k in b and a[k][1] != b[k][1]]
    assert all(a[k][0] != b[k][0] for k in differ)
    if change == "peildatum":
        assert len(same) == len(a)  # the export date shapes nothing: every record is unchanged
    elif change == "the school year":
        assert not same
    else:
        assert 1 <= len(differ) < len(a) and len(same) == len(a) - len(differ)
