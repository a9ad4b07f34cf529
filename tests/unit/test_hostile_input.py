"""Regression tests for hostile input, leaks and faults (one per defect, named after it)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.las._edex import refuse_doctype
from connector.errors import SourceError


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: a loop that never ends is a test that fails."""

    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("head", [
    b'<?xml version="1.0"?>\n<!--' + b"x" * 70_000,  # a comment still open where the head ends
    b'<?xml version="1.0"' + b" " * 70_000,  # a declaration still open
    b"<!-- a -->" * 3 + b"<!--",
])
def test_an_unterminated_prolog_is_refused_and_never_loops(head: bytes) -> None:
    with within(5), pytest.raises(SourceError, match="prolog"):
        refuse_doctype(head[:65536], "export.xml")


def test_a_prolog_that_ends_is_read_as_before(tmp_path: Path) -> None:
    with within(5):
        refuse_doctype(b'<?xml version="1.0"?>\n<!-- ok -->\n<?pi x?>\n<EDEX/>', "export.xml")
        with pytest.raises(SourceError, match="DTD"):
            refuse_doctype(b'<?xml version="1.0"?><!-- c --><!DOCTYPE x [<!ENTITY a "b">]><x/>', "export.xml")
