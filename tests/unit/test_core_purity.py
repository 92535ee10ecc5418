"""nsrun/core is pure: nothing it imports, directly or through other modules, reaches the
world (processes, clock, files, kernel, host), and it calls nothing that does.

The check works on the import graph: every module of the package (sub-packages included),
every import in it (absolute or relative, at top level, in functions, under
``TYPE_CHECKING``), followed through every module of the package it reaches. A core module
may reach only an allow-list: pure standard modules, msgspec and PyYAML, other core modules,
and the error vocabulary every layer shares (``nsrun.errors``, ``nsrun.exitcodes``). It
may not call ``open``, ``exec``, ``eval``, ``__import__``, ``input``, ``breakpoint``, nor
read the clock through ``datetime``'s ``now``/``today``/``utcnow``. The check is proven in
``test_the_check_catches_impurity`` on a package made for it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nsrun"
PURE_STDLIB = {"__future__", "_sha256", "base64", "collections", "collections.abc", "dataclasses",
               "datetime", "enum", "functools", "hashlib", "ipaddress", "itertools", "json",
               "math", "operator", "re", "string", "types", "typing", "zlib"}
PURE_THIRD_PARTY = {"msgspec", "yaml"}
SHARED = {"errors", "exitcodes"}  # relative to the package: its error vocabulary
CALLS = {"open", "exec", "eval", "__import__", "input", "breakpoint"}
CLOCK = {"now", "today", "utcnow"}


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join([package, *parts])


def imports(path: Path, name: str) -> set[str]:
    """Every module ``path`` (module ``name``) imports, relative imports resolved; inside
    the package ``from x import y`` also counts as ``x.y`` (``y`` may be a module)."""
    package = name.split(".")[0]
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            if base.split(".")[0] == package:
                out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def bad_calls(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in CALLS:
            out.append(f"{node.func.id}()")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK:
            out.append(f".{node.func.attr}()")
    return out


def violations(root: Path, package: str) -> dict[str, list[str]]:
    """Per core module of the package at ``root``: what it reaches that is not allowed."""
    modules = {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    core = f"{package}.core"
    allowed_own = {f"{package}.{s}" for s in SHARED} | {package}

    def own(imported: str) -> str | None:
        """The package's module an import names (``from x import y``: x.y or x)."""
        while imported and imported not in modules:
            imported = imported.rpartition(".")[0]
        return imported or None

    def reach(start: str) -> list[str]:
        seen, stack, bad = {start}, [start], []
        while stack:
            current = stack.pop()
            bad += [f"{current}: {c}" for c in bad_calls(modules[current])]
            for imported in sorted(imports(modules[current], current)):
                mine = own(imported) if imported.split(".")[0] == package else None
                if mine is None:
                    if imported.split(".")[0] == package:
                        continue  # a name inside a module of the package (x.y, y no module)
                    if imported not in PURE_STDLIB | PURE_THIRD_PARTY:
                        bad.append(f"{current}: import {imported}")
                elif mine in allowed_own:
                    continue
                elif mine != core and not mine.startswith(core + "."):
                    bad.append(f"{current}: import {mine}")
                elif mine not in seen:
                    seen.add(mine)
                    stack.append(mine)
        return sorted(set(bad))

    return {m: reach(m) for m in modules if m == core or m.startswith(core + ".")}


MODULES = sorted((PACKAGE / "core").rglob("*.py"))
FOUND = violations(PACKAGE, "nsrun")


def test_core_has_modules():
    assert {"spec.py", "validate.py", "quantity.py", "resources.py", "expand.py",
            "legacy.py"} <= {m.name for m in MODULES}
    assert len(FOUND) == len(MODULES)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE / "core")))
def test_core_module_is_pure(module):
    assert FOUND[module_name(module, PACKAGE, "nsrun")] == []


INJECTED = {
    "core/__init__.py": "",
    "core/ok.py": "import json\nfrom . import helper\nfrom nsrun_fake.errors import E\n",
    "core/helper.py": "import re\nfrom nsrun_fake.core.spec import Pod\n",
    "core/spec.py": "from __future__ import annotations\nimport msgspec\nclass Pod: ...\n",
    "core/relative.py": "from . import leaky\n",
    "core/leaky.py": "import os\n",
    "core/ffi.py": "import cffi\n",
    "core/native.py": "from nsrun_fake import _native\n",
    "core/layers.py": "from nsrun_fake.bundle import oci\nfrom nsrun_fake import state\n"
                      "from ..report import statusfile\n",
    "core/dynamic.py": "import importlib\n",
    "core/files.py": "def f(p):\n    return open(p).read()\n",
    "core/clock.py": "from datetime import datetime\ndef f():\n    return datetime.now()\n",
    "core/hidden.py": "def f():\n    __import__('socket')\n",
    "core/lazy.py": "def f():\n    import subprocess\n",
    "core/typing_only.py": "TYPE_CHECKING = False\nif TYPE_CHECKING:\n"
                           "    from nsrun_fake.host import cgroupfs\n",
    "core/sub/__init__.py": "",
    "core/sub/deep.py": "from ... import host\n",
    "core/through.py": "from nsrun_fake.core.sub import deep\n",
    "errors.py": "import os\nclass E(Exception): ...\n",
    "_native.py": "", "state.py": "", "host/__init__.py": "", "host/cgroupfs.py": "",
    "bundle/__init__.py": "", "bundle/oci.py": "", "report/__init__.py": "",
    "report/statusfile.py": "",
}


def test_the_check_catches_impurity(tmp_path):
    root = tmp_path / "nsrun_fake"
    for rel, text in INJECTED.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    found = {m.removeprefix("nsrun_fake.core."): v for m, v in
             violations(root, "nsrun_fake").items() if v}
    core = "nsrun_fake.core"
    assert found == {
        "relative": [f"{core}.leaky: import os"],
        "leaky": [f"{core}.leaky: import os"],
        "ffi": [f"{core}.ffi: import cffi"],
        "native": [f"{core}.native: import nsrun_fake._native"],
        "layers": [f"{core}.layers: import nsrun_fake.{m}" for m in (
            "bundle", "bundle.oci", "report", "report.statusfile", "state")],
        "dynamic": [f"{core}.dynamic: import importlib"],
        "files": [f"{core}.files: open()"],
        "clock": [f"{core}.clock: .now()"],
        "hidden": [f"{core}.hidden: __import__()"],
        "lazy": [f"{core}.lazy: import subprocess"],
        "typing_only": [f"{core}.typing_only: import nsrun_fake.host",
                        f"{core}.typing_only: import nsrun_fake.host.cgroupfs"],
        "sub.deep": [f"{core}.sub.deep: import nsrun_fake.host"],
        "through": [f"{core}.sub.deep: import nsrun_fake.host"],
    }


def test_model_modules_say_what_they_own():
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        if path.name != "__init__.py":
            assert ast.get_docstring(ast.parse(path.read_text())), path.name
