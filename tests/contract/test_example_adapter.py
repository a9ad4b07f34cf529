"""The example adapter of README "Writing an adapter" passes the conformance suite: a store
without a trash and without ACLs takes the base contract alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.testing import DocumentStoreContract
from connector.ports import DocumentStore, StoreContext
from examples.memory_store import MemorySettings, MemoryStore


class TestMemoryStore(DocumentStoreContract):
    def open_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
        store: DocumentStore = MemoryStore(MemorySettings(), StoreContext(index_key=b"k" * 32))
        return store


def test_a_store_without_a_trash_refuses_a_purge() -> None:
    from connector.errors import PermanentError
    from connector.model import DocumentRef

    store = MemoryStore(MemorySettings(), StoreContext(index_key=b"k" * 32))
    with pytest.raises(PermanentError, match="no trash"):
        store.purge(DocumentRef(id="x", dossier_id="y", part="I", doc_class=None, name="x"))
