"""The web page's frame: the Starlette application, its session, the login, the CSRF check on
every form, the headers on every answer, and the roles checked on the server for every page.

- **Sessions** live in a cookie signed with a key derived from the install key (no secret of
  its own to manage): HttpOnly, SameSite=Lax, Secure unless ``[web] secure_cookies = false``.
  It holds the user's name, when they logged in, when they were last seen and the CSRF token;
  nothing of a pupil. A session unused for ``[web] idle_minutes`` ends, and the user is looked
  up again on every request, so a user disabled in the meantime is out at once.
- **CSRF**: every POST carries the session's token (the form field ``csrf``, the header
  ``X-CSRF-Token`` htmx sends, or for a form with a file the ``csrf`` of its action);
  ``CsrfMiddleware`` refuses any POST without it, before any page code runs, so no form can
  forget it.
- **Logins** are rate-limited per user name and per address (``[web] max_login_failures``
  within ``lockout_minutes``), and every login, failed login and logout is in the audit log.
- **Roles**: each page names the action it needs (``view.lists``, ``list.approve``, ...);
  the server refuses it to a role without it, whatever a page shows or hides.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.app import App, User
from connector.app import users as user_uses
from connector.errors import ConnectorError, NotPermitted
from connector.web import text

log = logging.getLogger("leerdossier.web")
HERE = Path(__file__).parent
COOKIE = "leerdossier_sessie"
MAX_BODY = 10 * 1024 * 1024
"""The largest form the page takes (a parent's written statement as a PDF or a scan)."""
MAX_SESSION_SECONDS = 12 * 3600
"""However active, a session ends after twelve hours (a working day)."""

SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class LoginNeeded(Exception):
    """No (or no longer a) session: to the login page, then back."""

    def __init__(self, back: str, expired: bool = False) -> None:
        super().__init__(back)
        self.back = back
        self.expired = expired


class Refused(Exception):
    """The server refuses the page or the action (a role without it, a refused use case)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class LoginLimiter:
    """Failed logins per user name and per address within a window; at the limit, logins from
    that name or address pause until the oldest failure leaves the window."""

    limit: int
    window: float
    clock: Callable[[], float]
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        now = self.clock()
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def wait(self, name: str, address: str) -> float:
        """Seconds until a login for ``name`` from ``address`` is tried again (0: now)."""
        worst = 0.0
        for key in (f"user:{name}", f"addr:{address}"):
            q = self._recent(key)
            if len(q) >= self.limit:
                worst = max(worst, self.window - (self.clock() - q[0]))
        return worst

    def failed(self, name: str, address: str) -> None:
        for key in (f"user:{name}", f"addr:{address}"):
            self._recent(key).append(self.clock())

    def succeeded(self, name: str) -> None:
        self._failures.pop(f"user:{name}", None)


class CsrfMiddleware:
    """Refuses every POST whose CSRF token (form field ``csrf`` or header ``X-CSRF-Token``)
    is not the session's, before the page code runs. The body is read here and handed on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await _refuse(scope, receive, send, 413, "Het formulier is te groot.")
                return
        expected = str(scope.get("session", {}).get("csrf", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-csrf-token", "")
        kind = headers.get("content-type", "")
        if not given and kind.startswith("application/x-www-form-urlencoded"):
            given = (parse_qs(body.decode("utf-8", "replace")).get("csrf") or [""])[0]
        elif not given and kind.startswith("multipart/form-data"):
            # a form with a file carries the token in its action (read here without parsing the upload)
            given = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("csrf") or [""])[0]
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            await _refuse(scope, receive, send, 403, "Het formulier is verlopen of komt niet van deze pagina. "
                                                    "Laad de pagina opnieuw en probeer het nog eens.")
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    page = f"<!doctype html><html lang=\"nl\"><title>Geweigerd</title><p>{message}</p></html>"
    await HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)(scope, receive, send)


class HeadersMiddleware:
    """The security headers on every answer; pages (which may show a pupil's data) are never
    cached, static files may be."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.decode("latin-1").lower() for k, _ in headers}
                for k, v in SECURITY_HEADERS.items():
                    if k not in present:
                        headers.append((k.encode(), v.encode()))
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass
class Execution:
    """A list being carried out in the background, and how it ended."""

    by: str
    started: float
    done: bool = False
    report: dict[str, Any] | None = None
    error: str | None = None


class Executions:
    """One execution per list at a time, each in a thread of its own, so that a list of hundreds
    of documents neither holds a request open nor is cut off by the reverse proxy's timeout. The
    execution itself is the use case's (journalled: a process stopped halfway leaves rows the
    next execution finishes)."""

    def __init__(self) -> None:
        self._jobs: dict[int, Execution] = {}
        self._lock = threading.Lock()

    def get(self, list_id: int) -> Execution | None:
        with self._lock:
            return self._jobs.get(list_id)

    def start(self, list_id: int, by: str, run: Callable[[], dict[str, Any]]) -> bool:
        """Start ``run`` for the list unless one runs already (False)."""
        with self._lock:
            job = self._jobs.get(list_id)
            if job is not None and not job.done:
                return False
            job = self._jobs[list_id] = Execution(by=by, started=time.time())

        def work() -> None:
            try:
                job.report = run()
            except ConnectorError as exc:
                job.error = text.refusal(exc)
            except Exception as exc:  # shown as a failure; the journal keeps what was done
                log.error("execution failed", extra={"list": list_id, "error": exc.__class__.__name__})
                job.error = "De uitvoering is afgebroken door een fout; wat al verwijderd is, staat in het logboek."
            finally:
                job.done = True

        threading.Thread(target=work, name=f"leerdossier-list-{list_id}", daemon=True).start()
        return True


class Web:
    """One school's web page over its opened ``App``: the session rules and the templates."""

    def __init__(self, app: App, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.clock = clock
        cfg = app.loaded.config.web
        self.idle = cfg.idle_minutes * 60
        self.secure = cfg.secure_cookies
        self.limiter = LoginLimiter(cfg.max_login_failures, cfg.lockout_minutes * 60.0, clock)
        self.executions = Executions()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(text=text, simulated=app.loaded.config.testing.simulated_clock,
                                          oidc=cfg.oidc, school=lambda code: app.school_names([str(code)])[str(code)]
                                          if code else "-")

    def today(self) -> date | None:
        """The date the page acts on: None (the real date) on a school's install; on an install
        marked ``[testing] simulated_clock``, the date of the page's clock, which every list
        and certificate it makes then marks as simulated."""
        if not self.app.loaded.config.testing.simulated_clock:
            return None
        return datetime.fromtimestamp(self.clock(), UTC).date()

    # -- sessions ---------------------------------------------------------------------------
    def csrf(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return str(token)

    def user(self, request: Request, action: str | None = None) -> User:
        """The session's user, allowed ``action``; otherwise ``LoginNeeded`` or ``Refused``."""
        name = request.session.get("user")
        back = request.url.path
        if not name:
            raise LoginNeeded(back)
        now = self.clock()
        if now - float(request.session.get("seen", 0)) > self.idle or \
                now - float(request.session.get("since", 0)) > MAX_SESSION_SECONDS:
            user = user_uses.current_user(self.app, str(name))
            if user is not None:
                user_uses.log_out(self.app, user, address(request), "idle")
            request.session.clear()
            raise LoginNeeded(back, expired=True)
        user = user_uses.current_user(self.app, str(name))
        if user is None:
            request.session.clear()
            raise LoginNeeded(back)
        request.session["seen"] = now
        if action is not None and not user.may(action):
            raise Refused("U heeft niet de rol die voor deze pagina nodig is.")
        return user

    def start_session(self, request: Request, user: User) -> None:
        request.session.clear()  # nothing of the anonymous session survives the login
        now = self.clock()
        request.session.update({"user": user.name, "since": now, "seen": now, "csrf": secrets.token_urlsafe(32)})

    # -- answers ----------------------------------------------------------------------------
    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        name = request.session.get("user")
        user = user_uses.current_user(self.app, str(name)) if name else None
        response: HTMLResponse = self.templates.TemplateResponse(
            request, template, {"csrf": self.csrf(request), "me": user, **context}, status_code=status)
        return response

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a use case (blocking: the state store, the DMS) off the event loop; its refusal
        becomes a Dutch ``Refused``."""
        from starlette.concurrency import run_in_threadpool

        try:
            return await run_in_threadpool(fn, *args, **kwargs)
        except ConnectorError as exc:
            log.warning("refused", extra={"error": exc.__class__.__name__})
            raise Refused(text.refusal(exc), 403 if isinstance(exc, NotPermitted) else 409) from None


def address(request: Request) -> str:
    """The peer's address (behind the reverse proxy: uvicorn's --proxy-headers gives the client's)."""
    return request.client.host if request.client else "-"


async def form(request: Request) -> FormData:
    """The posted form (its CSRF token was checked by ``CsrfMiddleware``)."""
    return await request.form()


__all__ = ["COOKIE", "MAX_SESSION_SECONDS", "CsrfMiddleware", "HeadersMiddleware", "LoginNeeded", "Refused",
           "Web", "address", "form"]
