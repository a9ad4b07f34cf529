"""Signing in through the school's identity provider (OpenID Connect: Microsoft Entra ID,
Entree Federatie), with Authlib: the authorization code flow, its state and nonce kept in the
session, the ID token checked against the provider's keys, issuer, audience and expiry. The
claim ``[web.oidc] claim`` names a user of this install, whose roles apply; the provider
decides who someone is, this install what they may do."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from connector.app import read_secret_ref
from connector.app import users as user_uses
from connector.web.server import Refused, Web, address, form

log = logging.getLogger("leerdossier.web")
CALLBACK = "/aanmelden/oidc/terug"


def routes(web: Web) -> list[Route]:
    """The two routes of the flow, or none when ``[web.oidc]`` is not configured."""
    cfg = web.app.loaded.config.web.oidc
    if cfg is None:
        return []
    from authlib.integrations.starlette_client import OAuth, OAuthError

    secret = read_secret_ref(web.app.loaded, cfg.client_secret, ["web", "oidc", "client_secret"])
    oauth = OAuth()
    client: Any = oauth.register("school", server_metadata_url=cfg.discovery_url, client_id=cfg.client_id,
                                 client_secret=secret, client_kwargs={"scope": "openid profile"})

    async def start(request: Request) -> Response:
        back = str((await form(request)).get("terug", "/"))
        request.session["oidc_back"] = back if back.startswith("/") and not back.startswith("//") else "/"
        redirect_uri = cfg.redirect_uri or str(request.url_for("oidc_callback"))
        try:
            response: Response = await client.authorize_redirect(request, redirect_uri)
        except (OAuthError, OSError, ValueError) as exc:
            log.warning("identity provider unreachable", extra={"error": exc.__class__.__name__})
            raise Refused("De aanmeldvoorziening van de school is nu niet bereikbaar. Probeer het later "
                          "opnieuw.", 503) from None
        return response

    async def callback(request: Request) -> Response:
        peer = address(request)
        back = str(request.session.pop("oidc_back", "/"))
        try:
            token = await client.authorize_access_token(request)
        except (OAuthError, OSError, ValueError) as exc:
            log.warning("identity provider login refused", extra={"error": exc.__class__.__name__})
            await web.call(user_uses.failed_login, web.app, None, peer, "oidc")
            raise Refused("Aanmelden via de school is niet gelukt.", 401) from None
        claims = dict(token.get("userinfo") or {})  # from the ID token, checked by Authlib
        if cfg.claim not in claims:  # a provider may give profile claims only at its userinfo endpoint
            try:
                more = dict(await client.userinfo(token=token))
            except (OAuthError, OSError, ValueError) as exc:
                log.warning("identity provider userinfo failed", extra={"error": exc.__class__.__name__})
                more = {}
            if more.get("sub") == claims.get("sub"):  # only what is said of the same person
                claims = more | claims
        name = claims.get(cfg.claim)
        try:
            user = await web.call(user_uses.log_in_oidc, web.app, str(name).lower() if name else None, peer,
                                  str(claims.get("iss", "")))
        except Refused:
            raise Refused("U bent bij de school aangemeld, maar u bent geen gebruiker van deze pagina. De "
                          "beheerder voegt u toe.", 403) from None
        web.start_session(request, user)
        return RedirectResponse(back, status_code=303)

    return [Route("/aanmelden/oidc", start, methods=["POST"]),
            Route(CALLBACK, callback, methods=["GET"], name="oidc_callback")]
