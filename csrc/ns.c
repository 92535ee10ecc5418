/* ns.c: namespaces: the child's setns/sethostname steps, and the pod sandbox (new net,
 * ipc and uts namespaces held by fds, lo up, hostname set), optionally held by a pause
 * process as well. */
#include "nsrun.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* ---- the pause process ---------------------------------------------------------------
 *
 * With keep, the sandbox helper stays alive as the pod's "pause" process: it holds the
 * namespaces for as long as the pod lives (so the supervisor notices, through its pidfd, when
 * the sandbox is lost), dies with the supervisor (PR_SET_PDEATHSIG; keep=2: it outlives the
 * supervisor, which may re-attach to it), and ignores and blocks every signal but SIGKILL
 * and SIGSTOP.
 *
 * A fork-like helper that just sleeps would keep a copy-on-write snapshot of the whole
 * Python supervisor (tens of MB once the parent has written to its pages). So, where there
 * is one for the architecture, it execs a 160-byte static ELF from a sealed memfd instead:
 * prctl(PR_SET_NAME, "nsrun-pause"), then pause() forever (about 12 kB resident). The signal
 * dispositions (SIG_IGN) and mask survive the execve, and so does the parent-death signal
 * (no set-uid, no capability gained). Elsewhere, or where memfds may not be executed
 * (vm.memfd_noexec=2), the helper sleeps in C.
 */
#if defined(__x86_64__)
static const unsigned char pause_elf[] = {
    /* ELF64 header: ET_EXEC, EM_X86_64, entry 0x400078, one program header */
    0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x00, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x38, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* PT_LOAD R+X: the whole file (160 bytes) at 0x400000 */
    0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* mov edi, 15 (PR_SET_NAME); lea rsi, [rip+16]; mov eax, 157 (prctl); syscall */
    0xbf, 0x0f, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0x10, 0x00, 0x00, 0x00, 0xb8, 0x9d,
    0x00, 0x00, 0x00, 0x0f, 0x05,
    /* 1: mov eax, 34 (pause); syscall; jmp 1b */
    0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7,
    /* "nsrun-pause" */
    0x6e, 0x73, 0x72, 0x75, 0x6e, 0x2d, 0x70, 0x61, 0x75, 0x73, 0x65, 0x00,
};
#define HAVE_PAUSE_ELF 1
#else
#define HAVE_PAUSE_ELF 0
#endif

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

/* A read-only, CLOEXEC fd of a sealed memfd holding the pause ELF; -1 if there is none (the
 * helper then sleeps in C). */
static int pause_exec_fd(void)
{
#if HAVE_PAUSE_ELF
    char path[32];
    int rw, ro;

    rw = memfd_create("nsrun-pause", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (rw < 0 && errno == EINVAL)  /* before 6.3: no MFD_EXEC (memfds are executable) */
        rw = memfd_create("nsrun-pause", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (rw < 0)
        return -1;
    if (write(rw, pause_elf, sizeof pause_elf) != (ssize_t)sizeof pause_elf ||
        fcntl(rw, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        close(rw);
        return -1;
    }
    /* execve refuses a file open for writing (ETXTBSY): exec a read-only reopening */
    nsr_fd_path(path, rw);
    ro = open(path, O_RDONLY | O_CLOEXEC);
    close(rw);
    return ro;
#else
    return -1;
#endif
}

static void ignore_signals(void)
{
    struct sigaction ign;
    int sig;

    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigfillset(&ign.sa_mask);
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &ign, NULL);  /* glibc's two internal signals: EINVAL, fine */
    }
    /* the mask stays as the parent set it around the clone: everything blocked */
}

static void __attribute__((noreturn)) helper_fail(int status_fd, int step)
{
    struct nsr_report rep = {step, errno, -1};

    if (write(status_fd, &rep, sizeof rep) != sizeof rep)
        _exit(127);
    _exit(127);
}

/* Close every fd but a and b (b may be -1). */
static void close_all_but(int a, int b)
{
    unsigned int lo, hi, fd = 0;

    if (b < 0)
        b = a;
    lo = (unsigned int)(a < b ? a : b);
    hi = (unsigned int)(a < b ? b : a);
    if (lo > fd)
        nsr_close_range(fd, lo - 1);
    if (hi > lo + 1)
        nsr_close_range(lo + 1, hi - 1);
    nsr_close_range(hi + 1, ~0U);
}

/* The pause process (keep): set up, then become nsrun-pause. Reports only failures: EOF on
 * the status pipe (CLOEXEC, or closed by hand before sleeping in C) means ready. */
static void __attribute__((noreturn))
pause_child(const char *hostname, int status_fd, int exec_fd, pid_t parent, int self_cgroup)
{
    static char *const argv[] = {"nsrun-pause", NULL};
    static char *const envp[] = {NULL};

    if (self_cgroup >= 0 && nsr_attach_self(self_cgroup) < 0)
        helper_fail(status_fd, NSR_STEP_CGROUP_ATTACH);
    /* no hostname: the node's network and uts namespaces (hostNetwork), left alone */
    if (hostname && sethostname(hostname, strlen(hostname)) < 0)
        helper_fail(status_fd, NSR_STEP_SETHOSTNAME);
    if (hostname && lo_up() < 0)
        helper_fail(status_fd, NSR_STEP_LO_UP);
    if (parent && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        helper_fail(status_fd, NSR_STEP_PDEATHSIG);
    if (parent && getppid() != parent)  /* the supervisor died before the prctl: follow it */
        _exit(0);
    if (!parent)
        setsid();  /* outliving the supervisor: no terminal of its */
    ignore_signals();
    /* Keep nothing of the supervisor's: no pipe of a container, no log, no terminal. */
    close_all_but(status_fd, exec_fd);
    if (exec_fd >= 0)
        syscall(SYS_execveat, exec_fd, "", argv, envp, AT_EMPTY_PATH);
    /* no pause ELF here (or memfds are not executable): sleep in C */
    close(status_fd);
    if (exec_fd >= 0)
        close(exec_fd);
    for (;;)
        pause();
}

/* The sandbox helper (keep=0): set up, report, then stay alive until the parent has
 * opened its /proc/<pid>/ns files (EOF on the release pipe). */
static void __attribute__((noreturn))
sandbox_child(const char *hostname, int status_fd, int release_r, int release_w)
{
    struct nsr_report rep = {-1, 0, -1};
    char c;

    close(release_w);
    if (hostname && sethostname(hostname, strlen(hostname)) < 0)
        rep = (struct nsr_report){NSR_STEP_SETHOSTNAME, errno, -1};
    else if (hostname && lo_up() < 0)
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
static int open_sandbox_ns(pid_t pid, int fds[3], struct nsr_report *rep)
{
    static const char *const names[3] = {"net", "ipc", "uts"};
    int i, saved;

    for (i = 0; i < 3; i++) {
        fds[i] = open_ns(pid, names[i]);
        if (fds[i] < 0) {
            *rep = (struct nsr_report){NSR_STEP_OPEN_NS, errno, i};
            saved = errno;
            while (i-- > 0) {
                close(fds[i]);
                fds[i] = -1;
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

/* Read the helper's status (keep=0); 0 when it is set up and waiting. */
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

#define SANDBOX_FLAGS (CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
/* hostname NULL (hostNetwork): a new ipc namespace only, the node's net and uts are kept */
#define SANDBOX_FLAGS_FOR(hostname) ((hostname) ? SANDBOX_FLAGS : CLONE_NEWIPC)

/* keep=0: the helper exits once the parent holds the namespaces (unchanged behaviour). */
static int sandbox_transient(const char *hostname, int fds[3], struct nsr_report *rep)
{
    int status[2] = {-1, -1}, release[2] = {-1, -1}, pidfd = -1, rc;
    sigset_t old;
    pid_t pid;

    if (pipe2(status, O_CLOEXEC) < 0 || pipe2(release, O_CLOEXEC) < 0) {
        *rep = (struct nsr_report){NSR_STEP_PIPE, errno, -1};
        close2(status[0], status[1]);
        return -1;
    }
    /* fork-like, not CLONE_VFORK: the parent must run while the helper waits */
    nsr_block_signals(&old);
    pid = nsr_clone(SANDBOX_FLAGS_FOR(hostname), -1, &pidfd, nsr_clone3_usable());
    if (pid == 0)
        sandbox_child(hostname, status[1], release[0], release[1]);
    if (pid < 0)
        *rep = (struct nsr_report){NSR_STEP_CLONE, errno, -1};
    nsr_restore_signals(&old);
    close2(status[1], release[0]);
    if (pid < 0) {
        close2(status[0], release[1]);
        return -1;
    }
    rc = read_status(status[0], rep);
    if (rc == 0)
        rc = open_sandbox_ns(pid, fds, rep);
    close2(status[0], release[1]);  /* EOF on release: the helper exits */
    nsr_reap(pid, pidfd);
    return rc < 0 ? -1 : 0;
}

static pid_t clone_pause(const char *hostname, int cgroup_fd, int use_clone3, int status[2],
                         int exec_fd, int outlive, int *pidfd, struct nsr_report *rep)
{
    pid_t parent = outlive ? 0 : getpid(), pid;
    sigset_t old;

    nsr_block_signals(&old);
    pid = nsr_clone(SANDBOX_FLAGS_FOR(hostname), use_clone3 ? cgroup_fd : -1, pidfd,
                    use_clone3);
    if (pid == 0) {
        close(status[0]);
        pause_child(hostname, status[1], exec_fd, parent, use_clone3 ? -1 : cgroup_fd);
    }
    if (pid < 0)
        *rep = (struct nsr_report){NSR_STEP_CLONE, errno, -1};
    nsr_restore_signals(&old);
    return pid;
}

/* keep=1: returns the pause process's pid (with its pidfd), -1 with *rep on failure (the
 * helper killed and reaped then). */
static pid_t sandbox_pause(const char *hostname, int cgroup_fd, int use_clone3, int exec_fd,
                           int outlive, int fds[3], int *pidfd_out, struct nsr_report *rep)
{
    int status[2] = {-1, -1}, pidfd = -1, rc;
    pid_t pid;

    if (nsr_pipe_high(status) < 0) {
        *rep = (struct nsr_report){NSR_STEP_PIPE, errno, -1};
        return -1;
    }
    pid = clone_pause(hostname, cgroup_fd, use_clone3, status, exec_fd, outlive, &pidfd, rep);
    close(status[1]);
    if (pid < 0) {
        close(status[0]);
        return -1;
    }
    rc = nsr_read_report(status[0], rep);  /* EOF: exec()ed, or sleeping in C */
    close(status[0]);
    if (rc == 0 && pidfd < 0) {
        pidfd = syscall(SYS_pidfd_open, pid, 0);  /* our child: its pid cannot be reused */
        if (pidfd < 0)
            *rep = (struct nsr_report){NSR_STEP_PIDFD_OPEN, errno, -1};
        rc = pidfd < 0 ? -1 : 0;
    }
    if (rc == 0)
        rc = open_sandbox_ns(pid, fds, rep);
    if (rc < 0) {
        kill(pid, SIGKILL);
        nsr_reap(pid, pidfd);
        return -1;
    }
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    *pidfd_out = pidfd;
    return pid;
}

/* New net (lo up), ipc and uts (hostname) namespaces in fds[net, ipc, uts]; hostname NULL:
 * a new ipc namespace only, fds[net] and fds[uts] are the node's (hostNetwork). keep=0: 0, the
 * namespaces held by the fds alone. keep=1: the pid of the pause process holding them too,
 * dying with the caller (keep=2: outliving it)
 * (started into cgroup_fd when >= 0), *pidfd_out its pidfd. -1 with *rep on failure. */
int nsr_sandbox_create(const char *hostname, int keep, int cgroup_fd, int fds[3],
                       int *pidfd_out, struct nsr_report *rep)
{
    int use_clone3 = nsr_clone3_usable(), exec_fd;
    pid_t pid;

    *rep = (struct nsr_report){-1, 0, -1};
    fds[0] = fds[1] = fds[2] = -1;
    *pidfd_out = -1;
    if (!keep)
        return sandbox_transient(hostname, fds, rep);
    exec_fd = pause_exec_fd();
    pid = sandbox_pause(hostname, cgroup_fd, use_clone3, exec_fd, keep == 2, fds, pidfd_out,
                        rep);
    /* Kernels 5.3-5.6: clone3 without CLONE_INTO_CGROUP (see nsr_spawn). */
    if (pid < 0 && rep->step == NSR_STEP_CLONE && use_clone3 && cgroup_fd >= 0 &&
        (rep->err == EINVAL || rep->err == E2BIG))
        pid = sandbox_pause(hostname, cgroup_fd, 0, exec_fd, keep == 2, fds, pidfd_out, rep);
    if (exec_fd >= 0)
        close(exec_fd);
    return pid;
}
