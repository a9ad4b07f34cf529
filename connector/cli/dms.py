"""``dms`` (the document-management system) and ``schedule`` (the retention schedule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from connector.app import dms
from connector.cli._common import config_option, echo, fail, json_option, opened, out_console
from connector.errors import ConnectorError


@click.group("dms")
def dms_group() -> None:
    """The document-management system."""


@dms_group.command("init")
@config_option
@json_option
def dms_init(config_path: Path, as_json: bool) -> None:
    """Create what the connector needs in the DMS (document type, metadata types); idempotent."""
    with opened(config_path, as_json) as app:
        try:
            result = dms.init_dms(app)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True} | result, as_json, lambda: out_console.print(f"DMS ready: {result}", highlight=False))


# -- retention -------------------------------------------------------------------------------



@click.group("schedule")
def schedule_group() -> None:
    """The retention schedule in force."""


@schedule_group.command("show")
@config_option
@json_option
def schedule_show(config_path: Path, as_json: bool) -> None:
    """What will be destroyed when: categories, classes, periods, kinds, bases, overrides."""
    with opened(config_path, as_json) as app:
        try:
            data = dms.schedule_view(app)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    categories: dict[str, dict[str, Any]] = data["categories"]

    def human() -> None:
        c = out_console
        c.print(f"[bold]{escape(data['schedule'])}[/]: {escape(data['description'])}", highlight=False, markup=True)
        for code, cat in categories.items():
            when = "blocked: never destroyed" if cat["blocked"] else (
                f"{cat['kind']} {cat['period']} after {cat['trigger']}")
            c.print(f"\n[bold]{escape(code)}[/] {escape(cat['name'])}: {escape(when)}", highlight=False, markup=True)
            c.print(f"  basis: {cat['basis']}", highlight=False)
            if cat["override"]:
                c.print(f"  [yellow]school override[/]: {escape(str(cat['override']))}", highlight=False, markup=True)
            for alt in ("when_referred", "with_consent"):
                if cat[alt]:
                    c.print(f"  {alt.replace('_', ' ')}: {cat[alt]['period']} ({cat[alt]['basis']})",
                            highlight=False)
            c.print(f"  classes: {', '.join(cat['classes']) or '-'}", highlight=False)
        c.print(f"\nunclassified documents get: {data['unclassified']['gets']}", highlight=False)

    echo(data, as_json, human)
