/* exec.c: the child's process-attribute steps: signals, session, credentials, cwd, stdio,
 * fd hygiene and the execve (with the PATH candidates the parent prepared). */
#include "nsrun.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sigaction (rt_sigaction(2)); glibc's wrapper refuses signals 32 and 33
 * (its own), which a launcher such as GNU make leaves ignored: only the raw call resets them. */
struct nsr_ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

int nsr_step_signals(struct nsr_ctx *ctx)
{
    struct nsr_ksigaction dfl = {0};
    sigset_t none;
    int sig;

    (void)ctx;
    /* execve keeps SIG_IGN (Python ignores SIGPIPE and SIGXFSZ) and keeps the mask (all
     * blocked by the parent around the clone): give the container a clean slate, like
     * runc, every signal included. */
    dfl.handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
    }
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* KEYCTL_JOIN_SESSION_KEYRING: join the keyring of that name (an exec into the container
 * finds the container's) or make it; then let its owner search it, as runc does, so the next
 * join by name finds it (a user namespace's root is "other" to it). A kernel without keys
 * (ENOSYS) is left alone, as runc does. */
int nsr_join_session_keyring(const struct nsr_spawn_req *req)
{
    /* possessor: all; user: view, read, link, + search; or other: search (user namespace) */
    long perm = 0x3f000000L | 0x00130000L | (req->new_user_ns ? 0x8L : 0x00080000L);
    long id = syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, req->session_keyring);

    if (id < 0)
        return errno == ENOSYS ? 0 : -1;
    return syscall(SYS_keyctl, 5 /* KEYCTL_SETPERM */, id, perm) < 0 ? -1 : 0;
}

int nsr_step_setsid(struct nsr_ctx *ctx)
{
    /* A new session: Ctrl-C on the supervisor's terminal must reach the supervisor only,
     * which then stops the containers with their grace period. */
    if (setsid() < 0)
        return -1;
    /* And a session keyring of its own (runc's "_ses.<id>", unless --no-new-keyring): the
     * supervisor's, with host root's user keyring linked in, is not inherited. */
    if (ctx->req->session_keyring && nsr_join_session_keyring(ctx->req) < 0)
        return -1;
    /* Without a pod cgroup nothing could find the container again after a supervisor
     * crash: tie it to the supervisor (checked after the prctl, which closes the race). */
    if (ctx->req->die_with_parent) {
        pid_t parent = getppid();

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
            return -1;
        if (getppid() != parent)
            _exit(137);
    }
    return 0;
}

int nsr_step_oom_score_adj(struct nsr_ctx *ctx)
{
    char buf[16], *p = buf + sizeof buf;
    int value = ctx->req->oom_score_adj, fd, len;
    unsigned int v;
    ssize_t n;

    if (!ctx->req->set_oom_score_adj)
        return 0;
    /* the host's /proc (before pivot_root); the value is in -1000..1000 (checked by the
     * parent, as is the need for CAP_SYS_RESOURCE to go below the current value) */
    v = value < 0 ? (unsigned int)-value : (unsigned int)value;
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10) && p > buf + 1);
    if (value < 0)
        *--p = '-';
    len = (int)(buf + sizeof buf - p);
    fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = write(fd, p, len);
    if (n != len) {
        int saved = n < 0 ? errno : EIO;

        close(fd);
        errno = saved;
        return -1;
    }
    return close(fd);
}

/* Credentials use raw system calls: glibc's setgroups/setgid/setuid wrappers broadcast
 * the change to every thread glibc believes exists (SIGSETXID), and in this clone() child
 * that list is a stale copy of the Python parent's threads. */
int nsr_step_setgroups(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;

    return syscall(SYS_setgroups, req->ngroups, req->ngroups ? req->groups : NULL) < 0 ? -1
                                                                                     : 0;
}

int nsr_step_setgid(struct nsr_ctx *ctx)
{
    uint32_t gid = ctx->req->gid;

    return syscall(SYS_setresgid, gid, gid, gid) < 0 ? -1 : 0;
}

int nsr_step_setuid(struct nsr_ctx *ctx)
{
    uint32_t uid = ctx->req->uid;

    /* With capabilities to set (caps.c), keep the permitted set across the switch to a
     * non-root uid: capset narrows it to the requested sets later. (keepcaps is cleared by
     * execve.) Without, a non-root uid loses every capability here, as before. */
    if (ctx->req->set_caps && uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return -1;
    /* last of the credentials: after it, a non-root uid has no effective capabilities */
    return syscall(SYS_setresuid, uid, uid, uid) < 0 ? -1 : 0;
}

int nsr_step_chdir(struct nsr_ctx *ctx)
{
    return chdir(ctx->req->cwd ? ctx->req->cwd : "/");
}

int nsr_step_umask(struct nsr_ctx *ctx)
{
    if (ctx->req->umask >= 0)
        umask((mode_t)ctx->req->umask);
    return 0;
}

int nsr_step_stdio(struct nsr_ctx *ctx)
{
    int fds[3], i;

    /* Move every source above 2 first: a source may itself be 0..2 (e.g. stdout_fd=2),
     * and dup2 in sequence would clobber it. The copies are CLOEXEC; dup2 onto 0..2
     * yields fds without CLOEXEC, which is what the exec'd program inherits. */
    for (i = 0; i < 3; i++) {
        ctx->index = i;
        fds[i] = ctx->req->stdio[i];
        if (fds[i] < 3 && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
            return -1;
    }
    for (i = 0; i < 3; i++) {
        ctx->index = i;
        if (dup2(fds[i], i) < 0)
            return -1;
    }
    ctx->index = -1;
    return 0;
}

int nsr_step_ctty(struct nsr_ctx *ctx)
{
    /* A tty exec (nsrun exec -t): fd 0 is the slave of a pty the caller holds the master
     * of. setsid made us a session leader without a terminal: take this one (arg 0: never
     * steal it from another session). */
    if (!ctx->req->ctty)
        return 0;
    return ioctl(0, TIOCSCTTY, 0) < 0 ? -1 : 0;
}

int nsr_close_range(unsigned int lo, unsigned int hi)
{
    struct rlimit rl;
    unsigned int fd;

    if (lo > hi)
        return 0;
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
    /* kernels before 5.9: a loop up to the fd limit */
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    for (fd = lo; fd <= hi && fd < rl.rlim_cur; fd++)
        close(fd);
    return 0;
}

int nsr_step_close_fds(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    /* Kept: fds 3..3+preserve_fds-1 (an OCI runtime's --preserve-fds: the caller's, passed
     * on), the report pipe and the stop fd (CLOEXEC: execve closes them). The parent put
     * its own fds above the preserved ones. */
    unsigned int lo = 3 + (unsigned int)(req->preserve_fds > 0 ? req->preserve_fds : 0);
    unsigned int keep[2] = {(unsigned int)ctx->report_fd, (unsigned int)ctx->report_fd};
    unsigned int i;

    if (req->stops && req->stop_fd >= 0) {
        keep[0] = (unsigned int)req->stop_fd < keep[1] ? (unsigned int)req->stop_fd : keep[1];
        keep[1] = (unsigned int)req->stop_fd > keep[1] ? (unsigned int)req->stop_fd : keep[1];
    }
    for (i = 0; i < 2; i++) {
        if (keep[i] < lo)
            continue;  /* already kept (inside the preserved range) */
        if (nsr_close_range(lo, keep[i] - 1) < 0)
            return -1;
        lo = keep[i] + 1;
    }
    return nsr_close_range(lo, ~0U);
}

int nsr_step_rlimits(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    struct rlimit64 lim;
    int i;

    /* late (after close_fds): a low RLIMIT_NOFILE must not starve the steps above */
    for (i = 0; i < req->nrlimits; i++) {
        ctx->index = i;
        lim.rlim_cur = req->rlimits[i].soft;
        lim.rlim_max = req->rlimits[i].hard;
        if (syscall(SYS_prlimit64, 0, req->rlimits[i].resource, &lim, NULL) < 0)
            return -1;
    }
    ctx->index = -1;
    return 0;
}

int nsr_step_execve(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    int i, saw_eacces = 0;

    /* The PATH lookup, like execvp: try each candidate; remember EACCES; any error other
     * than "not there" stops the search. */
    for (i = 0; req->exec_paths[i]; i++) {
        ctx->index = i;
        execve(req->exec_paths[i], req->argv, req->envp);
        if (errno == EACCES)
            saw_eacces = 1;
        else if (errno != ENOENT && errno != ENOTDIR)
            return -1;
    }
    ctx->index = -1;
    errno = saw_eacces ? EACCES : ENOENT;
    return -1;
}
