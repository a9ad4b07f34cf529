"""Retention schedules as data, and the pure rule that tags a document.

    tag(facts about the pupil, document class, schedule) -> RetentionTag

A schedule (``mappings/retention-*.toml`` or a school's own file) names categories, each with a
trigger (the departure date), a period, a kind (``minimum``: must keep until; ``maximum``: must
be gone by), a legal basis, optional alternatives when the pupil was referred to (V)SO or gave
consent (reunions), and whether the category is blocked (never destroyed). Every document class
of the dossier layout maps to exactly one category. A school's override file changes periods
and bases; each override is recorded in the tag, and a minimum period can never be shortened.

The tag does not depend on today's date (so the DMS is not rewritten daily); ``is_due`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from connector import tomlfile
from connector.dates import add_months
from connector.errors import ConfigError
from connector.mapping import PRESETS, resolve_preset
from connector.model import Frozen, PupilFacts, RetentionKind, RetentionTag

_PERIOD = re.compile(r"^(\d{1,3})([ymwd])$")
_DAYS = {"y": 365.25, "m": 30.44, "w": 7.0, "d": 1.0}
UNCLASSIFIED = "unclassified"


def parse_period(text: str) -> tuple[int, str] | None:
    """``"5y"`` -> (5, "y"); ``"open"`` -> None. Raises ValueError on anything else."""
    if text == "open":
        return None
    m = _PERIOD.match(text)
    if not m:
        raise ValueError(f"period {text!r}: use a whole number and y, m, w or d (e.g. 5y, 6m, 8w), or 'open'")
    return int(m.group(1)), m.group(2)


def period_days(text: str | None) -> float:
    """Approximate length, only to compare periods (open or None counts as forever)."""
    if text is None:
        return float("inf")
    parsed = parse_period(text)
    if parsed is None:
        return float("inf")
    n, unit = parsed
    return n * _DAYS[unit]


def add_period(start: date, text: str) -> date | None:
    """The end of a period that starts on ``start`` (calendar years and months; 29 Feb -> 28 Feb)."""
    parsed = parse_period(text)
    if parsed is None:
        return None
    n, unit = parsed
    if unit in ("y", "m"):
        return add_months(start, n * 12 if unit == "y" else n)
    return start + timedelta(days=n * (7 if unit == "w" else 1))


def _check_period(value: str | None) -> str | None:
    if value is not None:
        parse_period(value)
    return value


class _Alternative(Frozen):
    period: str
    basis: str = Field(min_length=3)

    _period = field_validator("period")(_check_period)


class Category(Frozen):
    name: str
    trigger: Literal["departure", "exam_result"] = "departure"
    period: str | None = None
    floor: str | None = None
    """The shortest period a school may set for this category (e.g. 3y for a psychological
    report held by a VO school, kept at most 5y)."""
    kind: RetentionKind
    basis: str = Field(min_length=3)
    blocked: bool = False
    when_referred: _Alternative | None = None
    with_consent: _Alternative | None = None
    override: str | None = None

    _period = field_validator("period", "floor")(_check_period)


class _ScheduleMeta(Frozen):
    name: str
    description: str = ""
    mapping: str = "po"
    extends: str | None = None


class _ScheduleFile(Frozen):
    schedule: _ScheduleMeta
    categories: dict[str, Category]
    classes: dict[str, str]


class _Override(Frozen):
    period: str | None = None
    basis: str = Field(min_length=3)
    when_referred: _Alternative | None = None
    with_consent: _Alternative | None = None

    _period = field_validator("period")(_check_period)


class _OverrideFile(Frozen):
    overrides: dict[str, _Override]


@dataclass(frozen=True, eq=False)
class Schedule:
    """Hashable by identity (one loaded schedule is one object), so tags can be memoised."""

    name: str
    description: str
    path: Path
    categories: dict[str, Category]
    classes: dict[str, str]
    overrides: dict[str, str] = field(default_factory=dict)
    """category -> basis of the school's override."""
    override_path: Path | None = None

    def longest(self) -> Category:
        """The non-blocked maximum category with the longest period: what an unclassified
        document gets, so it is never destroyed earlier than any class it might belong to."""
        candidates = [c for c in self.categories.values() if c.kind == "maximum" and not c.blocked]
        if not candidates:
            raise ConfigError(f"{self.path}: schedule has no destroyable category")

        def length(c: Category) -> float:
            alt = c.when_referred.period if c.when_referred else None
            return max(period_days(c.period), period_days(alt) if alt else 0.0)

        return max(candidates, key=length)


def tag(facts: PupilFacts, doc_class: str | None, schedule: Schedule) -> RetentionTag:
    """The retention tag of one document. Pure."""
    unclassified = doc_class is None or doc_class not in schedule.classes
    if unclassified:
        code = UNCLASSIFIED
        cat = schedule.longest()
    else:
        code = schedule.classes[doc_class]  # type: ignore[index]
        cat = schedule.categories[code]
    period, basis = cat.period, cat.basis
    if cat.when_referred and facts.referred is not None:
        period, basis = cat.when_referred.period, cat.when_referred.basis
    if cat.with_consent and facts.reunion_consent is not None and not unclassified:
        period, basis = cat.with_consent.period, cat.with_consent.basis
    if unclassified and cat.when_referred and period_days(cat.when_referred.period) > period_days(period):
        # never shorter than any alternative the class might have had
        period, basis = cat.when_referred.period, cat.when_referred.basis
    if unclassified:
        basis = f"Niet geclassificeerd document: langste termijn van dit schema ({cat.name}): {basis}"
    start = facts.exam_result if cat.trigger == "exam_result" else facts.clock_start
    open_period = period is None or period == "open"
    due = None if (cat.blocked or open_period or start is None) else add_period(start, period)  # type: ignore[arg-type]
    return RetentionTag(
        category=code, trigger=cat.trigger, period=None if (cat.blocked or open_period) else period,
        kind=cat.kind, basis=basis, due=due, blocked=cat.blocked,
        override=cat.override,
        unclassified=unclassified,
        doc_class=None if unclassified else doc_class,
    )


@lru_cache(maxsize=65536)
def tag_cached(facts: PupilFacts, doc_class: str | None, schedule: Schedule) -> RetentionTag:
    """``tag`` memoised: many documents share their facts and class (values are immutable)."""
    return tag(facts, doc_class, schedule)


@lru_cache(maxsize=65536)
def tag_json_cached(facts: PupilFacts, doc_class: str | None, schedule: Schedule) -> tuple[RetentionTag, str]:
    """``tag_cached`` with the tag's JSON (as stored in the state), computed once per value."""
    t = tag_cached(facts, doc_class, schedule)
    return t, t.model_dump_json()


def is_due(t: RetentionTag, today: date) -> bool:
    """May (must) this document be destroyed today, by its tag alone? Only maximum periods
    that have passed. ``not_removable`` is the whole rule (departure, holds too)."""
    return not_due(t, today) is None


def not_due(t: RetentionTag, today: date) -> str | None:
    """Why the tag does not allow removal today (None: its maximum period has passed)."""
    if t.blocked:
        return "blocked category"
    if t.kind != "maximum":
        return f"minimum period (kept at least until {t.due.isoformat() if t.due else 'open'})"
    if t.due is None:
        return "not due (no running clock or an open period)"
    if t.due > today:
        return f"not due today (due {t.due.isoformat()})"
    return None


def not_removable(facts: PupilFacts, doc_class: str | None, part: str, held_parts: set[str | None],
                  schedule: Schedule, today: date, cached: bool = True) -> tuple[str | None, RetentionTag]:
    """The one due rule: why this document may not leave its dossier today (None: it may), and
    its tag under today's facts and schedule. Used by list creation, the due gauge and the
    gate right before every DMS call. ``held_parts``: the pupil's active holds (None: the whole
    dossier). The pupil must have departed and not returned, the category must not be blocked,
    its maximum period must have passed, and no hold may cover the document."""
    t = tag_cached(facts, doc_class, schedule) if cached else tag(facts, doc_class, schedule)
    if facts.clock_start is None:
        return ("re-enrolled after the departure" if facts.departure is not None
                else "no departure recorded"), t
    if None in held_parts or part in held_parts:
        return "on hold", t
    return not_due(t, today), t


def load_schedule(ref: str | Path, base: Path | None = None, overrides: str | Path | None = None,
                  classes: set[str] | None = None) -> Schedule:
    """Load a schedule (preset name or path), apply a school's overrides, and check it against
    the dossier layout's classes. Errors name file, line and key."""
    path = resolve_preset(ref, base)
    known = [p.stem for p in PRESETS.glob("*.toml") if p.stem.startswith(("retention-", "policy-"))]
    data, text = tomlfile.load_model(path, "schedule", _ScheduleFile, resolve_preset, "retention schedule", known)
    for cls, code in data.classes.items():
        if code not in data.categories:
            raise tomlfile.problem(path, text, ["classes", cls],
                                   f"unknown category {code!r} (categories: {', '.join(data.categories)})")
    for code, cat in data.categories.items():
        if not cat.blocked and cat.period is None:
            raise tomlfile.problem(path, text, ["categories", code, "period"],
                                   "a category that is not blocked needs a period")
        for alt in ("when_referred", "with_consent"):
            given = getattr(cat, alt)
            if given is not None and cat.floor and period_days(given.period) < period_days(cat.floor):
                raise tomlfile.problem(path, text, ["categories", code, alt, "period"],
                                       f"below the shortest period allowed for this category ({cat.floor})")
    if classes is not None:
        missing = sorted(classes - set(data.classes))
        if missing:
            raise tomlfile.problem(path, text, ["classes"],
                                   f"document classes with no category: {', '.join(missing)}")
    categories = dict(data.categories)
    applied: dict[str, str] = {}
    override_path = None
    if overrides is not None:
        override_path = resolve_preset(overrides, base)
        categories, applied = _apply_overrides(override_path, categories)
    return Schedule(data.schedule.name, data.schedule.description, path, categories,
                    dict(data.classes), applied, override_path)


def _apply_overrides(path: Path, categories: dict[str, Category]) -> tuple[dict[str, Category], dict[str, str]]:
    data, text = tomlfile.read_model(path, _OverrideFile)
    out = dict(categories)
    applied = {}
    for code, ov in data.overrides.items():
        if code not in out:
            raise tomlfile.problem(path, text, ["overrides", code],
                                   f"unknown category (categories: {', '.join(out)})")
        cat = out[code]
        if cat.blocked:
            raise tomlfile.problem(path, text, ["overrides", code],
                                   "a blocked category cannot be overridden (Archiefwet)")
        for which, given in (("period", ov.period), ("when_referred", ov.when_referred),
                             ("with_consent", ov.with_consent)):
            period = given.period if isinstance(given, _Alternative) else given
            if period is None:
                continue
            loc = ["overrides", code, which] + (["period"] if which != "period" else [])
            problem = _undercuts(cat, which, period)
            if problem:
                raise tomlfile.problem(path, text, loc, problem)
        changes: dict[str, object] = {"basis": ov.basis, "override": ov.basis}
        if ov.period is not None:
            changes["period"] = ov.period
        if ov.when_referred is not None:
            changes["when_referred"] = ov.when_referred
        if ov.with_consent is not None:
            changes["with_consent"] = ov.with_consent
        out[code] = cat.model_copy(update=changes)
        applied[code] = ov.basis
    return out, applied


def _undercuts(cat: Category, which: str, period: str) -> str | None:
    """Whether a period an override sets (the plain period or an alternative) goes below what
    the category allows: its floor, or, for a minimum, what the schedule itself keeps."""
    if cat.floor and period_days(period) < period_days(cat.floor):
        return f"below the shortest period allowed for this category ({cat.floor})"
    if cat.kind == "minimum":
        preset = getattr(cat, which) if which != "period" else None
        current = preset.period if isinstance(preset, _Alternative) else cat.period
        if period_days(period) < period_days(current):
            return f"shortens a minimum period ({current} -> {period}); not allowed"
    return None
