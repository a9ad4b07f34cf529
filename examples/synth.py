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


def _pupil_xml(key: str, rng: random.Random, start_year: int, peil: date, leaver: bool,
               same_as: dict[str, str] | None = None) -> str:
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
    parts = [f'<leerling key="{key}" eckid="https://ketenid.nl/201703/{key.lower()}{rng.getrandbits(48):012x}">',
             f"<achternaam>{escape(achternaam)}</achternaam>"]
    if voorvoegsel:
        parts.append(f"<voorvoegsel>{voorvoegsel}</voorvoegsel>")
    parts += [
        f"<voornamen>{roepnaam} {rng.choice(VOORNAMEN)}</voornamen>",
        f"<roepnaam>{roepnaam}</roepnaam>",
        f"<geboortedatum>{born.isoformat()}</geboortedatum>",
        f"<geslacht>{rng.choice('0129')}</geslacht>",
        f"<jaargroep>{jaargroep}</jaargroep>",
        f'<groep key="G{jaargroep}{rng.choice("AB")}"/>',
        f'<vestiging key="{rng.choice(["HL", "ZW"])}"/>',
        "<land>NL</land>",
        f"<bsn>{number}</bsn>",
        f"<postcodenl>{rng.randint(1000, 9999)}{''.join(rng.choices('ABCDEFGHJKLMNPRSTVWXZ', k=2))}</postcodenl>",
        f"<instroomdatum>{instroom.isoformat()}</instroomdatum>",
    ]
    if leaver:
        left = peil - timedelta(days=rng.randint(1, 60))
        parts.append(f"<uitstroomdatum>{max(left, instroom + timedelta(days=1)).isoformat()}</uitstroomdatum>")
    parts.append(f"<mutatiedatum>{peil.isoformat()}T08:00:00</mutatiedatum></leerling>")
    return "".join(parts)


def lines(s: Synth) -> Iterator[str]:
    rng = random.Random(s.seed)
    start_year = int(s.schooljaar[:4])
    peil = date(start_year, 10, 1)
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    yield ('<EDEX xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:noNamespaceSchemaLocation="EDEXML.structuur.xsd">\n')
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
    yield "</groepen>\n<leerlingen>\n"
    twins_of: list[int] = sorted(rng.sample(range(s.pupils // 2), min(s.duplicates, s.pupils // 4)))
    remembered: dict[int, dict[str, str]] = {}
    for i in range(s.pupils):
        key = f"{s.key_prefix}{i + 1:06d}"
        leaver = rng.random() < s.leavers
        pupil_rng = random.Random(f"{s.seed}:{i}")
        same = None
        if twins_of and i >= s.pupils // 2 and (i - s.pupils // 2) < len(twins_of):
            same = remembered.get(twins_of[i - s.pupils // 2])
        xml = _pupil_xml(key, pupil_rng, start_year, peil, leaver, same)
        if i in twins_of:
            remembered[i] = _facts(xml)
        yield xml + "\n"
    yield "</leerlingen>\n</EDEX>\n"


def _facts(xml: str) -> dict[str, str]:
    def get(tag: str) -> str:
        start = xml.find(f"<{tag}>")
        return "" if start < 0 else xml[start + len(tag) + 2: xml.find(f"</{tag}>")]
    return {t: get(t) for t in ("achternaam", "voorvoegsel", "roepnaam", "geboortedatum", "bsn")}


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
