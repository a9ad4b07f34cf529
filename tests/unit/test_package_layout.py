"""The package's shape, as the application-layer work left it: no module of the core over ~600
lines, every public call of the application layer, the state store's parts and the ports says
what it does, and each part of the state store stands on the shared ``Database`` alone (mypy
then refuses a part that reaches into another part's methods)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import connector
from connector import state as state_pkg
from connector.state import Database, StateStore

ROOT = Path(connector.__file__).parent
CORE = sorted(p for p in ROOT.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_of_the_core_is_over_600_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 600


DOCUMENTED = sorted([*(ROOT / "app").glob("*.py"), *(ROOT / "state").glob("*.py"), ROOT / "ports.py"])


@pytest.mark.parametrize("path", DOCUMENTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_public_call_says_what_it_does(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {id(inner) for outer in ast.walk(tree) if isinstance(outer, ast.FunctionDef)
              for inner in ast.walk(outer) if inner is not outer}
    undocumented = [f"{path.name}:{node.lineno} {node.name}" for node in ast.walk(tree)
                    if isinstance(node, ast.FunctionDef) and id(node) not in nested
                    and not node.name.startswith("_") and not ast.get_docstring(node)]
    assert undocumented == []


def test_each_part_of_the_state_store_stands_on_the_database_alone() -> None:
    parts = [base for base in StateStore.__bases__]
    assert len(parts) >= 7
    for part in parts:
        assert part.__bases__ == (Database,), part
        assert inspect.getmodule(part) is not state_pkg, part  # a module of its own
    names = [set(vars(part)) - {"__module__", "__doc__", "__qualname__", "__firstlineno__",
                                 "__static_attributes__"} for part in parts]
    for i, mine in enumerate(names):  # no part overrides another's method: one owner per call
        for other in names[i + 1:]:
            assert not (mine & other), mine & other
