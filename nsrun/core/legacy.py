"""The pre-1.8 init-container annotations (pure).

Kubernetes 1.3–1.7 carried init containers in the annotations
``pod.beta.kubernetes.io/init-containers`` and ``pod.alpha.kubernetes.io/init-containers``
(JSON arrays of Containers). On decode the beta value won over the alpha one, and the chosen
annotation replaced ``spec.initContainers`` (beta > alpha > field). Kubernetes 1.8 dropped
them (kubernetes#51816): they are no longer honoured, and ``DropInitContainerAnnotations``
deletes the four keys (the two above and their ``-statuses`` twins).

nsrun rejects a manifest carrying them unless told to honour them (``--legacy-annotations``,
with a warning); ``nsrun convert`` (``core.convert``) rewrites the manifest with the field and
without the keys.
"""

from __future__ import annotations

import json
from typing import Any

from nsrun.core.schema import SpecWarning
from nsrun.errors import Problem

BETA = "pod.beta.kubernetes.io/init-containers"
ALPHA = "pod.alpha.kubernetes.io/init-containers"
BETA_STATUSES = "pod.beta.kubernetes.io/init-container-statuses"
ALPHA_STATUSES = "pod.alpha.kubernetes.io/init-container-statuses"
KEYS = (BETA, ALPHA)
DROPPED = (BETA, ALPHA, BETA_STATUSES, ALPHA_STATUSES)

REJECTED = ("init containers in annotations are not honoured since Kubernetes 1.8 dropped "
            "them; rewrite the manifest with `nsrun convert FILE` (spec.initContainers), or "
            "pass --legacy-annotations to honour them as Kubernetes 1.6/1.7 did")


def annotation_path(key: str) -> str:
    return f"metadata.annotations[{key}]"


def present(doc: dict[str, Any]) -> list[str]:
    """The legacy init-container keys ``doc`` carries, beta first."""
    annotations = _annotations(doc)
    return [k for k in KEYS if k in annotations]


def apply(doc: dict[str, Any], *, honour: bool, findings: Any) -> dict[str, Any]:
    """``doc`` with the legacy annotations handled: rejected into ``findings.problems`` by
    default, or honoured (with a warning in ``findings.warnings``) when ``honour``."""
    keys = present(doc)
    if not keys:
        return doc
    if not honour:
        findings.problems.extend(Problem(annotation_path(k), "Forbidden", REJECTED) for k in keys)
        return doc
    converted, problems, warnings = convert(doc)
    findings.problems.extend(problems)
    findings.warnings.extend(warnings)
    return converted


def convert(doc: dict[str, Any]) -> tuple[dict[str, Any], list[Problem], list[Any]]:
    """The 1.6/1.7 conversion: the winning annotation (beta over alpha) replaces
    ``spec.initContainers``; the four legacy keys are dropped. Returns the new document,
    problems (an annotation that is not a JSON array of objects) and warnings."""
    keys = present(doc)
    if not keys:
        return doc, [], []
    winner = keys[0]
    containers, problems = _containers(_annotations(doc)[winner], winner)
    if problems:
        return doc, problems, []
    return _rewrite(doc, containers), [], _warnings(doc, keys, containers)


def _containers(raw: Any, key: str) -> tuple[list[Any], list[Problem]]:
    where = annotation_path(key)
    if not isinstance(raw, str):
        return [], [Problem(where, "Invalid value", "must be a JSON array of containers")]
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as err:
        return [], [Problem(where, "Invalid value", f"invalid JSON: {_first_line(err)}")]
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        return [], [Problem(where, "Invalid value", "must be a JSON array of containers")]
    return value, []


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0].lower()


def _rewrite(doc: dict[str, Any], containers: list[Any]) -> dict[str, Any]:
    out = dict(doc)
    meta = dict(out["metadata"])
    annotations = {k: v for k, v in meta["annotations"].items() if k not in DROPPED}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations")
    out["metadata"] = meta
    spec = dict(out["spec"]) if isinstance(out.get("spec"), dict) else {}
    spec["initContainers"] = containers
    out["spec"] = spec
    return out


def _warnings(doc: dict[str, Any], keys: list[str], containers: list[Any]) -> list[Any]:
    spec = doc.get("spec")
    field = spec.get("initContainers") if isinstance(spec, dict) else None
    what = "replace the non-empty spec.initContainers" if field else "become spec.initContainers"
    text = (f"honoured as in Kubernetes 1.6/1.7 (dropped in 1.8): its {len(containers)} "
            f"container(s) {what}; `nsrun convert FILE` rewrites the manifest")
    out = [SpecWarning(annotation_path(keys[0]), text)]
    out.extend(SpecWarning(annotation_path(k), f"ignored: {BETA} takes precedence")
               for k in keys[1:])
    return out


def _annotations(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}
