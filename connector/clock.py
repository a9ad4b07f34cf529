"""The clock that irreversible acts run on.

Executing a destruction list, purging the trash and removing documents at the source after a
transfer act on the real date, never on a date a person typed. ``--today`` remains for
previews (``destruction list create``). An install marked for tests or demos
(``[testing] simulated_clock = true``) may run those acts on a simulated date; then every
certificate and audit entry they produce says so (``SIMULATED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from connector.errors import ConfigError

SIMULATED = "gesimuleerde datum: geen geldige verklaring"
"""What every certificate and audit entry made on a simulated clock says."""


@dataclass(frozen=True)
class Clock:
    """The real date, or, on an install marked as test or demo, a simulated one."""

    simulated: date | None = None

    def today(self) -> date:
        return self.simulated if self.simulated is not None else date.today()

    @property
    def is_simulated(self) -> bool:
        return self.simulated is not None

    def stamp(self) -> dict[str, str]:
        """What an audit entry or certificate made on this clock carries about it."""
        if self.simulated is None:
            return {}
        return {"clock": f"{SIMULATED} ({self.simulated.isoformat()})"}


REAL = Clock()


def for_irreversible(requested: date | None, simulated_allowed: bool) -> Clock:
    """The clock for an irreversible act: the real one, unless a date was asked for on an
    install marked ``[testing] simulated_clock``."""
    if requested is None or (requested == date.today() and not simulated_allowed):
        return REAL
    if not simulated_allowed:
        raise ConfigError("--today is for previews only: executing, purging and removing at the source act on "
                          "the real date. (An install for tests or demos may set [testing] simulated_clock = true; "
                          "what it produces then says it is not a valid record.)")
    return Clock(requested)
