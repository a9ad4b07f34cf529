"""One root for every error the connector raises or maps.

    ConnectorError
    ├── ConfigError            the configuration, a mapping or a secret is wrong; nothing ran
    ├── NotFound               no dossier, list, request or user of that key or id
    ├── InvalidState           it is there, but its state does not allow the step
    ├── NotPermitted           the acting user may not do this
    ├── Retriable (mixin)      worth trying again later; may carry a delay (Retry-After)
    ├── SafetyStop             a safety rail stopped the run before any DMS write
    ├── RejectedRecord         one input record is bad; it is skipped and reported, the rest goes on
    ├── SourceError            the whole input cannot be read (hostile or broken file)
    │   ├── SourceUnavailable  the LAS did not answer now (timeout, 5xx, server fault); Retriable
    │   └── SourceRefused      the LAS refused the request (authorisation, unknown school)
    └── StoreError             a document store call failed
        ├── TransientError     worth retrying later (timeouts, 5xx, 429); Retriable
        └── PermanentError     retrying will not help (4xx, schema violations)

Messages never carry names, BSN, onderwijsnummers or response bodies: records are named by
their pseudonymous key (and line), stores by endpoint and status.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error raised by the connector."""


class ConfigError(ConnectorError):
    """Raised when configuration, a mapping or a secret reference is invalid."""


class NotFound(ConnectorError):
    """What was asked for is not there: no dossier for that key, no such list, request or user."""


class InvalidState(ConnectorError):
    """The thing is there but not in a state that allows the step (a closed request, an
    unapproved list)."""


class NotPermitted(ConnectorError):
    """Raised when a person is not who they say (unknown user, wrong secret, disabled) or may not
    do what they ask (a role they lack, approving their own list)."""


class SafetyStop(ConnectorError):
    """Raised when a safety rail stops a run before it changes anything.

    ``rail`` is the rail's stable name, reported as ``stopped_by``.
    """

    def __init__(self, rail: str, message: str) -> None:
        super().__init__(message)
        self.rail = rail


class SourceError(ConnectorError):
    """Raised when a source cannot be read at all (refused, unreadable or truncated input)."""


class RejectedRecord(ConnectorError):
    """One input record is invalid. Names the record (pseudonymous) and the field, never a value."""

    def __init__(self, record: str, field: str, reason: str, pseudonym: str | None = None) -> None:
        super().__init__(f"record {record}: field {field}: {reason}")
        self.record = record
        self.field = field
        self.reason = reason
        self.pseudonym = pseudonym

    def as_dict(self) -> dict[str, str]:
        return {"record": self.record, "field": self.field, "reason": self.reason}


class Retriable(ConnectorError):
    """Worth trying again later. ``delay``: what the other side asked for (its Retry-After), in
    seconds, or None; the retry policy (``connector.retrying``) honours it within its maximum."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class SourceUnavailable(Retriable, SourceError):
    """Raised when a LAS service cannot answer now (timeouts, connection errors, 5xx, a
    ``Server`` SOAP fault): the run is worth repeating later."""


class SourceRefused(SourceError):
    """Raised when a LAS service refuses the request (a ``Client`` SOAP fault, 401/403/404):
    repeating it unchanged will not help; the settings need a person."""


class StoreError(ConnectorError):
    """Base of document-store failures."""


class TransientError(Retriable, StoreError):
    """Raised when an operation may succeed if retried later (timeouts, 5xx, 429)."""


class PermanentError(StoreError):
    """Raised when retrying the same operation cannot succeed (4xx, invalid data)."""


__all__ = [
    "ConfigError", "ConnectorError", "InvalidState", "NotFound", "NotPermitted", "PermanentError",
    "RejectedRecord", "Retriable", "SafetyStop", "SourceError", "SourceRefused", "SourceUnavailable",
    "StoreError", "TransientError"
]
