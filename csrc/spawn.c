/* spawn.c: the parent side of a container spawn: clone the child by the chosen path
 * (clone3 CLONE_VM|CLONE_VFORK, clone3, or clone with a "go" pipe), put it into its cgroups,
 * write a user namespace's maps, and read the report pipe until its execve or a failed
 * step. The child's side is steps.c; see nsrun.h for the contract between the two. */
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
 * cgroup by pid, open its pidfd, then release it; it joins the v1 cgroups
 * (cgroup_join_fds) itself, first thing (nsr_attach_self_v1: no RCU grace period). On
 * failure the caller kills and reaps it. */
static int attach_fallback(pid_t pid, const struct nsr_spawn_req *req, int *pidfd,
                           struct nsr_report *rep)
{
    if (req->cgroup_fd >= 0 && write_procs(req->cgroup_fd, pid) < 0) {
        nsr_set_report(rep, NSR_STEP_CGROUP_ATTACH, errno, -1);
        return -1;
    }
    *pidfd = syscall(SYS_pidfd_open, pid, 0);
    if (*pidfd < 0) {
        nsr_set_report(rep, NSR_STEP_PIDFD_OPEN, errno, -1);
        return -1;
    }
    fcntl(*pidfd, F_SETFD, FD_CLOEXEC);  /* pidfd_open sets it already; be explicit */
    return 0;
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

struct child_args {
    const struct nsr_spawn_req *req;
    int report_fd;
};

static int child_entry(void *p)
{
    struct child_args *a = p;  /* on the suspended parent's stack: shared memory */

    nsr_child_main(a->req, a->report_fd, -1, -1, -1);
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
        nsr_child_main(req, report[1], go[0], go[1], sync_fd);
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

    if (nsr_sync_read(sync_fd, &c, 1) < 0 || c != 'U')
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
    if (nsr_sync_write(sync_fd, &c, 1) < 0 || nsr_sync_read(sync_fd, &pid, sizeof pid) < 0)
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
int nsr_spawn_any(const struct nsr_spawn_req *req, int *pidfd_out, int *report_out,
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
    return nsr_spawn_any(req, pidfd_out, NULL, rep);
}

/* As nsr_spawn, but the child may stop (req->stops): then it returns the pid with *rep the
 * stop report (err 0, index NSR_STOPPED) and *report_fd_out the report pipe, which the
 * caller reads on from there (another stop, a failure, EOF at the execve) and closes. When
 * the child exec()ed without stopping, *report_fd_out is -1. */
int nsr_spawn_stopped(const struct nsr_spawn_req *req, int *pidfd_out, int *report_fd_out,
                      struct nsr_report *rep)
{
    *report_fd_out = -1;
    return nsr_spawn_any(req, pidfd_out, report_fd_out, rep);
}
