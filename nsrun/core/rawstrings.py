"""Strings no manifest may carry, found before anything else reads them (pure).

JSON and YAML escapes can put two things in a manifest that no pod can use and that would
break whatever later writes or prints them: a lone UTF-16 surrogate (``"\\ud800"``, which is
not a character and has no UTF-8 encoding) and a NUL byte (which no path, argument,
environment variable or kernel name can hold). ``problems`` finds every one, in keys and
values, with its field path; the loader refuses the document with them before the schema
walk, so ``validate`` and ``run`` refuse the same manifests with the same words.
"""

from __future__ import annotations

import json
import re
from typing import Any

from nsrun.errors import Problem, SpecError

_SURROGATE = re.compile("[\ud800-\udfff]")
INVALID_UTF8 = "invalid UTF-8: a lone surrogate is not a character"
NUL = "must not contain a NUL byte"


def printable(text: str) -> str:
    """``text`` as JSON shows it (quoted, escapes for what cannot be printed)."""
    return json.dumps(text)


def problem(value: str, path: str) -> Problem | None:
    """The problem of one string (a key or a value) at ``path``, if it has one."""
    if _SURROGATE.search(value):
        return Problem(path, "Invalid value", f"{printable(value)}: {INVALID_UTF8}")
    if "\0" in value:
        return Problem(path, "Invalid value", f"{printable(value)}: {NUL}")
    return None


def problems(doc: Any, path: str = "") -> list[Problem]:
    """Every string of plain data ``doc`` (keys too) with a surrogate or a NUL byte, walked
    without recursion."""
    out: list[Problem] = []
    stack = [(doc, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            found = problem(node, where)
            out += [found] if found else []
        elif isinstance(node, dict):
            for key, value in node.items():
                shown = printable(key)[1:-1] if isinstance(key, str) else str(key)
                inner = f"{where}.{shown}" if where else shown
                found = problem(key, inner) if isinstance(key, str) else None
                if found:
                    out.append(found)
                    continue
                stack.append((value, inner))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
    return sorted(out, key=lambda p: p.field)


def check(doc: dict[str, Any], source: str = "", kind: str = "Pod") -> None:
    """Refuse the object ``doc`` (plain data) when any of its strings has a surrogate or a
    NUL byte: every one, as one ``SpecError`` naming the object."""
    found = problems(doc)
    if found:
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        name = printable(name)[1:-1] if isinstance(name, str) else ""
        raise SpecError(found, pod=name, source=source, kind=kind)
