"""A DMS adapter that injects faults around a real one (for tests): transient errors and
timeouts before a call, answers lost after the call was carried out, and 429s without
Retry-After. Seeded, so a failing case repeats."""

from __future__ import annotations

import random
from typing import Any

from connector.errors import TransientError
from connector.ports import DMS_CALLS

CALLS = tuple(c for c in DMS_CALLS if c not in ("documents", "read"))  # a generator and a plain read left alone


class FaultyStore:
    def __init__(self, inner: Any, rate: float = 0.3, seed: int = 1, always: bool = False) -> None:
        self.inner = inner
        self.rate = rate
        self.always = always
        self.rng = random.Random(seed)
        self.capabilities = inner.capabilities
        self.injected = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in CALLS:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            roll = self.rng.random()
            if self.always or roll < self.rate / 3:
                self.injected += 1
                raise TransientError(f"{name}: timed out")
            if roll < 2 * self.rate / 3:
                self.injected += 1
                raise TransientError(f"{name}: 429 throttled")  # no Retry-After
            result = target(*args, **kwargs)
            if roll < self.rate:
                self.injected += 1
                raise TransientError(f"{name}: connection reset after the call")  # the answer was lost
            return result
        return call
