"""What the HTTP adapters share: a port method whose every failure is in the error root, and a
pagination link followed only on the configured origin (the token goes with every request)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from connector.errors import PermanentError

SHAPE_ERRORS = (KeyError, TypeError, AttributeError, IndexError, ValueError)
"""What reading an answer of another shape raises (a field missing, a list for an object, an id
that is not a number)."""


def mapped(method: Callable[..., Any], system: str) -> Callable[..., Any]:
    """``method`` with an answer of another shape than ``system``'s API gives mapped to a
    PermanentError naming the method and the exception class only (never the answer)."""
    name = method.__name__
    message = f"{name}: {system}'s answer has another shape"
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(*args, **kwargs)
            except SHAPE_ERRORS as exc:
                raise PermanentError(f"{message} ({type(exc).__name__})") from None
        return generator

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SHAPE_ERRORS as exc:
            raise PermanentError(f"{message} ({type(exc).__name__})") from None
    return call


def map_methods(cls: type, names: tuple[str, ...], system: str) -> None:
    """Wrap each of ``cls``'s port methods ``names`` with :func:`mapped`."""
    for name in names:
        setattr(cls, name, mapped(getattr(cls, name), system))


def same_origin(base: httpx.URL, what: str, link: Any, exact: bool = False) -> str | None:
    """The path and query of a pagination link below ``base`` (the client's base URL), or None
    at the end. A link that names another host, carries credentials, or leaves the API's path
    is refused: the token goes with every request. Only the path and query are used, always
    against ``base``; ``exact`` also refuses another scheme or port (a DMS behind a proxy may
    write http:// links; Graph never does)."""
    if not link:
        return None
    if not isinstance(link, str):
        raise PermanentError(f"{what}: pagination link is not text")
    target = base.join(link)
    prefix = base.raw_path.decode().split("?")[0].rstrip("/")
    moved = exact and (target.scheme != base.scheme or target.port != base.port)
    if moved or target.host != base.host or target.userinfo or not target.path.startswith(prefix + "/"):
        raise PermanentError(f"{what}: the next page is on another origin or outside the API; not followed")
    return target.raw_path.decode()[len(prefix):]
