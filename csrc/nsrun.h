/* nsrun native layer: shared types and the child's step table.
 *
 * Everything between clone() and execve() lives in C: no Python runs in the child. The parent
 * (Python, via cffi) prepares every buffer in a struct nsr_spawn_req; the child only reads
 * it and makes async-signal-safe system calls, one small named step at a time. A failing
 * step writes a struct nsr_report {step, errno, index} to a CLOEXEC pipe and _exit(127)s.
 *
 * The child never calls malloc, stdio or any glibc function that takes a lock: it is a
 * fork-like copy of a (possibly multi-threaded) Python process, and another thread may
 * have held any lock at the instant of the clone.
 */
#ifndef NSRUN_H
#define NSRUN_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

/* Newer than some libc headers (after <sys/wait.h>, whose idtype_t may hold P_PIDFD). */
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Step ids. The child steps come first, in the order the child runs them; Python reads
 * their names (nsr_step_name) from here (nsrun.native.STEPS). Parent-side failures use
 * the ids after NSR_CHILD_STEPS. */
enum nsr_step {
    NSR_STEP_SIGNALS = 0,   /* reset signal dispositions, unblock signals */
    NSR_STEP_SETSID,        /* own session: terminal signals of the supervisor stay there */
    NSR_STEP_SETNS,         /* join each given namespace (index = which one) */
    NSR_STEP_SYSCTL,        /* write namespaced sysctls of the joined namespaces (index) */
    NSR_STEP_OOM_SCORE_ADJ, /* /proc/self/oom_score_adj */
    NSR_STEP_USERNS,        /* user namespace only: unshare it, wait for the parent's maps */
    NSR_STEP_UNSHARE,       /* user namespace only: mount/pid/uts namespaces owned by it */
    NSR_STEP_FORK,          /* user namespace only: the pid 1 of the new pid namespace */
    NSR_STEP_MOUNT_PRIVATE, /* MS_REC|MS_PRIVATE on / of the new mount namespace */
    NSR_STEP_BIND_ROOTFS,   /* bind the rootfs onto itself: pivot_root needs a mount point */
    NSR_STEP_SUBPATH,       /* resolve (and make) a bind's subPath inside its volume (index) */
    NSR_STEP_MOUNTPOINT,    /* resolve in the rootfs, mkdir -p (or an empty file) (index) */
    NSR_STEP_MOUNT,         /* mount / remount / propagation of a mount (index) */
    NSR_STEP_POPULATE_DEV,  /* device nodes (bind of the host node) and /dev symlinks */
    NSR_STEP_DEVICES,       /* mknod of the requested device nodes (index) */
    NSR_STEP_MASKED_PATHS,  /* /dev/null or a read-only tmpfs over each path (index) */
    NSR_STEP_READONLY_PATHS,/* read-only bind of each path onto itself (index) */
    NSR_STEP_STOP_HOOKS,    /* stops.hooks: wait while the runtime runs its hooks (oci.c) */
    NSR_STEP_PIVOT_ROOT,
    NSR_STEP_ROOTFS_PROPAGATION,
    NSR_STEP_READONLY_ROOT,
    NSR_STEP_SETHOSTNAME,
    NSR_STEP_BOUNDING,      /* drop capabilities from the bounding set (index = cap) */
    NSR_STEP_SETGROUPS,
    NSR_STEP_SETGID,
    NSR_STEP_SETUID,
    NSR_STEP_CHDIR,
    NSR_STEP_UMASK,
    NSR_STEP_STDIO,
    NSR_STEP_CONSOLE,       /* a pty of the container's devpts; master sent away (oci.c) */
    NSR_STEP_CTTY,          /* fd 0 becomes the controlling terminal (a tty exec) */
    NSR_STEP_CLOSE_FDS,
    NSR_STEP_RLIMITS,       /* prlimit of each requested resource (index) */
    NSR_STEP_NO_NEW_PRIVS,
    NSR_STEP_SECCOMP,       /* load the BPF program the parent built */
    NSR_STEP_CAPSET,        /* effective, permitted, inheritable */
    NSR_STEP_AMBIENT,       /* raise each ambient capability (index = cap) */
    NSR_STEP_WAIT_START,    /* stops.start: wait for `start` (oci.c) */
    NSR_STEP_EXECVE,
    NSR_CHILD_STEPS,
    /* parent side */
    NSR_STEP_PIPE = NSR_CHILD_STEPS,
    NSR_STEP_CLONE,
    NSR_STEP_CGROUP_ATTACH, /* fallback path or cgroup v1: write the pid to cgroup.procs
                             * (index: -1 cgroup_fd, i the i-th cgroup_join_fds) */
    NSR_STEP_PIDFD_OPEN,    /* fallback path */
    NSR_STEP_WAIT,          /* reading the report pipe / reaping a failed child */
    NSR_STEP_LO_UP,         /* sandbox helper: bring lo up */
    NSR_STEP_OPEN_NS,       /* sandbox: open /proc/<pid>/ns/<name> */
    NSR_STEP_PDEATHSIG,     /* pause process: PR_SET_PDEATHSIG */
    NSR_STEP_SOCKET,        /* socket_in_netns: the thread, or socket() itself */
    NSR_STEP_ID_MAP,        /* user namespace: writing /proc/<pid>/uid_map, gid_map */
    NSR_STEP_COUNT
};

/* How the container process is created (tests force each path). */
enum nsr_clone_mode {
    NSR_CLONE_AUTO = 0,     /* clone3 CLONE_VM|CLONE_VFORK where there is a trampoline */
    NSR_CLONE_FALLBACK = 1, /* as without clone3: clone, cgroup.procs, pidfd_open, "go" */
    NSR_CLONE_FORK = 2,     /* clone3 without CLONE_VM (copies the page tables) */
};

/* One mount. The target is a path inside the container, resolved by the child in the rootfs
 * as if the rootfs were "/" (openat2 RESOLVE_IN_ROOT, after the mounts before it): a symlink
 * in the image can never send a mount, a mkdir or a write outside the rootfs. */
struct nsr_mount {
    const char *source;      /* host path for binds, or the fs source ("proc", "tmpfs") */
    const char *target;      /* absolute path inside the container */
    const char *fstype;      /* NULL or "" for a bind mount */
    unsigned long flags;     /* MS_* without propagation bits */
    unsigned long propagation; /* MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE [|MS_REC] */
    const char *data;        /* NULL or fs options */
    const char *sub_path;    /* NULL, or (bind) the source is this path inside `source`, resolved
                              * there as in a root and made as a directory when missing */
};

/* A device node to create (mknod) inside the container. */
struct nsr_device {
    const char *path;        /* absolute path inside the container */
    uint32_t mode;           /* S_IFCHR / S_IFBLK / S_IFIFO | permission bits */
    uint32_t uid, gid;
    uint64_t rdev;           /* makedev(major, minor) */
};

/* One rlimit (prlimit64 semantics: RLIM_INFINITY is ~0). */
struct nsr_rlimit {
    int resource;
    uint64_t soft, hard;
};

/* Capability sets as bit masks (bit n = capability n). */
struct nsr_caps {
    uint64_t bounding, effective, permitted, inheritable, ambient;
};

struct nsr_spawn_req {
    char *const *argv;
    char *const *envp;
    char *const *exec_paths;  /* execve candidates in order (the PATH lookup), NULL-ended */
    const char *rootfs;       /* absolute, symlink-free host path */
    const char *cwd;
    uint32_t uid, gid;
    const uint32_t *groups;
    int ngroups;
    int rootfs_readonly;
    const struct nsr_mount *mounts;
    int nmounts;
    int populate_dev;
    const struct nsr_device *devices;
    int ndevices;
    char *const *masked_paths;   /* NULL-ended; a missing path is skipped */
    char *const *readonly_paths; /* NULL-ended; a missing path is skipped */
    unsigned long rootfs_propagation; /* 0: leave; else MS_* propagation [|MS_REC] for "/" */
    char *const *sysctl_paths;   /* /proc/sys/... files, NULL-ended */
    char *const *sysctl_values;  /* the value written to each */
    int set_oom_score_adj;
    int oom_score_adj;
    int umask;                /* -1: keep the parent's */
    const struct nsr_rlimit *rlimits;
    int nrlimits;
    int set_caps;             /* 0: leave capabilities alone (root keeps all of them) */
    struct nsr_caps caps;
    int no_new_privs;
    const void *seccomp_filter; /* struct sock_filter[], built by the parent (libseccomp) */
    uint32_t seccomp_len;       /* number of instructions; 0: no filter */
    uint32_t seccomp_flags;     /* SECCOMP_FILTER_FLAG_* */
    const char *hostname;     /* NULL: keep; set only with a new uts namespace */
    const int *ns_fds;        /* namespaces to join, with their CLONE_NEW* types */
    const int *ns_types;
    int nns;
    int new_pid_ns;
    int cgroup_fd;            /* -1: stay in the parent's cgroup */
    int stdio[3];             /* >= 0, prepared by the parent (e.g. /dev/null) */
    int clone_mode;           /* enum nsr_clone_mode */
    int ctty;                 /* 1: fd 0 (a tty) becomes the controlling terminal */
    int die_with_parent;      /* 1: SIGKILL when the supervisor dies (no cgroup to find it) */
    int new_user_ns;          /* 1: a user namespace (steps.c has the sequence) */
    const char *uid_map;      /* its /proc/<pid>/uid_map and gid_map text ("0 100000 65536\n") */
    const char *gid_map;
    /* cgroup v1: directory fds of the cgroups (one per hierarchy) the process joins before
     * execve. spawn: the child waits on the go pipe while the parent writes its pid into
     * each cgroup.procs (as runc does); exec_in: the intermediate moves itself into each. */
    const int *cgroup_join_fds;
    int ncgroup_join;
    /* OCI runtime (oci.c): stop points, a console, fds passed through. Zero: none. */
    int stops;                /* NSR_STOP_* bits; the child reads its go byte from stop_fd */
    int stop_fd;
    int console;              /* 1: a pty whose master goes to console_fd (a unix socket) */
    int console_fd;
    int preserve_fds;         /* fds 3 .. 3+n-1 stay open in the container */
    const char *session_keyring; /* NULL: keep the parent's (runc --no-new-keyring) */
};

/* One exception of a device allow-list (devices_bpf.c): type BPF_DEVCG_DEV_CHAR/BLOCK (0:
 * any), major/minor -1 for any, access BPF_DEVCG_ACC_* bits. */
struct nsr_dev_rule {
    int32_t type;
    int64_t major, minor;
    uint32_t access;
};

/* Stop points (req->stops) and the index of a "stopped" report (err 0). */
#define NSR_STOP_HOOKS 1
#define NSR_STOP_START 2
#define NSR_STOPPED (-2)

/* What the child reports on failure; also the parent's result on any failure. */
struct nsr_report {
    int32_t step;   /* enum nsr_step */
    int32_t err;    /* errno */
    int32_t index;  /* which mount / namespace / device, or -1 */
};

/* Per-child context handed to each step function. */
struct nsr_ctx {
    const struct nsr_spawn_req *req;
    int report_fd;  /* write end of the CLOEXEC report pipe */
    int step;       /* set by the driver; a step may refine it (mountpoint vs mount) */
    int index;
    int rootfd;     /* O_PATH fd of the bound rootfs (bind_rootfs .. pivot_root), else -1 */
    int sync_fd;    /* user namespace: the child's end of the socketpair to the parent */
};

typedef int (*nsr_step_fn)(struct nsr_ctx *ctx);

/* One entry of a step table (steps.c: a container; execin.c: a process joining one). */
struct nsr_step_entry {
    int step;
    nsr_step_fn fn;
};

/* The same layout as struct clone_args in <linux/sched.h> (CLONE_ARGS_SIZE_VER2); declared
 * here because glibc 2.36 has no clone3 wrapper and mixing <linux/sched.h> with <sched.h>
 * redefines macros. */
struct nsr_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    uint64_t set_tid, set_tid_size, cgroup;
};

/* public (cdef.h) */
int nsr_spawn(const struct nsr_spawn_req *req, int *pidfd_out, struct nsr_report *rep);
int nsr_spawn_stopped(const struct nsr_spawn_req *req, int *pidfd_out, int *report_fd_out,
                      struct nsr_report *rep);
/* A container's monitor (monitor.c): where its record and log go. */
struct nsr_monitor_req {
    int record_dirfd;         /* containers/<name>/ */
    const char *record_name;  /* <attempt>.json */
    int log_dirfd;            /* logs/<name>/ */
    const char *log_name;     /* <attempt>.log */
    int log_in_fd;            /* the read end of the container's stdout/stderr pipe */
    uint64_t log_max_size;    /* rotate beyond this many bytes (0: never) */
    int log_max_files;        /* files kept per attempt, the live one included */
    int die_with_parent;      /* no pod cgroup: the monitor (and so the container) dies with
                                 the supervisor, as nothing could find them after it */
    int cgroup_fd;            /* the cgroup the monitor moves itself into (-1: stays), and */
    const int *join_fds;      /* cgroup v1 directories it joins: the pod's, so that a */
    int njoin;                /* supervisor's unit stopping does not take it along */
    const char *exe;          /* the nsrun-monitor executable it execs (NULL: none) */
};

int nsr_spawn_monitored(const struct nsr_spawn_req *req, const struct nsr_monitor_req *m,
                        int *pidfd_out, int *monitor_pidfd_out, int *exec_err_out,
                        struct nsr_report *rep);
int nsr_spawn_any(const struct nsr_spawn_req *req, int *pidfd_out, int *report_out,
                  struct nsr_report *rep);
int nsr_exec_in(const struct nsr_spawn_req *req, int target_pidfd, unsigned int ns_flags,
                int *pidfd_out, struct nsr_report *rep);
int nsr_socket_in_netns(int net_fd, int family, int type, int protocol,
                        struct nsr_report *rep);
int nsr_sandbox_create(const char *hostname, int keep, int cgroup_fd, int fds[3],
                       int *pidfd_out, struct nsr_report *rep);
int nsr_has_clone3(void);
const char *nsr_step_name(int step);
int nsr_open_in_root(int rootfd, const char *path, int create);
int nsr_device_filter(int cgroup_fd, const struct nsr_dev_rule *rules, int n,
                      int default_allow, int replace_fd);

/* proc.c: process creation shared by spawn, exec_in and the sandbox helper */
pid_t nsr_clone(uint64_t flags, int cgroup_fd, int *pidfd_out, int use_clone3);
pid_t nsr_raw_clone(uint64_t flags);
int nsr_clone3_usable(void);
int nsr_pipe_high(int p[2]);
void nsr_close_pipe(int p[2]);
void nsr_reap(pid_t pid, int pidfd);
void nsr_set_report(struct nsr_report *rep, int step, int err, int index);
int nsr_read_report(int fd, struct nsr_report *rep);
int nsr_attach_self(int cgroup_fd);
int nsr_attach_self_v1(int cgroup_fd);
int nsr_sync_read(int fd, void *buf, size_t len);
int nsr_sync_write(int fd, const void *buf, size_t len);

/* spawn.c: the parent side of a spawn */
int nsr_clone_mode(const struct nsr_spawn_req *req);

/* steps.c: the child side: the step tables and their driver */
void nsr_run_steps(struct nsr_ctx *ctx, const struct nsr_step_entry *steps, size_t n)
    __attribute__((noreturn));
void nsr_child_main(const struct nsr_spawn_req *req, int report_fd, int go_read, int go_write,
                    int sync_fd) __attribute__((noreturn));

/* clone_vm.c */
int nsr_have_clone_vm(void);
pid_t nsr_clone_vm(uint64_t flags, int cgroup_fd, int *pidfd_out, int (*fn)(void *), void *arg);
void nsr_child_fail(struct nsr_ctx *ctx) __attribute__((noreturn));
void nsr_block_signals(void *old_set);
void nsr_restore_signals(const void *old_set);
int nsr_move_fd_high(int fd);

/* resolve.c: paths inside the rootfs */
#define NSR_CREATE_NONE 0
#define NSR_CREATE_DIR 1   /* missing parents and the last component as directories */
#define NSR_CREATE_FILE 2  /* missing parents as directories, the last as an empty file */
int nsr_fd_path(char buf[32], int fd);

/* exec.c: process-attribute steps */
int nsr_step_signals(struct nsr_ctx *ctx);
int nsr_join_session_keyring(const struct nsr_spawn_req *req);
int nsr_step_setsid(struct nsr_ctx *ctx);
int nsr_step_oom_score_adj(struct nsr_ctx *ctx);
int nsr_step_setgroups(struct nsr_ctx *ctx);
int nsr_step_setgid(struct nsr_ctx *ctx);
int nsr_step_setuid(struct nsr_ctx *ctx);
int nsr_step_chdir(struct nsr_ctx *ctx);
int nsr_step_umask(struct nsr_ctx *ctx);
int nsr_step_stdio(struct nsr_ctx *ctx);
int nsr_step_ctty(struct nsr_ctx *ctx);
int nsr_step_close_fds(struct nsr_ctx *ctx);
int nsr_close_range(unsigned int lo, unsigned int hi);
int nsr_step_rlimits(struct nsr_ctx *ctx);
int nsr_step_execve(struct nsr_ctx *ctx);

/* oci.c: stop points and the console */
int nsr_step_stop_hooks(struct nsr_ctx *ctx);
int nsr_step_console(struct nsr_ctx *ctx);
int nsr_step_wait_start(struct nsr_ctx *ctx);

/* caps.c: capabilities, no_new_privs, seccomp */
int nsr_step_bounding(struct nsr_ctx *ctx);
int nsr_step_no_new_privs(struct nsr_ctx *ctx);
int nsr_step_seccomp(struct nsr_ctx *ctx);
int nsr_step_capset(struct nsr_ctx *ctx);
int nsr_step_ambient(struct nsr_ctx *ctx);

/* ns.c: namespace steps */
int nsr_step_setns(struct nsr_ctx *ctx);
int nsr_step_sysctl(struct nsr_ctx *ctx);
int nsr_step_sethostname(struct nsr_ctx *ctx);

/* mount.c: filesystem steps */
int nsr_step_mount_private(struct nsr_ctx *ctx);
int nsr_step_bind_rootfs(struct nsr_ctx *ctx);
int nsr_step_mounts(struct nsr_ctx *ctx);
int nsr_step_populate_dev(struct nsr_ctx *ctx);
int nsr_step_devices(struct nsr_ctx *ctx);
int nsr_step_masked_paths(struct nsr_ctx *ctx);
int nsr_step_readonly_paths(struct nsr_ctx *ctx);
int nsr_step_pivot_root(struct nsr_ctx *ctx);
int nsr_step_rootfs_propagation(struct nsr_ctx *ctx);
int nsr_step_readonly_root(struct nsr_ctx *ctx);

#endif
