"""One retry policy for every remote call: bounded attempts, exponential back-off with jitter,
and a server's own ``Retry-After`` (carried as the error's ``delay``) winning within the maximum."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter


def retrying(retry_on: type[BaseException] | tuple[type[BaseException], ...], attempts: int,
             initial: float, maximum: float) -> Retrying:
    backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        delay = getattr(exc, "delay", None)
        if isinstance(delay, (int, float)):
            return min(float(delay), maximum)
        return float(backoff(state))

    return Retrying(retry=retry_if_exception_type(retry_on), stop=stop_after_attempt(attempts), wait=wait,
                    reraise=True)


RETRY_AFTER_MAX = 600.0


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (delay-seconds or an HTTP date), at most ten
    minutes; None when absent or not one of the two."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(text) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)  # a date in the past: now
