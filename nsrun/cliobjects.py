"""What a verb's words name, as kubectl reads them, and acting on each named object.

``[TYPE] NAME...`` or ``TYPE/NAME...`` (``pods|po``, ``services|svc``, ``endpoints|ep``,
``events|ev``), or the objects of ``-f FILE``; ``pod_names`` for the verbs that take pods
only; ``each`` runs a verb over every name and goes on after a failure, as kubectl does.
Shared by the verb modules (``objcli``, ``podcli``, ``watchcli``).
"""

from __future__ import annotations

import sys
from typing import Any

from nsrun.errors import NsrunError, ServerError, UsageError

KINDS = {"pods": "pod", "pod": "pod", "po": "pod", "services": "service",
         "service": "service", "svc": "service", "endpoints": "endpoints", "ep": "endpoints",
         "events": "event", "event": "event", "ev": "event"}

def targets(args) -> list[tuple[str, str | None]]:
    """(kind, name) pairs the command is about; name None: every object of that kind.
    Words: ``[TYPE] NAME...`` or ``TYPE/NAME...`` (kubectl's two forms)."""
    if args.filename:
        from nsrun.core.objects import object_refs
        from nsrun.runtime.lifecycle import read_manifest

        if args.names:
            raise UsageError("when -f is given, no names may be given")
        refs = object_refs(read_manifest(args.filename), args.filename)
        return [(kind.lower(), name) for kind, name in refs]
    names, kind = list(args.names), "pod"
    if names and "/" not in names[0] and names[0] in KINDS:
        kind = KINDS[names.pop(0)]
        if names and "/" in names[0]:
            raise UsageError("there is no need to specify a resource type as a separate "
                             "argument when passing arguments in resource/name form")
    out = [_typed(n, kind) for n in names]
    if not out or getattr(args, "all", False) or getattr(args, "selector", None):
        if out and getattr(args, "all", False):
            raise UsageError("name cannot be provided when --all is specified")
        return [(kind, None)]
    return out


def _typed(word: str, kind: str) -> tuple[str, str]:
    if "/" in word:
        head, _, name = word.partition("/")
        if head in KINDS:
            return KINDS[head], name
        if head not in ("default",):
            raise UsageError(f'the server doesn\'t have a resource type "{head}"')
    return kind, word


def pod_names(words: list[str]) -> list[str]:
    """Pod names of ``NAME``, ``pod/NAME`` or ``pod NAME...`` words."""
    if not words:
        return []
    class A:
        filename, names = None, words
    wanted = targets(A)
    if any(k != "pod" or n is None for k, n in wanted):
        raise UsageError("expected pod names (NAME or pod/NAME)")
    return [split(n)[1] for _, n in wanted if n]


def split(name: str) -> tuple[str, str]:
    """``[<namespace>/]<name>`` → (namespace, name); ``default`` when none is given."""
    namespace, _, bare = name.rpartition("/")
    return namespace or "default", bare


def each(items: list[Any], act, label=lambda item: "") -> int:
    """``act`` on every item, printing the line it returns; a failure is printed (with
    ``label(item)``) and the next item goes on, as kubectl does. The first failure's code."""
    code = 0
    for item in items:
        try:
            line = act(item)
        except ServerError as err:
            print(err.kubectl(), file=sys.stderr)
            code = code or err.exit_code
        except NsrunError as err:
            print(f"nsrun: {label(item)}{err}", file=sys.stderr)
            code = code or err.exit_code
        else:
            if line is not None:
                print(line, flush=True)
    return code
