"""Web page benchmark: the overview, a destruction list of some 5,000 items and a pupil's page on a
state of N pupils (10 documents each), served in-process by the real application.

    python bench/web_bench.py [--pupils 100000] [--requests 40]

Prints (asserts nothing): per page the median and p95 server time over the requests, as a ratio
to the floor measured in the same run (the login page: a template and the session, no state),
and the page weight as served (gzip): the HTML and the CSS and JavaScript it loads.
Targets (issue 19): p95 under 200 ms, under 200 KB per page.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import plan_bench  # noqa: E402
import retention_bench  # noqa: E402

SECRET = "bench-user-secret-0123"


def prepare(pupils: int, leavers: float) -> tuple[Path, int, int]:
    """A state of ``pupils`` with 10 documents each, tagged, and one destruction list."""
    from examples.synth import Synth, write

    folder = plan_bench.OUT / f"web-{pupils}"
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    write(folder / "export.xml", Synth(pupils=pupils, duplicates=0, leavers=leavers, schooljaar="2026-2027"))
    plan_bench.child(["--phase", "seed", "--folder", str(folder)])
    retention_bench.child(["--phase", "tags", "--folder", str(folder)])
    listing = retention_bench.child(["--phase", "list", "--folder", str(folder)])
    (folder / "config.toml").write_text(
        '[las]\ntype = "edexml"\npath = "export.xml"\n\n[dms]\ntype = "filesystem"\nroot = "dms"\n\n'
        '[state]\nurl = "sqlite:///state.db"\n\n[identity]\nsecret = "file:install.key"\ncreate_secret = true\n\n'
        '[logging]\nlevel = "WARNING"\n', encoding="utf-8")
    return folder, int(listing["list"]), int(listing["items"])


def timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        r = fn()
        out.append(time.perf_counter() - started)
        assert r.status_code == 200, (r.status_code, r.text[:300])
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pupils", type=int, default=100_000)
    ap.add_argument("--leavers", type=float, default=0.01, help="share of leavers (0.01: about 5,000 items due)")
    ap.add_argument("--requests", type=int, default=40)
    a = ap.parse_args()
    started = time.perf_counter()
    folder, list_id, items = prepare(a.pupils, a.leavers)
    prepared = time.perf_counter() - started

    from starlette.testclient import TestClient

    from connector.app import open_app, users
    from connector.web.site import build

    app = open_app(folder / "config.toml", setup_logging=False)
    if not users.list_users(app):
        users.add_user(app, None, "bench", ["admin"], SECRET)
    pupil = app.state.dossier_rows()[len(app.state.dossier_rows()) // 2].pseudonym
    client = TestClient(build(app), base_url="https://testserver", headers={"accept-encoding": "gzip"})
    page = client.get("/aanmelden").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/aanmelden", data={"naam": "bench", "wachtwoord": SECRET, "csrf": csrf}).status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)  # type: ignore[union-attr]

    pages = {
        "floor: login page": lambda: client.get("/aanmelden"),
        "overview": lambda: client.get("/"),
        f"list of {items} items": lambda: client.get(f"/lijsten/{list_id}"),
        "pupil page": lambda: client.post("/leerling", data={"leerling": pupil, "reden": "bench", "csrf": csrf}),
    }
    def served(method: str, url: str, **kw: Any) -> int:
        """Bytes on the wire (compressed as served), not the decompressed body."""
        with client.stream(method, url, **kw) as r:
            return sum(len(chunk) for chunk in r.iter_raw())

    static = {asset: served("GET", asset) for asset in (
        "/static/vendor/design-tokens.css", "/static/vendor/utrecht-components.css", "/static/leerdossier.css",
        "/static/vendor/htmx.min.js")}
    wire = {"floor: login page": lambda: served("GET", "/aanmelden"), "overview": lambda: served("GET", "/"),
            f"list of {items} items": lambda: served("GET", f"/lijsten/{list_id}"),
            "pupil page": lambda: served("POST", "/leerling", data={"leerling": pupil, "reden": "bench", "csrf": csrf})}
    print(f"N={a.pupils} pupils, {a.pupils * 10} documents; list {list_id} of {items} items (shown 250 a page); "
          f"prepared in {prepared:.0f} s; {a.requests} requests per page, in-process (no network)")
    floor = None
    for name, fn in pages.items():
        fn()  # warm
        times = timed(fn, a.requests)
        med, top = statistics.median(times), p95(times)
        if floor is None:
            floor = med
        html = wire[name]()
        weight = html + sum(static.values())
        print(f"{name:28} median {med * 1000:7.1f} ms  p95 {top * 1000:7.1f} ms  = {med / floor:6.1f}x floor   "
              f"page {html / 1024:6.1f} KB + assets {sum(static.values()) / 1024:5.1f} KB = {weight / 1024:6.1f} KB "
              "(gzip)")
    app.state.close()


if __name__ == "__main__":
    main()
