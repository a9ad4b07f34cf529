"""Microsoft Graph benchmark: the SharePoint adapter against a bare httpx loop, on the Graph test
server (tests/graph/server.py, no proxy), same run.

    python bench/graph_bench.py [--dossiers 200] [--documents 200]

Counts the HTTP requests each takes, one client at a time, and times both:
  new dossier   connector.find_dossier + create_dossier (a pupil folder, a folder per part, the
                key and properties in the folder's columns) vs the fewest Graph allows: POST the
                folder, POST each part's folder, PATCH the folder's fields
  document      connector.add_document vs PUT the content + PATCH its fields
  tag           connector.tag vs one PATCH of the seven retention fields
Setup paid once per process (the site, the library, its columns, the dossier index) is shown on
its own line and not counted per item. $batch would fold a dossier's part folders into one
round trip, but it is not in the Graph schema the adapter is held to, so neither side uses it.
Prints requests per item, the ratios, and last 'ratio: X' (the worst request ratio). Asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from counting import Counter  # noqa: E402

from adapters.dms.graph import SharePointSettings, SharePointStore  # noqa: E402
from adapters.testing import dossier_spec  # noqa: E402
from adapters.testing.document_store import _tag  # noqa: E402
from connector.mapping import load  # noqa: E402
from connector.ports import StoreContext  # noqa: E402
from tests.graph.harness import ToFake, secret_of, settings  # noqa: E402
from tests.graph.server import GraphServer  # noqa: E402

MAPPING = load("po")


def bare(server: GraphServer, n_dossiers: int, n_docs: int, t: Any) -> dict[str, tuple[int, float]]:
    """The fewest requests Graph allows for the same work, in plain httpx."""
    form = {"grant_type": "client_credentials", "client_id": server.client_id, "client_secret": server.client_secret}
    token = httpx.post(f"{server.url}/login/t/oauth2/v2.0/token", data=form).json()["access_token"]
    counter = Counter()
    client = httpx.Client(base_url=server.url, transport=counter, headers={"Authorization": f"Bearer {token}"})
    drive = f"/drives/{server.tenant.drive_id}"
    top = client.post(f"{drive}/items/root/children", json={"name": "bare", "folder": {}}).json()["id"]
    out: dict[str, tuple[int, float]] = {}
    before, start = counter.requests, time.perf_counter()
    folders = []
    for i in range(n_dossiers):
        folder = client.post(f"{drive}/items/{top}/children", json={"name": f"Leerling {i} [bare-{i}]",
                                                                    "folder": {}}).json()["id"]
        parts = [client.post(f"{drive}/items/{folder}/children", json={"name": f"{p.code}. deel", "folder": {}})
                 .json()["id"] for p in MAPPING.parts]
        client.patch(f"{drive}/items/{folder}/listItem/fields", json={
            "ldDossier": f"bare-{i}", "ldSchool": "99XY", "ldDeparture": "", "ldProperties": json.dumps({"i": i})})
        folders.append(parts[-1])
    out["new dossier"] = (counter.requests - before, time.perf_counter() - start)
    before, start = counter.requests, time.perf_counter()
    docs = []
    for i in range(n_docs):
        parent = folders[i % len(folders)]
        doc = client.put(f"{drive}/items/{parent}:%2Fdoc-{i}.pdf:/content", content=b"%PDF-1.4 document",
                         headers={"Content-Type": "application/octet-stream"}).json()["id"]
        client.patch(f"{drive}/items/{doc}/listItem/fields", json={"ldPart": "II", "ldClass": "rapport"})
        docs.append(doc)
    out["document"] = (counter.requests - before, time.perf_counter() - start)
    fields = {f"ldRetention{k.removeprefix('retention_').capitalize()}": (v == "yes" if k == "retention_blocked" else v)
              for k, v in t.metadata().items()}
    before, start = counter.requests, time.perf_counter()
    for doc in docs:
        client.patch(f"{drive}/items/{doc}/listItem/fields", json=fields)
    out["tag"] = (counter.requests - before, time.perf_counter() - start)
    client.close()
    return out


def connector(server: GraphServer, n_dossiers: int, n_docs: int, t: Any) -> tuple[int, dict[str, tuple[int, float]]]:
    counter = Counter()
    values = settings(server, server.url, "connector")
    store = SharePointStore(SharePointSettings.model_validate(values),
                            StoreContext(secret=secret_of(), index_key=os.urandom(32)), transport=counter,
                            login_transport=ToFake(server))
    store.create_dossier(dossier_spec("las:99XY:warm-up"))  # site, library, columns, dossier index: once
    setup = counter.requests
    out: dict[str, tuple[int, float]] = {}
    before, start = counter.requests, time.perf_counter()
    refs = []
    for i in range(n_dossiers):
        external_id = f"las:99XY:LL{i:06d}"
        if store.find_dossier(external_id) is None:
            refs.append(store.create_dossier(dossier_spec(external_id, title=f"Leerling {i}")))
    out["new dossier"] = (counter.requests - before, time.perf_counter() - start)
    before, start = counter.requests, time.perf_counter()
    docs = [store.add_document(refs[i % len(refs)], "II", "rapport", f"doc-{i}.pdf", io.BytesIO(b"%PDF-1.4 document"),
                               {}) for i in range(n_docs)]
    out["document"] = (counter.requests - before, time.perf_counter() - start)
    before, start = counter.requests, time.perf_counter()
    for doc in docs:
        store.tag(doc, t)
    out["tag"] = (counter.requests - before, time.perf_counter() - start)
    store.close()
    return setup, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dossiers", type=int, default=200)
    parser.add_argument("--documents", type=int, default=200)
    args = parser.parse_args()
    t = _tag()
    figures = []
    for side in (bare, connector):  # each on a server of its own: the test server slows as it fills
        server = GraphServer(page_size=200).start()  # Graph's own page size for children
        try:
            figures.append(side(server, args.dossiers, args.documents, t))
        finally:
            server.stop()
    floor = figures[0]
    setup, mine = figures[1]  # type: ignore[misc]
    counts = {"new dossier": args.dossiers, "document": args.documents, "tag": args.documents}
    print(f"Graph test server, no proxy; {args.dossiers} dossiers ({len(MAPPING.parts)} parts each), "
          f"{args.documents} documents; one client at a time")
    print(f"connector setup once per process: {setup} requests (site, library, columns, dossier index)")
    worst = 0.0
    for what, n in counts.items():
        b_req, b_s = floor[what]
        c_req, c_s = mine[what]
        ratio = c_req / b_req
        worst = max(worst, ratio)
        print(f"{what:12} connector {c_req / n:5.2f} req/item {n / c_s:8.1f}/s   minimum {b_req / n:5.2f} req/item "
              f"{n / b_s:8.1f}/s   requests {ratio:.2f}x  time {c_s / b_s:.2f}x")
    print(f"ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
