from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, text, update

from connector.audit import AuditLog
from connector.state import StateStore, audit_head, audit_log


def make(tmp_path: Path, n: int = 5) -> tuple[StateStore, AuditLog]:
    state = StateStore(f"sqlite:///{tmp_path / 'a.db'}")
    log = AuditLog(state, b"k" * 32)
    for i in range(n):
        log.record("tester", "dossier.created", f"p-{i}", {"school": "99XY", "changed": ["*"]})
    return state, log


def test_intact_log_verifies(tmp_path: Path) -> None:
    _, log = make(tmp_path)
    result = log.verify()
    assert result.ok and result.entries == 5


def test_edited_entry_is_detected(tmp_path: Path) -> None:
    state, log = make(tmp_path)
    with state.transaction() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 3).values(subject="p-other"))
    result = log.verify()
    assert not result.ok and any("entry 3" in p and "edited" in p for p in result.problems)


def test_removed_entry_is_detected(tmp_path: Path) -> None:
    state, log = make(tmp_path)
    with state.transaction() as c:
        c.execute(delete(audit_log).where(audit_log.c.seq == 2))
    assert not log.verify().ok


def test_removed_tail_is_detected(tmp_path: Path) -> None:
    state, log = make(tmp_path)
    with state.transaction() as c:
        c.execute(delete(audit_log).where(audit_log.c.seq >= 4))
    result = log.verify()
    assert not result.ok and any("end" in p for p in result.problems)


def test_reordered_entries_are_detected(tmp_path: Path) -> None:
    state, log = make(tmp_path)
    with state.transaction() as c:
        c.execute(text("UPDATE audit SET seq = 100 WHERE seq = 2"))
        c.execute(text("UPDATE audit SET seq = 2 WHERE seq = 3"))
        c.execute(text("UPDATE audit SET seq = 3 WHERE seq = 100"))
    assert not log.verify().ok


def test_a_chain_recomputed_without_the_key_is_detected(tmp_path: Path) -> None:
    state, log = make(tmp_path)
    forger = AuditLog(state, b"x" * 32)
    with state.transaction() as c:
        c.execute(delete(audit_log))
        c.execute(delete(audit_head))
    for i in range(5):
        forger.record("tester", "dossier.created", f"p-{i}", {})
    assert not log.verify().ok
