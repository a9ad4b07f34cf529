from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector import config, mapping
from connector.errors import ConfigError
from connector.identity import Identity
from tests.conftest import SAMPLE, pupil, write_config


def test_example_config_is_valid() -> None:
    loaded = config.load(Path(__file__).resolve().parents[2] / "config.example.toml")
    assert loaded.config.las.type == "edexml" and loaded.config.identity.key == "las_key"


def test_config_error_names_key_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, SAMPLE, safety={"min_snapshot_ratio": 3})
    with pytest.raises(ConfigError) as info:
        config.load(path)
    lines = path.read_text().splitlines()
    lineno = next(i for i, line in enumerate(lines, 1) if line.startswith("min_snapshot_ratio"))
    assert f"config.toml:{lineno}: safety.min_snapshot_ratio" in str(info.value)


def test_inline_secret_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, SAMPLE, identity={"secret": "hunter2hunter2hunter2"})
    with pytest.raises(ConfigError, match="identity.secret: .*by reference"):
        config.load(path)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, SAMPLE, safety={"min_snapshot_ratoi": 0.5})
    with pytest.raises(ConfigError, match="safety.min_snapshot_ratoi"):
        config.load(path)


def test_secret_file_must_be_private_and_is_never_printed(tmp_path: Path) -> None:
    path = write_config(tmp_path, SAMPLE, identity={"create_secret": False})
    secret = tmp_path / "install.key"
    secret.write_text("s3cr3t-value-0123456789")
    secret.chmod(0o644)
    loaded = config.load(path)
    with pytest.raises(ConfigError) as info:
        loaded.secret(loaded.config.identity.secret, ["identity", "secret"])
    assert "readable by others" in str(info.value) and "s3cr3t" not in str(info.value)
    secret.chmod(0o600)
    assert loaded.secret(loaded.config.identity.secret, ["identity", "secret"]) == b"s3cr3t-value-0123456789"


def test_created_secret_is_private(tmp_path: Path) -> None:
    loaded = config.load(write_config(tmp_path, SAMPLE))
    loaded.secret("file:install.key", ["identity", "secret"], create=True)
    assert (tmp_path / "install.key").stat().st_mode & 0o077 == 0


def test_env_secret_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_TEST_SECRET", raising=False)
    loaded = config.load(write_config(tmp_path, SAMPLE, identity={"secret": "env:LD_TEST_SECRET"}))
    with pytest.raises(ConfigError, match="LD_TEST_SECRET is not set"):
        loaded.secret(loaded.config.identity.secret, ["identity", "secret"])
    monkeypatch.setenv("LD_TEST_SECRET", "from-the-environment-123")
    assert loaded.secret(loaded.config.identity.secret, ["identity", "secret"]) == b"from-the-environment-123"
    assert "from-the-environment" not in os.environ.get("LEERDOSSIER_CONFIG", "")


def test_po_mapping_has_both_parts_with_the_seed_classes() -> None:
    m = mapping.load("po")
    parts = {p.code: p for p in m.parts}
    assert set(parts) == {"I", "II"}
    assert {"inschrijving", "uitschrijving", "verzuim", "bekostiging"} <= set(parts["I"].classes)
    assert {"onderwijskundig_rapport", "psychologisch_rapport", "handelingsplan",
            "schorsing_verwijdering", "rapport", "toetsuitslagen"} <= set(parts["II"].classes)


def test_mapping_turns_a_pupil_into_a_dossier_without_bsn() -> None:
    m = mapping.load("po")
    p = pupil("LL1", pgn="123456782", pgn_kind="bsn", groep="Groep 5A", voorvoegsel="van")
    s = m.desired(p, "las:99XY:LL1", "p-x")
    assert s.title == "Roep van AchterLL1"
    assert s.properties["jaargroep"] == "5" and s.properties["groep"] == "Groep 5A"
    assert s.properties["school_brin"] == "99XY" and "eckid" not in s.properties
    assert "123456782" not in s.model_dump_json()


@pytest.mark.parametrize(("toml", "where", "what"), [
    ('[dossier.properties]\nbsn = "pupil.bsn"\n', "dossier.properties.bsn", "unknown source field"),
    ('[classes.extra]\npart = "III"\nname = "x"\n', "classes.extra.part", "unknown part"),
    ('[dossier]\ntitle = "{achternaam} {bsn}"\n', "dossier.title", "unknown field"),
    ('[classes.extra]\nname = "x"\n', "classes.extra.part", "Field required"),
])
def test_invalid_mapping_names_file_line_and_key(tmp_path: Path, toml: str, where: str, what: str) -> None:
    base = (mapping.PRESETS / "po.toml").read_text(encoding="utf-8")
    if toml.startswith("[dossier]"):
        base = base.replace('title = "{roepnaam} {voorvoegsel} {achternaam}"', toml.split("\n")[1])
        extra = ""
    else:
        extra = toml
    if toml.startswith("[dossier.properties]"):
        base = base.replace('school_brin = "school.code"', 'school_brin = "school.code"\nbsn = "pupil.bsn"')
        extra = ""
    path = tmp_path / "school.toml"
    path.write_text(base + "\n" + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        mapping.load(path)
    msg = str(info.value)
    assert str(path) + ":" in msg and where in msg and what in msg
    assert msg.split(":")[1].isdigit()


def test_identity_schemes_and_pseudonyms() -> None:
    p = pupil("LL1", eckid="https://ketenid.nl/x", pgn="123456782", pgn_kind="bsn")
    assert Identity(b"k" * 20, "las_key").external_id(p) == "las:99XY:LL1"
    assert Identity(b"k" * 20, "eckid").external_id(p) == "eckid:https://ketenid.nl/x"
    assert Identity(b"k" * 20, "onderwijsnummer").external_id(p) == "pgn:123456782"
    a, b = Identity(b"k" * 20, "las_key"), Identity(b"j" * 20, "las_key")
    assert a.pseudonym(p) == a.pseudonym(p) != b.pseudonym(p)
    assert "LL1" not in a.pseudonym(p)
    from connector.errors import RejectedRecord
    with pytest.raises(RejectedRecord) as info:
        Identity(b"k" * 20, "eckid").external_id(pupil("LL2"))
    assert info.value.field == "@eckid"



def test_an_adapter_that_lacks_a_port_method_is_refused_by_name(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A DMS adapter written against the port before it had ``group`` is refused when the
    configuration is opened, naming the key and what is missing, not halfway through a run."""
    import sys

    import adapters
    from adapters.dms.filesystem import FilesystemStore

    methods = {n: getattr(FilesystemStore, n) for n in dir(FilesystemStore)
               if callable(getattr(FilesystemStore, n)) and not n.startswith("_") and n != "group"}
    monkeypatch.setattr(sys.modules[__name__], "OldStore", type("OldStore", (), methods), raising=False)
    monkeypatch.setattr(adapters, "available", lambda group: {"old": f"{__name__}:OldStore"})
    loaded = config.load(write_config(tmp_path, SAMPLE, dms={"type": "old"}))
    with pytest.raises(ConfigError) as err:
        adapters.build_store(loaded)
    message = str(err.value)
    assert "dms.type: adapter 'old'" in message and message.endswith("does not implement DocumentStore: no group")
