/* monitor.c: a container's monitor, as conmon is one: a process forked from the caller (no
 * exec) that clones the container as its own child, records that it runs, and then execs the
 * small nsrun-monitor executable (monitor_exe.c) that runs the rest of its life
 * (monitor_loop.c: the log copy with rotation, the reaping, the durable exit record), so
 * that it holds no copy-on-write image of the Python supervisor. The container stays its
 * child across the execve; the pipe, the pidfd and the directories are inherited fds, and
 * nothing else of the caller's is (close_range; stdio becomes /dev/null). Without the
 * executable, or when the execve fails, the forked monitor goes on in-process, as before,
 * and the caller is told why (*exec_err_out). It needs nothing from the process that forked
 * it once started: a supervisor that dies costs no exit status and no log line. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct mon_result {
    int32_t pid;
    struct nsr_report rep;
};

/* A process's start time in clock ticks after boot (/proc/<pid>/stat field 22; psutil's
 * create_time() is boot time + this / CLK_TCK). No malloc here: the monitor is a raw clone of
 * a process that may have threads. */
static unsigned long long start_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ticks = 0;
    ssize_t n;
    int fd, i;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    p = strrchr(buf, ')');
    for (i = 0; p && i < 20; i++)  /* field 22 is the 20th after the comm's ')' */
        p = strchr(p + 1, ' ');
    if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
        return 0;
    return ticks;
}

/* Close every fd but the ones in keep[] (close_range between them). */
static void close_others(const int *keep, int n)
{
    int sorted[8], i, j, lo = 3;

    memcpy(sorted, keep, n * sizeof *keep);
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && sorted[j] < sorted[j - 1]; j--) {
            int t = sorted[j];

            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    for (i = 0; i < n; i++) {
        if (sorted[i] < lo)
            continue;
        if (sorted[i] > lo)
            nsr_close_range(lo, sorted[i] - 1);
        lo = sorted[i] + 1;
    }
    nsr_close_range(lo, ~0U);
}

static void monitor_signals(int die_with_parent)
{
    struct sigaction sa;
    sigset_t none;
    int sig;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++)
        sigaction(sig, &sa, NULL);  /* the caller's handlers (Python's) mean nothing here */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();  /* a Ctrl-C at the supervisor's terminal is not for the monitor */
    prctl(PR_SET_NAME, "nsrun-monitor", 0, 0, 0);
    if (die_with_parent)
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

/* fds 0-2 that are not in keep[] become /dev/null: the supervisor's log or terminal is not
 * the monitor's. */
static void stdio_to_null(const int *keep, int n)
{
    int null = open("/dev/null", O_RDWR), fd, i, kept;

    for (fd = 0; fd < 3; fd++) {
        for (i = 0, kept = fd == null; i < n; i++)
            kept |= keep[i] == fd;
        if (!kept && null >= 0)
            dup2(null, fd);
    }
    if (null > 2)
        close(null);
}

static void format_fd(char *buf, size_t len, int fd)
{
    fcntl(fd, F_SETFD, 0);  /* inherited across the execve */
    snprintf(buf, len, "%d", fd);
}

/* Become nsrun-monitor (argv: monitor_exe.c's order). Returns only when the execve failed
 * (errno). */
static void exec_monitor(const struct nsr_mon_state *s, int pidfd, int ack_fd)
{
    const struct nsr_monitor_req *m = s->m;
    char fds[5][16], size[24], files[16], pid[16], ticks[2][24], at[40];
    char *argv[] = {"nsrun-monitor", fds[0], fds[1], fds[2], (char *)m->log_name, fds[3],
                    (char *)m->record_name, size, files, fds[4], pid, ticks[0], ticks[1], at,
                    NULL};
    char *envp[] = {NULL};
    int keep[] = {pidfd, m->log_in_fd, m->log_dirfd, m->record_dirfd, ack_fd}, i;

    for (i = 0; i < 5; i++)
        format_fd(fds[i], sizeof fds[i], keep[i]);
    snprintf(size, sizeof size, "%llu", (unsigned long long)m->log_max_size);
    snprintf(files, sizeof files, "%d", m->log_max_files);
    snprintf(pid, sizeof pid, "%d", (int)s->pid);
    snprintf(ticks[0], sizeof ticks[0], "%llu", s->start);
    snprintf(ticks[1], sizeof ticks[1], "%llu", s->self_start);
    snprintf(at, sizeof at, "%a", s->started_at);  /* exact: the exit record repeats it */
    stdio_to_null(keep, 5);
    execve(m->exe, argv, envp);
}

static void __attribute__((noreturn))
monitor_main(const struct nsr_spawn_req *req, const struct nsr_monitor_req *m, int res_fd,
             int ack_fd)
{
    struct nsr_mon_state s = {.m = m, .self = getpid(), .log_fd = -1};
    struct mon_result r;
    int pidfd = -1, keep[6];
    int32_t err = 0;

    monitor_signals(m->die_with_parent);
    if (m->cgroup_fd >= 0)
        nsr_attach_self(m->cgroup_fd);  /* best effort: it works from anywhere */
    for (int i = 0; i < m->njoin; i++)
        nsr_attach_self_v1(m->join_fds[i]);
    memset(&r, 0, sizeof r);
    r.pid = nsr_spawn_any(req, &pidfd, NULL, &r.rep);
    if (req->stdio[1] >= 0)
        close(req->stdio[1]);  /* the container holds the pipe's write end now */
    if (r.pid > 0) {
        s.pid = r.pid;
        s.started_at = nsr_now_real();
        s.start = start_ticks(s.pid);
        s.self_start = start_ticks(s.self);
        nsr_mon_record(&s, 0, NULL);
    }
    nsr_sync_write(res_fd, &r, sizeof r);
    if (r.pid <= 0)
        _exit(0);
    keep[0] = pidfd, keep[1] = m->log_in_fd, keep[2] = m->log_dirfd;
    keep[3] = m->record_dirfd, keep[4] = ack_fd, keep[5] = res_fd;
    close_others(keep, 6);
    if (m->exe) {
        exec_monitor(&s, pidfd, ack_fd);  /* res_fd (CLOEXEC) closes: the caller sees EOF */
        err = errno;
        nsr_sync_write(res_fd, &err, sizeof err);  /* EPIPE if no one waits: SIG_IGN */
    }
    close(res_fd);
    nsr_mon_run(&s, pidfd, ack_fd);
    _exit(0);
}

/* EOF on the result pipe once the monitor's execve closed it: 0; else the execve's errno. */
static int exec_result(int res_fd)
{
    int32_t err;
    ssize_t n;

    while ((n = read(res_fd, &err, sizeof err)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)sizeof err ? err : 0;
}

/* Fork the monitor, which spawns the container. Returns the container's pid with *pidfd_out
 * and *monitor_pidfd_out; -1 with *rep when the spawn failed (the monitor has exited then,
 * and is reaped). exec_err_out non-NULL: wait until the monitor has exec'd m->exe (*0) or
 * failed to (*errno: it goes on in-process); -1: no m->exe. NULL: do not wait (the exec
 * then costs the caller nothing: it runs while the caller goes on). */
int nsr_spawn_monitored(const struct nsr_spawn_req *req, const struct nsr_monitor_req *m,
                        int *pidfd_out, int *monitor_pidfd_out, int *exec_err_out,
                        struct nsr_report *rep)
{
    int res[2] = {-1, -1}, ack[2] = {-1, -1}, mfd = -1;
    struct mon_result r;
    pid_t mpid;

    nsr_set_report(rep, -1, 0, -1);
    if (exec_err_out)
        *exec_err_out = -1;
    *pidfd_out = *monitor_pidfd_out = -1;
    if (pipe2(res, O_CLOEXEC) < 0 || pipe2(ack, O_CLOEXEC) < 0) {
        nsr_set_report(rep, NSR_STEP_PIPE, errno, -1);
        nsr_close_pipe(res);
        return -1;
    }
    mpid = nsr_clone(0, -1, &mfd, nsr_clone3_usable());
    if (mpid == 0) {
        close(res[0]);
        close(ack[1]);
        monitor_main(req, m, res[1], ack[0]);
    }
    close(res[1]);
    close(ack[0]);
    if (mpid < 0 || nsr_sync_read(res[0], &r, sizeof r) < 0) {
        nsr_set_report(rep, mpid < 0 ? NSR_STEP_CLONE : NSR_STEP_WAIT, mpid < 0 ? errno : EPROTO, -1);
        goto fail;
    }
    if (r.pid <= 0) {
        *rep = r.rep;
        goto fail;
    }
    *pidfd_out = syscall(SYS_pidfd_open, r.pid, 0);  /* alive: the monitor waits for the ack */
    if (*pidfd_out < 0) {
        nsr_set_report(rep, NSR_STEP_PIDFD_OPEN, errno, -1);
        kill(r.pid, SIGKILL);
        goto fail;
    }
    close(ack[1]);  /* the ack: EOF */
    if (exec_err_out && m->exe)
        *exec_err_out = exec_result(res[0]);
    close(res[0]);
    if (mfd < 0)
        mfd = syscall(SYS_pidfd_open, mpid, 0);  /* our child, not reaped: still mpid */
    *monitor_pidfd_out = mfd;
    return r.pid;

fail:
    close(ack[1]);
    close(res[0]);
    if (mpid > 0)
        nsr_reap(mpid, mfd);
    return -1;
}
