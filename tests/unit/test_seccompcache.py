"""Compiled seccomp programs on disk (``bundle.seccompcache``): a hit is the stored
program, anything else a miss; ``seccomp_of`` reads the cache before compiling."""

from __future__ import annotations

import json

from nsrun.bundle import ociseccomp, seccompcache
from nsrun.bundle.configfields import Fields

PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}


def test_a_stored_program_is_found_again(tmp_path):
    name = seccompcache.key("profile")
    assert seccompcache.load(str(tmp_path), name) is None
    seccompcache.store(str(tmp_path), name, (b"\x06\0\0\0\0\0\xff\x7f", 4))
    assert seccompcache.load(str(tmp_path), name) == (b"\x06\0\0\0\0\0\xff\x7f", 4)


def test_keys_differ_by_profile_and_no_dir_means_no_cache(tmp_path):
    assert seccompcache.key("a") != seccompcache.key("b")
    assert seccompcache.key("a") == seccompcache.key("a")
    seccompcache.store("", "x", (b"12345678", 0))
    assert seccompcache.load("", "x") is None


def test_a_short_or_torn_file_is_a_miss(tmp_path):
    for data in (b"", b"\0\0\0\0", b"\0\0\0\0" + b"123"):
        (tmp_path / "k").write_bytes(data)
        assert seccompcache.load(str(tmp_path), "k") is None


def test_seccomp_of_takes_the_cached_program_without_compiling(tmp_path):
    """The stored program is not what libseccomp would make of the profile: getting it
    back proves it was read, not compiled."""
    key = json.dumps(PROFILE, sort_keys=True)
    fake = (b"\x06\0\0\0\0\0\xff\x7f" * 2, 0)
    seccompcache.store(str(tmp_path), seccompcache.key(key), fake)
    ociseccomp._SECCOMP_CACHE.clear()
    got = ociseccomp.seccomp_of(Fields({"linux": {"seccomp": PROFILE}}, "config.json"),
                                str(tmp_path))
    assert (got.bpf, got.flags) == fake
    ociseccomp._SECCOMP_CACHE.clear()


def test_a_compiled_program_is_stored(tmp_path):
    ociseccomp._SECCOMP_CACHE.clear()
    got = ociseccomp.seccomp_of(Fields({"linux": {"seccomp": PROFILE}}, "config.json"),
                                str(tmp_path))
    ociseccomp._SECCOMP_CACHE.clear()
    name = seccompcache.key(json.dumps(PROFILE, sort_keys=True))
    assert seccompcache.load(str(tmp_path), name) == (got.bpf, got.flags)
    assert len(got.bpf) % 8 == 0 and got.bpf
