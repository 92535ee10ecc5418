"""RuntimeDefault (containerd's profile), the choice of a container's profile, the API
server's checks of ``seccompProfile`` and nodev/CAP_MKNOD hardening (pure, table tests)."""

from __future__ import annotations

import json

import pytest

from nsrun.bundle import hardening, seccomp_default, seccomp_select
from nsrun.bundle.seccomp_select import BUNDLE, Settings, choose
from nsrun.core.spec import PodSecurityContext, SeccompProfile, SecurityContext
from nsrun.core.validfields import seccomp_profile
from nsrun.errors import BundleError

ON, OFF = Settings(True, "/profiles"), Settings(False, "/profiles")


def names(profile: dict, action: str = "SCMP_ACT_ALLOW") -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == action and not r.get("args")
            for n in r["names"]}


def test_default_profile_denies_the_escapes_and_allows_the_ordinary():
    p = seccomp_default.profile(frozenset({"CAP_CHOWN", "CAP_NET_RAW"}), "x86_64")
    assert p["defaultAction"] == "SCMP_ACT_ERRNO"
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = names(p)
    for call in ("keyctl", "add_key", "request_key", "unshare", "mount", "bpf", "setns",
                 "perf_event_open", "process_vm_readv", "kexec_load", "userfaultfd", "socket"):
        assert call not in allowed, call
    assert {"read", "execve", "clone3"} - allowed == {"clone3"}
    assert {"arch_prctl", "modify_ldt", "ptrace"} <= allowed
    clone = [r for r in p["syscalls"] if r["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": 0x7E020000, "valueTwo": 0}]}]
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in p["syscalls"]
    socket = [r["args"][0] for r in p["syscalls"] if r["names"] == ["socket"]]
    assert [(a["op"], a["value"]) for a in socket] == [
        ("SCMP_CMP_LT", 38), ("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40)]
    personalities = [r["args"][0]["value"] for r in p["syscalls"] if r["names"] == ["personality"]]
    assert personalities == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]


@pytest.mark.parametrize(("cap", "opens"), [
    ("CAP_SYS_ADMIN", {"mount", "unshare", "setns", "bpf", "clone", "clone3"}),
    ("CAP_SYS_PTRACE", {"process_vm_readv", "kcmp", "pidfd_getfd"}),
    ("CAP_SYS_MODULE", {"init_module", "finit_module"}),
    ("CAP_BPF", {"bpf"}), ("CAP_PERFMON", {"perf_event_open"}), ("CAP_SYS_CHROOT", {"chroot"}),
])
def test_capabilities_open_their_calls(cap, opens):
    assert not opens & names(seccomp_default.profile(frozenset(), "x86_64"))
    p = seccomp_default.profile(frozenset({cap}), "x86_64")
    assert opens <= names(p)
    if cap == "CAP_SYS_ADMIN":  # no flag-checked clone, no ENOSYS clone3
        assert all(r["names"] not in (["clone3"],) or r["action"] == "SCMP_ACT_ALLOW"
                   for r in p["syscalls"])


def test_arch_handling():
    arm = seccomp_default.profile(frozenset(), "aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"]
    assert "set_tls" in names(arm) and "arch_prctl" not in names(arm)
    s390 = seccomp_default.profile(frozenset(), "s390x")
    assert [r["args"][0]["index"] for r in s390["syscalls"] if r["names"] == ["clone"]] == [1]


def sc(kind: str | None, local: str | None = None) -> SecurityContext:
    return SecurityContext(seccomp_profile=SeccompProfile(kind, local) if kind else None)


@pytest.mark.parametrize(("container", "pod", "settings", "bundle", "want"), [
    (None, None, ON, False, "default"),
    (None, None, OFF, False, BUNDLE),      # the kubelet's default: nothing
    (None, None, ON, True, BUNDLE),        # the image's own profile wins over the default
    ("Unconfined", None, ON, False, None),
    ("RuntimeDefault", None, OFF, True, "default"),
    (None, "RuntimeDefault", OFF, False, "default"),   # the pod's
    ("Unconfined", "RuntimeDefault", ON, False, None),  # the container's wins
])
def test_choice(container, pod, settings, bundle, want):
    pod_sc = PodSecurityContext(seccomp_profile=SeccompProfile(pod)) if pod else None
    got = choose(sc(container), pod_sc, settings, bundle, frozenset())
    assert got == (seccomp_default.profile(frozenset()) if want == "default" else want)


def test_localhost_profile(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "deny.json").write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    settings = Settings(True, str(tmp_path))
    assert choose(sc("Localhost", "p/deny.json"), None, settings, False, frozenset()) == {
        "defaultAction": "SCMP_ACT_ALLOW"}
    with pytest.raises(BundleError, match=r'cannot load seccomp profile ".*/p/none.json": '
                                          r"open .*: no such file or directory"):
        choose(sc("Localhost", "p/none.json"), None, settings, False, frozenset())


def test_settings_from_env():
    assert Settings.from_env({}) == Settings(True, seccomp_select.DEFAULT_PROFILE_ROOT)
    assert not Settings.from_env({"NSRUN_SECCOMP_DEFAULT": "false"}).default_on
    with pytest.raises(BundleError, match="expected true or false"):
        Settings.from_env({"NSRUN_SECCOMP_DEFAULT": "maybe"})


@pytest.mark.parametrize(("profile", "want"), [
    (SeccompProfile("RuntimeDefault"), []),
    (SeccompProfile(""), ["p.type: Required value: type is required when seccompProfile is set"]),
    (SeccompProfile("Foo"), ['p.type: Unsupported value: "Foo": supported values: "Localhost", '
                             '"RuntimeDefault", "Unconfined"']),
    (SeccompProfile("Localhost"), ["p.localhostProfile: Required value: must be set when "
                                   "seccomp type is Localhost"]),
    (SeccompProfile("Localhost", "/abs.json"), ['p.localhostProfile: Invalid value: '
                                                '"/abs.json": must be a relative path']),
    (SeccompProfile("Localhost", "../x.json"), ["p.localhostProfile: Invalid value: "
                                                "\"../x.json\": must not contain '..'"]),
    (SeccompProfile("Unconfined", "x.json"), ['p.localhostProfile: Invalid value: "x.json": '
                                              "can only be set when seccomp type is Localhost"]),
])
def test_api_server_checks(profile, want):
    assert [str(p) for p in seccomp_profile(profile, "p")] == want


def test_nodev_where_it_belongs(tmp_path):
    mounts = [{"destination": "/dev", "type": "tmpfs", "options": ["nosuid", "dev"]},
              {"destination": "/dev/pts", "type": "devpts", "options": []},
              {"destination": "/data", "type": "bind", "source": str(tmp_path),
               "options": ["rbind", "rw"]},
              {"destination": "/dev/null2", "type": "bind", "source": "/dev/null",
               "options": ["bind"]}]
    out = hardening.nodev(mounts, makes_nodes=False, privileged=False)
    assert [m["options"] for m in out] == [["nosuid", "nodev"], [], ["rbind", "rw", "nodev"],
                                           ["bind"]]
    made = hardening.nodev(mounts, makes_nodes=True, privileged=False)
    assert made[0]["options"] == ["nosuid", "dev"]
    assert hardening.nodev(mounts, makes_nodes=False, privileged=True) == mounts
