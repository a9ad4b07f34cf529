"""``leerdossier identity``: the keys a school's dossiers are found by."""

from __future__ import annotations

from pathlib import Path

import click

from connector.app import identity as uses
from connector.cli._common import EXIT_SAFETY, config_option, echo, fail, json_option, opened, out_console
from connector.errors import ConnectorError, SafetyStop


@click.group("identity")
def identity_group() -> None:
    """The keys a school's dossiers are found by."""


@identity_group.command("rekey")
@config_option
@click.option("--from", "old", required=True, type=click.Path(path_type=Path, exists=True),
              help="The old LAS's last export (EDEXML, OSO file or folder, a saved UWLR answer, or CSV).")
@click.option("--to", "new", required=True, type=click.Path(path_type=Path, exists=True),
              help="The new LAS's first export, in any of those formats.")
@click.option("--match", type=click.Choice(["bsn", "eckid", "onderwijsnummer"]), required=True,
              help="The number both LAS hold for a pupil; never a name.")
@click.option("--from-layout", help="The CSV layout of --from (default parnassys).")
@click.option("--to-layout", help="The CSV layout of --to (default parnassys).")
@click.option("--dry-run", is_flag=True, help="Report what would be mapped; change nothing.")
@click.option("--by", required=True, help="Who makes the change (audited).")
@json_option
def rekey_cmd(config_path: Path, old: Path, new: Path, match: str, from_layout: str | None, to_layout: str | None,
              dry_run: bool, by: str, as_json: bool) -> None:
    """A school moves to another LAS: map every dossier's old LAS key to its new key in one
    audited step, so that the first sync on the new LAS makes no new dossier for a matched
    pupil. What cannot be matched is reported, never guessed; fewer matches than [identity]
    rekey_min_share stop with exit 3 and change nothing."""
    with opened(config_path, as_json) as app:
        try:
            data = uses.rekey_school(app, by, old, new, match, dry_run, from_layout, to_layout)  # type: ignore[arg-type]
        except SafetyStop as stop:
            fail(str(stop), as_json, EXIT_SAFETY)
        except ConnectorError as exc:
            fail(str(exc), as_json)

    def human() -> None:
        verb = "would map" if dry_run else "mapped"
        out_console.print(f"{verb} {data['matched']} of {data['dossiers']} dossiers to their new key by {match} "
                          f"({data['already']} already reachable; share {data['share']:.2f})", highlight=False)
        for u in data["unmatched"][:50]:
            out_console.print(f"  not matched: {u['record']}: {u['reason']}", highlight=False)
        if data["new_without_dossier"]:
            out_console.print(f"  {data['new_without_dossier']} pupils of the new export have no dossier yet; the "
                              "next sync makes theirs (or holds them as suspected duplicates)", highlight=False)
    echo(data, as_json, human)
