"""runc's flag syntax, as Go's ``flag`` package (under urfave/cli) parses it: ``--name value``,
``--name=value``, ``-name`` for ``--name``, booleans as ``--name`` or ``--name=false``; the
first argument that is not a flag (or ``--``) ends the flags, everything after it is taken
as given (``exec ID sh -c …``, ``kill ID 9``).

A verb declares its flags as ``{"--bundle": ("bundle", STR), "-b": ("bundle", STR), …}``;
:func:`parse` returns the values by destination (defaults: False, None, [] for lists) and the
positional arguments. It costs no import: ``argparse`` would cost more than the verb.
"""

from __future__ import annotations

from nsrun.errors import OciError

BOOL, STR, INT, LIST = "bool", "str", "int", "list"
_TRUE, _FALSE = ("1", "t", "T", "true", "TRUE", "True"), ("0", "f", "F", "false", "FALSE",
                                                          "False")


def _convert(name: str, kind: str, value: str) -> object:
    if kind == BOOL:
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise OciError(f'invalid boolean value "{value}" for -{name.lstrip("-")}')
    if kind == INT:
        try:
            return int(value)
        except ValueError:
            raise OciError(f'invalid value "{value}" for flag -{name.lstrip("-")}: parse '
                           "error") from None
    return value


def defaults(flags: dict[str, tuple[str, str]]) -> dict[str, object]:
    return {dest: [] if kind == LIST else False if kind == BOOL else None
            for dest, kind in flags.values()}


def parse(args: list[str], flags: dict[str, tuple[str, str]]) -> tuple[dict, list[str]]:
    """``(values by destination, positional arguments)``; ``OciError`` for an unknown flag
    or a missing value."""
    values = defaults(flags)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return values, args[i + 1:]
        if not arg.startswith("-") or arg == "-":
            return values, args[i:]
        name, eq, value = arg.partition("=")
        if not name.startswith("--") and len(name) > 2:
            name = "-" + name  # Go's flag package: -name is --name
        if name not in flags:
            raise OciError(f"flag provided but not defined: {name}")
        dest, kind = flags[name]
        if not eq and kind != BOOL:
            i += 1
            if i == len(args):
                raise OciError(f"flag needs an argument: {name}")
            value = args[i]
        converted = _convert(name, kind, value) if eq or kind != BOOL else True
        if kind == LIST:
            values[dest].append(converted)
        else:
            values[dest] = converted
        i += 1
    return values, []


def need(positional: list[str], count: int, verb: str, *, exact: bool = True) -> None:
    """runc's check of the positional arguments (``"kill" requires a minimum of 1
    argument(s)``)."""
    if len(positional) == count or (not exact and len(positional) >= count):
        return
    what = "exactly" if exact else "a minimum of"
    raise OciError(f'"{verb}" requires {what} {count} argument(s)')
