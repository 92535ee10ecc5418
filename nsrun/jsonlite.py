"""JSON through CPython's own C scanner and encoder (``_json``), without importing ``json``.

``json.decoder`` and ``json.encoder`` compile regular expressions at import, which pulls in
``re`` (≈7 ms of a ≈16 ms interpreter start on the development machine); the OCI face
(``nsrun-oci``) is called several times per container by a shim and cannot afford that. The C
parts of ``json`` need no ``re``: :func:`loads` and :func:`dumps` use them directly and give the
same results as ``json.loads`` and ``json.dumps(obj, separators=(",", ":"))`` (strict parsing;
``NaN``/``Infinity`` refused; non-ASCII escaped). Invalid input is handed to ``json.loads``,
which raises its ``JSONDecodeError`` (a ``ValueError``) with the position.
"""

from __future__ import annotations

import _json

_WHITESPACE = " \t\n\r"


def _no_constant(name: str) -> None:
    raise ValueError(f"invalid JSON value {name}")


class _Context:
    """The attributes ``_json.make_scanner`` reads (those of ``json.JSONDecoder``)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constant)


_scan = _json.make_scanner(_Context())
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",",
                             False, False, False)


def loads(data: bytes | str):
    """The value of the JSON document ``data`` (UTF-8 when bytes)."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, SystemError, ValueError):
        # The scanner raises json's JSONDecodeError only once json.decoder is loaded: let
        # json itself report the error (position and reason).
        import json

        return json.loads(text, parse_constant=_no_constant)
    if text[end:].strip(_WHITESPACE):
        import json

        return json.loads(text, parse_constant=_no_constant)
    return value


def dumps(value) -> str:
    """Compact JSON text of ``value`` (dicts, lists, tuples, str, int, float, bool, None)."""
    return "".join(_encode(value, 0))


def load_object(path: str) -> dict:
    """The JSON object in the file ``path``: ``OSError`` when it cannot be read,
    ``ValueError`` when it is not JSON or not an object."""
    with open(path, "rb") as f:
        value = loads(f.read())
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
