"""Synthetic EDEXML 2.1 exports of a fictional school, for the demo, tests and benchmarks.

Every name, BSN and date is made up (seeded, so the same arguments give the same file). The
output validates against the EDEXML 2.1 XSD when ``schooljaar`` is in its code list.

    python -m examples.synth examples/obs-de-sample.edexml.xml            # the shipped sample
    python -m examples.synth /tmp/big.xml --pupils 100000 --schooljaar 2026-2027
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

ACHTERNAMEN = [
    "Aalbers", "Bakhuis", "Coenraads", "Dijkhoff", "Eelderink", "Fokkema", "Groeneveld",
    "Hofstede", "IJzerman", "Jongsma", "Kuipers", "Lammertink", "Meulenbelt", "Nijenhuis",
    "Oosterhof", "Postma", "Quist", "Riemersma", "Schuurman", "Tuinstra", "Uiterwijk",
    "Veldhuizen", "Wesselink", "Yildirim", "Zandbergen", "El Amrani", "Nguyen", "Pinas",
]
VOORVOEGSELS = ["", "", "", "", "van", "de", "van der", "ter", "van den"]
VOORNAMEN = [
    "Noor", "Daan", "Saar", "Sem", "Julia", "Levi", "Tess", "Finn", "Zoë", "Milan", "Fenna",
    "Luuk", "Yara", "Bram", "Lieke", "Mees", "Isa", "Thijs", "Nova", "Jesse", "Amira", "Ayoub",
    "Femke", "Ruben", "Hiba", "Stijn", "Lotte", "Sven", "Maud", "Ilias",
]


@dataclass(frozen=True)
class Synth:
    pupils: int = 320
    seed: int = 7
    schooljaar: str = "2024-2025"
    brin: str = "99XY"
    leavers: float = 0.08
    duplicates: int = 1  # pairs of keys that look like one child (re-registration)
    key_prefix: str = "LL"


def bsn(rng: random.Random) -> str:
    """A 9-digit number passing the BSN eleven-test (fictional)."""
    while True:
        digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - digits[8]
        if total % 11 == 0:
            return "".join(map(str, digits))


@dataclass(frozen=True)
class Guardian:
    """A parent or carer as OSO and some CSV exports carry them (made up)."""

    achternaam: str
    voorletters: str
    relatie: str
    """OSO relatietotkind: 1 vader, 2 moeder, 3 verzorger, ... (see adapters/las/oso.py)."""
    gezag: bool
    """Has parental authority (OSO wettigevertegenwoordiger)."""


@dataclass(frozen=True)
class Person:
    """One made-up pupil, independent of any export format."""

    key: str
    eckid: str
    achternaam: str
    voorvoegsel: str
    voornamen: str
    roepnaam: str
    geboortedatum: date
    geslacht: str
    jaargroep: int
    groep: str
    vestiging: str
    bsn: str
    postcode: str
    instroomdatum: date
    uitstroomdatum: date | None
    mutatie: date
    guardians: tuple[Guardian, ...] = ()


def person(key: str, rng: random.Random, start_year: int, peil: date, leaver: bool,
           same_as: dict[str, str] | None = None) -> Person:
    jaargroep = rng.randint(1, 8)
    born = date(start_year - 3 - jaargroep, 1, 1) + timedelta(days=rng.randint(0, 364))
    instroom = born.replace(year=born.year + 4) + timedelta(days=1)
    achternaam = rng.choice(ACHTERNAMEN)
    voorvoegsel = rng.choice(VOORVOEGSELS)
    roepnaam = rng.choice(VOORNAMEN)
    number = bsn(rng)
    if same_as:
        achternaam, voorvoegsel, roepnaam = same_as["achternaam"], same_as["voorvoegsel"], same_as["roepnaam"]
        born, number = date.fromisoformat(same_as["geboortedatum"]), same_as["bsn"]
    eckid = f"https://ketenid.nl/201703/{key.lower()}{rng.getrandbits(48):012x}"
    voornamen = f"{roepnaam} {rng.choice(VOORNAMEN)}"
    geslacht = rng.choice("0129")
    groep = f"G{jaargroep}{rng.choice('AB')}"
    vestiging = rng.choice(["HL", "ZW"])
    postcode = f"{rng.randint(1000, 9999)}{''.join(rng.choices('ABCDEFGHJKLMNPRSTVWXZ', k=2))}"
    uitstroom = None
    if leaver:
        left = peil - timedelta(days=rng.randint(1, 60))
        uitstroom = max(left, instroom + timedelta(days=1))
    # guardians from their own generator, so the EDEXML output does not depend on them
    g = random.Random(f"guardians:{key}")
    guardians = [Guardian(achternaam, f"{g.choice('ABCDEHJKMPRSW')}.", "2", True)]
    if g.random() < 0.8:
        guardians.append(Guardian(g.choice(ACHTERNAMEN) if g.random() < 0.3 else achternaam,
                                  f"{g.choice('ABCDEHJKMPRSW')}.", "1", g.random() < 0.85))
    return Person(key, eckid, achternaam, voorvoegsel, voornamen, roepnaam, born, geslacht, jaargroep, groep,
                  vestiging, number, postcode, instroom, uitstroom, peil, tuple(guardians))


def leerling_xml(p: Person) -> str:
    """The EDEXML ``leerling`` element (in no namespace; UWLR puts it in its own default one)."""
    parts = [f'<leerling key="{p.key}" eckid="{p.eckid}">', f"<achternaam>{escape(p.achternaam)}</achternaam>"]
    if p.voorvoegsel:
        parts.append(f"<voorvoegsel>{p.voorvoegsel}</voorvoegsel>")
    parts += [
        f"<voornamen>{p.voornamen}</voornamen>",
        f"<roepnaam>{p.roepnaam}</roepnaam>",
        f"<geboortedatum>{p.geboortedatum.isoformat()}</geboortedatum>",
        f"<geslacht>{p.geslacht}</geslacht>",
        f"<jaargroep>{p.jaargroep}</jaargroep>",
        f'<groep key="{p.groep}"/>',
        f'<vestiging key="{p.vestiging}"/>',
        "<land>NL</land>",
        f"<bsn>{p.bsn}</bsn>",
        f"<postcodenl>{p.postcode}</postcodenl>",
        f"<instroomdatum>{p.instroomdatum.isoformat()}</instroomdatum>",
    ]
    if p.uitstroomdatum:
        parts.append(f"<uitstroomdatum>{p.uitstroomdatum.isoformat()}</uitstroomdatum>")
    parts.append(f"<mutatiedatum>{p.mutatie.isoformat()}T08:00:00</mutatiedatum></leerling>")
    return "".join(parts)


def people(s: Synth) -> Iterator[Person]:
    """The school's pupils, in export order (seeded: the same Synth gives the same pupils)."""
    rng = random.Random(s.seed)
    start_year = int(s.schooljaar[:4])
    peil = date(start_year, 10, 1)
    twins_of: list[int] = sorted(rng.sample(range(s.pupils // 2), min(s.duplicates, s.pupils // 4)))
    remembered: dict[int, dict[str, str]] = {}
    for i in range(s.pupils):
        key = f"{s.key_prefix}{i + 1:06d}"
        leaver = rng.random() < s.leavers
        pupil_rng = random.Random(f"{s.seed}:{i}")
        same = None
        if twins_of and i >= s.pupils // 2 and (i - s.pupils // 2) < len(twins_of):
            same = remembered.get(twins_of[i - s.pupils // 2])
        p = person(key, pupil_rng, start_year, peil, leaver, same)
        if i in twins_of:
            remembered[i] = {"achternaam": p.achternaam, "voorvoegsel": p.voorvoegsel, "roepnaam": p.roepnaam,
                             "geboortedatum": p.geboortedatum.isoformat(), "bsn": p.bsn}
        yield p


def peildatum(s: Synth) -> date:
    return date(int(s.schooljaar[:4]), 10, 1)


def structure_xml(s: Synth) -> Iterator[str]:
    """``school``, ``vestigingen`` and ``groepen``: the same in EDEXML and in a UWLR answer."""
    peil = peildatum(s)
    yield (f"<school><schooljaar>{s.schooljaar}</schooljaar><peildatum>{peil.isoformat()}</peildatum>"
           f"<brincode>{s.brin}</brincode><dependancecode>00</dependancecode>"
           f"<aanmaakdatum>{peil.isoformat()}T07:30:00</aanmaakdatum>"
           "<auteur>examples/synth.py</auteur><xsdversie>2.1</xsdversie>"
           "<commentaar>Fictieve school: alle gegevens zijn verzonnen.</commentaar></school>\n")
    yield ('<vestigingen><vestiging key="HL"><naam>Hoofdlocatie</naam></vestiging>'
           '<vestiging key="ZW"><naam>Locatie Zuidwijk</naam></vestiging></vestigingen>\n<groepen>')
    for jg in range(1, 9):
        for letter in "AB":
            yield f'<groep key="G{jg}{letter}"><naam>Groep {jg}{letter}</naam><jaargroep>{jg}</jaargroep></groep>'
    yield "</groepen>\n"


def lines(s: Synth) -> Iterator[str]:
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    yield ('<EDEX xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:noNamespaceSchemaLocation="EDEXML.structuur.xsd">\n')
    yield from structure_xml(s)
    yield "<leerlingen>\n"
    for p in people(s):
        yield leerling_xml(p) + "\n"
    yield "</leerlingen>\n</EDEX>\n"


UWLR_NS = "http://www.edustandaard.nl/leerresultaten/2/leerlinggegevens"


def uwlr_answer_lines(s: Synth, pupils: Iterator[Person] | None = None) -> Iterator[str]:
    """A UWLR 2.2 ``HaalLeerlinggegevens`` answer (SOAP envelope) with the same content as the
    EDEXML export: the EDEXML elements in the leerlinggegevens namespace."""
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    yield ('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
           f'<leerlinggegevens_antwoord xmlns="{UWLR_NS}"><leerlinggegevens>\n')
    yield from structure_xml(s)
    yield "<leerlingen>\n"
    for p in pupils if pupils is not None else people(s):
        yield leerling_xml(p) + "\n"
    yield "</leerlingen>\n</leerlinggegevens></leerlinggegevens_antwoord></soap:Body></soap:Envelope>\n"


PARNASSYS_HEADER = (
    "Leerlingnummer", "BRIN", "ECK-iD", "BSN", "Onderwijsnummer", "Achternaam", "Voorvoegsel", "Voornamen",
    "Roepnaam", "Geboortedatum", "Geslacht", "Jaargroep", "Groep", "Datum inschrijving", "Datum uitschrijving",
    "Achternaam ouder 1", "Voorletters ouder 1", "Relatie ouder 1", "Ouderlijk gezag ouder 1",
    "Achternaam ouder 2", "Voorletters ouder 2", "Relatie ouder 2", "Ouderlijk gezag ouder 2",
)
_RELATIE = {"1": "Vader", "2": "Moeder", "3": "Verzorger"}
_GESLACHT = {"0": "O", "1": "M", "2": "V", "9": "X"}


def parnassys_row(s: Synth, p: Person) -> list[str]:
    """One row of a ParnasSys-style CSV export (layout mappings/las/parnassys.toml)."""
    def d(x: date | None) -> str:
        return x.strftime("%d-%m-%Y") if x else ""
    groep_naam = f"Groep {p.groep[1:]}"
    row = [p.key, s.brin, p.eckid, p.bsn, "", p.achternaam, p.voorvoegsel, p.voornamen, p.roepnaam,
           d(p.geboortedatum), _GESLACHT[p.geslacht], str(p.jaargroep), groep_naam, d(p.instroomdatum),
           d(p.uitstroomdatum)]
    for i in range(2):
        g = p.guardians[i] if i < len(p.guardians) else None
        row += [g.achternaam, g.voorletters, _RELATIE[g.relatie], "Ja" if g.gezag else "Nee"] if g else ["", "", "", ""]
    return row


def write_csv(path: Path, s: Synth, encoding: str = "utf-8") -> Path:
    import csv
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(PARNASSYS_HEADER)
        for p in people(s):
            w.writerow(parnassys_row(s, p))
    return path


OSO_NS = "http://www.edustandaard.nl/oso_gegevensset/2019/dossier"
_OSO_GESLACHT = {"0": "0", "1": "2", "2": "1", "9": "0"}  # ISO 5218 -> OSO code list 14


def oso_dossier_xml(s: Synth, p: Person) -> str:
    """One OSO 2019.1 overstapdossier for the pupil (the fields a LAS-to-DMS sync reads)."""
    peil = peildatum(s)
    names = "".join(f"<voornaam>{escape(v)}</voornaam>" for v in p.voornamen.split())
    tussen = f"<voorvoegsel>{p.voorvoegsel}</voorvoegsel>" if p.voorvoegsel else ""
    uit = f"<datumuitschrijving>{p.uitstroomdatum.isoformat()}</datumuitschrijving>" if p.uitstroomdatum else ""
    guardians = "".join(
        f"<verzorger><voorletters-1>{g.voorletters}</voorletters-1><achternaam>{escape(g.achternaam)}</achternaam>"
        f"<relatietotkind>{g.relatie}</relatietotkind>"
        f"<wettigevertegenwoordiger>{'true' if g.gezag else 'false'}</wettigevertegenwoordiger></verzorger>"
        for g in p.guardians)
    return (
        f'<dossier xmlns="{OSO_NS}"><metadata><deeldossier>LAS</deeldossier><pakketnaam>synth</pakketnaam>'
        f"<pakketversie>1</pakketversie><datum>{peil.isoformat()}</datum><standaardversie>2019.1</standaardversie>"
        "<validatieversie>2019.1.1</validatieversie></metadata><overdrachtsoort>overstapdossier</overdrachtsoort>"
        f"<huidigeschool><naam>Fictieve school</naam><brincode>{s.brin}</brincode><vestigingscode>00</vestigingscode>"
        f"<aanleverpunt>1</aanleverpunt><leerling>{names}{tussen}<achternaam>{escape(p.achternaam)}</achternaam>"
        f"<roepnaam>{p.roepnaam}</roepnaam><geboortedatum>{p.geboortedatum.isoformat()}</geboortedatum>"
        f"<geslacht>{_OSO_GESLACHT[p.geslacht]}</geslacht><bsn>{p.bsn}</bsn><leerlingid>{p.key}</leerlingid>"
        f"<datuminschrijving>{p.instroomdatum.isoformat()}</datuminschrijving>{uit}"
        f"<schoolloopbaanlijst><schoolloopbaan><schooljaar>{s.schooljaar}</schooljaar>"
        f"<groepscode>{p.groep}</groepscode><groepsnaam>Groep {p.groep[1:]}</groepsnaam>"
        f"<jaargroep>{p.jaargroep}</jaargroep><brincode>{s.brin}</brincode><vestigingscode>00</vestigingscode>"
        f"</schoolloopbaan></schoolloopbaanlijst>{guardians}</leerling></huidigeschool></dossier>"
    )


def write_oso(folder: Path, s: Synth) -> Path:
    """One OSO file per pupil in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in people(s):
        (folder / f"{p.key}.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n' + oso_dossier_xml(s, p) + "\n", encoding="utf-8")
    return folder


def write(path: Path, s: Synth) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.writelines(lines(s))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--pupils", type=int, default=Synth.pupils)
    ap.add_argument("--seed", type=int, default=Synth.seed)
    ap.add_argument("--schooljaar", default=Synth.schooljaar)
    ap.add_argument("--duplicates", type=int, default=Synth.duplicates)
    a = ap.parse_args()
    write(a.out, Synth(pupils=a.pupils, seed=a.seed, schooljaar=a.schooljaar, duplicates=a.duplicates))


if __name__ == "__main__":
    main()
