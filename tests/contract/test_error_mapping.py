"""Every adapter maps every exception of the libraries it uses into the error root (the
connector's ``ConnectorError``): the service then marks a cycle failed and goes on, and a
message never carries a body. Mayan's httpx and answer-shape mapping is in test_mayan.py."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep.exceptions

from connector.errors import ConnectorError
from examples.synth import Synth, write, write_csv, write_oso
from tests.las.sources import context, uwlr_settings

SYNTH = Synth(pupils=3, seed=2, duplicates=0)


def leaves(cls: type) -> list[type]:
    subs = cls.__subclasses__()
    return [cls] if not subs else sorted({x for s in subs for x in leaves(s)}, key=lambda c: c.__name__)


def _make(exc_type: type[BaseException]) -> BaseException:
    for args in (("x",), ("x", "y"), ("x", "y", 0)):
        try:
            return exc_type(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot make a {exc_type.__name__}")


@pytest.mark.parametrize("exc_type", leaves(requests.RequestException) + leaves(zeep.exceptions.Error),
                         ids=lambda c: c.__name__)
def test_uwlr_every_requests_and_zeep_exception_is_in_the_root(monkeypatch: pytest.MonkeyPatch,
                                                               exc_type: type[BaseException]) -> None:
    from adapters.las import uwlr

    class Service:
        def HaalLeerlinggegevens(self, **kwargs: Any) -> Any:
            raise _make(exc_type)

    class Client:
        def create_service(self, *args: Any) -> Service:
            return Service()

        def get_element(self, name: str) -> Any:
            return lambda **kw: kw

    monkeypatch.setattr(uwlr.UwlrSource, "_client", lambda self, session: Client())
    os.environ["LD_TEST_UWLR_KEY"] = "sleutel-0123456789"
    source = uwlr.UwlrSource(uwlr_settings("http://127.0.0.1:9/uwlr", SYNTH, attempts=1), context())
    with pytest.raises(ConnectorError):
        list(source.pupils())


OS_ERRORS = [errno.EACCES, errno.EIO, errno.ENOSPC, errno.EROFS, errno.ELOOP, errno.ENAMETOOLONG, errno.EMFILE]


@pytest.mark.parametrize("kind", ["edexml", "oso", "csv"])
@pytest.mark.parametrize("code", OS_ERRORS, ids=errno.errorcode.get)
def test_file_sources_map_every_os_error_into_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       kind: str, code: int) -> None:
    from adapters.las.csv import CsvSettings, CsvSource
    from adapters.las.edexml import EdexmlSettings, EdexmlSource
    from adapters.las.oso import OsoSettings, OsoSource

    if kind == "edexml":
        src: Any = EdexmlSource(EdexmlSettings(path=write(tmp_path / "e.xml", SYNTH)), context())
    elif kind == "oso":
        src = OsoSource(OsoSettings(path=write_oso(tmp_path / "oso", SYNTH)), context())
    else:
        src = CsvSource(CsvSettings(path=write_csv(tmp_path / "e.csv", SYNTH), layout="parnassys"), context())
    real_open = io.open

    def failing(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file).startswith(str(tmp_path)):
            raise OSError(code, os.strerror(code))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing)
    monkeypatch.setattr(io, "open", failing)
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: failing(self, *a, **k))
    with pytest.raises(ConnectorError) as info:
        list(src.pupils())
    assert os.strerror(code) in str(info.value) or info.value.__class__.__name__


@pytest.mark.parametrize("code", OS_ERRORS, ids=errno.errorcode.get)
def test_the_filesystem_store_maps_every_os_error_into_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                code: int) -> None:
    from adapters.testing import dossier_spec as spec
    from connector.model import DossierSpec
    from tests.conftest import filesystem_store

    store = filesystem_store(tmp_path / "dms")
    ref = store.create_dossier(spec())
    doc = store.add_document(ref, "I", "inschrijving", "a.pdf", io.BytesIO(b"%PDF"), {})

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    for name in ("read_text", "read_bytes", "open", "iterdir", "mkdir"):
        monkeypatch.setattr(Path, name, failing)
    monkeypatch.setattr(os, "replace", failing)
    monkeypatch.setattr(os, "link", failing)
    calls = [lambda: store.find_dossier("las:99XY:LL000009"), lambda: store.create_dossier(spec("las:99XY:X2")),
             lambda: store.update_dossier(ref, spec()), lambda: list(store.documents(ref)),
             lambda: store.read(doc), lambda: store.destroy(doc),
             lambda: store.add_document(ref, "I", None, "b.pdf", io.BytesIO(b"x"), {})]
    for call in calls:
        with pytest.raises(ConnectorError):
            call()
    assert isinstance(spec(), DossierSpec)


def test_the_filesystem_store_maps_corrupt_metadata_into_the_root(tmp_path: Path) -> None:
    from adapters.testing import dossier_spec as spec
    from connector.errors import PermanentError
    from tests.conftest import filesystem_store

    store = filesystem_store(tmp_path / "dms")
    ref = store.create_dossier(spec())
    (store.root / "dossiers" / ref.id[:2] / ref.id / "dossier.json").write_bytes(b"\xff{not json")
    with pytest.raises(PermanentError, match="corrupt store metadata|cannot|dossier"):
        store.update_dossier(ref, spec())
