"""Helpers that were written more than once and are now one: month arithmetic, Retry-After,
paths relative to the configuration file, preset names."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from connector.dates import add_months
from connector.retrying import RETRY_AFTER_MAX, retry_after
from connector.tomlfile import preset_or_path, resolve_path


@pytest.mark.parametrize(("start", "months", "end"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)), (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)), (date(2026, 11, 30), 3, date(2027, 2, 28)),
    (date(2026, 5, 15), 0, date(2026, 5, 15)),
])
def test_add_months_takes_the_last_day_when_the_month_has_no_such_day(start: date, months: int, end: date) -> None:
    assert add_months(start, months) == end


def test_retry_after_reads_seconds_and_dates_and_ignores_the_rest() -> None:
    assert retry_after("7") == 7.0 and retry_after(" 2.5 ") == 2.5
    assert retry_after(None) is None and retry_after("") is None and retry_after("soon") is None
    assert retry_after("nan") is None and retry_after("-3") == 0.0
    assert retry_after("99999") == RETRY_AFTER_MAX
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < (retry_after(later) or 0) <= 120


def test_paths_are_relative_to_the_configuration_folder(tmp_path: Path) -> None:
    assert resolve_path(tmp_path, "var/state.db") == tmp_path / "var" / "state.db"
    assert resolve_path(tmp_path, "/etc/x") == Path("/etc/x")
    assert resolve_path(tmp_path, "~/x") == Path.home() / "x"
    presets = tmp_path / "presets"
    assert preset_or_path("po", tmp_path, presets) == presets / "po.toml"
    assert preset_or_path("mine.toml", tmp_path, presets) == tmp_path / "mine.toml"
