"""Calendar arithmetic shared by the retention schedule and the request deadlines."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it has none (31 Jan + 1 =
    28/29 Feb; 29 Feb + 12 = 28 Feb)."""
    month = d.month - 1 + months
    year, month = d.year + month // 12, month % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))
