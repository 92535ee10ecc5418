"""The manifest loader: text (YAML or JSON) to defaulted ``Pod`` objects (pure).

``load_pods`` turns manifest text (YAML or JSON, one or many documents, or a ``kind: List``)
into defaulted ``Pod`` objects or raises ``SpecError`` naming the field;
``load_pods_with_warnings`` also returns the warnings. The one loader of manifests: Pods here,
other kinds through ``core.objects`` on ``parse_documents``.

What the loader owns, in order:

* bad input of any kind (binary junk, non-UTF-8, YAML alias bombs, deep nesting, huge
  numbers, wrong types) becomes ``SpecError``, never another exception or a hang;
* strings no pod can use (a lone surrogate, a NUL byte: ``core.rawstrings``) are refused
  first, so nothing later writes or prints them;
* legacy init-container annotations (``core.legacy``): rejected by default, honoured with
  ``legacy_annotations=True``;
* fields outside the model (``core.schema``), then msgspec's typed decoding;
* the API server's defaulting (``core.defaults``).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import msgspec

from nsrun.core import legacy, rawstrings
from nsrun.core.defaults import apply_defaults
from nsrun.core.schema import (
    Findings,
    SpecWarning,
    document_problem,
    json_type,
    problem_from_msgspec,
    walk,
)
from nsrun.core.spec import Pod
from nsrun.errors import Problem, SpecError

MAX_BYTES = 3 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 200_000


def load_pods(text: str | bytes, source: str = "", *,
              legacy_annotations: bool = False) -> list[Pod]:
    """Parse manifest text (YAML or JSON, one or many documents) into defaulted Pods.

    Raises ``SpecError`` naming the field of every structural problem of the first bad
    document. Warnings are dropped; use ``load_pods_with_warnings`` to see them."""
    return load_pods_with_warnings(text, source, legacy_annotations=legacy_annotations)[0]


def load_pods_with_warnings(text: str | bytes, source: str = "", *,
                            legacy_annotations: bool = False
                            ) -> tuple[list[Pod], list[SpecWarning]]:
    """``load_pods`` plus the warnings (ignored scheduling fields, honoured annotations)."""
    pods: list[Pod] = []
    warnings: list[SpecWarning] = []
    for doc in pod_documents(parse_documents(text, source), source):
        pod, found = decode_pod(doc, source, legacy_annotations=legacy_annotations)
        pods.append(pod)
        warnings.extend(found)
    if not pods:
        raise SpecError([document_problem("no Pod document found")], source=source)
    return pods, warnings


def parse_documents(text: str | bytes, source: str = "") -> list[Any]:
    """Every document of a YAML or JSON stream as plain data, refusing hostile input."""
    text = _as_text(text, source)
    stripped = text.lstrip(" \t\r\n")
    if not stripped.startswith(("{", "[")):
        return _parse_yaml(text, source)
    try:
        return _parse_json(stripped, source)
    except SpecError as json_error:
        if "invalid JSON: line" not in str(json_error):
            raise
        try:  # YAML flow style (``{name: p}``) also starts with a brace
            return _parse_yaml(text, source)
        except SpecError as yaml_error:
            raise (json_error if "invalid YAML" in str(yaml_error) else yaml_error) from None


def pod_documents(docs: list[Any], source: str = "") -> list[dict[str, Any]]:
    """The Pod objects among ``docs``: empty documents skipped, ``kind: List`` flattened."""
    out: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            items = doc["items"]
            if not isinstance(items, list):
                raise _doc_error("items: expected a list of Pods", source)
            out.extend(_check_pod_object(item, source) for item in items if item is not None)
        else:
            out.append(_check_pod_object(doc, source))
    return out


def _doc_error(message: str, source: str, pod: str = "") -> SpecError:
    return SpecError([document_problem(message)], pod=pod, source=source)


def _as_text(text: str | bytes, source: str) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        data = bytes(text)
        if len(data) > MAX_BYTES:
            raise _doc_error(_too_big(len(data)), source)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _doc_error(f"manifest is not valid UTF-8 (byte {err.start})", source) from None
    if not isinstance(text, str):
        raise _doc_error("manifest must be text", source)
    if len(text) > MAX_BYTES:
        raise _doc_error(_too_big(len(text)), source)
    return text.removeprefix("\ufeff")


def _too_big(size: int) -> str:
    return f"manifest is {size} bytes; nsrun reads at most {MAX_BYTES} (the API server's limit)"


def _parse_json(text: str, source: str) -> list[Any]:
    decoder, docs, pos = json.JSONDecoder(), [], 0
    try:
        while pos < len(text):
            doc, pos = decoder.raw_decode(text, pos)
            docs.append(doc)
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
    except json.JSONDecodeError as err:
        raise _doc_error(f"invalid JSON: line {err.lineno}, column {err.colno}: {err.msg}",
                         source) from None
    except RecursionError:
        raise _doc_error(f"invalid JSON: nested more than {MAX_DEPTH} levels deep",
                         source) from None
    except ValueError as err:
        raise _doc_error(f"invalid JSON: {_short(err)}", source) from None
    for doc in docs:
        _check_json_shape(doc, source)
    return docs


def _check_json_shape(doc: Any, source: str) -> None:
    """Depth and size limits for JSON, walked without recursion."""
    stack, count = [(doc, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise _doc_error(f"manifest is nested more than {MAX_DEPTH} levels deep", source)
        if count > MAX_NODES:
            raise _doc_error(f"manifest has more than {MAX_NODES} values", source)
        children = node.values() if isinstance(node, dict) else node if isinstance(
            node, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _short(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0].lower().rstrip(".")


# ---------------------------------------------------------------- YAML


def _yaml_loader() -> type:
    """The C safe loader without YAML 1.1 timestamps (Kubernetes keeps them as strings)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return _loader_without_timestamps(base)


@functools.cache
def _loader_without_timestamps(base: type) -> type:
    resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                 for k, v in base.yaml_implicit_resolvers.items()}
    return type("NsrunLoader", (base,), {"yaml_implicit_resolvers": resolvers})


def _parse_yaml(text: str, source: str) -> list[Any]:
    import yaml

    loader = _yaml_loader()
    try:
        if not _plainly_bounded(text):
            _check_yaml_events(yaml.parse(text, Loader=loader), source)
        return list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as err:
        raise _doc_error(_yaml_message(err), source) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as err:
        raise _doc_error(f"invalid YAML: {_short(err)}", source) from None


def _plainly_bounded(text: str) -> bool:
    """True when the text can neither alias nor nest past the limits (no anchors, few
    brackets, shallow indentation), so the event pass that guards against YAML bombs can be
    skipped; the common manifest pays for one parse, not two."""
    if "&" in text or "*" in text or len(text) > 65536:
        return False
    if text.count("[") + text.count("{") >= MAX_DEPTH:
        return False
    return all(len(line) - len(line.lstrip(" -")) < MAX_DEPTH for line in text.splitlines())


def _yaml_message(err: Exception) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(err, "problem", None) or str(err)
    return f"{where}invalid YAML: {problem}"


class _Sizes:
    """Expanded node counts per open collection, to catch alias bombs before loading."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.stack: list[list[Any]] = []
        self.anchors: dict[str, int] = {}
        self.open: set[str] = set()

    def add(self, size: int) -> None:
        frame = self.stack[-1] if self.stack else None
        total = frame[0] + size if frame else size
        if total > MAX_NODES:
            raise _doc_error(f"manifest expands to more than {MAX_NODES} values "
                             "(excessive YAML aliasing)", self.source)
        if frame:
            frame[0] = total

    def start(self, anchor: str | None) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _doc_error(f"manifest is nested more than {MAX_DEPTH} levels deep", self.source)
        self.stack.append([1, anchor])
        if anchor:
            self.open.add(anchor)

    def end(self) -> None:
        size, anchor = self.stack.pop()
        if anchor:
            self.anchors[anchor] = size
            self.open.discard(anchor)
        self.add(size)

    def alias(self, anchor: str) -> None:
        if anchor in self.open:
            raise _doc_error(f"YAML alias *{anchor} refers to itself", self.source)
        self.add(self.anchors.get(anchor, 1))

    def scalar(self, anchor: str | None) -> None:
        if anchor:
            self.anchors[anchor] = 1
        self.add(1)


def _check_yaml_events(events: Any, source: str) -> None:
    import yaml

    sizes = _Sizes(source)
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            sizes.start(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            sizes.end()
        elif isinstance(event, yaml.AliasEvent):
            sizes.alias(event.anchor)
        elif isinstance(event, yaml.ScalarEvent):
            sizes.scalar(event.anchor)


# ---------------------------------------------------------------- one Pod document


def _check_pod_object(doc: Any, source: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise _doc_error(f"expected a Pod object, found {json_type(doc)}", source)
    kind = doc.get("kind", "Pod")
    if kind != "Pod":
        shown = json.dumps(kind) if isinstance(kind, str) else json_type(kind)
        raise SpecError([Problem("kind", "Unsupported value", f'{shown}: supported values: "Pod"')],
                        source=source)
    version = doc.get("apiVersion", "v1")
    if version != "v1":
        shown = version if isinstance(version, str) else json_type(version)
        raise _doc_error(f'no matches for kind "Pod" in version "{shown}"', source)
    return doc


def decode_pod(doc: dict[str, Any], source: str = "", *,
               legacy_annotations: bool = False) -> tuple[Pod, list[SpecWarning]]:
    """One Pod object (plain data) -> a defaulted ``Pod`` and its warnings."""
    rawstrings.check(doc, source)
    name = _raw_name(doc)
    found = Findings()
    doc = legacy.apply(doc, honour=legacy_annotations, findings=found)
    clean = walk(doc, Pod, "", found)
    if found.problems:
        raise SpecError(found.problems, pod=name, source=source)
    try:
        pod = msgspec.convert(clean, Pod)
    except msgspec.ValidationError as err:
        raise SpecError([problem_from_msgspec(str(err))], pod=name, source=source) from None
    return apply_defaults(pod), found.warnings


def _raw_name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""
