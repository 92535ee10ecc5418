"""The container's device allow-list (pure): which device nodes it may create (``m``), read
(``r``) and write (``w``), whatever the cgroup driver.

The rules, in runc's order (``libcontainer/specconv``), each overriding those before it:

1. deny everything (``a *:* rwm``);
2. the bundle's ``linux.resources.devices`` (OCI: an ordered list of ``{allow, type, major,
   minor, access}``; a missing ``type`` is ``a``, a missing major/minor is ``*``, a missing
   ``access`` is ``rwm``);
3. an allow ``rwm`` rule for each device node the bundle creates (``linux.devices``);
4. the default list: ``mknod`` of any character or block device (``c *:* m``, ``b *:* m``:
   a node made is still not openable), and ``rwm`` for null (1:3), zero (1:5), full (1:7),
   random (1:8), urandom (1:9), tty (5:0), ptmx (5:2) and the pts (136:*). runc ≥ 1.2's list
   (no ``/dev/net/tun``). A privileged container is allowed everything (``a *:* rwm``).

``compile`` reduces them the way the cgroup v1 devices controller (and runc's emulator for
cgroup v2) does: a rule of type ``a`` sets the default (allow or deny) and clears the list;
any other rule of the default's kind removes matching exceptions, of the other kind adds an
exception. So the result is a default plus exceptions of the other kind, order no longer
matters, and no rule can punch a hole into a wildcard exception (as runc). ``Policy`` is what
the drivers enforce: ``v1_writes`` for ``devices.deny``/``devices.allow``, and the same rules
as a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program on cgroup v2 (``csrc/devices_bpf.c``).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from nsrun.errors import BundleError

ACCESS = "rwm"
TYPES = ("a", "c", "b")


class Rule(msgspec.Struct, frozen=True):
    """One device rule: ``type`` ``a`` (all), ``c`` or ``b``; ``major``/``minor`` None is
    ``*``; ``access`` a subset of ``rwm`` in that order."""

    allow: bool
    type: str = "a"
    major: int | None = None
    minor: int | None = None
    access: str = ACCESS

    def line(self) -> str:
        """As the v1 controller reads and lists it: ``c 1:3 rwm``."""
        def num(n: int | None) -> str:
            return "*" if n is None else str(n)

        return f"{self.type} {num(self.major)}:{num(self.minor)} {self.access}"

    def covers(self, other: Rule) -> bool:
        """Whether every access ``other`` names is one this rule names."""
        return (self.type in ("a", other.type)
                and self.major in (None, other.major) and self.minor in (None, other.minor)
                and set(other.access) <= set(self.access))


def _rule(type_: str, major: int | None, minor: int | None, access: str = ACCESS) -> Rule:
    return Rule(True, type_, major, minor, access)


DEFAULT_RULES: tuple[Rule, ...] = (
    _rule("c", None, None, "m"), _rule("b", None, None, "m"),
    _rule("c", 1, 3), _rule("c", 1, 5), _rule("c", 1, 7), _rule("c", 1, 8), _rule("c", 1, 9),
    _rule("c", 5, 0), _rule("c", 5, 2), _rule("c", 136, None),
)
ALLOW_ALL = Rule(True)
DENY_ALL = Rule(False)


class Policy(msgspec.Struct, frozen=True):
    """A default and its exceptions (every exception of the other kind)."""

    default_allow: bool
    exceptions: tuple[Rule, ...] = ()

    def allows(self, type_: str, major: int, minor: int, access: str) -> bool:
        """Whether ``access`` (one or more of ``rwm``) to the device is allowed."""
        asked = Rule(True, type_, major, minor, "".join(c for c in ACCESS if c in access))
        hit = any(e.covers(asked) for e in self.exceptions)
        return hit != self.default_allow

    def v1_writes(self) -> list[tuple[str, str]]:
        """The writes that give a new v1 devices cgroup this policy."""
        if self.default_allow:
            return [("devices.allow", "a"), *(("devices.deny", e.line()) for e in self.exceptions)]
        return [("devices.deny", "a"), *(("devices.allow", e.line()) for e in self.exceptions)]


def compile(rules: list[Rule] | tuple[Rule, ...]) -> Policy:
    """Apply ``rules`` in order as the v1 devices controller would (module docstring)."""
    default_allow, exceptions = False, []
    for rule in rules:
        if rule.type == "a":
            default_allow, exceptions = rule.allow, []
        elif rule.allow == default_allow:
            exceptions = _remove(exceptions, rule)
        else:
            exceptions = _add(exceptions, rule)
    return Policy(default_allow, tuple(exceptions))


def _key(rule: Rule) -> tuple:
    return rule.type, rule.major, rule.minor


def _add(exceptions: list[Rule], rule: Rule) -> list[Rule]:
    """Merge the access of an exception for the same device (the kernel's behaviour)."""
    for i, e in enumerate(exceptions):
        if _key(e) == _key(rule):
            access = "".join(c for c in ACCESS if c in e.access + rule.access)
            return [*exceptions[:i], msgspec.structs.replace(e, access=access),
                    *exceptions[i + 1:]]
    return [*exceptions, rule]


def _remove(exceptions: list[Rule], rule: Rule) -> list[Rule]:
    """Take ``rule``'s access away from the exception for the very same device."""
    out = []
    for e in exceptions:
        if _key(e) == _key(rule):
            left = "".join(c for c in e.access if c not in rule.access)
            if left:
                out.append(msgspec.structs.replace(e, access=left))
        else:
            out.append(e)
    return out


def policy(bundle: tuple[Rule, ...] = (), created: tuple[tuple[str, int, int], ...] = (),
           privileged: bool = False) -> Policy:
    """The container's policy from the bundle's rules and the nodes it creates
    (``(type, major, minor)``; a ``p`` fifo needs no rule, ``u`` is a character device)."""
    if privileged:
        return compile([ALLOW_ALL])
    made = [_rule("c" if t == "u" else t, major, minor) for t, major, minor in created
            if t in ("c", "b", "u")]
    return compile([DENY_ALL, *bundle, *made, *DEFAULT_RULES])


def parse(raw: Any, where: str = "linux.resources.devices") -> tuple[Rule, ...]:
    """The bundle's ``linux.resources.devices`` (OCI); ``BundleError`` names a bad field."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BundleError(f"{where}: expected a list, got {json.dumps(raw)}")
    return tuple(_parse_one(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _parse_one(item: Any, where: str) -> Rule:
    if not isinstance(item, dict) or set(item) - {"allow", "type", "major", "minor", "access"}:
        raise BundleError(f"{where}: expected {{allow, type, major, minor, access}}")
    allow = item.get("allow")
    if not isinstance(allow, bool):
        raise BundleError(f"{where}.allow: expected true or false, got {json.dumps(allow)}")
    kind = item.get("type", "a")
    if kind not in TYPES:
        raise BundleError(f"{where}.type: must be a, c or b, not {json.dumps(kind)}")
    access = item.get("access", ACCESS)
    if not isinstance(access, str) or not access or set(access) - set(ACCESS):
        raise BundleError(f"{where}.access: must be letters of rwm, not {json.dumps(access)}")
    return Rule(allow, kind, _number(item, "major", where), _number(item, "minor", where),
                "".join(c for c in ACCESS if c in access))


def _number(item: dict, key: str, where: str) -> int | None:
    value = item.get(key)
    if value is None or value == -1:  # runtime-spec: absent (or -1, runc's wildcard) is *
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 32:
        raise BundleError(f"{where}.{key}: expected a device number, got {json.dumps(value)}")
    return value
