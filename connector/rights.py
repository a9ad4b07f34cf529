"""Data subjects' requests (AVG art. 12, 15-17): deadlines and their state. Pure.

A request is answered within one month of receipt; the term may be extended by two further
months, with a reason given to the requester (AVG art. 12(3)). ``status`` and the completeness
report flag a request from four weeks on; an open request holds the dossier (no destruction).
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Literal

RequestKind = Literal["inspection", "copy", "correction", "erasure"]
KINDS: tuple[str, ...] = ("inspection", "copy", "correction", "erasure")
OUTCOMES: tuple[str, ...] = ("granted", "partly", "refused", "withdrawn")


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it has none (31 Jan + 1 = 28/29 Feb)."""
    month = d.month - 1 + months
    year, month = d.year + month // 12, month % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def first_due(received: date) -> date:
    return add_months(received, 1)


def extended_due(received: date) -> date:
    return add_months(received, 3)


def state(received: date, due: date, today: date, warn_days: int) -> Literal["ok", "due soon", "overdue"]:
    if today > due:
        return "overdue"
    if (today - received).days >= warn_days or (due - today).days <= 3:
        return "due soon"
    return "ok"
