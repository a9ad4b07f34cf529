"""Mappings: LAS fields to dossier properties, the dossier layout and its document classes.

A mapping is a TOML file (``mappings/*.toml``). It is validated at load; every problem names
the file, the line and the key.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

from pydantic import Field

from connector import tomlfile
from connector.model import DocumentRef, DossierSpec, Frozen, PartSpec, Pupil

PRESETS = Path(__file__).resolve().parent.parent / "mappings"

SOURCE_FIELDS: dict[str, Callable[[Pupil], object]] = {
    "school.code": lambda p: p.school.code,
    "school.brin": lambda p: p.school.brin,
    "school.schooljaar": lambda p: p.school.schooljaar,
    "pupil.key": lambda p: p.key,
    "pupil.geboortedatum": lambda p: p.geboortedatum,
    "pupil.geslacht": lambda p: p.geslacht,
    "pupil.jaargroep": lambda p: p.jaargroep,
    "pupil.groep": lambda p: p.groep,
    "pupil.vestiging": lambda p: p.vestiging,
    "pupil.instroomdatum": lambda p: p.instroomdatum,
    "pupil.uitstroomdatum": lambda p: p.uitstroomdatum,
}
"""Fields of a pupil a mapping may copy into dossier metadata. The BSN, the onderwijsnummer and
the ECK-iD are deliberately absent: a dossier may be keyed on them (through a keyed hash), but
no DMS ever holds one of them."""

TITLE_FIELDS: dict[str, Callable[[Pupil], object]] = {
    "roepnaam": lambda p: p.roepnaam,
    "voornamen": lambda p: p.voornamen,
    "voorvoegsel": lambda p: p.voorvoegsel,
    "achternaam": lambda p: p.achternaam,
    "geboortedatum": lambda p: p.geboortedatum,
    "key": lambda p: p.key,
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class _Meta(Frozen):
    name: str
    description: str = ""
    extends: str | None = None


class _Dossier(Frozen):
    title: str = "{key}"
    properties: dict[str, str] = Field(default_factory=dict)


class _Part(Frozen):
    name: str
    folder: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    purpose: str | None = None
    """What the school keeps this part for, in Dutch (the processing register's purpose)."""


class _Class(Frozen):
    part: str
    name: str
    others_data: bool = False
    """Documents of this class usually hold other people's personal data (other pupils in a
    team discussion or an incident): left out of an export for a data subject, and listed as
    withheld for a person to redact."""


class _Rule(Frozen):
    """Classifies a document that arrived without a class (scanner, e-mail, another system)."""

    doc_class: str = Field(alias="class")
    metadata: dict[str, str] = Field(default_factory=dict)
    name: str | None = None
    part: str | None = None


class _MappingFile(Frozen):
    mapping: _Meta
    dossier: _Dossier = Field(default_factory=_Dossier)
    parts: dict[str, _Part]
    classes: dict[str, _Class]
    classify: list[_Rule] = Field(default_factory=list)


class Mapping:
    """A loaded, validated mapping. ``desired`` turns a pupil into its dossier spec."""

    def __init__(self, path: Path, data: _MappingFile) -> None:
        self.path = path
        self.name = data.mapping.name
        # a part's purpose is words for the register: it changes no dossier
        self.fingerprint = hashlib.sha256(data.model_dump_json(
            exclude={"parts": {code: {"purpose"} for code in data.parts}}).encode()).hexdigest()
        self.purposes = {code: part.purpose for code, part in data.parts.items()}
        self.description = data.mapping.description
        """Changes whenever the mapping would make different dossiers from the same pupils."""
        self.title_template = data.dossier.title
        self.properties = dict(sorted(data.dossier.properties.items()))
        self._getters = [(prop, SOURCE_FIELDS[src]) for prop, src in self.properties.items()]
        self._title_getters = [
            (name, TITLE_FIELDS[name]) for name in _PLACEHOLDER.findall(self.title_template)
        ]
        self.classes = {code: (c.part, c.name) for code, c in data.classes.items()}
        self.others_data = frozenset(code for code, c in data.classes.items() if c.others_data)
        self.rules = tuple(data.classify)
        self.parts = tuple(
            PartSpec(
                code=code,
                name=part.name,
                folder=part.folder,
                classes=tuple(sorted(c for c, v in data.classes.items() if v.part == code)),
            )
            for code, part in data.parts.items()
        )

    def classify(self, doc: DocumentRef) -> str | None:
        """The document's class: its own when the layout knows it, else the first matching rule
        (all given conditions must hold: metadata values, file-name pattern, part), else None."""
        if doc.doc_class in self.classes:
            return doc.doc_class
        meta = {k.casefold(): v.casefold() for k, v in doc.metadata.items()}
        for rule in self.rules:
            if rule.part is not None and rule.part != doc.part:
                continue
            if any(meta.get(k.casefold()) != v.casefold() for k, v in rule.metadata.items()):
                continue
            if rule.name is not None and not fnmatch.fnmatch(doc.name.casefold(), rule.name.casefold()):
                continue
            return rule.doc_class
        return None

    def title(self, pupil: Pupil) -> str:
        values = {name: _text(get(pupil)) for name, get in self._title_getters}
        title = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.title_template)
        return " ".join(title.split())

    def desired(self, pupil: Pupil, external_id: str, pseudonym: str) -> DossierSpec:
        """The dossier this pupil should have. Pure: same pupil, same spec."""
        props = {}
        for prop, get in self._getters:
            value = get(pupil)
            if value is not None:
                props[prop] = _text(value)
        return DossierSpec(
            external_id=external_id,
            pseudonym=pseudonym,
            school=pupil.school.code,
            title=self.title(pupil) or pseudonym,
            properties=props,
            parts=self.parts,
            departure=pupil.uitstroomdatum,
        )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def resolve_preset(ref: str | Path, base: Path | None) -> Path:
    """A preset name (``po``, ``retention-po``) or a ``.toml`` path, relative to ``base``."""
    return tomlfile.preset_or_path(ref, base, PRESETS)


def load(ref: str | Path, base: Path | None = None) -> Mapping:
    """Load a mapping by preset name (``po``) or by path (relative to ``base``). A mapping may
    start from another with ``[mapping] extends = "po"`` and add or change parts and classes."""
    path = resolve_preset(ref, base)
    known = [p.stem for p in PRESETS.glob("*.toml") if not p.stem.startswith(("retention-", "policy-"))]
    data, text = tomlfile.load_model(path, "mapping", _MappingFile, resolve_preset, "mapping", known)
    for prop, src in data.dossier.properties.items():
        if src not in SOURCE_FIELDS:
            raise tomlfile.problem(
                path, text, ["dossier", "properties", prop],
                f"unknown source field {src!r} (known: {', '.join(SOURCE_FIELDS)})",
            )
    for name in _PLACEHOLDER.findall(data.dossier.title):
        if name not in TITLE_FIELDS:
            raise tomlfile.problem(
                path, text, ["dossier", "title"],
                f"unknown field {{{name}}} (known: {', '.join(TITLE_FIELDS)})",
            )
    for code, cls in data.classes.items():
        if cls.part not in data.parts:
            raise tomlfile.problem(
                path, text, ["classes", code, "part"],
                f"unknown part {cls.part!r} (parts: {', '.join(data.parts)})",
            )
    for i, rule in enumerate(data.classify):
        if rule.doc_class not in data.classes:
            raise tomlfile.problem(path, text, ["classify", "class"],
                                   f"rule {i + 1}: unknown class {rule.doc_class!r}")
        if not (rule.metadata or rule.name or rule.part):
            raise tomlfile.problem(path, text, ["classify"], f"rule {i + 1}: has no condition")
    if not data.parts:
        raise tomlfile.problem(path, text, ["parts"], "a mapping needs at least one part")
    return Mapping(path, data)
