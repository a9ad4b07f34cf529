"""The web page as one Starlette application: the routes of ``pages`` and ``oidc`` over the
frame of ``server`` (session, CSRF, headers, the refusal and login pages). Kept apart from
``server`` so that the pages import the frame and the frame imports no page."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from connector.app import App
from connector.web import oidc, pages
from connector.web.server import (
    COOKIE,
    HERE,
    MAX_SESSION_SECONDS,
    CsrfMiddleware,
    HeadersMiddleware,
    LoginNeeded,
    Refused,
    Web,
)

__all__ = ["build"]


def build(app: App, clock: Callable[[], float] = time.time) -> Starlette:
    """The Starlette application for one school's opened ``App``."""
    web = Web(app, clock)
    routes = [*pages.routes(web), *oidc.routes(web),
              Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")]

    async def login_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginNeeded)
        target = "/aanmelden?terug=" + quote(exc.back, safe="/")
        if exc.expired:
            target += "&verlopen=1"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return web.render(request, "refused.html", status=exc.status, message=exc.message)

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        LoginNeeded: login_needed, Refused: refused}
    return Starlette(
        routes=routes,
        exception_handlers=handlers,
        middleware=[
            Middleware(HeadersMiddleware),
            Middleware(GZipMiddleware, minimum_size=1000),
            Middleware(SessionMiddleware, secret_key=app.identity.session_key.hex(), session_cookie=COOKIE,
                       max_age=MAX_SESSION_SECONDS, same_site="lax", https_only=web.secure),
            Middleware(CsrfMiddleware),
        ],
    )


