"""A school's change of LAS: the old and the new export read once, every old key mapped to its
new key by BSN, onderwijsnummer or ECK-iD in one audited step, or nothing changed when too few
match (README, "Two keys of one child")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import adapters
from connector import rekey
from connector.app.context import App
from connector.errors import SafetyStop
from connector.ports import SourceContext


def rekey_school(app: App, by: str, old: Path, new: Path, match: rekey.Match, dry_run: bool,
                 old_layout: str | None = None, new_layout: str | None = None) -> dict[str, Any]:
    """Map every dossier's old LAS key to its new one. A dry run, or a match below
    ``[identity] rekey_min_share`` (a ``SafetyStop``, exit 3), changes nothing; otherwise the
    new keys become aliases of their dossiers in one transaction with one audit entry."""
    context = SourceContext(pseudonymize=app.identity.pseudonym_of, base=app.loaded.base)
    before = adapters.read_export(context.resolve(old), context, old_layout)
    after = adapters.read_export(context.resolve(new), context, new_layout)
    result = rekey.plan(app.state, app.identity, before.pupils(), after.pupils(), match)
    data = result.as_dict() | {"dry_run": dry_run, "match": match}
    least = app.loaded.config.identity.rekey_min_share
    if result.share < least:
        raise SafetyStop("rekey_share", f"only {len(result.matched) + result.already} of {result.dossiers} dossiers "
                         f"of the old export find their new key by {match} (share {result.share:.2f}; "
                         f"[identity] rekey_min_share is {least}); nothing was changed. Check both exports.")
    if not dry_run and result.matched:
        with app.state.transaction() as conn:
            app.state.add_aliases(conn, [(n, e) for _, n, e in result.matched], "rekey", by)
            app.audit.append(conn, by, "identity.rekeyed", None,
                             {"match": match, "matched": len(result.matched), "already": result.already,
                              "unmatched": len(result.unmatched), "dossiers": result.dossiers,
                              "pairs": data["pairs"]})
    return data
