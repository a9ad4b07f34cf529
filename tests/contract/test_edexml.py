"""The EDEXML adapter against the published XSDs and the official sample files."""

from __future__ import annotations

import resource
import tracemalloc
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from adapters.las.edexml import EdexmlSettings, EdexmlSource
from connector.errors import RejectedRecord, SourceError
from connector.model import Pupil
from connector.ports import PupilSource, SourceContext
from examples.synth import Synth, write
from tests.conftest import DATA, SAMPLE, XSD

CTX = SourceContext(pseudonymize=lambda school, key: f"p-{school}-{key}")
OFFICIAL = sorted((DATA / "edexml").glob("*/*.xml"))

pytestmark = pytest.mark.las


def read(path: Path) -> tuple[list[Pupil], list[RejectedRecord], EdexmlSource]:
    src = EdexmlSource(EdexmlSettings(path=path), CTX)
    items = list(src.pupils())
    return ([i for i in items if isinstance(i, Pupil)],
            [i for i in items if isinstance(i, RejectedRecord)], src)


def test_adapter_implements_the_port() -> None:
    assert isinstance(EdexmlSource(EdexmlSettings(path=SAMPLE), CTX), PupilSource)


@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_official_samples_load(path: Path) -> None:
    pupils, rejected, src = read(path)
    assert rejected == []
    assert pupils, "every official sample holds pupils"
    assert src.report.school is not None and src.report.school.code != "unknown"
    assert all(p.key for p in pupils)


def test_official_21_sample_fields() -> None:
    pupils, _, src = read(DATA / "edexml/2.1/EDEXML.Voorbeeld.2.1.xml")
    by_key = {p.key: p for p in pupils}
    assert set(by_key) == {"00001", "00002", "12345"}
    assert by_key["00001"].eckid and by_key["00001"].eckid.startswith("https://id.school/LL_")
    assert by_key["00001"].groep == "4B"  # resolved from the groepen section
    assert by_key["00002"].pgn_kind == "bsn" and by_key["00002"].instroomdatum == date(2013, 8, 25)
    assert by_key["12345"].uitstroomdatum == date(2014, 7, 18)
    assert src.report.school and src.report.school.schooljaar == "2014-2015"


def test_shipped_sample_is_valid_against_the_xsd() -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD / "edexml-2.1" / "EDEXML.structuur.xsd")))
    assert schema.validate(etree.parse(str(SAMPLE))), schema.error_log
    pupils, rejected, _ = read(SAMPLE)
    assert len(pupils) >= 300 and not rejected
    assert sum(1 for p in pupils if p.uitstroomdatum) >= 5


def _edit(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = (DATA / "edexml/2.1/EDEXML.Voorbeeld.2.1.xml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "edited.xml"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "field", "record"), [
    ("<geboortedatum>2006-06-21</geboortedatum>", "<geboortedatum>2006-02-30</geboortedatum>",
     "geboortedatum", "p-99ZZ-00001 (line 77)"),
    ("<jaargroep>H</jaargroep>", "<jaargroep>Q</jaargroep>", "jaargroep", "p-99ZZ-12345 (line 105)"),
    ('<leerling key="00002">', "<leerling>", "@key", "line 91"),
    ("<bsn>133456785</bsn>", "<bsn>13345678</bsn>", "bsn", "p-99ZZ-00002 (line 91)"),
    ("<uitstroomdatum>2014-07-18</uitstroomdatum>", "<uitstroomdatum>2009-07-18</uitstroomdatum>",
     "uitstroomdatum", "p-99ZZ-12345 (line 105)"),
    ('<groep key="GRP4B"/>', '<groep key="NOPE"/>', "groep/@key", "p-99ZZ-00001 (line 77)"),
    ("<roepnaam>Wimpie</roepnaam>", "", "geboortedatum", "p-99ZZ-00001 (line 77)"),
])
def test_a_bad_record_is_rejected_by_record_and_field_and_the_rest_goes_on(
        tmp_path: Path, old: str, new: str, field: str, record: str) -> None:
    pupils, rejected, _ = read(_edit(tmp_path, old, new))
    assert len(rejected) == 1
    assert (rejected[0].record, rejected[0].field) == (record, field)
    assert len(pupils) == 2
    message = str(rejected[0])
    if field == "geboortedatum" and not new:
        assert "expected: achternaam, roepnaam" in rejected[0].reason
    for value in ("2006-02-30", "13345678", "Q<", "NOPE", "Wimpie", "Assati", "2009-07-18"):
        assert value not in message


def test_outdated_schooljaar_code_list_warns_and_goes_on(tmp_path: Path) -> None:
    path = _edit(tmp_path, "<schooljaar>2014-2015</schooljaar>", "<schooljaar>2026-2027</schooljaar>")
    pupils, rejected, src = read(path)
    assert len(pupils) == 3 and not rejected
    assert any("2026-2027" in w for w in src.report.warnings)


def test_a_broken_school_header_refuses_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="school"):
        read(_edit(tmp_path, "<schooljaar>2014-2015</schooljaar>", "<schooljaar>sometime</schooljaar>"))


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE EDEX [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<EDEX><school><schooljaar>&g;</schooljaar><brincode>99ZZ</brincode></school>
<leerlingen><leerling key="1"><roepnaam>&g;</roepnaam></leerling></leerlingen></EDEX>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE EDEX [ <!ENTITY x SYSTEM "file:///etc/passwd"> ]>
<EDEX><school><schooljaar>2014-2015</schooljaar><brincode>99ZZ</brincode></school>
<leerlingen><leerling key="1"><roepnaam>&x;</roepnaam></leerling></leerlingen></EDEX>
"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE EDEX SYSTEM "http://127.0.0.1:9/edex.dtd">
<EDEX><school><schooljaar>2014-2015</schooljaar><brincode>99ZZ</brincode></school></EDEX>
"""
PARAMETER = """<?xml version="1.0"?>
<!DOCTYPE EDEX [ <!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p; ]>
<EDEX/>
"""


@pytest.mark.parametrize("text", [LAUGHS, XXE, EXTERNAL_DTD, PARAMETER],
                         ids=["billion-laughs", "xxe", "external-dtd", "parameter-entity"])
def test_hostile_xml_is_refused_in_bounded_memory(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hostile.xml"
    path.write_text(text, encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SourceError, match="refused|not well-formed") as info:
        read(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
    assert "root:" not in str(info.value)  # nothing of /etc/passwd


def test_malformed_xml_is_a_source_error_with_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    text = SAMPLE.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(SourceError, match="not well-formed XML at line"):
        read(path)


def test_not_an_edexml_file(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<html><body/></html>", encoding="utf-8")
    with pytest.raises(SourceError, match="EDEX"):
        read(path)


def _peak(path: Path) -> int:
    src = EdexmlSource(EdexmlSettings(path=path), CTX)
    tracemalloc.start()
    n = sum(1 for _ in src.pupils())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n > 0
    return peak


def test_memory_does_not_grow_with_the_number_of_pupils(tmp_path: Path) -> None:
    small = write(tmp_path / "small.xml", Synth(pupils=2_000, duplicates=0))
    large = write(tmp_path / "large.xml", Synth(pupils=8_000, duplicates=0))
    _peak(small)  # warm caches (schemas) before measuring
    assert _peak(large) < _peak(small) * 1.5 + 200_000


@pytest.mark.parametrize(("content", "what"), [
    (b"", "not well-formed"),
    (b"\x00\x01\x02 binary", "not well-formed"),
    (b'<?xml version="1.0" encoding="UTF-8"?><EDEX><school>\xff\xfe</school></EDEX>', "not well-formed"),
    (b'<?xml version="1.0" encoding="nonsense-enc"?><EDEX/>', "not well-formed|no <school>"),
    (b"<EDEX><leerlingen><leerling key='1'><roepnaam>x</roepnaam></leerling></leerlingen></EDEX>", "before <school>"),
])
def test_every_kind_of_unreadable_file_is_a_source_error(tmp_path: Path, content: bytes, what: str) -> None:
    """lxml's parse errors (syntax, encoding, empty document) all map into the connector's root."""
    path = tmp_path / "x.xml"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=what):
        read(path)


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        read(tmp_path / "absent.xml")
