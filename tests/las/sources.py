"""The same made-up school written in every format a PupilSource reads, and a source over it.

``build(kind, folder, synth)`` writes the school as an EDEXML file, a UWLR answer (served by the
test UWLR server), an OSO folder or a ParnasSys-layout CSV file, and returns the source. What a
format cannot carry is listed in ``CARRIES`` so the conformance suite compares like with like.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.las.csv import CsvSettings, CsvSource
from adapters.las.edexml import EdexmlSettings, EdexmlSource
from adapters.las.oso import OsoSettings, OsoSource
from adapters.las.uwlr import UwlrSettings, UwlrSource
from connector.ports import PupilSource, SourceContext
from examples.synth import Synth, write, write_csv, write_oso
from tests.las.uwlr_server import Scenario, UwlrServer

KINDS = ("edexml", "uwlr", "oso", "csv")
KEY_ENV = "LD_TEST_UWLR_KEY"
COMMON = ("key", "achternaam", "voorvoegsel", "voornamen", "roepnaam", "geboortedatum", "jaargroep",
          "instroomdatum", "uitstroomdatum", "pgn", "pgn_kind")
CARRIES = {
    "edexml": (*COMMON, "eckid", "geslacht", "groep", "vestiging"),
    "uwlr": (*COMMON, "eckid", "geslacht", "groep", "vestiging"),
    "oso": (*COMMON, "geslacht_oso", "groep", "guardians"),
    "csv": (*COMMON, "eckid", "geslacht", "groep", "guardians"),
}


def context(pseudonymize=lambda school, key: f"p-{school}-{key}") -> SourceContext:  # type: ignore[no-untyped-def]
    return SourceContext(pseudonymize=pseudonymize,
                         secret=lambda ref: os.environ[ref.removeprefix("env:")].encode())


@contextmanager
def build(kind: str, folder: Path, synth: Synth, scenario: Scenario | None = None) -> Iterator[PupilSource]:
    ctx = context()
    if kind == "edexml":
        yield EdexmlSource(EdexmlSettings(path=write(folder / "export.xml", synth)), ctx)
    elif kind == "oso":
        yield OsoSource(OsoSettings(path=write_oso(folder / "oso", synth)), ctx)
    elif kind == "csv":
        yield CsvSource(CsvSettings(path=write_csv(folder / "export.csv", synth), layout="parnassys"), ctx)
    elif kind == "uwlr":
        scenario = scenario or Scenario()
        scenario.synth = synth
        os.environ[KEY_ENV] = scenario.key
        with UwlrServer(scenario) as server:
            yield UwlrSource(uwlr_settings(server.url, synth), ctx)
    else:
        raise ValueError(kind)


def uwlr_settings(url: str, synth: Synth, **overrides: object) -> UwlrSettings:
    data: dict[str, object] = {
        "endpoint": url, "brin": synth.brin, "schooljaar": synth.schooljaar, "klantcode": "LD-TEST",
        "klantnaam": "Leerdossier test", "autorisatiesleutel": f"env:{KEY_ENV}", "read_timeout": 30,
        "attempts": 2,
    }
    data.update(overrides)
    return UwlrSettings.model_validate(data)
