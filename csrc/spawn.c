/* spawn.c: the parent side of a container spawn (clone3 → read the report pipe) and the
 * child's step driver. See nsrun.h for the contract between the two. */
#include "nsrun.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static const char *const step_names[NSR_STEP_COUNT] = {
    [NSR_STEP_SIGNALS] = "signals",
    [NSR_STEP_SETSID] = "setsid",
    [NSR_STEP_SETNS] = "setns",
    [NSR_STEP_SYSCTL] = "sysctl",
    [NSR_STEP_OOM_SCORE_ADJ] = "oom_score_adj",
    [NSR_STEP_USERNS] = "userns",
    [NSR_STEP_UNSHARE] = "unshare",
    [NSR_STEP_FORK] = "fork",
    [NSR_STEP_MOUNT_PRIVATE] = "mount_private",
    [NSR_STEP_BIND_ROOTFS] = "bind_rootfs",
    [NSR_STEP_SUBPATH] = "subpath",
    [NSR_STEP_MOUNTPOINT] = "mountpoint",
    [NSR_STEP_MOUNT] = "mount",
    [NSR_STEP_POPULATE_DEV] = "populate_dev",
    [NSR_STEP_DEVICES] = "devices",
    [NSR_STEP_MASKED_PATHS] = "masked_paths",
    [NSR_STEP_READONLY_PATHS] = "readonly_paths",
    [NSR_STEP_STOP_HOOKS] = "stop_hooks",
    [NSR_STEP_PIVOT_ROOT] = "pivot_root",
    [NSR_STEP_ROOTFS_PROPAGATION] = "rootfs_propagation",
    [NSR_STEP_READONLY_ROOT] = "readonly_root",
    [NSR_STEP_SETHOSTNAME] = "sethostname",
    [NSR_STEP_BOUNDING] = "bounding",
    [NSR_STEP_SETGROUPS] = "setgroups",
    [NSR_STEP_SETGID] = "setgid",
    [NSR_STEP_SETUID] = "setuid",
    [NSR_STEP_CHDIR] = "chdir",
    [NSR_STEP_UMASK] = "umask",
    [NSR_STEP_STDIO] = "stdio",
    [NSR_STEP_CONSOLE] = "console",
    [NSR_STEP_CTTY] = "ctty",
    [NSR_STEP_CLOSE_FDS] = "close_fds",
    [NSR_STEP_RLIMITS] = "rlimits",
    [NSR_STEP_NO_NEW_PRIVS] = "no_new_privs",
    [NSR_STEP_SECCOMP] = "seccomp",
    [NSR_STEP_CAPSET] = "capset",
    [NSR_STEP_AMBIENT] = "ambient",
    [NSR_STEP_WAIT_START] = "wait_start",
    [NSR_STEP_EXECVE] = "execve",
    [NSR_STEP_PIPE] = "pipe",
    [NSR_STEP_CLONE] = "clone",
    [NSR_STEP_CGROUP_ATTACH] = "cgroup_attach",
    [NSR_STEP_PIDFD_OPEN] = "pidfd_open",
    [NSR_STEP_WAIT] = "wait",
    [NSR_STEP_LO_UP] = "lo_up",
    [NSR_STEP_OPEN_NS] = "open_ns",
    [NSR_STEP_PDEATHSIG] = "pdeathsig",
    [NSR_STEP_SOCKET] = "socket",
    [NSR_STEP_ID_MAP] = "id_map",
};

/* The child's steps, in the order it runs them. Each one skips itself when the request
 * does not ask for it; execve only returns on failure. */
static const struct nsr_step_entry child_steps[] = {
    {NSR_STEP_SIGNALS, nsr_step_signals},
    {NSR_STEP_SETSID, nsr_step_setsid},
    {NSR_STEP_SETNS, nsr_step_setns},
    {NSR_STEP_SYSCTL, nsr_step_sysctl},              /* after setns: the pod's namespaces */
    {NSR_STEP_OOM_SCORE_ADJ, nsr_step_oom_score_adj},/* while the host's /proc is here */
    {NSR_STEP_MOUNT_PRIVATE, nsr_step_mount_private},/* [5]: a user namespace's pid 1 starts here */
    {NSR_STEP_BIND_ROOTFS, nsr_step_bind_rootfs},
    {NSR_STEP_MOUNT, nsr_step_mounts},  /* reports "subpath", "mountpoint" or "mount" */
    {NSR_STEP_POPULATE_DEV, nsr_step_populate_dev},
    {NSR_STEP_DEVICES, nsr_step_devices},
    {NSR_STEP_MASKED_PATHS, nsr_step_masked_paths},   /* after the mounts they hide */
    {NSR_STEP_READONLY_PATHS, nsr_step_readonly_paths},
    {NSR_STEP_STOP_HOOKS, nsr_step_stop_hooks},      /* runtime hooks (oci.c) */
    {NSR_STEP_PIVOT_ROOT, nsr_step_pivot_root},
    {NSR_STEP_ROOTFS_PROPAGATION, nsr_step_rootfs_propagation},
    {NSR_STEP_READONLY_ROOT, nsr_step_readonly_root},
    {NSR_STEP_SETHOSTNAME, nsr_step_sethostname},
    /* Capabilities and seccomp (caps.c has the why of this order):
     * bounding -> [credentials] -> no_new_privs -> seccomp -> capset -> ambient -> execve */
    {NSR_STEP_BOUNDING, nsr_step_bounding},   /* needs CAP_SETPCAP: while still full root */
    {NSR_STEP_SETGROUPS, nsr_step_setgroups},
    {NSR_STEP_SETGID, nsr_step_setgid},
    {NSR_STEP_SETUID, nsr_step_setuid},       /* keepcaps: the permitted set survives */
    {NSR_STEP_CHDIR, nsr_step_chdir},         /* as the user, like runc (no DAC override) */
    {NSR_STEP_UMASK, nsr_step_umask},
    {NSR_STEP_STDIO, nsr_step_stdio},
    {NSR_STEP_CONSOLE, nsr_step_console},     /* the container's devpts, as its user */
    {NSR_STEP_CTTY, nsr_step_ctty},           /* setsid made us a session leader */
    {NSR_STEP_CLOSE_FDS, nsr_step_close_fds},
    {NSR_STEP_RLIMITS, nsr_step_rlimits},     /* after the last open() */
    {NSR_STEP_NO_NEW_PRIVS, nsr_step_no_new_privs},
    {NSR_STEP_SECCOMP, nsr_step_seccomp},     /* may need CAP_SYS_ADMIN: before capset */
    {NSR_STEP_CAPSET, nsr_step_capset},
    {NSR_STEP_AMBIENT, nsr_step_ambient},     /* needs the permitted+inheritable of capset */
    {NSR_STEP_WAIT_START, nsr_step_wait_start},/* create returned; start releases (oci.c) */
    {NSR_STEP_EXECVE, nsr_step_execve},
};

/* A container with a user namespace (new_user_ns) runs in two processes, like runc's
 * nsexec. setns(2) into the pod's net/ipc/uts namespaces needs CAP_SYS_ADMIN in the user
 * namespace that owns them (the host's), so the first process (cloned with no namespace
 * at all) joins them while it is still the host's root; then it unshares the user
 * namespace, and the parent (root outside) writes uid_map and gid_map while it waits on
 * the sync socket. Mount and pid namespaces must belong to the new user namespace (proc
 * can only be mounted by a pid namespace's owner), so they are unshared after it; a new
 * pid namespace holds only children of the caller, hence the fork: the second process,
 * cloned with CLONE_PARENT (a child of the supervisor, which gets its pid over the sync
 * socket and opens its pidfd), is the container's pid 1 and runs the rest of the table.
 * The first one exits. */
static int nsr_step_userns(struct nsr_ctx *ctx);
static int nsr_step_unshare(struct nsr_ctx *ctx);
static int nsr_step_fork(struct nsr_ctx *ctx);

static const struct nsr_step_entry userns_outer_steps[] = {
    {NSR_STEP_SIGNALS, nsr_step_signals},            /* inherited by the fork */
    {NSR_STEP_SETNS, nsr_step_setns},                /* as the host's root */
    {NSR_STEP_SYSCTL, nsr_step_sysctl},
    {NSR_STEP_OOM_SCORE_ADJ, nsr_step_oom_score_adj},/* may need the host's CAP_SYS_RESOURCE */
    {NSR_STEP_USERNS, nsr_step_userns},
    {NSR_STEP_UNSHARE, nsr_step_unshare},
    {NSR_STEP_FORK, nsr_step_fork},                  /* returns in the container's pid 1 */
};

const char *nsr_step_name(int step)
{
    if (step < 0 || step >= NSR_STEP_COUNT || !step_names[step])
        return "unknown";
    return step_names[step];
}

int nsr_has_clone3(void)
{
    /* A size below CLONE_ARGS_SIZE_VER0 is EINVAL where clone3 exists, ENOSYS where it
     * does not (or where a seccomp profile hides it, as older Docker profiles do). */
    return !(syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS);
}

/* ---- child side ------------------------------------------------------------------- */

void nsr_child_fail(struct nsr_ctx *ctx)
{
    struct nsr_report rep = {ctx->step, errno, ctx->index};
    ssize_t n;

    do
        n = write(ctx->report_fd, &rep, sizeof rep);  /* < PIPE_BUF: atomic */
    while (n < 0 && errno == EINTR);
    _exit(127);
}

/* Fallback path only: wait until the parent has put us into the cgroup. EOF means the
 * parent gave up (and will reap us); leave quietly. */
static void child_wait_go(int go_read, int go_write)
{
    char c;
    ssize_t n;

    close(go_write);
    do
        n = read(go_read, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(127);
    close(go_read);
}

/* ---- user namespace (see userns_outer_steps) ---- */

/* One whole message on the sync socket, read or written; a short one is EPROTO. */
static int sync_io(int fd, void *buf, size_t len, int writing)
{
    ssize_t n;

    do
        n = writing ? write(fd, buf, len) : read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if ((size_t)n != len) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

static int sync_read(int fd, void *buf, size_t len)
{
    return sync_io(fd, buf, len, 0);
}

static int sync_write(int fd, const void *buf, size_t len)
{
    return sync_io(fd, (void *)buf, len, 1);
}

static int nsr_step_userns(struct nsr_ctx *ctx)
{
    char c = 'U';

    if (unshare(CLONE_NEWUSER) < 0)
        return -1;
    /* the parent writes our uid_map/gid_map, then answers; EOF: it gave up (reaps us) */
    if (sync_write(ctx->sync_fd, &c, 1) < 0)
        return -1;
    if (sync_read(ctx->sync_fd, &c, 1) < 0)
        _exit(127);
    if (c != 'G') {
        errno = EPROTO;
        return -1;
    }
    /* Now root of the new namespace (uid 0 is mapped): credentials the maps allow. */
    if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0)
        return -1;
    return 0;
}

static int nsr_step_unshare(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    int flags = CLONE_NEWNS;

    if (req->new_pid_ns)
        flags |= CLONE_NEWPID;
    if (req->hostname)
        flags |= CLONE_NEWUTS;
    return unshare(flags);
}

static pid_t raw_clone(uint64_t flags);

static int nsr_step_fork(struct nsr_ctx *ctx)
{
    int32_t pid = (int32_t)raw_clone(CLONE_PARENT);

    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* the container's process: the parent reads its report pipe until our execve */
        close(ctx->sync_fd);
        ctx->sync_fd = -1;
        return 0;
    }
    /* the first process: tell the parent who its new child is, and go */
    if (sync_write(ctx->sync_fd, &pid, sizeof pid) < 0) {
        kill(pid, SIGKILL);
        return -1;
    }
    _exit(0);
}

/* Run a step table; the last step (execve) only returns on failure. */
void nsr_run_steps(struct nsr_ctx *ctx, const struct nsr_step_entry *steps, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        ctx->step = steps[i].step;
        ctx->index = -1;
        if (steps[i].fn(ctx) < 0)
            nsr_child_fail(ctx);
    }
    errno = ENOEXEC;  /* not reached: the execve step returns only with -1 */
    nsr_child_fail(ctx);
}

static void __attribute__((noreturn))
child_main(const struct nsr_spawn_req *req, int report_fd, int go_read, int go_write,
           int sync_fd)
{
    struct nsr_ctx ctx = {req, report_fd, 0, -1, -1, sync_fd};
    size_t i;

    if (go_read >= 0)
        child_wait_go(go_read, go_write);
    if (!req->new_user_ns)
        nsr_run_steps(&ctx, child_steps, sizeof child_steps / sizeof child_steps[0]);
    for (i = 0; i < sizeof userns_outer_steps / sizeof userns_outer_steps[0]; i++) {
        ctx.step = userns_outer_steps[i].step;
        ctx.index = -1;
        if (userns_outer_steps[i].fn(&ctx) < 0)
            nsr_child_fail(&ctx);
    }
    /* the container's pid 1, in its namespaces: its own session, then the table without
     * what the first process did (signals, setns, sysctl and oom_score_adj are inherited) */
    ctx.step = NSR_STEP_SETSID;
    if (nsr_step_setsid(&ctx) < 0)
        nsr_child_fail(&ctx);
    nsr_run_steps(&ctx, child_steps + 5, sizeof child_steps / sizeof child_steps[0] - 5);
}

/* ---- process creation ------------------------------------------------------------- */

void nsr_block_signals(void *old_set)
{
    sigset_t all;

    /* No signal handler of the Python parent may run in the child (it would run Python
     * state in a half-copied process); the child resets dispositions and unblocks. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, (sigset_t *)old_set);
}

void nsr_restore_signals(const void *old_set)
{
    pthread_sigmask(SIG_SETMASK, (const sigset_t *)old_set, NULL);
}

int nsr_move_fd_high(int fd)
{
    int high;

    /* The child dup2()s stdio onto 0..2 and closes everything from 3 except the report
     * pipe: keep our pipes out of 0..2 even when the parent runs with stdio closed. */
    if (fd >= 3)
        return fd;
    high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return high;
}

int nsr_pipe_high(int p[2])
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    p[0] = nsr_move_fd_high(p[0]);
    p[1] = nsr_move_fd_high(p[1]);
    if (p[0] < 0 || p[1] < 0) {
        int saved = errno;
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

static pid_t raw_clone(uint64_t flags)
{
    /* fork-like: no new stack, the child runs on a copy of ours and returns 0 here. */
#if defined(__s390__) || defined(__CRIS__)
    return syscall(SYS_clone, 0, flags | SIGCHLD, NULL, NULL, 0);
#else
    return syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
#endif
}

/* clone3 with CLONE_PIDFD (+CLONE_INTO_CGROUP) when use_clone3, else a plain clone: then
 * *pidfd_out is -1 and the caller attaches the cgroup and opens a pidfd itself. Returns 0
 * in the child, like fork. */
pid_t nsr_clone(uint64_t flags, int cgroup_fd, int *pidfd_out, int use_clone3)
{
    struct nsr_clone_args args;
    int pidfd = -1;
    long pid;

    *pidfd_out = -1;
    if (!use_clone3)
        return raw_clone(flags);
    memset(&args, 0, sizeof args);
    args.flags = flags | CLONE_PIDFD;
    args.pidfd = (uintptr_t)&pidfd;
    /* clone3 wants 0 with CLONE_PARENT: the child gets our own exit signal (SIGCHLD) */
    args.exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD;
    if (cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    /* No CLONE_VM: the child gets a copy-on-write copy of the parent and returns here on
     * (a copy of) our stack, so it can use the request without a separate stack. */
    pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid > 0)
        *pidfd_out = pidfd;
    return pid;
}

int nsr_clone3_usable(void)
{
    static int cached = -1;  /* a benign race: every thread computes the same value */

    if (cached < 0)
        cached = nsr_has_clone3();
    return cached;
}

void nsr_reap(pid_t pid, int pidfd)
{
    siginfo_t info;
    int status;

    if (pidfd >= 0) {
        while (waitid(P_PIDFD, pidfd, &info, WEXITED) < 0 && errno == EINTR)
            ;
        close(pidfd);
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
}

void nsr_set_report(struct nsr_report *rep, int step, int err, int index)
{
    rep->step = step;
    rep->err = err;
    rep->index = index;
}

static int write_procs(int cgroup_fd, pid_t pid)
{
    char buf[24];
    int fd, len, saved;
    ssize_t n;

    len = snprintf(buf, sizeof buf, "%d\n", (int)pid);
    fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = write(fd, buf, len);
    saved = errno;
    close(fd);
    if (n != len) {
        errno = n < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}

/* Fallback path (and cgroup v1): the child is waiting on the go pipe. Put it into the
 * cgroup and every v1 cgroup by pid, open its pidfd, then release it. On failure the
 * caller kills and reaps it. */
static int attach_fallback(pid_t pid, const struct nsr_spawn_req *req, int *pidfd,
                           struct nsr_report *rep)
{
    int i;

    if (req->cgroup_fd >= 0 && write_procs(req->cgroup_fd, pid) < 0) {
        nsr_set_report(rep, NSR_STEP_CGROUP_ATTACH, errno, -1);
        return -1;
    }
    for (i = 0; i < req->ncgroup_join; i++) {
        if (write_procs(req->cgroup_join_fds[i], pid) < 0) {
            nsr_set_report(rep, NSR_STEP_CGROUP_ATTACH, errno, i);
            return -1;
        }
    }
    *pidfd = syscall(SYS_pidfd_open, pid, 0);
    if (*pidfd < 0) {
        nsr_set_report(rep, NSR_STEP_PIDFD_OPEN, errno, -1);
        return -1;
    }
    fcntl(*pidfd, F_SETFD, FD_CLOEXEC);  /* pidfd_open sets it already; be explicit */
    return 0;
}

/* A process moves itself into the cgroup (writing "0" to cgroup.procs moves the writer):
 * for helpers cloned without CLONE_INTO_CGROUP. */
int nsr_attach_self(int cgroup_fd)
{
    int fd, saved;
    ssize_t n;

    fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = write(fd, "0\n", 2);
    saved = errno;
    close(fd);
    if (n != 2) {
        errno = n < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}

/* Block until the child exec()s (EOF: the CLOEXEC write end closed) or reports a failed
 * step. Returns 0 on exec, -1 with *rep filled. */
int nsr_read_report(int fd, struct nsr_report *rep)
{
    ssize_t n;

    do
        n = read(fd, rep, sizeof *rep);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return 0;
    if (n != (ssize_t)sizeof *rep)
        nsr_set_report(rep, NSR_STEP_WAIT, n < 0 ? errno : EPROTO, -1);
    return -1;
}

static uint64_t spawn_clone_flags(const struct nsr_spawn_req *req)
{
    uint64_t flags = CLONE_NEWNS;  /* always: every mount below stays in the child */

    if (req->new_user_ns)
        return 0;  /* the child unshares them itself, after the user namespace */
    if (req->new_pid_ns)
        flags |= CLONE_NEWPID;
    if (req->hostname)
        flags |= CLONE_NEWUTS;  /* the parent passes a hostname only for a new uts ns */
    return flags;
}

void nsr_close_pipe(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    p[0] = p[1] = -1;
}

struct child_args {
    const struct nsr_spawn_req *req;
    int report_fd;
};

static int child_entry(void *p)
{
    struct child_args *a = p;  /* on the suspended parent's stack: shared memory */

    child_main(a->req, a->report_fd, -1, -1, -1);
}

/* Clone the child by the chosen path (the go pipe exists only on the fallback path).
 * Returns the pid in the parent with *pidfd set (-1 on the fallback path); the child
 * never returns from here. */
static pid_t clone_child(const struct nsr_spawn_req *req, int report[2], int go[2],
                         int sync_fd, int mode, int *pidfd, struct nsr_report *rep)
{
    struct child_args args = {req, report[1]};
    uint64_t flags = spawn_clone_flags(req);
    sigset_t old;
    pid_t pid;

    nsr_block_signals(&old);
    if (mode == NSR_CLONE_AUTO)
        pid = nsr_clone_vm(flags, req->cgroup_fd, pidfd, child_entry, &args);
    else
        pid = nsr_clone(flags, req->cgroup_fd, pidfd, mode == NSR_CLONE_FORK);
    if (pid == 0)
        child_main(req, report[1], go[0], go[1], sync_fd);
    if (pid < 0)
        nsr_set_report(rep, NSR_STEP_CLONE, errno, -1);
    nsr_restore_signals(&old);
    return pid;
}

int nsr_clone_mode(const struct nsr_spawn_req *req)
{
    if (req->clone_mode == NSR_CLONE_FALLBACK || !nsr_clone3_usable())
        return NSR_CLONE_FALLBACK;
    /* a user namespace needs the parent running while the child waits for its maps, and
     * so do stop points (CLONE_VFORK would suspend the parent until the execve) */
    if (req->clone_mode == NSR_CLONE_FORK || !nsr_have_clone_vm() || req->new_user_ns ||
        req->stops)
        return NSR_CLONE_FORK;
    return NSR_CLONE_AUTO;
}

/* Fallback path after the clone: attach, get the pidfd, let the child go. On failure the
 * child is killed and reaped. */
static int release_fallback(pid_t pid, const struct nsr_spawn_req *req, int go[2],
                            int *pidfd, struct nsr_report *rep)
{
    close(go[0]);
    go[0] = -1;
    if (attach_fallback(pid, req, pidfd, rep) < 0) {
        kill(pid, SIGKILL);
        nsr_reap(pid, *pidfd);
        *pidfd = -1;
        nsr_close_pipe(go);
        return -1;
    }
    if (write(go[1], "g", 1) != 1) {
        nsr_set_report(rep, NSR_STEP_CLONE, errno, -1);
        kill(pid, SIGKILL);
        nsr_reap(pid, *pidfd);
        *pidfd = -1;
        nsr_close_pipe(go);
        return -1;
    }
    nsr_close_pipe(go);
    return 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC), saved;
    size_t len = strlen(text);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, text, len);  /* one write: the kernel takes a map only whole */
    saved = errno;
    close(fd);
    if (n != (ssize_t)len) {
        errno = n < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}

/* User namespace, the parent's part (see userns_outer_steps): the first process says it has
 * unshared its user namespace; write its maps, let it go on, learn the pid of its fork (our
 * child too: CLONE_PARENT) and reap the first process. Returns the container's pid with
 * *pidfd its pidfd; -1 with *rep when the first process failed (its report explains) or
 * the maps could not be written. */
static pid_t userns_parent(pid_t first, int first_pidfd, const struct nsr_spawn_req *req,
                           int sync_fd, int *pidfd, struct nsr_report *rep)
{
    char path[64], c;
    int32_t pid;
    int fd;

    if (sync_read(sync_fd, &c, 1) < 0 || c != 'U')
        goto first_failed;
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)first);
    if (write_file(path, req->uid_map) < 0) {
        nsr_set_report(rep, NSR_STEP_ID_MAP, errno, 0);
        goto kill_first;
    }
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)first);
    if (write_file(path, req->gid_map) < 0) {
        nsr_set_report(rep, NSR_STEP_ID_MAP, errno, 1);
        goto kill_first;
    }
    c = 'G';
    if (sync_write(sync_fd, &c, 1) < 0 || sync_read(sync_fd, &pid, sizeof pid) < 0)
        goto first_failed;
    nsr_reap(first, first_pidfd);
    fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) {
        nsr_set_report(rep, NSR_STEP_PIDFD_OPEN, errno, -1);
        kill(pid, SIGKILL);
        nsr_reap(pid, -1);
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    *pidfd = fd;
    return pid;

first_failed:
    /* it exited (a failed step: the report pipe says which) or broke the protocol */
    nsr_set_report(rep, NSR_STEP_WAIT, EPROTO, -1);
    nsr_reap(first, first_pidfd);
    return -1;
kill_first:
    kill(first, SIGKILL);
    nsr_reap(first, first_pidfd);
    return -1;
}

/* A report that is not a failure: the child stopped at one of req->stops (oci.c). */
static int is_stop(const struct nsr_report *rep)
{
    return rep->err == 0 && rep->index == NSR_STOPPED;
}

/* report_out NULL: until the execve. Else the child may stop first (req->stops): then the
 * report pipe's read end goes to *report_out, open, for the caller to follow. */
static int spawn_by(const struct nsr_spawn_req *req, int mode, int *pidfd_out,
                    int *report_out, struct nsr_report *rep)
{
    int report[2] = {-1, -1}, go[2] = {-1, -1}, sync[2] = {-1, -1}, pidfd = -1;
    int fallback = mode == NSR_CLONE_FALLBACK;
    pid_t pid;

    nsr_set_report(rep, -1, 0, -1);
    *pidfd_out = -1;
    if (nsr_pipe_high(report) < 0 || (fallback && nsr_pipe_high(go) < 0)) {
        nsr_set_report(rep, NSR_STEP_PIPE, errno, -1);
        nsr_close_pipe(report);
        return -1;
    }
    if (req->new_user_ns && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0) {
        nsr_set_report(rep, NSR_STEP_PIPE, errno, -1);
        nsr_close_pipe(go);
        nsr_close_pipe(report);
        return -1;
    }
    pid = clone_child(req, report, go, sync[1], mode, &pidfd, rep);
    close(report[1]);  /* now only the child holds the write end (until its execve) */
    report[1] = -1;
    if (sync[1] >= 0) {
        close(sync[1]);
        sync[1] = -1;
    }
    if (pid < 0 || (fallback && release_fallback(pid, req, go, &pidfd, rep) < 0)) {
        nsr_close_pipe(sync);
        nsr_close_pipe(go);
        nsr_close_pipe(report);
        return -1;
    }
    if (req->new_user_ns) {
        pid = userns_parent(pid, pidfd, req, sync[0], &pidfd, rep);
        nsr_close_pipe(sync);
        if (pid < 0) {
            struct nsr_report child_rep;

            /* the child's own report, when it wrote one, says more than ours */
            if (rep->step == NSR_STEP_WAIT && nsr_read_report(report[0], &child_rep) < 0 &&
                child_rep.step != NSR_STEP_WAIT)
                *rep = child_rep;
            nsr_close_pipe(report);
            return -1;
        }
    }
    if (nsr_read_report(report[0], rep) < 0) {
        if (report_out && is_stop(rep)) {
            *report_out = report[0];
            *pidfd_out = pidfd;
            return pid;
        }
        nsr_reap(pid, pidfd);
        nsr_close_pipe(report);
        return -1;
    }
    nsr_close_pipe(report);
    *pidfd_out = pidfd;
    return pid;
}

/* Returns the pid (and *pidfd_out) once the child has exec()ed; -1 with *rep otherwise.
 * The child is always reaped on failure. Runs without the GIL (cffi releases it). */
static int spawn_any(const struct nsr_spawn_req *req, int *pidfd_out, int *report_out,
                     struct nsr_report *rep)
{
    /* cgroup v1: the child waits at the go pipe while we write its pid (as runc does) */
    int mode = req->ncgroup_join > 0 ? NSR_CLONE_FALLBACK : nsr_clone_mode(req);
    int pid = spawn_by(req, mode, pidfd_out, report_out, rep);

    /* Kernels 5.3-5.6 have clone3 but not CLONE_INTO_CGROUP (EINVAL for the flag, E2BIG
     * for the larger struct): attach by cgroup.procs instead. A genuine cgroup error shows
     * up again there, as cgroup_attach. */
    if (pid < 0 && rep->step == NSR_STEP_CLONE && mode != NSR_CLONE_FALLBACK &&
        req->cgroup_fd >= 0 && (rep->err == EINVAL || rep->err == E2BIG))
        pid = spawn_by(req, NSR_CLONE_FALLBACK, pidfd_out, report_out, rep);
    return pid;
}

int nsr_spawn(const struct nsr_spawn_req *req, int *pidfd_out, struct nsr_report *rep)
{
    return spawn_any(req, pidfd_out, NULL, rep);
}

/* As nsr_spawn, but the child may stop (req->stops): then it returns the pid with *rep the
 * stop report (err 0, index NSR_STOPPED) and *report_fd_out the report pipe, which the
 * caller reads on from there (another stop, a failure, EOF at the execve) and closes. When
 * the child exec()ed without stopping, *report_fd_out is -1. */
int nsr_spawn_stopped(const struct nsr_spawn_req *req, int *pidfd_out, int *report_fd_out,
                      struct nsr_report *rep)
{
    *report_fd_out = -1;
    return spawn_any(req, pidfd_out, report_fd_out, rep);
}
