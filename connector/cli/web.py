"""``web``: the page for the people who answer for the dossiers."""

from __future__ import annotations

from pathlib import Path

import click

from connector.cli._common import config_option, fail, opened


@click.command("web")
@config_option
@click.option("--listen", help="HOST:PORT to listen on (default: [web] listen, 127.0.0.1:8080).")
def web_cmd(config_path: Path, listen: str | None) -> None:
    """Serve the web page for the people who answer for the dossiers (director, privacy
    officer, administration) on [web] listen, behind the school's reverse proxy for TLS."""
    import uvicorn

    from connector.web.site import build

    with opened(config_path, False) as app:
        where = listen or app.loaded.config.web.listen
        host, _, port = where.rpartition(":")
        if not host or not port.isdigit():
            fail(f"--listen {where!r}: give HOST:PORT", False)
        click.echo(f"leerdossier web on http://{where} (stop with Ctrl-C)", err=True)
        uvicorn.run(build(app), host=host.strip("[]"), port=int(port), proxy_headers=True,
                    forwarded_allow_ips="127.0.0.1", log_level="warning", access_log=False,
                    server_header=False)
