"""The command line's layout: ``leerdossier --help`` lists every command from the registry
without importing a command module, and the registry says of each command what the command
itself says."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from connector.cli import COMMANDS, LazyGroup, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_registry_says_what_each_command_says(name: str) -> None:
    ctx = click.Context(main)
    command = LazyGroup.get_command(main, ctx, name)  # type: ignore[arg-type]
    assert command is not None and command.name == name
    registered = click.Command(name, help=COMMANDS[name][2])
    assert registered.get_short_help_str(200) == command.get_short_help_str(200)


def test_help_loads_no_command_module_and_no_heavy_library() -> None:
    code = ("import sys\nfrom click.testing import CliRunner\nfrom connector.cli import main\n"
            "r = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "heavy = [m for m in ('sqlalchemy', 'fpdf', 'pydantic', 'rich', 'zeep', 'httpx', 'lxml', 'procrastinate',"
            " 'connector.state', 'connector.cli.sync') if m in sys.modules]\nprint(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
