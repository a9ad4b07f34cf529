from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from adapters.dms.graph import SharePointSettings, SharePointStore
from connector.ports import StoreContext
from tests.graph.harness import Prism, ToFake, control, secret_of, self_signed, settings
from tests.graph.server import GraphServer


@pytest.fixture(scope="session")
def graph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphServer]:
    tls = self_signed(tmp_path_factory.mktemp("graph-tls"))
    server = GraphServer(page_size=5, tls=tls).start()  # small pages: every listing follows nextLink
    server.certificate = tls[0]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prism(graph_server: GraphServer) -> Iterator[Prism]:
    proxy = Prism(graph_server.url)
    control(graph_server, "public", {"url": proxy.url})  # links in answers point at the proxy
    yield proxy
    proxy.stop()


def open_graph_store(server: GraphServer, base_url: str, **changes: object) -> SharePointStore:
    """A store of its own (a fresh folder and index key) on the test tenant."""
    folder = changes.pop("folder", f"Leerlingdossiers/t-{os.urandom(4).hex()}")
    values = settings(server, base_url, str(folder), **changes)
    context = StoreContext(secret=secret_of(), index_key=os.urandom(32))
    return SharePointStore(SharePointSettings.model_validate(values), context, login_transport=ToFake(server))


@pytest.fixture
def graph_store(graph_server: GraphServer, prism: Prism) -> Iterator[SharePointStore]:
    store = open_graph_store(graph_server, prism.url)
    yield store
    store.close()
