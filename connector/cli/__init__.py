"""The ``leerdossier`` command: a thin front end over the application layer (``connector.app``).

Each command group lives in a module of its own and is imported only when it is used, so that
``leerdossier --help`` starts without loading the state store, the PDF writer or an adapter.

Exit codes: 0 ok; 1 error (bad config, unreadable input, failed DMS operations); 2 a usage error;
3 stopped by a safety rail (nothing was changed).
"""

from __future__ import annotations

import importlib
import os

import click

COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (module under connector.cli, attribute, the first paragraph of its help)
    "access": ("access", "access_group",
               "Who may see what, computed from the pupil's facts and the [access] configuration."),
    "audit": ("sync", "audit_group",
               "The hash-chained audit log."),
    "destruction": ("destruction", "destruction_group",
               "Destroy what is due: a list, an approval by a named person, execution, a "
               "certificate."),
    "dms": ("dms", "dms_group",
               "The document-management system."),
    "doctor": ("sync", "doctor_cmd",
               "Check the config, paths, secrets, file modes, the source and the DMS. A check: it "
               "changes nothing, here or in the DMS (no key, state store or DMS folder is made; the "
               "first sync does)."),
    "document": ("retention", "document_group",
               "Documents in a pupil's dossier."),
    "duplicates": ("sync", "duplicates_group",
               "Suspected duplicate pupils (two LAS keys that look like one child)."),
    "export": ("access", "export_dossier",
               "Write what REQUESTER may see of pupil KEY's dossier to a ZIP with an index "
               "(documents holding other people's data or without a class are listed as withheld); "
               "the export is logged and removed after [access] export_days."),
    "fleet": ("fleet", "fleet_group",
               "Many schools, several worker processes on one or more machines, one PostgreSQL "
               "(README, \"Scaling out\")."),
    "grant": ("access", "grant_group",
               "Access by consent or legal duty, recorded by a person, per part, with an end date."),
    "guardian": ("access", "guardian_group",
               "Parents and carers: from the LAS (OSO, CSV) or recorded here; authority and DMS "
               "account."),
    "hold": ("retention", "hold_group",
               "Legal holds: a complaint, dispute or open request stops every destruction path."),
    "identity": ("identity", "identity_group",
               "The keys a school's dossiers are found by."),
    "okr": ("transfer", "okr_group",
               "The onderwijskundig rapport: record that it was sent, check the parents were "
               "informed."),
    "plan": ("sync", "plan_cmd",
               "Show what a sync would do, without doing it."),
    "pupil": ("retention", "pupil_group",
               "Facts about a pupil recorded by a named person (retention clocks, the pupil's "
               "account)."),
    "report": ("access", "report_group",
               "Reports for the school: are the dossiers complete and current, the processing "
               "register, who can see what."),
    "request": ("access", "request_group",
               "Parents' and pupils' requests: inspection, copy, correction, erasure; deadlines and "
               "holds."),
    "run": ("service", "run_cmd",
               "Run as a service: sync (and the configured jobs) on the schedule in [service], with "
               "/healthz and /metrics on a loopback address. SIGTERM or SIGINT stops it cleanly."),
    "schedule": ("dms", "schedule_group",
               "The retention schedule in force."),
    "status": ("sync", "status_cmd",
               "Journal rows pending, failed and done; documents, lists and holds; the last runs."),
    "sync": ("sync", "sync_cmd",
               "Make every pupil's dossier current in the DMS."),
    "tags": ("retention", "tags_group",
               "Retention tags on every document."),
    "transfer": ("transfer", "transfer_cmd",
               "Export a dossier part and verify every copy; removal at the source goes through a "
               "transfer list, approved and executed like any destruction list."),
    "user": ("users", "user_group",
               "The people who act on dossiers (lists, approvals, execution, holds, facts) and their"
               " roles."),
    "web": ("web", "web_cmd",
               "Serve the web page for the people who answer for the dossiers (director, privacy "
               "officer, administration) on [web] listen, behind the school's reverse proxy for TLS."),
}


class LazyGroup(click.Group):
    """The main group: a command's module is imported when the command runs or shows its help;
    the list in ``--help`` comes from ``COMMANDS`` (a test holds it to each command's own help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _help = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(f"connector.cli.{module}"), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        width = formatter.width - 6 - max(len(n) for n in COMMANDS)
        rows = [(name, click.Command(name, help=COMMANDS[name][2]).get_short_help_str(width))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leerdossier-connector")
def main() -> None:
    """Keep one pupil dossier per pupil in the school's DMS, from the LAS."""
    # private by default: whatever the umask of the shell or unit, every file the connector
    # makes (state, DMS store, lists, certificates, exports) is 0600 and every folder 0700
    os.umask(0o077)
