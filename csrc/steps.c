/* steps.c: the child's side of a container spawn: the step tables (the names of every
 * step id, the order a container's process runs them, the two-process order of one in a
 * user namespace) and the driver that runs a table, reporting the first failing step.
 * See nsrun.h for the contract with the parent (spawn.c). */
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

static int nsr_step_userns(struct nsr_ctx *ctx)
{
    char c = 'U';

    if (unshare(CLONE_NEWUSER) < 0)
        return -1;
    /* the parent writes our uid_map/gid_map, then answers; EOF: it gave up (reaps us) */
    if (nsr_sync_write(ctx->sync_fd, &c, 1) < 0)
        return -1;
    if (nsr_sync_read(ctx->sync_fd, &c, 1) < 0)
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

static int nsr_step_fork(struct nsr_ctx *ctx)
{
    int32_t pid = (int32_t)nsr_raw_clone(CLONE_PARENT);

    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* the container's process: the parent reads its report pipe until our execve */
        close(ctx->sync_fd);
        ctx->sync_fd = -1;
        return 0;
    }
    /* the first process: tell the parent who its new child is, and go */
    if (nsr_sync_write(ctx->sync_fd, &pid, sizeof pid) < 0) {
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

void nsr_child_main(const struct nsr_spawn_req *req, int report_fd, int go_read, int go_write,
                    int sync_fd)
{
    struct nsr_ctx ctx = {req, report_fd, 0, -1, -1, sync_fd};
    size_t i;

    if (go_read >= 0)
        child_wait_go(go_read, go_write);
    ctx.step = NSR_STEP_CGROUP_ATTACH;  /* cgroup v1: into each hierarchy, before anything */
    for (i = 0; i < (size_t)req->ncgroup_join; i++) {
        ctx.index = (int)i;
        if (nsr_attach_self_v1(req->cgroup_join_fds[i]) < 0)
            nsr_child_fail(&ctx);
    }
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
