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
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.dms.mayan import MayanSettings, MayanStore  # noqa: E402
from connector.mapping import load  # noqa: E402
from connector.model import DossierSpec, PupilFacts  # noqa: E402
from connector.ports import StoreContext  # noqa: E402
from connector.retention import load_schedule, tag  # noqa: E402
from tests.integration import mayan_server  # noqa: E402

MAPPING = load("po")
PROPS = {"school_brin": "99XY", "las_key": "X", "geboortedatum": "2015-03-01", "instroomdatum": "2019-08-20",
         "jaargroep": "5", "groep": "Groep 5A", "vestiging": "HL"}


class Counter(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return super().handle_request(request)


def spec(i: int, run: str) -> DossierSpec:
    return DossierSpec(external_id=f"las:99XY:{run}{i}", pseudonym=f"p-{i}", school="99XY", title=f"Leerling {i}",
                       properties=dict(PROPS, las_key=f"{run}{i}"), parts=MAPPING.parts)


def bare_dossier(client: httpx.Client, doc_type: int, types: dict[str, int], i: int) -> None:
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dossiers", type=int, default=40)
    ap.add_argument("--documents", type=int, default=40)
    a = ap.parse_args()
    server = mayan_server.start()
    try:
        transport = Counter()
        ctx = StoreContext(secret=lambda ref: server.token.encode(), index_key=b"bench" * 8)
        store = MayanStore(MayanSettings(url=server.url, token="env:X"), ctx, transport=transport)
        store.init()
        warm = store.create_dossier(spec(0, "warm"))  # creates the metadata types used below
        store.update_dossier(warm, spec(0, "warm"))

        transport.requests = 0
        t = time.perf_counter()
        refs = [store.create_dossier(spec(i, "c")) for i in range(a.dossiers)]
        conn_secs, conn_reqs = time.perf_counter() - t, transport.requests

        headers = {"Authorization": f"Token {server.token}", "Accept": "application/json"}
        raw_transport = Counter()
        with httpx.Client(base_url=server.url + "/api/v4", headers=headers, timeout=30, transport=raw_transport) as c:
            doc_type, types = store._document_type(), store._types()
            t = time.perf_counter()
            for i in range(a.dossiers):
                bare_dossier(c, doc_type, types, i)
            bare_secs, bare_reqs = time.perf_counter() - t, raw_transport.requests

            docs = [store.add_document(refs[i % len(refs)], "II", "rapport", f"r{i}.pdf", io.BytesIO(b"%PDF-1.4 x"), {})
                    for i in range(2 * a.documents)]
            schedule = load_schedule("retention-po", classes=set(MAPPING.classes))
            the_tag = tag(PupilFacts(departure=date(2026, 7, 10)), "rapport", schedule)
            for name in the_tag.metadata():
                store._metadata_type(f"ld_{name}")
            types = store._types()
            transport.requests = 0
            t = time.perf_counter()
            for doc in docs[: a.documents]:
                store.tag(doc, the_tag)
            tag_secs, tag_reqs = time.perf_counter() - t, transport.requests
            raw_transport.requests = 0
            t = time.perf_counter()
            for doc in docs[a.documents:]:
                for name, value in the_tag.metadata().items():
                    c.post(f"/documents/{doc.id}/metadata/", json={"metadata_type_id": types[f"ld_{name}"],
                                                                   "value": value})
            raw_tag_secs, raw_tag_reqs = time.perf_counter() - t, raw_transport.requests
        store.close()
    finally:
        server.stop()

    def line(what: str, n: int, secs: float, reqs: int, bare: float, bare_reqs: int) -> None:
        print(f"{what:<9} connector {n / secs:6.2f}/s ({reqs / n:4.1f} requests each) | bare httpx "
              f"{n / bare:6.2f}/s ({bare_reqs / n:4.1f} requests each) | connector/bare = {bare / secs:.0%}")

    print(f"Mayan {mayan_server.VERSION}, SQLite, eager mode, 1 gunicorn worker, one client; N={a.dossiers} "
          f"dossiers, {a.documents} documents")
    line("dossiers", a.dossiers, conn_secs, conn_reqs, bare_secs, bare_reqs)
    line("tags", a.documents, tag_secs, tag_reqs, raw_tag_secs, raw_tag_reqs)


if __name__ == "__main__":
    main()
