"""The device allow-list computation (``core.devices``), table-tested: the default list, the
bundle's ordered ``linux.resources.devices`` rules, created nodes, privileged containers, the
v1 controller's reduction (a default plus exceptions), the v1 writes, and bad rules."""

from __future__ import annotations

import pytest

from nsrun.core import devices
from nsrun.core.devices import DEFAULT_RULES, Policy, Rule, compile, parse, policy
from nsrun.errors import BundleError

DEFAULT = policy()

# (type, major, minor, access) -> allowed by the default policy
DEFAULT_TABLE = [
    (("c", 1, 3, "rw"), True),     # /dev/null
    (("c", 1, 5, "r"), True),      # /dev/zero
    (("c", 1, 7, "w"), True),      # /dev/full
    (("c", 1, 8, "r"), True),      # /dev/random
    (("c", 1, 9, "r"), True),      # /dev/urandom
    (("c", 5, 0, "rw"), True),     # /dev/tty
    (("c", 5, 2, "rw"), True),     # /dev/ptmx
    (("c", 136, 7, "rw"), True),   # /dev/pts/7
    (("c", 10, 229, "m"), True),   # mknod of anything is allowed (runc) ...
    (("b", 7, 0, "m"), True),
    (("c", 10, 229, "r"), False),  # ... opening it is not: fuse
    (("b", 7, 0, "rw"), False),    # loop0
    (("b", 8, 0, "r"), False),     # sda
    (("b", 253, 0, "w"), False),   # zram0 / dm-0
    (("c", 10, 200, "rw"), False),  # /dev/net/tun (not in runc >= 1.2's list)
    (("c", 1, 1, "r"), False),     # /dev/mem
    (("c", 5, 1, "rw"), False),    # /dev/console
    (("c", 1, 3, "rwm"), True),
]


@pytest.mark.parametrize("device, allowed", DEFAULT_TABLE, ids=lambda x: str(x))
def test_the_default_list(device, allowed):
    assert DEFAULT.allows(*device) is allowed


def test_the_default_policy_is_deny_with_runc_s_exceptions():
    assert DEFAULT.default_allow is False
    assert [e.line() for e in DEFAULT.exceptions] == [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
        "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"]
    assert DEFAULT.v1_writes()[:2] == [("devices.deny", "a"), ("devices.allow", "c *:* m")]
    assert len(DEFAULT.v1_writes()) == 1 + len(DEFAULT_RULES)


FUSE = {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}

# bundle rules -> (device, allowed)
BUNDLE_TABLE = [
    ([FUSE], ("c", 10, 229, "rw"), True),
    ([FUSE], ("c", 10, 229, "m"), True),  # m from the default c *:* m
    ([{"allow": True, "type": "c", "major": 10, "access": "r"}], ("c", 10, 1, "r"), True),
    ([{"allow": True, "type": "c", "major": 10, "access": "r"}], ("c", 10, 1, "w"), False),
    # the usual first rule of a bundle (runc spec, containerd): the defaults come after it
    ([{"allow": False, "access": "rwm"}], ("c", 1, 3, "rw"), True),
    ([{"allow": False, "access": "rwm"}, FUSE], ("c", 10, 229, "r"), True),
    # allow everything: then the later deny-all of nothing; the defaults keep only allows
    ([{"allow": True, "access": "rwm"}], ("b", 8, 0, "rw"), True),
    ([{"allow": True, "access": "rwm"}], ("c", 10, 200, "rw"), True),
    # a deny after an allow of the same device takes its access away again
    ([FUSE, {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"}],
     ("c", 10, 229, "w"), False),
    ([FUSE, {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"}],
     ("c", 10, 229, "r"), True),
]


@pytest.mark.parametrize("rules, device, allowed", BUNDLE_TABLE)
def test_bundle_rules_in_order(rules, device, allowed):
    assert policy(parse(rules)).allows(*device) is allowed


def test_a_bundle_cannot_deny_a_default_device():
    """runc appends the defaults after the bundle's rules: /dev/null stays usable."""
    deny_null = [{"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    assert policy(parse(deny_null)).allows("c", 1, 3, "rw")


def test_no_hole_in_a_wildcard_exception():
    """As in the v1 controller (and runc's emulator): a deny for one device does not cut it
    out of an allowed wildcard."""
    got = compile([Rule(False), Rule(True, "c", 10, None, "rw"), Rule(False, "c", 10, 229, "rw")])
    assert got.allows("c", 10, 229, "r")
    assert [e.line() for e in got.exceptions] == ["c 10:* rw"]


def test_created_nodes_are_allowed():
    got = policy(created=(("c", 10, 229), ("b", 7, 0), ("u", 4, 64), ("p", 0, 0)))
    assert got.allows("c", 10, 229, "rw") and got.allows("b", 7, 0, "rw")
    assert got.allows("c", 4, 64, "r")
    assert not got.allows("b", 7, 1, "r")


def test_privileged_allows_everything():
    got = policy(parse([{"allow": False, "access": "rwm"}]), privileged=True)
    assert got == Policy(True, ())
    assert got.allows("b", 8, 0, "rwm")
    assert got.v1_writes() == [("devices.allow", "a")]


def test_a_default_allow_policy_lists_its_denials():
    got = compile([Rule(True), Rule(False, "b", 8, None, "rw")])
    assert got.v1_writes() == [("devices.allow", "a"), ("devices.deny", "b 8:* rw")]
    assert not got.allows("b", 8, 1, "r") and got.allows("b", 8, 1, "m")


def test_access_merges_for_the_same_device():
    got = compile([Rule(False), Rule(True, "c", 1, 3, "r"), Rule(True, "c", 1, 3, "w")])
    assert [e.line() for e in got.exceptions] == ["c 1:3 rw"]


@pytest.mark.parametrize("raw, message", [
    ("x", 'linux.resources.devices: expected a list, got "x"'),
    ([1], "linux.resources.devices[0]: expected {allow, type, major, minor, access}"),
    ([{"allow": "yes"}], 'linux.resources.devices[0].allow: expected true or false, got "yes"'),
    ([{"allow": True, "type": "u"}], 'linux.resources.devices[0].type: must be a, c or b, '
                                     'not "u"'),
    ([{"allow": True, "access": "rx"}], 'linux.resources.devices[0].access: must be letters '
                                        'of rwm, not "rx"'),
    ([{"allow": True, "access": ""}], 'linux.resources.devices[0].access: must be letters '
                                      'of rwm, not ""'),
    ([{"allow": True, "major": "1"}], 'linux.resources.devices[0].major: expected a device '
                                      'number, got "1"'),
    ([{"allow": True, "minor": -5}], "linux.resources.devices[0].minor: expected a device "
                                     "number, got -5"),
    ([{"allow": True, "path": "/dev/x"}], "linux.resources.devices[0]: expected"),
])
def test_bad_rules_name_the_field(raw, message):
    with pytest.raises(BundleError) as e:
        parse(raw)
    assert str(e.value).startswith(message)


def test_wildcards_and_defaults_of_a_rule():
    assert parse([{"allow": True, "type": "c", "major": -1}]) == (Rule(True, "c", None, None),)
    assert parse(None) == ()
    assert devices.Rule(True, "b", 8, 0, "rm").line() == "b 8:0 rm"
