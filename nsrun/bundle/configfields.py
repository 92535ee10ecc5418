"""Typed access to an OCI ``config.json``: a field by its dotted path, checked against the
JSON type it must have, and errors that name the file and the field
(``config.json: process.rlimits[0].type: ...``). Shared by the ``bundle/`` readers."""

from __future__ import annotations

import json
from typing import Any

from nsrun.errors import BundleError


class Fields:
    """Typed access to a config.json, errors naming the file and the field."""

    def __init__(self, config: dict[str, Any], where: str) -> None:
        self.config, self.where = config, where

    def error(self, path: str, message: str) -> BundleError:
        return BundleError(f"{self.where}: {path}: {message}")

    def get(self, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        node: Any = self.config
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node or node[key] is None:
                return default
            node = node[key]
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(
                k.__name__ for k in kind)
            raise self.error(path, f"expected {json_word(names)}, got {json_type(node)}")
        return node

    def uint(self, path: str, value: Any, bits: int = 32) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**bits:
            raise self.error(path, f"expected an unsigned {bits}-bit integer, got "
                                   f"{json.dumps(value)}")
        return value


def json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


def json_word(name: str) -> str:
    return {"dict": "object", "list": "array", "str": "string", "int": "integer",
            "bool": "boolean"}.get(name, name)
