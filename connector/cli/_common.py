"""What every command module shares: options, the date type, output (clean text, JSON),
exit codes, opening the application and authenticating the acting user."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connector.app import App, DossierRow, User, open_app, read_secret_ref
from connector.errors import ConnectorError

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters, terminal escape sequences' introducers and bidirectional overrides: a
value from an export (a guardian's name in a CSV) must never steer the terminal."""


def clean(text: str) -> str:
    """Text as it may reach a terminal: without control characters (newlines and tabs kept)."""
    return _CONTROL.sub("", text)


class _CleanConsole(Console):
    """A console that prints every string it is given without control characters."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(clean(o) if isinstance(o, str) else o for o in objects), **kwargs)


err_console = _CleanConsole(stderr=True, soft_wrap=True)
out_console = _CleanConsole(soft_wrap=True, markup=False)
"""Data is printed as it is: a "[" in a name, reason or message is text, never markup. The few
styled lines pass ``markup=True`` and escape every value in them."""


EXIT_OK, EXIT_ERROR, EXIT_SAFETY = 0, 1, 3


def fail(message: str, as_json: bool, code: int = EXIT_ERROR) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message}))
    else:
        # the message is text, not markup: "[state] url" must survive as written
        err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    sys.exit(code)


@contextmanager
def opened(config_path: Path, as_json: bool) -> Iterator[App]:
    try:
        app = open_app(config_path)
    except ConnectorError as exc:
        fail(str(exc), as_json)
    try:
        yield app
    finally:
        app.state.close()


class DateParam(click.ParamType):  # type: ignore[type-arg]
    """Every date a command takes: YYYY-MM-DD, or one clear message (never a traceback)."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        text = str(value)
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError(text)
            return date.fromisoformat(text)
        except ValueError:
            self.fail(f"expected YYYY-MM-DD, got {text[:40]!r}", param, ctx)


DATE = DateParam()


def acting(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--as USER`` and ``--secret REF``: the authenticated user a command acts as."""
    f = click.option("--secret", "secret_ref", metavar="REF",
                     help="Your secret by reference, env:NAME or file:PATH (mode 0600), for automation; "
                          "without it you are asked at a prompt.")(f)
    return click.option("--as", "as_name", required=True, metavar="USER",
                        help="Who acts: a user of this install ('leerdossier user add'); the audit names them.")(f)


def dossier_of(app: App, key: str, as_json: bool) -> DossierRow:
    """Pupil KEY's dossier (LAS key or p-... key), or the command ends with the error."""
    try:
        return app.dossier(key)
    except ConnectorError as exc:
        fail(str(exc), as_json)


def authenticate(app: App, name: str, secret_ref: str | None) -> User:
    """The user NAME, with the secret read by reference (``--secret``) or asked at a prompt."""
    if secret_ref is not None:
        secret = read_secret_ref(app.loaded, secret_ref, ["--secret"])
    else:
        secret = click.prompt(f"secret for {name}", hide_input=True, err=True)
    return app.user(name, secret)


def acting_user(app: App, as_name: str, secret_ref: str | None, as_json: bool, action: str) -> User:
    try:
        user = authenticate(app, as_name, secret_ref)
        user.require(action)
    except ConnectorError as exc:
        fail(str(exc), as_json)
    return user


config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
    envvar="LEERDOSSIER_CONFIG", help="Configuration file (TOML). Env: LEERDOSSIER_CONFIG.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


def view_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--by`` and ``--reason`` on a command that shows a pupil's personal data: every such
    view is an audit entry (who, whose, what, why), as NEN 7513 asks of a log of access."""
    f = click.option("--reason", required=True, help="Why you look (e.g. 'inspection request 12').")(f)
    return click.option("--by", required=True, help="Who looks.")(f)




def echo(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human()

def progress_bar(enabled: bool) -> tuple[Callable[[str, int], None], Progress | None]:
    if not enabled:
        return (lambda _p, _n: None), None
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed} records"), TimeElapsedColumn(), console=err_console,
                   transient=True)
    tasks: dict[str, Any] = {}

    def update(phase: str, n: int) -> None:
        if phase not in tasks:
            label = {"read": "reading the export", "write": "updating dossiers"}.get(phase, phase)
            tasks[phase] = bar.add_task(label, total=None)
        bar.update(tasks[phase], completed=n)

    return update, bar
