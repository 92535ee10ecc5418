/* proc.c: process creation shared by spawn, exec_in and the sandbox helper: clone (clone3
 * with a pidfd and CLONE_INTO_CGROUP, or a plain clone), fds kept out of 0..2, signals
 * blocked around a clone, reaping, the report pipe, a cgroup joined by the process itself,
 * and the sync socket of a user-namespaced child. */
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

int nsr_has_clone3(void)
{
    /* A size below CLONE_ARGS_SIZE_VER0 is EINVAL where clone3 exists, ENOSYS where it
     * does not (or where a seccomp profile hides it, as older Docker profiles do). */
    return !(syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS);
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

pid_t nsr_raw_clone(uint64_t flags)
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
        return nsr_raw_clone(flags);
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

static int write_zero(int cgroup_fd, const char *file)
{
    int fd, saved;
    ssize_t n;

    fd = openat(cgroup_fd, file, O_WRONLY | O_CLOEXEC);
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

/* A process moves itself into the cgroup (writing "0" to cgroup.procs moves the writer):
 * for helpers cloned without CLONE_INTO_CGROUP. */
int nsr_attach_self(int cgroup_fd)
{
    return write_zero(cgroup_fd, "cgroup.procs");
}

/* A single-threaded process moves itself into a cgroup v1 directory: "0" to its "tasks"
 * moves the writing thread, which is the whole process. The kernel then skips the global
 * lock a cgroup.procs write takes (a write of another pid, or of a thread group, waits for
 * an RCU grace period: 5-15 ms on every container start, measured). Falls back to
 * cgroup.procs where there is no "tasks" (cgroup v2). */
int nsr_attach_self_v1(int cgroup_fd)
{
    if (write_zero(cgroup_fd, "tasks") == 0)
        return 0;
    return errno == ENOENT ? write_zero(cgroup_fd, "cgroup.procs") : -1;
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

void nsr_close_pipe(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    p[0] = p[1] = -1;
}

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

int nsr_sync_read(int fd, void *buf, size_t len)
{
    return sync_io(fd, buf, len, 0);
}

int nsr_sync_write(int fd, const void *buf, size_t len)
{
    return sync_io(fd, (void *)buf, len, 1);
}
