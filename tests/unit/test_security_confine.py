"""The bundle's OCI security fields + the pod's securityContext → Confinement (no root, no
kernel: host facts are injected). Integration tests check that the child applies it."""

from __future__ import annotations

import copy

import msgspec
import pytest

from nsrun import native
from nsrun.bundle import security
from nsrun.bundle.capabilities import cap_list
from nsrun.bundle.security import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    HostFacts,
    PodContext,
    cap_mask,
    confine,
)
from nsrun.core.spec import Capabilities, PodSecurityContext, SecurityContext
from nsrun.errors import BundleError
from nsrun.request import CapSets, Device

ALL = (1 << (max(native.CAPABILITIES.values()) + 1)) - 1
SYS_RESOURCE = 1 << native.CAPABILITIES["CAP_SYS_RESOURCE"]
NOFILE = security.RLIMITS["RLIMIT_NOFILE"]
# Like this host: everything but CAP_SYS_RESOURCE, NOFILE hard limit 20000.
HOST = HostFacts(capabilities=ALL & ~SYS_RESOURCE, sys_resource=False,
                 rlimits={NOFILE: (1024, 20000), security.RLIMITS["RLIMIT_CORE"]:
                          (0, native.RLIM_INFINITY)},
                 nr_open=1048576, oom_score_adj=0, apparmor=False, selinux=False)
WHERE = "/b/config.json"
# What containerd gives a Kubernetes pod: the 14 default capabilities.
POD_DEFAULT = cap_mask(("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                        "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"))


def conf(config: dict | None = None, sc: SecurityContext | None = None,
         pod_sc: PodSecurityContext | None = None, host: HostFacts = HOST):
    pod = PodContext("app", "p_default(u1)", sc, pod_sc)
    return confine(config or {}, WHERE, pod, host)


def fails(message: str, config: dict | None = None, **kw) -> None:
    with pytest.raises(BundleError) as info:
        conf(config, **kw)
    assert message in str(info.value), str(info.value)


def caps(**sets: list[str]) -> dict:
    return {"process": {"capabilities": sets}}


# ---- defaults ---------------------------------------------------------------------------


def test_a_bundle_without_capabilities_gets_the_pod_default_set_not_root_full_set() -> None:
    c = conf({"process": {"args": ["sh"]}})
    assert c.capabilities == CapSets(POD_DEFAULT, POD_DEFAULT, POD_DEFAULT, 0, 0)
    assert "CAP_SYS_ADMIN" not in cap_list(c.capabilities.bounding)
    assert len(cap_list(c.capabilities.bounding)) == 14
    assert c.masked_paths == DEFAULT_MASKED_PATHS and "/proc/kcore" in c.masked_paths
    assert c.readonly_paths == DEFAULT_READONLY_PATHS and "/proc/sys" in c.readonly_paths
    assert (c.uid, c.gid, c.additional_gids, c.umask) == (0, 0, (), 0o022)
    assert not c.no_new_privileges and c.seccomp is None and not c.privileged


def test_explicit_empty_lists_mean_none() -> None:
    c = conf({"process": {"capabilities": {}}, "linux": {"maskedPaths": [],
                                                          "readonlyPaths": []}})
    assert c.capabilities == CapSets()
    assert c.masked_paths == () and c.readonly_paths == ()


def test_bundle_fields_are_taken_as_given() -> None:
    c = conf({"process": {
        "user": {"uid": 1000, "gid": 1001, "additionalGids": [5, 6], "umask": 0o027},
        "noNewPrivileges": True, "oomScoreAdj": 500,
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
        "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                         "effective": ["CAP_NET_BIND_SERVICE"],
                         "permitted": ["CAP_NET_BIND_SERVICE"],
                         "inheritable": ["CAP_NET_BIND_SERVICE"],
                         "ambient": ["CAP_NET_BIND_SERVICE"]}},
        "root": {"readonly": True},
        "linux": {"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"},
                  "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                               "fileMode": 0o600, "uid": 1000}],
                  "rootfsPropagation": "rslave", "maskedPaths": ["/proc/keys"]}})
    nbs = cap_mask(("CAP_NET_BIND_SERVICE",))
    assert c.capabilities == CapSets(nbs | 1, nbs, nbs, nbs, nbs)
    assert (c.uid, c.gid, c.additional_gids, c.umask) == (1000, 1001, (5, 6), 0o027)
    assert c.no_new_privileges and c.readonly_root and c.oom_score_adj == 500
    assert c.rlimits == ((NOFILE, 100, 200),)
    assert c.sysctls == (("net.ipv4.ip_forward", "1"), ("kernel.shmmax", "65536"))
    assert [(d.path, d.kind, d.major, d.minor, d.mode, d.uid) for d in c.devices] == [
        ("/dev/fuse", "c", 10, 229, 0o600, 1000)]
    assert c.rootfs_propagation == native.MS_SLAVE | native.MS_REC
    assert c.masked_paths == ("/proc/keys",)


# ---- bad bundles: the field is named ---------------------------------------------------


@pytest.mark.parametrize("config, message", [
    (caps(bounding=["CAP_CHOWN", "CAP_FLY"]),
     'process.capabilities.bounding[1]: unknown capability "CAP_FLY"'),
    (caps(effective=["NET_ADMIN"]), 'process.capabilities.effective[0]: unknown capability '
                                    '"NET_ADMIN"'),
    (caps(permitted=["CAP_SYS_RESOURCE"]),
     "process.capabilities.permitted[0]: CAP_SYS_RESOURCE is not available to nsrun"),
    (caps(effective=["CAP_KILL"]),
     "process.capabilities.effective: CAP_KILL not in the permitted set"),
    (caps(inheritable=["CAP_KILL"], permitted=["CAP_KILL"]),
     "process.capabilities.inheritable: CAP_KILL not in the bounding set"),
    ({"process": {"capabilities": ["CAP_KILL"]}},
     "process.capabilities: expected object, got array"),
    ({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 30000}]}},
     "process.rlimits[0]: RLIMIT_NOFILE hard limit 30000 is above this host's 20000, and "
     "nsrun lacks CAP_SYS_RESOURCE to raise it"),
    ({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 200}]}},
     "process.rlimits[0]: RLIMIT_NOFILE soft limit 300 is above its hard limit 200"),
    ({"process": {"rlimits": [{"type": "RLIMIT_FLY", "soft": 1, "hard": 1}]}},
     'process.rlimits[0].type: unknown rlimit "RLIMIT_FLY"'),
    ({"process": {"rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                              {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]}},
     "process.rlimits[1].type: RLIMIT_CORE given twice"),
    ({"process": {"rlimits": [{"type": "RLIMIT_CORE", "soft": -1, "hard": 0}]}},
     "process.rlimits[0].soft: expected an unsigned 64-bit integer, got -1"),
    ({"process": {"user": {"uid": "root"}}}, "process.user.uid: expected integer, got string"),
    ({"process": {"user": {"uid": 0, "username": "root"}}}, "process.user.username"),
    ({"process": {"user": {"umask": 0o1777}}}, "process.user.umask: must be in 0..0777"),
    ({"process": {"oomScoreAdj": -500}},
     "process.oomScoreAdj: -500 is below nsrun's own 0, and nsrun lacks CAP_SYS_RESOURCE"),
    ({"process": {"oomScoreAdj": 2000}}, "process.oomScoreAdj: must be in -1000..1000"),
    ({"process": {"apparmorProfile": "docker-default"}},
     "process.apparmorProfile: AppArmor is not enabled on this host"),
    ({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}},
     "process.selinuxLabel: SELinux is not enabled on this host"),
    ({"linux": {"sysctl": {"vm.swappiness": "10"}}},
     "linux.sysctl.vm.swappiness: not a namespaced sysctl: it would change the host"),
    ({"linux": {"sysctl": {"kernel.hostname": "x"}}},
     "linux.sysctl.kernel.hostname: the pod's UTS namespace is shared: set spec.hostname"),
    ({"linux": {"sysctl": {"net..x": "1"}}}, "linux.sysctl.net..x: invalid sysctl key"),
    ({"linux": {"uidMappings": [{"containerID": 0, "hostID": 100000}]}},
     "linux.uidMappings[0].size: expected an unsigned 32-bit integer, got null"),
    ({"linux": {"gidMappings": [{"containerID": 0, "hostID": 1, "size": 0}]}},
     "linux.gidMappings[0].size: malformed mapping: size must be at least 1"),
    ({"linux": {"uidMappings": ["0:100000:65536"]}},
     "linux.uidMappings[0]: malformed mapping"),
    ({"linux": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}},
     "linux.uidMappings: mappings need a user namespace"),
    ({"linux": {"namespaces": [{"type": "user"}]}},
     "linux.uidMappings: a user namespace (linux.namespaces[0]) needs uidMappings"),
    ({"linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}},
     "linux.namespaces[0].path: joining an existing user namespace is not supported"),
    ({"linux": {"maskedPaths": ["proc/kcore"]}},
     'linux.maskedPaths[0]: expected an absolute path, got "proc/kcore"'),
    ({"linux": {"devices": [{"path": "/dev/x", "type": "q"}]}},
     'linux.devices[0].type: must be c, b, u or p, not "q"'),
    ({"linux": {"devices": [{"path": "/dev/x", "type": "c"}]}},
     "linux.devices[0]: a c, b or u device needs major and minor"),
    ({"linux": {"rootfsPropagation": "sideways"}}, "linux.rootfsPropagation: must be one of"),
])
def test_bad_bundle_names_file_and_field(config: dict, message: str) -> None:
    fails(f"{WHERE}: {message}", config)


def test_rlimits_within_the_host_and_with_sys_resource() -> None:
    lower = {"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20000},
                                     {"type": "RLIMIT_CORE", "soft": 0,
                                      "hard": native.RLIM_INFINITY}]}}
    assert len(conf(lower).rlimits) == 2
    higher = {"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 40000}]}}
    root_host = msgspec.structs.replace(HOST, sys_resource=True)
    assert conf(higher, host=root_host).rlimits == ((NOFILE, 1, 40000),)
    beyond = {"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2**21}]}}
    with pytest.raises(BundleError, match="above the kernel's fs.nr_open 1048576"):
        conf(beyond, host=root_host)


def test_ambient_caps_that_cannot_be_raised_are_dropped_with_a_warning() -> None:
    c = conf(caps(bounding=["CAP_KILL"], permitted=["CAP_KILL"], effective=["CAP_KILL"],
                  ambient=["CAP_KILL"]))  # runc spec's shape: ambient without inheritable
    assert c.capabilities.ambient == 0
    assert c.warnings == ("process.capabilities.ambient: CAP_KILL ignored: an ambient "
                          "capability must be permitted and inheritable",)


def test_mount_label_is_ignored_with_a_warning() -> None:
    assert conf({"linux": {"mountLabel": "system_u:object_r:x:s0"}}).warnings == (
        "linux.mountLabel ignored: SELinux is not enabled on this host",)


# ---- Kubernetes on top -------------------------------------------------------------------


def test_run_as_user_group_container_over_pod_over_bundle() -> None:
    bundle = {"process": {"user": {"uid": 5, "gid": 6, "additionalGids": [7]}}}
    assert (conf(bundle).uid, conf(bundle).gid) == (5, 6)
    pod = PodSecurityContext(run_as_user=100, run_as_group=101, supplemental_groups=[7, 8],
                             fs_group=9)
    c = conf(bundle, pod_sc=pod)
    assert (c.uid, c.gid, c.additional_gids) == (100, 101, (7, 8, 9))
    c = conf(bundle, sc=SecurityContext(run_as_user=200), pod_sc=pod)
    assert (c.uid, c.gid) == (200, 101)


def test_run_as_non_root_has_the_kubelet_messages() -> None:
    with pytest.raises(security.ContainerConfigError) as info:
        conf({}, sc=SecurityContext(run_as_non_root=True))
    assert str(info.value) == ('container has runAsNonRoot and image will run as root '
                               '(pod: "p_default(u1)", container: app)')
    assert info.value.reason == "CreateContainerConfigError"
    with pytest.raises(security.ContainerConfigError, match="container's runAsUser breaks "
                                                           "non-root policy"):
        conf({"process": {"user": {"uid": 1000}}},
             sc=SecurityContext(run_as_non_root=True, run_as_user=0))
    # the pod-level field counts too; a non-zero uid from anywhere passes
    with pytest.raises(security.ContainerConfigError):
        conf({}, pod_sc=PodSecurityContext(run_as_non_root=True))
    assert conf({"process": {"user": {"uid": 1000}}},
                pod_sc=PodSecurityContext(run_as_non_root=True)).uid == 1000
    assert conf({}, sc=SecurityContext(run_as_non_root=True, run_as_user=1)).uid == 1


def test_read_only_root_and_allow_privilege_escalation_win_over_the_bundle() -> None:
    bundle = {"root": {"readonly": True}, "process": {"noNewPrivileges": True}}
    c = conf(bundle, sc=SecurityContext(read_only_root_filesystem=False,
                                        allow_privilege_escalation=True))
    assert not c.readonly_root and not c.no_new_privileges
    c = conf({}, sc=SecurityContext(read_only_root_filesystem=True,
                                    allow_privilege_escalation=False))
    assert c.readonly_root and c.no_new_privileges
    assert conf(bundle, sc=SecurityContext()).no_new_privileges  # unset: the bundle's


def test_kubernetes_capability_names_add_and_drop() -> None:
    sc = SecurityContext(capabilities=Capabilities(add=["NET_ADMIN", "cap_sys_time"],
                                                   drop=["KILL"]))
    c = conf({}, sc=sc)
    want = POD_DEFAULT & ~cap_mask(("CAP_KILL",)) | cap_mask(("CAP_NET_ADMIN",
                                                               "CAP_SYS_TIME"))
    assert c.capabilities == CapSets(want, want, want, 0, 0)


def test_kubernetes_all_then_individual_names() -> None:
    drop_all = SecurityContext(capabilities=Capabilities(drop=["ALL"], add=["CHOWN"]))
    chown = cap_mask(("CAP_CHOWN",))
    assert conf({}, sc=drop_all).capabilities == CapSets(chown, chown, chown, 0, 0)
    add_all = SecurityContext(capabilities=Capabilities(add=["ALL"], drop=["NET_RAW"]))
    want = HOST.capabilities & ~cap_mask(("CAP_NET_RAW",))
    assert conf({}, sc=add_all).capabilities == CapSets(want, want, want, 0, 0)
    # drop ALL also clears what the bundle put in inheritable and ambient
    full = caps(bounding=["CAP_KILL"], permitted=["CAP_KILL"], inheritable=["CAP_KILL"],
                ambient=["CAP_KILL"])
    assert conf(full, sc=SecurityContext(capabilities=Capabilities(drop=["ALL"]))
                ).capabilities == CapSets()


@pytest.mark.parametrize("sc, message", [
    (SecurityContext(capabilities=Capabilities(add=["FLY"])),
     'securityContext.capabilities.add[0]: unknown capability "FLY"'),
    (SecurityContext(capabilities=Capabilities(drop=["KILL", 7])),
     "securityContext.capabilities.drop[1]: capability must be a string"),
    (SecurityContext(privileged=True, allow_privilege_escalation=False),
     "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"),
    (SecurityContext(allow_privilege_escalation=False,
                     capabilities=Capabilities(add=["SYS_ADMIN"])),
     "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"),
])
def test_bad_security_context(sc: SecurityContext, message: str) -> None:
    fails(message, sc=sc)


def test_a_capability_nsrun_lacks_is_the_hosts_limit_not_a_bad_manifest() -> None:
    from nsrun.errors import PreflightError

    sc = SecurityContext(capabilities=Capabilities(add=["ALL", "KILL", "SYS_RESOURCE"]))
    with pytest.raises(PreflightError, match=r"capabilities.add\[2\]: CAP_SYS_RESOURCE is "
                                             "not available to nsrun on this host"):
        conf({}, sc=sc)


def test_privileged_gets_everything_nsrun_holds() -> None:
    host = msgspec.structs.replace(HOST, devices=(Device("/dev/sda", "b", 8, 0),))
    bundle = {"process": {"noNewPrivileges": True, "capabilities": {}},
              "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"},
                        "maskedPaths": ["/proc/kcore"]}}
    c = conf(bundle, sc=SecurityContext(privileged=True,
                                        capabilities=Capabilities(drop=["ALL"])), host=host)
    assert c.privileged
    assert c.capabilities == CapSets(HOST.capabilities, HOST.capabilities, HOST.capabilities)
    assert not c.capabilities.bounding & SYS_RESOURCE  # nsrun cannot give what it lacks
    assert (c.seccomp, c.masked_paths, c.readonly_paths) == (None, (), ())
    assert not c.no_new_privileges
    assert [d.path for d in c.devices] == ["/dev/sda"]
    assert "capabilities ignored" in c.warnings[0]


# ---- seccomp ----------------------------------------------------------------------------


@pytest.fixture(autouse=False)
def libseccomp() -> None:
    pytest.importorskip("pyseccomp", reason="pyseccomp (libseccomp.so.2) not installed")


PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64",
                                                               "SCMP_ARCH_X86"],
           "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall"],
                         "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
                        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
                         "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_EQ"},
                                  {"index": 2, "value": 0o600, "op": "SCMP_CMP_EQ"}]},
                        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}


def test_seccomp_profile_compiles_to_bpf_once(libseccomp: None) -> None:
    c = conf({"linux": {"seccomp": PROFILE}})
    assert c.seccomp is not None and c.seccomp.flags == 0
    assert len(c.seccomp.bpf) % 8 == 0 and len(c.seccomp.bpf) > 8
    again = conf({"linux": {"seccomp": copy.deepcopy(PROFILE)}})
    assert again.seccomp is not None and again.seccomp.bpf is c.seccomp.bpf  # cached
    flagged = conf({"linux": {"seccomp": {**PROFILE, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}}})
    assert flagged.seccomp is not None and flagged.seccomp.flags == native.SECCOMP_FILTER_FLAG_LOG


@pytest.mark.parametrize("profile, message", [
    ({"defaultAction": "SCMP_ACT_MAYBE"},
     'linux.seccomp.defaultAction: invalid seccomp action "SCMP_ACT_MAYBE"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
                                                       "action": "SCMP_ACT_DENY"}]},
     'linux.seccomp.syscalls[0].action: invalid seccomp action "SCMP_ACT_DENY"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_KILL"}]},
     "linux.seccomp.syscalls[0].names: expected a non-empty list"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     'linux.seccomp.architectures[0]: unknown architecture "SCMP_ARCH_Z80"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_KILL",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]},
     'linux.seccomp.syscalls[0].args[0].op: invalid comparison "SCMP_CMP_ABOUT"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_KILL",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: a syscall has arguments 0..5, not 6"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000},
     "linux.seccomp.defaultErrnoRet: expected an unsigned 16-bit integer"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"},
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY needs a seccomp agent"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"},
     "linux.seccomp.listenerPath: seccomp agents are not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]},
     'linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"'),
])
def test_bad_seccomp_profile(libseccomp: None, profile: dict, message: str) -> None:
    fails(f"{WHERE}: {message}", {"linux": {"seccomp": profile}})


# ---- the launcher's pre-start check of a whole pod ---------------------------------------------


def test_check_pod_names_the_container_and_skips_missing_images(tmp_path) -> None:
    import json

    from nsrun.bundle.images import ImageStore
    from nsrun.core.manifest import load_pods
    from nsrun.runtime import launcher

    def bundle(name: str, config: dict) -> None:
        d = tmp_path / name / "latest"
        (d / "rootfs").mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"process": {"args": ["sh"]}, **config}))

    bundle("good", {"linux": {"mountLabel": "x"}})
    bundle("bad", {"process": {"args": ["sh"], "capabilities": {"bounding": ["CAP_FLY"]}}})
    pod = load_pods("""
metadata: {name: p}
spec:
  initContainers: [{name: init, image: good}, {name: gone, image: missing}]
  containers: [{name: app, image: bad}]
""")[0]
    store = ImageStore(tmp_path)
    with pytest.raises(BundleError) as info:
        launcher.check_pod(pod, store)
    assert str(info.value) == (f'container "app": {tmp_path}/bad/latest/config.json: '
                               'process.capabilities.bounding[0]: unknown capability "CAP_FLY"')
    pod.spec.containers[0].image = "good"
    warnings = launcher.check_pod(pod, store)
    assert [w.split(": linux.mountLabel ignored: ")[0] for w in warnings] == [
        'init container "init"', 'container "app"']
