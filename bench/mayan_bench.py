"""Mayan benchmark: the connector against a bare httpx loop, same server, same run.

    python bench/mayan_bench.py [--dossiers 40] [--documents 40]

Starts a Mayan EDMS (tests/integration/mayan_server.py), then measures, one client at a time:
  dossiers/s  connector.create_dossier (searches first, verifies, cabinet + parts + dossier card
              with its metadata) vs the bare minimum of writes for the same dossier in httpx
  tags/s      connector.tag on uploaded documents (reads current metadata, writes what differs)
              vs bare httpx POSTs of the same seven metadata values
Prints the rates, the requests per item, and the ratio. Asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from counting import Counter  # noqa: E402

from adapters.dms.mayan import MayanSettings, MayanStore  # noqa: E402
from connector.mapping import load  # noqa: E402
from connector.model import DossierSpec, PupilFacts  # noqa: E402
from connector.ports import StoreContext  # noqa: E402
from connector.retention import load_schedule, tag  # noqa: E402
from tests.integration import mayan_server  # noqa: E402

MAPPING = load("po")
PROPS = {"school_brin": "99XY", "las_key": "X", "geboortedatum": "2015-03-01", "instroomdatum": "2019-08-20",
         "jaargroep": "5", "groep": "Groep 5A", "vestiging": "HL"}


def spec(i: int, run: str) -> DossierSpec:
    return DossierSpec(external_id=f"las:99XY:{run}{i}", pseudonym=f"p-{i}", school="99XY", title=f"Leerling {i}",
                       properties=dict(PROPS, las_key=f"{run}{i}"), parts=MAPPING.parts)


def bare_dossier(client: httpx.Client, doc_type: int, types: dict[str, int], i: int | str) -> None:
    root = client.post("/cabinets/", json={"label": f"Bare {i} [bare-{i}]", "parent": None}).json()["id"]
    for part in MAPPING.parts:
        client.post("/cabinets/", json={"label": f"{part.code}. {part.name}", "parent": root})
    card = client.post("/documents/upload/", data={"document_type_id": str(doc_type), "label": "dossierkaart"},
                       files={"file": ("dossierkaart", b"Leerlingdossier (dossierkaart)\n")}).json()["id"]
    values = {"ld_dossier": f"bare-{i}", "ld_card": "yes"} | {f"ld_p_{k}": v for k, v in PROPS.items()}
    values["ld_p_school"] = "99XY"
    for name, value in values.items():
        client.post(f"/documents/{card}/metadata/", json={"metadata_type_id": types[name], "value": value})
    client.post(f"/cabinets/{root}/documents/add/", json={"document": card})


def rate(n: int, work: Any, concurrency: int) -> float:
    """Items per second for ``work(i)`` over n items with this many in flight."""
    t = time.perf_counter()
    if concurrency == 1:
        for i in range(n):
            work(i)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(work, range(n)))
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dossiers", type=int, default=30, help="per measurement")
    ap.add_argument("--documents", type=int, default=30, help="per measurement")
    ap.add_argument("--concurrency", default="1,2,4", help="levels to try")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    server = mayan_server.start()
    rows: list[tuple[int, float, float, float, float]] = []
    try:
        transport = Counter()
        ctx = StoreContext(secret=lambda ref: server.token.encode(), index_key=b"bench" * 8)
        store = MayanStore(MayanSettings(url=server.url, token="env:X"), ctx, transport=transport)
        store.init()
        warm = store.create_dossier(spec(0, "warm"))  # creates the metadata types used below
        schedule = load_schedule("retention-po", classes=set(MAPPING.classes))
        the_tag = tag(PupilFacts(departure=date(2026, 7, 10)), "rapport", schedule)
        for name in the_tag.metadata():
            store._metadata_type(f"ld_{name}")
        doc_type, types = store._document_type(), store._types()
        headers = {"Authorization": f"Token {server.token}", "Accept": "application/json"}
        raw_transport = Counter()
        with httpx.Client(base_url=server.url + "/api/v4", headers=headers, timeout=60,
                          transport=raw_transport) as c:
            for level in levels:
                run = f"c{level}-"
                transport.requests = raw_transport.requests = 0
                conn_d = rate(a.dossiers, lambda i, run=run: store.create_dossier(spec(i, run)), level)
                conn_reqs = transport.requests / a.dossiers
                bare_d = rate(a.dossiers, lambda i, run=run: bare_dossier(c, doc_type, types, f"{run}{i}"), level)
                bare_reqs = raw_transport.requests / a.dossiers
                docs = [store.add_document(warm, "II", "rapport", f"r{i}.pdf", io.BytesIO(b"%PDF-1.4 x"), {})
                        for i in range(2 * a.documents)]
                conn_t = rate(a.documents, lambda i, docs=docs: store.tag(docs[i], the_tag), level)

                def bare_tag(i: int, docs: list[Any] = docs) -> None:
                    for name, value in the_tag.metadata().items():
                        c.post(f"/documents/{docs[a.documents + i].id}/metadata/",
                               json={"metadata_type_id": types[f"ld_{name}"], "value": value})

                bare_t = rate(a.documents, bare_tag, level)
                rows.append((level, conn_d, bare_d, conn_t, bare_t))
                print(f"concurrency {level}: dossiers connector {conn_d:5.2f}/s ({conn_reqs:.0f} requests each) "
                      f"bare {bare_d:5.2f}/s ({bare_reqs:.0f} requests each) | tags connector {conn_t:5.2f}/s "
                      f"bare {bare_t:5.2f}/s", flush=True)
        store.close()
    finally:
        server.stop()
    # where scaling stops: the lowest level within 10 % of the best bare dossier rate
    best = max(r[2] for r in rows)
    chosen = next(r for r in rows if r[2] >= 0.9 * best)
    level, conn_d, bare_d, conn_t, bare_t = chosen
    print(f"Mayan {mayan_server.VERSION}, SQLite, eager mode, 1 gunicorn worker; bare httpx makes only the "
          f"writes a dossier needs (no searches), so it is the physical limit")
    print(f"scaling stops at concurrency {level} (bare rate within 10 % of the best); at it: dossiers "
          f"{conn_d / bare_d:.2f}x, tags {conn_t / bare_t:.2f}x of bare")
    print(f"ratio: {min(conn_d / bare_d, conn_t / bare_t):.2f}")


if __name__ == "__main__":
    main()
