"""What the HTTP adapters' error-mapping tests share: the leaves of httpx's exception tree, and
the check that a redirect is refused, never followed with the credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connector.errors import PermanentError


def leaves(cls: type) -> set[type]:
    """The exception classes below ``cls`` that have none below them."""
    subs = cls.__subclasses__()
    return {cls} if not subs else set().union(*(leaves(s) for s in subs))


def redirect_is_refused(mocked: Callable[[Any], Any], call: Callable[[Any], Any], location: str, host: str) -> None:
    """A store built by ``mocked(handler)`` whose every answer is a 307 to ``location`` raises a
    PermanentError on ``call(store)`` and asks nothing of any host but ``host``."""
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(307, headers={"Location": location})

    store = mocked(handler)
    with pytest.raises(PermanentError, match="redirect; not followed"):
        call(store)
    assert set(hosts) == {host}
