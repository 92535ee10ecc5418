/* oci.c: the child steps an OCI runtime needs on top of a pod container's: stopping at the
 * lifecycle's points (runc's create/start split) and a console in the container's devpts.
 *
 * Stops (req->stops, the fd to wait on in req->stop_fd): at each requested point the child
 * writes a report with err 0 and index NSR_STOPPED on the report pipe, then blocks reading one
 * byte from stop_fd; the parent (nsr_spawn_stopped) returns to its caller on that report with
 * the pipe still open, so the caller can act while the child waits and then read the next
 * report (another stop, a failure, or EOF once the child exec()ed).
 *   hooks   after the mounts, before pivot_root: the runtime runs the prestart, createRuntime
 *           and createContainer hooks (the last ones inside the child's namespaces);
 *   start   the last thing before execve, with every step done (namespaces, mounts,
 *           pivot_root, credentials, capabilities, seccomp, cgroup): `create` has returned
 *           and `start` releases the process by writing the byte. The executable is looked up
 *           before the stop, so "not found" is a create error, as in runc.
 * stop_fd is a FIFO the child holds open read-write (so `start` can tell a live waiter from a
 * dead one by opening it O_WRONLY|O_NONBLOCK); only read(2) and write(2) run at the start
 * stop, which any seccomp profile that lets a program run allows.
 *
 * Console (req->console): the pty is opened from the container's own /dev/ptmx (after
 * pivot_root, as the container's user: the slave belongs to that user, like a login), its
 * master is sent over the connected unix socket req->console_fd (one message: the payload is
 * the slave's name, "/dev/pts/N", and exactly one fd in SCM_RIGHTS, as runc sends it), and the
 * slave becomes fds 0-2 (then the controlling terminal: the ctty step). ONLCR is cleared, as
 * runc does, so a log gets the program's own line ends.
 */
#include "nsrun.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* Report "stopped at ctx->step" and wait for the go byte. EOF or an error on stop_fd means
 * the runtime gave up on this container: leave quietly (it is reaped or killed by then). */
static int stop_here(struct nsr_ctx *ctx)
{
    struct nsr_report rep = {ctx->step, 0, NSR_STOPPED};
    ssize_t n;
    char c;

    do
        n = write(ctx->report_fd, &rep, sizeof rep);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof rep)
        _exit(127);
    do
        n = read(ctx->req->stop_fd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(127);
    return 0;
}

int nsr_step_stop_hooks(struct nsr_ctx *ctx)
{
    return ctx->req->stops & NSR_STOP_HOOKS ? stop_here(ctx) : 0;
}

/* Like the execve step's search, without the exec: 0 when a candidate can be executed;
 * else -1 with ENOENT (none there) or the first other error (EACCES, ...). */
static int lookup_executable(const struct nsr_spawn_req *req)
{
    int i, saw = 0, err = ENOENT;

    for (i = 0; req->exec_paths[i]; i++) {
        if (syscall(SYS_faccessat, AT_FDCWD, req->exec_paths[i], X_OK) == 0)
            return 0;
        if (errno != ENOENT && errno != ENOTDIR && !saw) {
            saw = 1;
            err = errno;
        }
    }
    errno = err;
    return -1;
}

int nsr_step_wait_start(struct nsr_ctx *ctx)
{
    if (!(ctx->req->stops & NSR_STOP_START))
        return 0;
    if (lookup_executable(ctx->req) < 0) {
        ctx->step = NSR_STEP_EXECVE;  /* reported as the exec that would have failed */
        return -1;
    }
    return stop_here(ctx);
}

/* "/dev/pts/" followed by n in decimal, NUL-terminated; returns the length. */
static size_t pty_name(char buf[32], unsigned int n)
{
    static const char prefix[] = "/dev/pts/";
    char digits[12], *p = digits + sizeof digits;
    size_t len = sizeof prefix - 1;

    memcpy(buf, prefix, len);
    do
        *--p = (char)('0' + n % 10);
    while ((n /= 10));
    memcpy(buf + len, p, (size_t)(digits + sizeof digits - p));
    len += (size_t)(digits + sizeof digits - p);
    buf[len] = '\0';
    return len;
}

static int send_master(int sock, int master, const char *name, size_t len)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)name, len};
    struct msghdr msg;
    struct cmsghdr *cmsg;
    ssize_t n;

    memset(&msg, 0, sizeof msg);
    memset(&u, 0, sizeof u);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &master, sizeof(int));
    do
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

/* The slave of a new pty of the devpts instance behind /dev/ptmx, its master sent away. */
static int open_console(int sock)
{
    struct termios t;
    char name[32];
    unsigned int n;
    int master, slave, unlock = 0, saved;

    master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        return -1;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &n) < 0)
        goto fail;
    pty_name(name, n);
    slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0 && (errno == EINVAL || errno == ENOTTY))  /* before Linux 4.13 */
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        goto fail;
    if (tcgetattr(slave, &t) == 0) {  /* an ioctl: no lock, nothing allocated */
        t.c_oflag &= ~(tcflag_t)ONLCR;
        tcsetattr(slave, TCSANOW, &t);
    }
    if (send_master(sock, master, name, strlen(name)) < 0) {
        saved = errno;
        close(slave);
        close(master);
        errno = saved;
        return -1;
    }
    close(master);
    return slave;
fail:
    saved = errno;
    close(master);
    errno = saved;
    return -1;
}

int nsr_step_console(struct nsr_ctx *ctx)
{
    int slave, i;

    if (!ctx->req->console)
        return 0;
    slave = open_console(ctx->req->console_fd);
    if (slave < 0)
        return -1;
    for (i = 0; i < 3; i++) {
        if (dup2(slave, i) < 0) {
            close(slave);
            return -1;
        }
    }
    return close(slave);
}
