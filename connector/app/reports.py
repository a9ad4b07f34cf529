"""The reports a school reads: are its dossiers complete and current?"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from connector import completeness, render
from connector.app.context import App


def completeness_report(app: App, today: date, html_file: Path | None = None) -> dict[str, Any]:
    """Per school, the dossiers that miss what the rules require (counts first, then the
    records by pseudonym); ``html_file`` also writes it as an HTML page."""
    cfg = app.loaded.config
    result = completeness.report(app.state, cfg.okr.okr_class, cfg.okr.evidence_class, today,
                                 cfg.access.request_warn_days)
    if html_file is not None:
        render.write_completeness(result, html_file)
    return result
