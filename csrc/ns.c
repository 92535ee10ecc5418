/* ns.c: namespaces: the child's setns/sethostname steps, and the pod sandbox (new net,
 * ipc and uts namespaces held by fds, lo up, hostname set). */
#include "nsrun.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int nsr_step_setns(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    int i;

    /* Before any mount work: a sysfs mounted later shows the joined net namespace. */
    for (i = 0; i < req->nns; i++) {
        ctx->index = i;
        if (setns(req->ns_fds[i], req->ns_types[i]) < 0)
            return -1;
    }
    ctx->index = -1;
    return 0;
}

static int write_file(const char *path, const char *value)
{
    size_t len = strlen(value);
    ssize_t n;
    int fd, saved;

    fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = write(fd, value, len);
    saved = n < 0 ? errno : EIO;
    close(fd);
    if (n != (ssize_t)len) {
        errno = saved;
        return -1;
    }
    return 0;
}

int nsr_step_sysctl(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    int i;

    /* Through the host's /proc/sys (before pivot_root): the net and ipc entries there show
     * the namespaces of the process that opens them, the ones just joined. The parent only
     * passes namespaced keys, as paths it built itself. */
    for (i = 0; req->sysctl_paths && req->sysctl_paths[i]; i++) {
        ctx->index = i;
        if (write_file(req->sysctl_paths[i], req->sysctl_values[i]) < 0)
            return -1;
    }
    ctx->index = -1;
    return 0;
}

int nsr_step_sethostname(struct nsr_ctx *ctx)
{
    const char *name = ctx->req->hostname;

    /* Only set for a uts namespace of our own (CLONE_NEWUTS): never the host's. */
    return name ? sethostname(name, strlen(name)) : 0;
}

/* Bring lo up in the current net namespace: SIOCGIFFLAGS, set IFF_UP, SIOCSIFFLAGS. */
static int lo_up(void)
{
    struct ifreq ifr;
    int fd, rc = -1, saved;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* The sandbox helper (a clone with new net/ipc/uts namespaces): set up, report, then
 * stay alive until the parent has opened its /proc/<pid>/ns files (EOF on the release pipe). */
static void __attribute__((noreturn))
sandbox_child(const char *hostname, int status_fd, int release_r, int release_w)
{
    struct nsr_report rep = {-1, 0, -1};
    char c;

    close(release_w);
    if (sethostname(hostname, strlen(hostname)) < 0)
        rep = (struct nsr_report){NSR_STEP_SETHOSTNAME, errno, -1};
    else if (lo_up() < 0)
        rep = (struct nsr_report){NSR_STEP_LO_UP, errno, -1};
    if (write(status_fd, &rep, sizeof rep) != sizeof rep)
        _exit(127);
    while (read(release_r, &c, 1) < 0 && errno == EINTR)
        ;
    _exit(rep.step < 0 ? 0 : 127);
}

static int open_ns(pid_t pid, const char *name)
{
    char path[64];

    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Opens the helper's three namespace fds; on failure none is left open. */
static int open_sandbox_ns(pid_t pid, int *fds[3], struct nsr_report *rep)
{
    static const char *const names[3] = {"net", "ipc", "uts"};
    int i, saved;

    for (i = 0; i < 3; i++) {
        *fds[i] = open_ns(pid, names[i]);
        if (*fds[i] < 0) {
            *rep = (struct nsr_report){NSR_STEP_OPEN_NS, errno, i};
            saved = errno;
            while (i-- > 0) {
                close(*fds[i]);
                *fds[i] = -1;
            }
            errno = saved;
            return -1;
        }
    }
    return 0;
}

static void close2(int a, int b)
{
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
}

static void reap_helper(pid_t pid, int pidfd)
{
    siginfo_t info;
    int status;

    if (pidfd >= 0) {
        while (waitid(P_PIDFD, pidfd, &info, WEXITED) < 0 && errno == EINTR)
            ;
        close(pidfd);
        return;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}

/* Read the helper's status; 0 when it is set up and waiting. */
static int read_status(int fd, struct nsr_report *rep)
{
    ssize_t n;

    do
        n = read(fd, rep, sizeof *rep);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof *rep)
        return rep->step < 0 ? 0 : -1;
    *rep = (struct nsr_report){NSR_STEP_WAIT, n < 0 ? errno : ECHILD, -1};
    return -1;
}

/* Clone the helper with its own net, ipc and uts namespaces (fork-like, not CLONE_VFORK:
 * the parent must run while the helper waits). */
static pid_t clone_helper(const char *hostname, int status[2], int release[2], int *pidfd,
                          struct nsr_report *rep)
{
    sigset_t old;
    pid_t pid;

    nsr_block_signals(&old);
    pid = nsr_clone(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS, -1, pidfd,
                    nsr_clone3_usable());
    if (pid == 0)
        sandbox_child(hostname, status[1], release[0], release[1]);
    if (pid < 0)
        *rep = (struct nsr_report){NSR_STEP_CLONE, errno, -1};
    nsr_restore_signals(&old);
    return pid;
}

int nsr_sandbox_create(const char *hostname, int *net_fd, int *ipc_fd, int *uts_fd,
                       struct nsr_report *rep)
{
    int status[2] = {-1, -1}, release[2] = {-1, -1}, pidfd = -1, rc;
    int *fds[3] = {net_fd, ipc_fd, uts_fd};
    pid_t pid;

    *rep = (struct nsr_report){-1, 0, -1};
    *net_fd = *ipc_fd = *uts_fd = -1;
    if (pipe2(status, O_CLOEXEC) < 0 || pipe2(release, O_CLOEXEC) < 0) {
        *rep = (struct nsr_report){NSR_STEP_PIPE, errno, -1};
        close2(status[0], status[1]);
        return -1;
    }
    pid = clone_helper(hostname, status, release, &pidfd, rep);
    close2(status[1], release[0]);
    if (pid < 0) {
        close2(status[0], release[1]);
        return -1;
    }
    rc = read_status(status[0], rep);
    if (rc == 0)
        rc = open_sandbox_ns(pid, fds, rep);
    close2(status[0], release[1]);  /* EOF on release: the helper exits */
    reap_helper(pid, pidfd);
    return rc;
}
