"""Fuzzing in CI: Hypothesis mutates each parser's shipped sample (bit flips, truncation,
duplicated and reordered elements, deep nesting, huge values, random bytes) and every input
must end in a clean result or a clean error, within 10 s and 300 MB, in a child process with an
address-space limit (``tests/fuzzing.py``). ``bench/fuzz_soak.py`` runs many more."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import OPERATIONS, PARSERS, Worker, mutate, samples

EXAMPLES = int(os.environ.get("LD_FUZZ_EXAMPLES", "40"))
SAMPLES = samples()
ops = st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 2**32), st.integers(0, 2**32)),
               min_size=1, max_size=4)


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker(timeout=10.0)
    yield w
    w.close()


@pytest.mark.parametrize("kind", PARSERS)
def test_every_shipped_sample_parses_cleanly(worker: Worker, kind: str) -> None:
    result = worker.run(kind, SAMPLES[kind])
    assert result.outcome == "ok", result.detail


@pytest.mark.parametrize("kind", PARSERS)
def test_a_mutated_input_ends_in_a_clean_result_or_a_clean_error_in_bounded_time_and_memory(
        worker: Worker, kind: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(ops)
    def check(chosen: list[tuple[str, int, int]]) -> None:
        result = worker.run(kind, mutate(SAMPLES[kind], kind, chosen))
        assert result.outcome in ("ok", "error"), f"{result.outcome}: {result.detail}"

    check()


def test_the_harness_sees_a_crash_a_hang_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounds are real: an input that makes the parser raise outside the error root, loop
    or grow is reported as such, not passed."""
    import tests.fuzzing as fuzzing

    def broken(path: object) -> int:
        text = path.read_bytes()  # type: ignore[attr-defined]
        if text == b"crash":
            raise KeyError("x")
        if text == b"hang":
            while True:
                pass
        if text == b"grow":
            return len(bytearray(400 * 1024 * 1024))
        return 1

    monkeypatch.setitem(fuzzing.PARSE, "config", ("c.toml", broken))
    w = Worker(timeout=2.0)  # forked after the patch: the child parses with the broken parser
    try:
        assert w.run("config", b"crash").outcome == "crash"
        assert w.run("config", b"hang").outcome == "hang"
        assert w.run("config", b"grow").outcome == "memory"
        assert w.run("config", b"fine").outcome == "ok"  # the replaced child goes on
    finally:
        w.close()
