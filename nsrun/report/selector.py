"""kubectl's label selectors (``-l``): ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``,
``k in (a,b)``, ``k notin (a,b)``; a comma means "and"."""

from __future__ import annotations

import re
from typing import Any

from nsrun.errors import UsageError


def selected(obj: dict[str, Any], selector: str | None) -> bool:
    """Whether the object's labels match a kubectl label selector."""
    if not selector:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in re.split(r",(?![^(]*\))", selector):
        if not _term(labels, term.strip()):
            return False
    return True


def _term(labels: dict[str, str], term: str) -> bool:
    m = re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", term)
    if m:
        values = {v.strip() for v in m.group(3).split(",")}
        return (labels.get(m.group(1)) in values) == (m.group(2) == "in")
    m = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(\S*)", term)
    if m:
        return (labels.get(m.group(1)) == m.group(3)) == (m.group(2) != "!=")
    if term.startswith("!"):
        return term[1:] not in labels
    if re.fullmatch(r"[^!=\s(),]+", term):
        return term in labels
    raise UsageError(f"unable to parse requirement: {term!r}")
