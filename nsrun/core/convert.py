"""``nsrun convert``: manifests rewritten without the pre-1.8 init-container annotations (pure).

Every document gets ``spec.initContainers`` from the annotation ``core.legacy`` chooses, the
four legacy keys are dropped, and the result is dumped as YAML or JSON and loaded again, so
what ``convert`` prints is a manifest ``run`` accepts.
"""

from __future__ import annotations

import json
from typing import Any

from nsrun.core import legacy
from nsrun.core.manifest import load_pods, parse_documents, pod_documents
from nsrun.errors import SpecError


def convert_text(text: str | bytes, source: str = "", output: str = "yaml"
                 ) -> tuple[str, list[Any]]:
    """``nsrun convert``: every document rewritten with ``spec.initContainers``; returns the
    new manifest (``yaml`` or ``json``) and the warnings. Raises ``SpecError`` on bad input."""
    docs, warnings = [], []
    for doc in pod_documents(parse_documents(text, source), source):
        new, problems, found = legacy.convert(doc)
        if problems:
            raise SpecError(problems, pod=_name(doc), source=source)
        docs.append(new)
        warnings.extend(found)
    rendered = dump(docs, output)
    load_pods(rendered, source)
    return rendered, warnings


def dump(docs: list[dict[str, Any]], output: str = "yaml") -> str:
    """Documents as YAML (``---``-separated) or JSON (one object, or a ``kind: List``)."""
    if output == "json":
        value = docs[0] if len(docs) == 1 else {"apiVersion": "v1", "kind": "List",
                                                "items": docs}
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    import yaml

    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, explicit_start=len(docs) > 1)


def _name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""
