/* execin.c: run a new process inside a running container (runc exec), and open a socket
 * inside a network namespace (probes).
 *
 * exec_in, like runc's nsexec, needs two clones: setns(CLONE_NEWPID) only moves the
 * *children* of the caller into the pid namespace, and a Python process cannot setns its
 * mount namespace at all (its threads share one fs_struct). So:
 *
 *   caller (Python thread, GIL released)
 *     └─ clone3(CLONE_FILES [CLONE_VM|CLONE_VFORK], CLONE_INTO_CGROUP) ── the intermediate
 *          oom_score_adj      still the host's /proc; the final process inherits it
 *          cgroup_attach      fallback path: moves itself into the cgroup ("0"); cgroup v1:
 *                             into each of cgroup_join_fds
 *          setns              setns(pidfd, flags) (Linux >= 5.8), or each ns fd in turn
 *          clone3(CLONE_PARENT|CLONE_PIDFD [CLONE_VM|CLONE_VFORK]) ── the final process
 *               runs exec_steps (the container's own step functions, minus the mounts),
 *               execve()s; its parent is the caller, so the caller can wait on it
 *          writes {pid, pidfd} to the result pipe, _exit(0)
 *
 * The intermediate starts in the target cgroup (the final process inherits it): it must be
 * inside the cgroup before it joins a cgroup namespace rooted there, as runc does.
 * CLONE_FILES: the intermediate shares the caller's fd table, so the pidfd the kernel
 * returns for the final process is valid in the caller (no pid-reuse window). Failures of
 * either process come back on one CLOEXEC report pipe as {step, errno, index}: index 0 of
 * "clone" is the intermediate, 1 the final process.
 */
#include "nsrun.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The final process: the container's step functions without the filesystem set-up (the
 * mount namespace joined is the container's, pivot_root done) and without the namespace
 * work the intermediate did. Same order as child_steps in steps.c. */
static const struct nsr_step_entry exec_steps[] = {
    {NSR_STEP_SIGNALS, nsr_step_signals},
    {NSR_STEP_SETSID, nsr_step_setsid},
    {NSR_STEP_BOUNDING, nsr_step_bounding},
    {NSR_STEP_SETGROUPS, nsr_step_setgroups},
    {NSR_STEP_SETGID, nsr_step_setgid},
    {NSR_STEP_SETUID, nsr_step_setuid},
    {NSR_STEP_CHDIR, nsr_step_chdir},
    {NSR_STEP_UMASK, nsr_step_umask},
    {NSR_STEP_STDIO, nsr_step_stdio},
    {NSR_STEP_CONSOLE, nsr_step_console},
    {NSR_STEP_CTTY, nsr_step_ctty},
    {NSR_STEP_CLOSE_FDS, nsr_step_close_fds},
    {NSR_STEP_RLIMITS, nsr_step_rlimits},
    {NSR_STEP_NO_NEW_PRIVS, nsr_step_no_new_privs},
    {NSR_STEP_SECCOMP, nsr_step_seccomp},
    {NSR_STEP_CAPSET, nsr_step_capset},
    {NSR_STEP_AMBIENT, nsr_step_ambient},
    {NSR_STEP_EXECVE, nsr_step_execve},
};

struct exec_args {
    const struct nsr_spawn_req *req;
    int target_pidfd;       /* >= 0: setns(pidfd, ns_flags); else req->ns_fds one by one */
    unsigned int ns_flags;
    int report_fd;          /* write end of the report pipe */
    int result_fd;          /* write end of the result pipe: struct exec_result */
    int mode;               /* enum nsr_clone_mode, for both clones */
    int self_attach;        /* fallback path: the intermediate joins req->cgroup_fd itself */
};

struct exec_result {
    int32_t pid;            /* the final process, in the caller's pid namespace */
    int32_t pidfd;          /* in the (shared) fd table of the caller; -1 without clone3 */
};

static void __attribute__((noreturn)) final_main(const struct exec_args *a)
{
    struct nsr_ctx ctx = {a->req, a->report_fd, 0, -1, -1};

    nsr_run_steps(&ctx, exec_steps, sizeof exec_steps / sizeof exec_steps[0]);
}

static int final_entry(void *p)
{
    final_main(p);
}

static int join_target(struct nsr_ctx *ctx, const struct exec_args *a)
{
    /* setns(pidfd) joins every namespace at once (all or nothing); a kernel before 5.8
     * says EINVAL and the caller retries with ns fds it opened from /proc/<pid>/ns. */
    if (a->target_pidfd >= 0)
        return a->ns_flags && setns(a->target_pidfd, (int)a->ns_flags) < 0 ? -1 : 0;
    return nsr_step_setns(ctx);
}

static void __attribute__((noreturn)) intermediate_main(const struct exec_args *a)
{
    struct nsr_ctx ctx = {a->req, a->report_fd, NSR_STEP_OOM_SCORE_ADJ, -1, -1};
    struct exec_result res;
    int pidfd = -1;
    ssize_t n;
    pid_t pid;

    if (nsr_step_oom_score_adj(&ctx) < 0)
        nsr_child_fail(&ctx);
    ctx.step = NSR_STEP_CGROUP_ATTACH;
    if (a->self_attach && nsr_attach_self(a->req->cgroup_fd) < 0)
        nsr_child_fail(&ctx);
    for (ctx.index = 0; ctx.index < a->req->ncgroup_join; ctx.index++)  /* cgroup v1 */
        if (nsr_attach_self_v1(a->req->cgroup_join_fds[ctx.index]) < 0)
            nsr_child_fail(&ctx);
    ctx.index = -1;
    ctx.step = NSR_STEP_SETNS;
    if (join_target(&ctx, a) < 0)
        nsr_child_fail(&ctx);
    ctx.step = NSR_STEP_CLONE;
    ctx.index = 1;
    /* CLONE_PARENT: the caller becomes the parent (it waits on the pidfd); the pid
     * namespace joined applies to this child. */
    if (a->mode == NSR_CLONE_AUTO) {
        pid = nsr_clone_vm(CLONE_PARENT, -1, &pidfd, final_entry, (void *)a);
    } else {
        pid = nsr_clone(CLONE_PARENT, -1, &pidfd, a->mode == NSR_CLONE_FORK);
        if (pid == 0)
            final_main(a);
    }
    if (pid < 0)
        nsr_child_fail(&ctx);
    res.pid = pid;
    res.pidfd = pidfd;
    do
        n = write(a->result_fd, &res, sizeof res);
    while (n < 0 && errno == EINTR);
    _exit(n == (ssize_t)sizeof res ? 0 : 127);
}

static int intermediate_entry(void *p)
{
    intermediate_main(p);
}

static pid_t clone_intermediate(struct exec_args *a, int *ipidfd, struct nsr_report *rep)
{
    const struct nsr_spawn_req *req = a->req;
    sigset_t old;
    pid_t pid;

    nsr_block_signals(&old);
    if (a->mode == NSR_CLONE_AUTO) {
        pid = nsr_clone_vm(CLONE_FILES, req->cgroup_fd, ipidfd, intermediate_entry, a);
    } else {
        pid = nsr_clone(CLONE_FILES, a->self_attach ? -1 : req->cgroup_fd, ipidfd,
                        a->mode == NSR_CLONE_FORK);
        if (pid == 0)
            intermediate_main(a);
    }
    if (pid < 0)
        nsr_set_report(rep, NSR_STEP_CLONE, errno, 0);
    nsr_restore_signals(&old);
    return pid;
}

/* After the intermediate is gone: the final process's pid (and pidfd), -1 if none. */
static struct exec_result read_result(int fd)
{
    struct exec_result res = {-1, -1};
    ssize_t n;

    do
        n = read(fd, &res, sizeof res);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof res)
        res.pid = res.pidfd = -1;
    return res;
}

static int exec_by(const struct nsr_spawn_req *req, int target_pidfd, unsigned int ns_flags,
                   int mode, int *pidfd_out, struct nsr_report *rep)
{
    int report[2] = {-1, -1}, result[2] = {-1, -1}, ipidfd = -1, rc;
    struct exec_args a;
    struct exec_result res;
    pid_t ipid;

    nsr_set_report(rep, -1, 0, -1);
    *pidfd_out = -1;
    if (nsr_pipe_high(report) < 0 || nsr_pipe_high(result) < 0) {
        nsr_set_report(rep, NSR_STEP_PIPE, errno, -1);
        nsr_close_pipe(report);
        return -1;
    }
    a = (struct exec_args){req, target_pidfd, ns_flags, report[1], result[1], mode,
                           mode == NSR_CLONE_FALLBACK && req->cgroup_fd >= 0};
    ipid = clone_intermediate(&a, &ipidfd, rep);
    if (ipid < 0) {
        nsr_close_pipe(report);
        nsr_close_pipe(result);
        return -1;
    }
    /* The intermediate shares our fd table: only close the write ends once it is gone
     * (with CLONE_VFORK it already is; it exits right after its clone in any case). */
    nsr_reap(ipid, ipidfd);
    close(report[1]);
    close(result[1]);
    res = read_result(result[0]);
    close(result[0]);
    /* EOF once the final process exec()ed (its copy of the write end is CLOEXEC) */
    rc = nsr_read_report(report[0], rep);
    close(report[0]);
    if (rc == 0 && res.pid <= 0) {  /* the intermediate died without a word (killed) */
        nsr_set_report(rep, NSR_STEP_WAIT, ECHILD, -1);
        rc = -1;
    }
    if (rc < 0) {
        if (res.pid > 0)
            nsr_reap(res.pid, res.pidfd);
        return -1;
    }
    if (res.pidfd < 0) {
        /* without clone3: the process is our child, so its pid cannot be reused before
         * we reap it */
        res.pidfd = syscall(SYS_pidfd_open, res.pid, 0);
        if (res.pidfd < 0) {
            nsr_set_report(rep, NSR_STEP_PIDFD_OPEN, errno, -1);
            kill(res.pid, SIGKILL);
            nsr_reap(res.pid, -1);
            return -1;
        }
    }
    fcntl(res.pidfd, F_SETFD, FD_CLOEXEC);  /* clone3's pidfds are CLOEXEC; be explicit */
    *pidfd_out = res.pidfd;
    return res.pid;
}

/* Returns the pid of the new process (and *pidfd_out) once it has exec()ed; -1 with *rep
 * otherwise (every process made is reaped then). Runs without the GIL. */
int nsr_exec_in(const struct nsr_spawn_req *req, int target_pidfd, unsigned int ns_flags,
                int *pidfd_out, struct nsr_report *rep)
{
    int mode = nsr_clone_mode(req);
    int pid = exec_by(req, target_pidfd, ns_flags, mode, pidfd_out, rep);

    /* Kernels 5.3-5.6: clone3 without CLONE_INTO_CGROUP (see nsr_spawn). */
    if (pid < 0 && rep->step == NSR_STEP_CLONE && rep->index == 0 &&
        mode != NSR_CLONE_FALLBACK && req->cgroup_fd >= 0 &&
        (rep->err == EINVAL || rep->err == E2BIG))
        pid = exec_by(req, target_pidfd, ns_flags, NSR_CLONE_FALLBACK, pidfd_out, rep);
    return pid;
}

/* ---- a socket in another network namespace -------------------------------------------- */

struct socket_args {
    int net_fd, family, type, protocol;
    int fd, step, err;
};

static void *socket_thread(void *p)
{
    struct socket_args *a = p;

    /* This thread alone moves; it ends right after, so no thread of the caller is ever
     * left in the pod's namespace. The socket keeps the namespace it was made in. */
    if (setns(a->net_fd, CLONE_NEWNET) < 0) {
        a->step = NSR_STEP_SETNS;
        a->err = errno;
        return NULL;
    }
    a->fd = socket(a->family, a->type | SOCK_CLOEXEC, a->protocol);
    if (a->fd < 0) {
        a->step = NSR_STEP_SOCKET;
        a->err = errno;
    }
    return NULL;
}

int nsr_socket_in_netns(int net_fd, int family, int type, int protocol,
                        struct nsr_report *rep)
{
    struct socket_args a = {net_fd, family, type, protocol, -1, -1, 0};
    sigset_t all, old;
    pthread_t thread;
    int rc;

    nsr_set_report(rep, -1, 0, -1);
    /* no Python signal handler may run on the helper thread: it starts with all blocked */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&thread, NULL, socket_thread, &a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        nsr_set_report(rep, NSR_STEP_SOCKET, rc, 0);
        return -1;
    }
    pthread_join(thread, NULL);
    if (a.fd < 0) {
        nsr_set_report(rep, a.step, a.err, -1);
        return -1;
    }
    return a.fd;
}
