"""The bundle's ``linux.seccomp`` profile compiled to a BPF program: libseccomp (through
pyseccomp, imported only when a profile is given) does the compiling, with runc's
semantics (``defaultErrnoRet`` EPERM, rules repeating the default action skipped, syscalls
this kernel does not know skipped, one rule per comparison when an argument repeats).
Compiled programs are cached by profile (a pod's containers often share one), in memory and
in ``cache_dir`` (``bundle.seccompcache``: the next supervisor need not compile it again)."""

from __future__ import annotations

import errno
import json
import os
from typing import Any

import msgspec

from nsrun import native
from nsrun.bundle.configfields import Fields, json_type


class Seccomp(msgspec.Struct, frozen=True):
    """A compiled filter the child loads right before ``execve``."""

    bpf: bytes       # struct sock_filter[], for seccomp(SECCOMP_SET_MODE_FILTER)
    flags: int = 0   # SECCOMP_FILTER_FLAG_*


# linux.seccomp.flags nsrun applies (TSYNC: the child has one thread, nothing to synchronise).
_SECCOMP_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
_SECCOMP_CACHE: dict[str, tuple[bytes, int]] = {}


def seccomp_of(f: Fields, cache_dir: str = "") -> Seccomp | None:
    profile = f.get("linux.seccomp", dict)
    if profile is None:
        return None
    key = json.dumps(profile, sort_keys=True)
    cached = _SECCOMP_CACHE.get(key)
    if cached is None:
        cached = _compiled(f, profile, key, cache_dir)
        if len(_SECCOMP_CACHE) >= 32:
            _SECCOMP_CACHE.clear()
        _SECCOMP_CACHE[key] = cached
    return Seccomp(*cached)


def _compiled(f: Fields, profile: dict[str, Any], key: str, cache_dir: str) -> tuple[bytes, int]:
    from nsrun.bundle import seccompcache

    name = seccompcache.key(key) if cache_dir else ""
    program = seccompcache.load(cache_dir, name)
    if program is None:
        program = _build_seccomp(f, profile)
        seccompcache.store(cache_dir, name, program)
    return program


def _seccomp_action(f: Fields, where: str, name: Any, errno_ret: Any, default_errno: int,
                    sc: Any) -> int:
    if errno_ret is not None:
        f.uint(f"{where.rsplit('.', 1)[0]}.errnoRet", errno_ret, 16)
    ret = default_errno if errno_ret is None else errno_ret
    actions = {"SCMP_ACT_KILL": sc.KILL, "SCMP_ACT_KILL_THREAD": sc.KILL_THREAD,
               "SCMP_ACT_KILL_PROCESS": sc.KILL_PROCESS, "SCMP_ACT_TRAP": sc.TRAP,
               "SCMP_ACT_ALLOW": sc.ALLOW, "SCMP_ACT_LOG": sc.LOG}
    if name == "SCMP_ACT_ERRNO":
        return sc.ERRNO(ret)
    if name == "SCMP_ACT_TRACE":
        return sc.TRACE(ret)
    if name == "SCMP_ACT_NOTIFY":
        raise f.error(where, "SCMP_ACT_NOTIFY needs a seccomp agent; nsrun has none")
    if name not in actions:
        raise f.error(where, f"invalid seccomp action {json.dumps(name)} (one of "
                             f"{', '.join(sorted([*actions, 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE']))})")
    return actions[name]


def _build_seccomp(f: Fields, profile: dict[str, Any]) -> tuple[bytes, int]:
    """libseccomp (pyseccomp, imported only here) compiles the profile to BPF; the child
    loads it with seccomp(2) right before execve."""
    if profile.get("listenerPath"):
        raise f.error("linux.seccomp.listenerPath", "seccomp agents are not supported")
    flags = 0
    for i, flag in enumerate(f.get("linux.seccomp.flags", list, [])):
        if flag not in _SECCOMP_FLAGS:
            raise f.error(f"linux.seccomp.flags[{i}]", f"unknown flag {json.dumps(flag)}")
        flags |= 0 if flag == "SECCOMP_FILTER_FLAG_TSYNC" else getattr(native, flag)
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as err:
        raise f.error("linux.seccomp", f"cannot build the filter: pyseccomp/libseccomp "
                                       f"unavailable ({err})") from None
    default_errno = f.uint("linux.seccomp.defaultErrnoRet",
                           profile.get("defaultErrnoRet", 1), 16)  # EPERM, like runc
    default = _seccomp_action(f, "linux.seccomp.defaultAction", profile.get("defaultAction"),
                              None, default_errno, sc)
    filt = sc.SyscallFilter(default)
    try:  # libseccomp >= 2.5: a binary tree of syscall numbers, not a linear scan
        filt.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    except OSError:
        pass
    for i, arch in enumerate(f.get("linux.seccomp.architectures", list, [])):
        number = getattr(sc.Arch, arch.removeprefix("SCMP_ARCH_"), None) if isinstance(
            arch, str) and arch.startswith("SCMP_ARCH_") else None
        if number is None:
            raise f.error(f"linux.seccomp.architectures[{i}]",
                          f"unknown architecture {json.dumps(arch)}")
        try:
            if not filt.exist_arch(number):
                filt.add_arch(number)
        except OSError as err:
            raise f.error(f"linux.seccomp.architectures[{i}]", err.strerror) from None
    for i, rule in enumerate(f.get("linux.seccomp.syscalls", list, [])):
        _add_rule(f, filt, f"linux.seccomp.syscalls[{i}]", rule, default, sc)
    fd = os.memfd_create("nsrun-seccomp", os.MFD_CLOEXEC)
    with open(fd, "w+b", buffering=0) as out:
        filt.export_bpf(out)
        out.seek(0)
        bpf = out.read()
    return bpf, flags


def _add_rule(f: Fields, filt: Any, where: str, rule: Any, default: int, sc: Any) -> None:
    ops = {"SCMP_CMP_NE": sc.NE, "SCMP_CMP_LT": sc.LT, "SCMP_CMP_LE": sc.LE,
           "SCMP_CMP_EQ": sc.EQ, "SCMP_CMP_GE": sc.GE, "SCMP_CMP_GT": sc.GT,
           "SCMP_CMP_MASKED_EQ": sc.MASKED_EQ}
    if not isinstance(rule, dict):
        raise f.error(where, f"expected object, got {json_type(rule)}")
    names = rule.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise f.error(f"{where}.names", "expected a non-empty list of syscall names")
    action = _seccomp_action(f, f"{where}.action", rule.get("action"), rule.get("errnoRet"),
                             1, sc)
    args = []
    for j, arg in enumerate(rule.get("args") or []):
        at = f"{where}.args[{j}]"
        if not isinstance(arg, dict) or arg.get("op") not in ops:
            raise f.error(f"{at}.op", f"invalid comparison {json.dumps(arg.get('op') if isinstance(arg, dict) else arg)} "
                                      f"(one of {', '.join(ops)})")
        index = f.uint(f"{at}.index", arg.get("index"))
        if index > 5:
            raise f.error(f"{at}.index", f"a syscall has arguments 0..5, not {index}")
        args.append(sc.Arg(index, ops[arg["op"]], f.uint(f"{at}.value", arg.get("value", 0), 64),
                           f.uint(f"{at}.valueTwo", arg.get("valueTwo", 0), 64)))
    if action == default:
        return  # libseccomp refuses a rule that repeats the default action; runc skips it
    # libseccomp wants at most one comparison per argument in a rule: with repeats, one rule
    # per comparison (OR), as runc does.
    indexes = [a._arg for a in args]
    groups = [args] if len(set(indexes)) == len(indexes) else [[a] for a in args]
    for name in names:
        number = sc.resolve_syscall(sc.Arch.NATIVE, name)
        if number == -1:  # (< -1: a call of another architecture the filter may cover)
            continue  # unknown to libseccomp: skipped, like runc (profiles list many)
        for group in groups:
            try:
                filt.add_rule(action, number, *group)
            except OSError as err:
                if err.errno == errno.EEXIST:
                    continue  # the same rule again (podman's profiles repeat some): kept once
                raise f.error(where, f"syscall {name}: {err.strerror}") from None
