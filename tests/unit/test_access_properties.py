"""Properties where access meets the DMS and destruction:
- no one without a right in the computed access list ever gets an ACL entry in the DMS, and
  everyone with a right and an account gets one, whatever the facts and the day;
- an open request's hold blocks every destroy path (destruction lists, their execution,
  purging the trash, removal after a transfer) until the request is closed."""

from __future__ import annotations

import io
import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector import acl, destruction, rights, tagging, transfer
from connector.access import AccessPolicy, access_list
from connector.clock import Clock
from connector.execute import RetryPolicy
from connector.identity import Identity
from connector.mapping import load as load_mapping
from connector.model import DossierRef
from connector.retention import load_schedule
from tests.conftest import APPROVER, MAKER, SECRET, World, make_world, pupil

MAPPING = load_mapping("po")
SCHEDULE = load_schedule("retention-po", classes=set(MAPPING.classes))
POLICY = AccessPolicy(roles={"leerkracht": ("I", "II"), "administratie": ("I",)}, parts=("I", "II"),
                      information_classes=("rapport",))
NO_RETRY = RetryPolicy(attempts=1, initial=0.0, maximum=0.0)
CLOCK = Clock(date(2099, 1, 1))
"""A test clock for approvals (only a list's date later than the clock's day is refused)."""
KEY = Identity(SECRET, "las_key").approval_key

guardian_st = st.fixed_dictionaries({
    "authority": st.sampled_from(["yes", "no", "unknown"]),
    "account": st.booleans(),
    "deceased": st.booleans(),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(birth=st.dates(min_value=date(2006, 1, 1), max_value=date(2020, 12, 31)),
       guardians=st.lists(guardian_st, max_size=3),
       pupil_account=st.booleans(),
       third_party=st.one_of(st.none(), st.tuples(st.sampled_from(["I", "II"]), st.integers(-30, 30))),
       days=st.lists(st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 1, 1)), min_size=1, max_size=3))
def test_no_acl_entry_without_a_right_and_none_missing(birth, guardians, pupil_account, third_party,  # type: ignore[no-untyped-def]
                                                        days) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = make_world(Path(tmp))
        w.sync([pupil("K1", geboortedatum=birth, instroomdatum=birth + timedelta(days=4 * 365))])
        row = w.state.dossier_rows()[0]
        ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
        docs = [w.store.add_document(ref, MAPPING.classes[c][0], c, "d.pdf", io.BytesIO(b"x"), {})
                for c in ("rapport", "inschrijving", "verslag_teambespreking")]
        accounts: dict[str, str] = {}
        with w.state.transaction() as conn:
            for i, g in enumerate(guardians):
                gid = f"g-{i}"
                w.state.add_guardian(conn, row.external_id, gid, None, "2",
                                     None if g["authority"] == "unknown" else g["authority"] == "yes", "t")
                values: dict[str, object] = {"deceased": int(g["deceased"])}
                if g["account"]:
                    values["account"] = accounts[f"guardian:{gid}"] = f"user-{i}"
                w.state.set_guardian(conn, row.external_id, gid, **values)
            if pupil_account:
                w.state.link_account(conn, row.external_id, "pupil", "leerling", "t")
                accounts["pupil"] = "leerling"
            if third_party:
                start = days[0] + timedelta(days=third_party[1])
                w.state.add_grant(conn, row.external_id, "third_party", "inspectie", (third_party[0],), "legal_duty",
                                  start, start + timedelta(days=60), "onderzoek", "t")
        for day in sorted(days):
            acl.apply(w.store, w.state, w.audit, POLICY, [row], day, "t")
            entries, _ = access_list(acl.facts_of(w.state, row)[0], POLICY, day)
            for doc in docs:
                may = set()
                for e in entries:
                    if e.part != doc.part or (e.classes is not None and doc.doc_class not in e.classes):
                        continue
                    if e.kind == "role":
                        may.add(("group", e.principal.removeprefix("role:")))
                    elif e.kind == "third_party":
                        may.add(("user", e.principal.removeprefix("third_party:")))
                    elif e.principal in accounts:
                        may.add(("user", accounts[e.principal]))
                granted = {(g.kind, g.principal) for g in w.store.access(ref).get(doc.part, ())
                           if g.classes is None or doc.doc_class in g.classes}
                assert granted == may, (day, doc.doc_class)


request_st = st.fixed_dictionaries({
    "left": st.dates(min_value=date(2015, 1, 1), max_value=date(2022, 1, 1)),
    "request": st.sampled_from(["none", "open", "closed"]),
})


def _destroyed_or_removed(w: World, ref: DossierRef) -> bool:
    return len(list(w.store.documents(ref))) < 2


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pupils=st.lists(request_st, min_size=1, max_size=4))
def test_an_open_request_blocks_every_destroy_path(pupils: list[dict]) -> None:  # type: ignore[type-arg]
    today = date(2030, 1, 1)  # everything below is due by then
    with tempfile.TemporaryDirectory() as tmp:
        w = make_world(Path(tmp))
        w.sync([pupil(f"K{i}", uitstroomdatum=p["left"], instroomdatum=date(2010, 8, 1),
                      geboortedatum=date(2005, 1, 1)) for i, p in enumerate(pupils)], accept_snapshot=True)
        refs = {}
        for i, p in enumerate(pupils):
            row = w.state.find_pupil([w.identity.pseudonym_of("99XY", f"K{i}")])[0]
            ref = refs[i] = DossierRef(id=row.ref_id or "", external_id=row.external_id)
            for cls in ("rapport", "toetsuitslagen"):
                w.store.add_document(ref, "II", cls, "d.pdf", io.BytesIO(b"x"), {})
            if p["request"] != "none":
                request_id, _due, _hold = rights.open_request(w.state, w.audit, row, "inspection", "moeder",
                                                              today - timedelta(days=3), "t")
                if p["request"] == "closed":
                    rights.close_request(w.state, w.audit, w.state.request(request_id) or {}, "granted", "", "t",
                                         today)
        tagging.refresh(w.store, w.state, w.audit, SCHEDULE, MAPPING, 0, "t", retry=NO_RETRY)
        # every destroy path, one after the other
        list_id, n = destruction.create_list(w.state, w.audit, SCHEDULE, today, MAKER, Clock(today))
        if n:
            destruction.approve(w.state, w.audit, KEY, list_id, APPROVER, "directeur", {}, CLOCK)
            destruction.execute(w.store, w.state, w.audit, SCHEDULE, list_id, Clock(today), 10_000, MAKER, KEY,
                                retry=NO_RETRY)
        destruction.purge(w.store, w.state, w.audit, SCHEDULE, Clock(today + timedelta(days=365)), 0, MAKER, KEY)
        for i in range(len(pupils)):
            row = w.state.find_pupil([w.identity.pseudonym_of("99XY", f"K{i}")])[0]
            transfer.export_part(w.store, w.state, w.audit, MAPPING, row, "II",
                                 transfer.FolderDestination(Path(tmp) / "out"), True, MAKER, SCHEDULE, Clock(today))
        for i, p in enumerate(pupils):
            if p["request"] == "open":
                assert not _destroyed_or_removed(w, refs[i]), "a document under an open request was destroyed"
            else:
                assert _destroyed_or_removed(w, refs[i]), "without a hold the due documents go"
