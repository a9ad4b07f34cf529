"""The port's own lists are held to the port."""

from __future__ import annotations

from connector.ports import DMS_CALLS, DocumentStore


def test_dms_calls_are_the_ports_methods_that_reach_the_dms() -> None:
    methods = {n for n, v in vars(DocumentStore).items() if callable(v) and not n.startswith("_")}
    assert set(DMS_CALLS) == methods - {"group", "check", "close", "init"}
