"""kubectl's ``-o`` formats for any object: ``json``, ``yaml``, ``name``,
``jsonpath=TEMPLATE`` and ``custom-columns=HEAD:PATH,...``, once or as a watch stream
(``-w``: one JSON object per line, YAML documents after ``---``), and ``parse_duration``
for ``--since``/``--timeout`` values (``5s``, ``2m30s``, ``1h``).

kubectl's JSONPath templates (``{.items[*].metadata.name}``, ``{range .items[*]}…{end}``,
``[?(@.type=="Ready")]``) are hand-written here: the maintained Python JSONPath libraries
implement Goessner's JSONPath, not kubectl's template language around it.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from nsrun.errors import UsageError

FORMATS = ("json", "yaml", "name", "wide")


def kind_word(obj: dict[str, Any]) -> str:
    return str(obj.get("kind", "Pod")).lower()


def name_of(obj: dict[str, Any]) -> str:
    """``pod/myapp-pod``: kubectl's ``-o name``."""
    return f"{kind_word(obj)}/{obj.get('metadata', {}).get('name', '')}"


def as_list(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": objects, "metadata": {}}


def print_objects(objects: list[dict[str, Any]], output: str, single: bool = False) -> None:
    """The objects once in ``output``'s format (``single``: the one object, not a List)."""
    doc = objects[0] if single and len(objects) == 1 else as_list(objects)
    if output == "json":
        print(json.dumps(doc, indent=4))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(doc, sort_keys=False), end="")
    elif output == "name":
        for obj in objects:
            print(name_of(obj))
    elif output.startswith("jsonpath="):
        sys.stdout.write(jsonpath(output.partition("=")[2], doc))
        sys.stdout.flush()
    elif output.startswith("custom-columns="):
        print(custom_columns(output.partition("=")[2], objects))
    else:
        raise UsageError(f"unable to match a printer suitable for the output format "
                         f'"{output}", allowed formats are: {",".join(FORMATS)},'
                         "jsonpath=...,custom-columns=...")


def print_stream(obj: dict[str, Any], output: str) -> None:
    """One watch event: a whole document on its own (a JSON object on one line)."""
    if output in ("json", "yaml"):
        print(stream_text(obj, output), flush=True)
    else:
        print_objects([obj], output, single=True)
        sys.stdout.flush()


def stream_text(obj: dict[str, Any], output: str) -> str:
    """``obj`` as one document of a stream: a JSON line, or YAML after ``---``."""
    if output == "json":
        return json.dumps(obj, separators=(",", ":"))
    import yaml

    return "---\n" + yaml.safe_dump(obj, sort_keys=False).rstrip("\n")


def check_format(output: str | None) -> None:
    """A ``-o`` value nsrun can print (``UsageError`` otherwise), checked before acting."""
    if output and output not in FORMATS and not output.startswith(
            ("jsonpath=", "custom-columns=")):
        print_objects([], output)
    if output and output.startswith("jsonpath="):
        parse_template(output.partition("=")[2])


# ---------------------------------------------------------------- JSONPath templates

_TOKEN = re.compile(r'\{([^{}]*)\}|([^{]+)')


def parse_template(template: str) -> list[tuple[str, str]]:
    """(``text``|``expr``|``range``|``end``, value) pieces; ``UsageError`` when malformed."""
    if template.count("{") != template.count("}"):
        raise UsageError(f"error parsing jsonpath {template}, unclosed action")
    pieces = []
    for m in _TOKEN.finditer(template):
        if m.group(2) is not None:
            pieces.append(("text", m.group(2)))
            continue
        expr = m.group(1).strip()
        if expr.startswith("range "):
            pieces.append(("range", expr[6:].strip()))
        elif expr == "end":
            pieces.append(("end", ""))
        elif expr.startswith('"') and expr.endswith('"'):
            pieces.append(("text", json.loads(expr)))
        else:
            pieces.append(("expr", expr))
    return pieces


def jsonpath(template: str, doc: Any) -> str:
    """kubectl's ``-o jsonpath=TEMPLATE`` of ``doc``."""
    out: list[str] = []
    _render(parse_template(template), doc, out)
    return "".join(out)


def _render(pieces: list[tuple[str, str]], doc: Any, out: list[str]) -> None:
    i = 0
    while i < len(pieces):
        kind, value = pieces[i]
        if kind == "text":
            out.append(value)
        elif kind == "expr":
            out.append(" ".join(_text(v) for v in select(doc, value)))
        elif kind == "range":
            end = _matching_end(pieces, i)
            for item in select(doc, value):
                _render(pieces[i + 1:end], item, out)
            i = end
        i += 1


def _matching_end(pieces: list[tuple[str, str]], start: int) -> int:
    depth = 0
    for j in range(start + 1, len(pieces)):
        depth += pieces[j][0] == "range"
        if pieces[j][0] == "end":
            if depth == 0:
                return j
            depth -= 1
    raise UsageError("error parsing jsonpath: range without end")


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


_STEP = re.compile(r'\.([^.\[]+)|\[(\*|-?\d+)\]|\[\?\(@\.([^=!<>)]+)\s*(==|!=)\s*'
                   r'(?:"([^"]*)"|\'([^\']*)\'|([^)]*))\)\]|\.\.|\[\'([^\']+)\'\]')


def select(doc: Any, path: str) -> list[Any]:
    """The values ``path`` (``.a.b[0]``, ``[*]``, ``[?(@.k=="v")]``) picks from ``doc``."""
    path = path.strip()
    if path in ("", ".", "@", "$"):
        return [doc]
    path = path.lstrip("$@")
    values, pos = [doc], 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise UsageError(f"error parsing jsonpath {{{path}}}: unrecognized at "
                             f"{path[pos:]!r}")
        values = [v for cur in values for v in _step(cur, m)]
        pos = m.end()
    return values


def _step(cur: Any, m: re.Match) -> list[Any]:
    field, index, fkey = m.group(1) or m.group(8), m.group(2), m.group(3)
    if field is not None:
        return [cur[field]] if isinstance(cur, dict) and field in cur else []
    if not isinstance(cur, list):
        return []
    if index == "*":
        return list(cur)
    if index is not None:
        i = int(index)
        return [cur[i]] if -len(cur) <= i < len(cur) else []
    if fkey is not None:
        want = next((g for g in m.group(5, 6, 7) if g is not None), "").strip()
        hit = [v for v in cur if isinstance(v, dict)
               and (_text(v.get(fkey.strip())) == want) == (m.group(4) == "==")]
        return hit
    return list(cur)


def custom_columns(spec: str, objects: list[dict[str, Any]]) -> str:
    """kubectl's ``-o custom-columns=NAME:.metadata.name,PHASE:.status.phase``."""
    from nsrun.core.printer import table

    cols = []
    for part in spec.split(","):
        head, sep, path = part.partition(":")
        if not sep:
            raise UsageError(f'unexpected custom-columns spec: {part}, expected '
                             '<header>:<json-path-expr>')
        cols.append((head, path if path.startswith((".", "{")) else "." + path))
    rows = [tuple(",".join(_text(v) for v in select(obj, p.strip("{}"))) or "<none>"
                  for _, p in cols) for obj in objects]
    return table(rows, tuple(h for h, _ in cols))


# ---------------------------------------------------------------- durations

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float | None:
    """Go's ``time.ParseDuration`` for what kubectl takes (``30s``, ``2m30s``, ``1h``,
    ``500ms``; a bare number is seconds, as ``--timeout`` allows); None when invalid."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or _DURATION.sub("", text):
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in _DURATION.findall(text))
