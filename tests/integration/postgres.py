"""A fresh PostgreSQL database per test, on the server the machine runs (``.ci/run`` starts it
when it is not running). Tests that need it are marked ``postgres`` and fail, never skip, when
the server cannot be reached."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

ADMIN_URL = os.environ.get("LEERDOSSIER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"ld_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'create database "{name}"'))
    except Exception as exc:  # any failure to reach the server fails the test
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL.split('@')[-1]}: {exc.__class__.__name__}")
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
