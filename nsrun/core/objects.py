"""Manifests that mix kinds: the Pods and Services of ``create|apply|delete|get -f FILE``
(pure).

``load_objects`` reads every document of a YAML or JSON stream (``---`` separated, or a
``kind: List``) into defaulted ``Pod`` and ``Service`` objects, in file order, with the same
guards as the Pod loader (``nsrun.core.manifest``). ``ref`` names an object as kubectl prints it
(``pod/myapp-pod``, ``service/myservice``).
"""

from __future__ import annotations

import json
from typing import Any

from nsrun.core.manifest import decode_pod, parse_documents
from nsrun.core.schema import SpecWarning, document_problem, json_type
from nsrun.core.service import Service, decode_service
from nsrun.core.spec import Pod
from nsrun.errors import Problem, SpecError

KINDS = ("Pod", "Service")
RESOURCE = {"Pod": "pods", "Service": "services"}  # kubectl's plural resource names


def load_objects(text: str | bytes, source: str = "", *, legacy_annotations: bool = False,
                 ) -> tuple[list[Pod | Service], list[SpecWarning]]:
    """Every Pod and Service of the manifest, defaulted (``SpecError`` on the first bad
    document), and the warnings."""
    objects: list[Pod | Service] = []
    warnings: list[SpecWarning] = []
    for doc in _documents(parse_documents(text, source), source):
        if doc.get("kind") == "Service":
            obj, found = decode_service(doc, source)
        else:
            obj, found = decode_pod(doc, source, legacy_annotations=legacy_annotations)
        objects.append(obj)
        warnings.extend(found)
    if not objects:
        raise SpecError([document_problem("no objects passed to the command")], source=source)
    return objects, warnings


def object_refs(text: str | bytes, source: str = "") -> list[tuple[str, str]]:
    """(kind, name) of every object of the manifest, without validating them (what
    ``get|describe|delete -f`` need, as kubectl's); the name of an object outside the
    ``default`` namespace is ``<namespace>/<name>`` (names never hold a ``/``)."""
    out = []
    for doc in _documents(parse_documents(text, source), source):
        meta = doc.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name, namespace = meta.get("name"), meta.get("namespace") or "default"
        if not isinstance(name, str) or not name:
            raise SpecError([Problem("metadata.name", "Required value", "")], source=source)
        out.append((str(doc.get("kind", "Pod")),
                    name if namespace == "default" else f"{namespace}/{name}"))
    return out


def _documents(docs: list[Any], source: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            if not isinstance(doc["items"], list):
                raise SpecError([document_problem("items: expected a list")], source=source)
            out.extend(_checked(item, source) for item in doc["items"] if item is not None)
        else:
            out.append(_checked(doc, source))
    return out


def _checked(doc: Any, source: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise SpecError([document_problem(f"expected an object, found {json_type(doc)}")],
                        source=source)
    kind = doc.get("kind", "Pod")
    if kind not in KINDS:
        shown = json.dumps(kind) if isinstance(kind, str) else json_type(kind)
        raise SpecError([Problem("kind", "Unsupported value",
                                 f'{shown}: supported values: "Pod", "Service"')], source=source)
    version = doc.get("apiVersion", "v1")
    if version != "v1":
        shown = version if isinstance(version, str) else json_type(version)
        raise SpecError([document_problem(f'no matches for kind "{kind}" in version '
                                          f'"{shown}"')], source=source)
    return doc


def ref(obj: Pod | Service) -> str:
    """``pod/NAME`` or ``service/NAME``, as kubectl prints an object."""
    return f"{obj.kind.lower()}/{obj.metadata.name}"
