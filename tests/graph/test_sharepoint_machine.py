"""One dossier per child in SharePoint, attacked: random sequences of creates (the pupil's title
changing between them), answers lost or refused at every step of a creation, restarts of the
connector and lookups, run through the real adapter against the Graph test server. After every
step an oracle that reads the test tenant itself (not the adapter) checks that no child has two
dossier folders, that a create that returned left a finished folder, and that a lookup finds
exactly that folder."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.dms.graph import SharePointSettings, SharePointStore
from adapters.testing import dossier_spec
from connector.errors import TransientError
from connector.ports import StoreContext
from tests.graph.harness import ToFake, control, secret_of
from tests.graph.harness import settings as graph_settings
from tests.graph.server import GraphServer

SERVER: GraphServer | None = None
PUPILS = ("LL1", "LL2", "LL3")
FAULTS = {  # where a creation is cut off: the request, which of its kind, and how
    "folder lost": {"method": "POST", "contains": "/children", "lost": True},
    "part lost": {"method": "POST", "contains": "/children", "lost": True, "skip": 1},
    "part refused": {"method": "POST", "contains": "/children", "status": 503, "retry_after": "0", "skip": 2},
    "key refused": {"method": "PATCH", "contains": "/listItem/fields", "status": 503, "retry_after": "0"},
    "key lost": {"method": "PATCH", "contains": "/listItem/fields", "lost": True},
    "rename lost": {"method": "PATCH", "contains": "/items/", "lost": True},
}


def server() -> GraphServer:
    global SERVER
    if SERVER is None:
        SERVER = GraphServer(page_size=3).start()
    return SERVER


class OneDossierPerChild(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.server = server()
        self.folder = f"machine-{os.urandom(4).hex()}"
        self.index_key = os.urandom(32)
        self.store = self.open()
        self.made: dict[str, str] = {}  # pupil -> the folder id its create returned

    def open(self) -> SharePointStore:
        values = graph_settings(self.server, self.server.url, self.folder)
        return SharePointStore(SharePointSettings.model_validate(values),
                               StoreContext(secret=secret_of(), index_key=self.index_key),
                               login_transport=ToFake(self.server))

    def label(self, pupil: str) -> str:
        """The oracle's own keyed label (HMAC-SHA256 of the external id, 20 hex digits)."""
        mac = hmac.new(self.index_key, f"las:99XY:{pupil}".encode(), hashlib.sha256).hexdigest()[:20]
        return f"ld-{mac}"

    @rule(pupil=st.sampled_from(PUPILS), title=st.sampled_from(("Noor van Dijk", "Noor de Vries", "Sem Jansen")),
          fault=st.sampled_from((None, *FAULTS)))
    def create(self, pupil: str, title: str, fault: str | None) -> None:
        if fault is not None:
            control(self.server, "faults", FAULTS[fault])
        try:
            ref = self.store.create_dossier(dossier_spec(f"las:99XY:{pupil}", title=title))
        except TransientError:
            return
        finally:
            control(self.server, "clear_faults", {})
        assert self.made.setdefault(pupil, ref.id) == ref.id, "a second create made another dossier"

    @rule()
    def restart(self) -> None:
        self.store.close()
        self.store = self.open()

    @precondition(lambda self: bool(self.made))
    @rule(data=st.data())
    def find(self, data: Any) -> None:
        pupil = data.draw(st.sampled_from(sorted(self.made)))
        ref = self.store.find_dossier(f"las:99XY:{pupil}")
        assert ref is not None and ref.id == self.made[pupil]

    @invariant()
    def no_child_has_two_folders_and_every_made_one_is_finished(self) -> None:
        tenant = self.server.tenant
        top = next((i for i in tenant.items.values() if i.name == self.folder and i.state == "live"), None)
        if top is None:
            assert not self.made
            return
        folders: dict[str, list[Any]] = {}
        for item in tenant.items.values():
            found = re.search(r"\[(ld-[0-9a-f]{20})\]$", item.name)
            if item.parent == top.id and item.state == "live" and found:
                folders.setdefault(found.group(1), []).append(item)
        for found in folders.values():
            assert len(found) == 1, f"{len(found)} folders for one child"
        for pupil, folder in self.made.items():
            [item] = folders[self.label(pupil)]
            assert item.id == folder and item.fields.get("ldDossier") == self.label(pupil)
            parts = {c.name.split(". ")[0] for c in tenant.items.values() if c.parent == folder and c.state == "live"}
            assert parts == {"I", "II"}

    def teardown(self) -> None:
        self.store.close()


TestOneDossierPerChild = OneDossierPerChild.TestCase
TestOneDossierPerChild.settings = settings(max_examples=60, stateful_step_count=12, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
