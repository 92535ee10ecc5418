"""nsrun/core is pure: no module in it imports the world (processes, clock, kernel, host)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "nsrun" / "core"
FORBIDDEN = ("os", "subprocess", "time", "psutil", "pyroute2", "socket", "random", "uuid",
             "nsrun._native", "nsrun.host", "nsrun.runtime")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden_in(names: set[str]) -> list[str]:
    return sorted(n for n in names
                  if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))


MODULES = sorted(CORE.glob("*.py"))


def test_core_has_modules():
    assert {"spec.py", "validate.py", "quantity.py", "resources.py", "expand.py",
            "legacy.py"} <= {m.name for m in MODULES}


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_core_module_is_pure(module):
    assert forbidden_in(imported_modules(module)) == []


def test_the_check_catches_impurity(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os.path\nfrom time import monotonic\n"
                   "def f():\n    from nsrun.host import cgroupfs\n")
    assert forbidden_in(imported_modules(bad)) == ["nsrun.host", "nsrun.host.cgroupfs",
                                                   "os.path", "time", "time.monotonic"]


def test_model_modules_say_what_they_own():
    for name in ("spec", "validate", "quantity", "resources", "expand", "legacy"):
        assert ast.get_docstring(ast.parse((CORE / f"{name}.py").read_text())), name
