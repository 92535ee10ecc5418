"""The ``RuntimeDefault`` seccomp profile: containerd's default profile
(``contrib/seccomp/seccomp_default.go``, containerd 2.x), as OCI ``linux.seccomp`` data that
``bundle.security`` compiles with pyseccomp. Data only (pure); written here from containerd's
documented behaviour.

* Default action ``SCMP_ACT_ERRNO`` (EPERM); the architectures of this machine's family
  (x86_64 also filters x86 and x32 calls, aarch64 also arm, ...).
* An allow-list of ordinary calls; ``personality`` only for the personalities containerd
  allows (0, 8, 0x20000, 0x20008, 0xffffffff: query); ``socket`` for every address family but
  ``AF_ALG`` (38) and ``AF_VSOCK`` (40), as three range rules (one comparison per rule);
  ``ptrace`` (the kernel closed the seccomp bypass in 4.8, so containerd allows it there);
  per-architecture extras.
* Capability-conditional rules, by the container's **bounding** set as containerd reads it:
  CAP_SYS_ADMIN opens mount, unshare, setns, clone with namespace flags, clone3, bpf,
  perf_event_open, ...; CAP_SYS_PTRACE opens process_vm_readv/writev, kcmp, pidfd_getfd;
  CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_CHROOT, CAP_SYS_PACCT, CAP_SYS_RAWIO, CAP_SYS_TIME,
  CAP_SYS_TTY_CONFIG, CAP_SYSLOG, CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH their own calls.
  Without CAP_SYS_ADMIN, ``clone`` is allowed only without CLONE_NEW* flags, and ``clone3``
  fails with ENOSYS (so a libc falls back to clone, whose flags can be checked).
* Not in the list, so EPERM: keyctl, add_key, request_key, unshare, mount, bpf, userfaultfd,
  perf_event_open, kexec_*, open_by_handle_at, ... (unless a capability above opens them).
"""

from __future__ import annotations

import platform

ALLOW, ERRNO = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"
ENOSYS = 38
AF_ALG, AF_VSOCK = 38, 40
# CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 \
    | 0x40000000 | 0x02000000

ALLOWED = tuple("""
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64
futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday
getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr
_llseek lremovexattr lseek lsetxattr lstat lstat64 madvise  membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl
pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64
recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid
setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr
shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
waitpid write writev
""".split())

PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)

# platform.machine() -> (OCI architectures, extra calls of that architecture)
ARCHES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "x86_64": (("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
               ("arch_prctl", "modify_ldt")),
    "i686": (("SCMP_ARCH_X86",), ("modify_ldt",)),
    "aarch64": (("SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"),
                ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                 "cacheflush", "set_tls")),
    "ppc64le": (("SCMP_ARCH_PPC64LE",), ("sync_file_range2", "swapcontext")),
    "s390x": (("SCMP_ARCH_S390", "SCMP_ARCH_S390X"),
              ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr")),
    "riscv64": (("SCMP_ARCH_RISCV64",), ("riscv_flush_icache",)),
}

BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_ADMIN": ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
                      "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
                      "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
                      "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
                      "unshare"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                       "process_vm_writev", "ptrace"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}


def _rule(names: tuple[str, ...] | list[str], action: str = ALLOW, args: tuple = (),
          errno_ret: int | None = None) -> dict:
    rule: dict = {"names": list(names), "action": action}
    if args:
        rule["args"] = [dict(a) for a in args]
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    return rule


def _arg(index: int, op: str, value: int, value_two: int = 0) -> dict:
    return {"index": index, "op": op, "value": value, "valueTwo": value_two}


def _socket_rules() -> list[dict]:
    """Every address family but AF_ALG and AF_VSOCK (seccomp ANDs a rule's comparisons, so
    one rule per range)."""
    return [_rule(["socket"], args=(_arg(0, "SCMP_CMP_LT", AF_ALG),)),
            _rule(["socket"], args=(_arg(0, "SCMP_CMP_EQ", AF_ALG + 1),)),
            _rule(["socket"], args=(_arg(0, "SCMP_CMP_GT", AF_VSOCK),))]


def profile(bounding: frozenset[str] | set[str], machine: str | None = None) -> dict:
    """The OCI ``linux.seccomp`` of ``RuntimeDefault`` for a container whose bounding set
    holds the capabilities ``bounding`` (kernel names) on ``machine`` (default: this one)."""
    arches, extra = ARCHES.get(machine or platform.machine(), ((), ()))
    syscalls = [_rule(ALLOWED),
                *(_rule(["personality"], args=(_arg(0, "SCMP_CMP_EQ", p),))
                  for p in PERSONALITIES),
                *_socket_rules(), _rule(["ptrace"])]
    if extra:
        syscalls.append(_rule(extra))
    for cap, names in BY_CAPABILITY.items():
        if cap in bounding:
            syscalls.append(_rule(names))
    if "CAP_SYS_ADMIN" not in bounding:
        index = 1 if (machine or platform.machine()) == "s390x" else 0  # s390: flags 2nd
        syscalls.append(_rule(["clone"], args=(
            _arg(index, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS, 0),)))
        syscalls.append(_rule(["clone3"], ERRNO, errno_ret=ENOSYS))
    return {"defaultAction": ERRNO, "architectures": list(arches), "syscalls": syscalls}
