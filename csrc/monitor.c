/* monitor.c: a container's monitor, as conmon is one: a process forked from the caller (no
 * exec) that clones the container as its own child, then copies the container's
 * stdout/stderr from a pipe to its log file (rotated at a size, the oldest files removed),
 * reaps it and records its exit durably, and exits. It needs nothing from the process that
 * forked it once started: a supervisor that dies costs no exit status and no log line.
 *
 * The record, <record_dir>/<name>, is JSON written atomically and durably twice: once the
 * container runs ({"pid", "monitorPid", "startTicks", "monitorStartTicks", "startedAt"}) and
 * once it was
 * reaped (plus "exitCode", "signal", "finishedAt", "logDropped"). The exit record is retried
 * every second while the disk is full; log bytes that cannot be written are dropped and
 * counted. */
#include "nsrun.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct mon_state {
    const struct nsr_monitor_req *m;
    pid_t pid, self;
    unsigned long long start, self_start;
    double started_at;
    int log_fd;
    uint64_t log_size;
    int rotations;
    uint64_t dropped;
    int lasting;  /* the records outlive a reboot (the state root is not a tmpfs) */
};

#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

/* Whether the pod's records can outlive the machine: not on a tmpfs or ramfs (nsrun's
 * default state root, /run/nsrun, is a tmpfs on a systemd host). */
static int on_lasting_fs(int dirfd)
{
    struct statfs st;

    if (fstatfs(dirfd, &st) < 0)
        return 1;
    return st.f_type != TMPFS_MAGIC_ && st.f_type != RAMFS_MAGIC_;
}

#define RECORD_RETRIES 600  /* seconds a full disk may delay an exit record */

struct mon_result {
    int32_t pid;
    struct nsr_report rep;
};

static double now_real(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

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

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= n;
    }
    return 0;
}

/* <dir>/.<name>.tmp, renamed over <dir>/<name>: atomic; durable, the file is fsynced before
 * the rename and the directory after it. */
static int write_record_file(int dirfd, const char *name, const char *text, int durable)
{
    char tmp[300];
    int fd, ok;

    snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ok = write_all(fd, text, strlen(text)) == 0 && (!durable || fsync(fd) == 0);
    close(fd);
    if (!ok || renameat(dirfd, tmp, dirfd, name) < 0) {
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    return durable ? fsync(dirfd) : 0;
}

static int dir_removed(int dirfd)
{
    struct stat st;

    return fstat(dirfd, &st) < 0 || st.st_nlink == 0;
}

static void record(struct mon_state *s, int exited, const siginfo_t *info)
{
    char text[512];
    int tries;
    int len = snprintf(text, sizeof text,
                       "{\"pid\":%d,\"monitorPid\":%d,\"startTicks\":%llu,"
                       "\"monitorStartTicks\":%llu,\"startedAt\":%.6f", (int)s->pid,
                       (int)s->self, s->start, s->self_start, s->started_at);

    if (exited) {
        int killed = info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED;

        snprintf(text + len, sizeof text - len,
                 ",\"exitCode\":%d,\"signal\":%d,\"finishedAt\":%.6f,\"logDropped\":%llu}\n",
                 killed ? 128 + info->si_status : info->si_status,
                 killed ? info->si_status : 0, now_real(),
                 (unsigned long long)s->dropped);
    } else {
        snprintf(text + len, sizeof text - len, "}\n");
    }
    /* a full disk: the exit status is worth waiting for (retried every second, for up to
     * RECORD_RETRIES s, while the pod's directory exists); the start record is not (the exit
     * record repeats it), and the caller waits for it. The start record is atomic, not
     * durable: the caller waits for it on every start, its pids mean nothing after a reboot,
     * and the attempt itself is durable in the supervisor's observed.json; after a reboot a
     * lost or torn one reads as the attempt's end unknown, as it is. */
    for (tries = 0; write_record_file(s->m->record_dirfd, s->m->record_name, text,
                                      exited) < 0; tries++) {
        if (!exited || tries >= RECORD_RETRIES || dir_removed(s->m->record_dirfd))
            return;
        sleep(1);
    }
}

static int open_log(struct mon_state *s)
{
    struct stat st;

    s->log_fd = openat(s->m->log_dirfd, s->m->log_name,
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    s->log_size = s->log_fd >= 0 && fstat(s->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return s->log_fd;
}

/* <name> becomes <name>.<k>; <name>.<k - max_files + 1> is removed (the kubelet's
 * containerLogMaxFiles counts the live file too). */
static void rotate(struct mon_state *s)
{
    char old[300];
    int keep = s->m->log_max_files - 1;

    if (s->log_fd >= 0)
        close(s->log_fd);
    s->rotations++;
    if (keep > 0) {
        snprintf(old, sizeof old, "%s.%d", s->m->log_name, s->rotations);
        renameat(s->m->log_dirfd, s->m->log_name, s->m->log_dirfd, old);
        if (s->rotations - keep >= 1) {
            snprintf(old, sizeof old, "%s.%d", s->m->log_name, s->rotations - keep);
            unlinkat(s->m->log_dirfd, old, 0);
        }
    } else {
        unlinkat(s->m->log_dirfd, s->m->log_name, 0);
    }
    open_log(s);
}

static void log_write(struct mon_state *s, const char *buf, size_t len)
{
    if (s->log_fd < 0 && open_log(s) < 0) {
        s->dropped += len;
        return;
    }
    while (len) {
        ssize_t n = write(s->log_fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {  /* ENOSPC, EIO: drop what is left of the chunk */
            s->dropped += len;
            return;
        }
        s->log_size += n;
        buf += n;
        len -= n;
    }
}

/* Write a chunk, rotating first whenever it would take the file beyond log_max_size: the
 * part that fits (up to its last newline, if it has one) goes to the current file. */
static void log_chunk(struct mon_state *s, const char *buf, size_t len)
{
    uint64_t max = s->m->log_max_size;

    while (max && s->log_size + len > max) {
        size_t room = s->log_size < max ? max - s->log_size : 0, cut = room;

        while (cut > 0 && buf[cut - 1] != '\n')
            cut--;
        if (cut == 0 && s->log_size == 0)
            cut = room ? room : len;  /* one line longer than the limit: split it */
        log_write(s, buf, cut);
        buf += cut;
        len -= cut;
        rotate(s);
    }
    log_write(s, buf, len);
}

/* Copy what the pipe holds now; 0 at EOF. */
static int drain(struct mon_state *s, int fd)
{
    char buf[65536];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return 1;  /* EAGAIN: empty for now */
        if (n == 0)
            return 0;
        log_chunk(s, buf, n);
    }
}

static void monitor_loop(struct mon_state *s, int pidfd)
{
    int log_in = s->m->log_in_fd;
    struct pollfd fds[2] = {{pidfd, POLLIN, 0}, {log_in, POLLIN, 0}};
    siginfo_t info;

    fcntl(log_in, F_SETFL, fcntl(log_in, F_GETFL) | O_NONBLOCK);
    for (;;) {
        if (poll(fds, log_in >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
            break;
        if (log_in >= 0 && fds[1].revents && !drain(s, log_in)) {
            close(log_in);
            log_in = -1;
        }
        if (fds[0].revents)
            break;
    }
    memset(&info, 0, sizeof info);
    while (waitid(P_PIDFD, pidfd, &info, WEXITED) < 0 && errno == EINTR)
        ;
    if (log_in >= 0)
        drain(s, log_in);  /* what the container wrote last (its forks may keep it open) */
    /* the log is durable before the exit record says the attempt ended, when that record
     * can outlive the machine: with the records on a tmpfs a reboot takes the pod, and
     * nothing reads its log again (an fsync on the log's disk on every container's end) */
    if (s->log_fd >= 0 && s->lasting)
        fsync(s->log_fd);
    record(s, 1, &info);
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

static void __attribute__((noreturn))
monitor_main(const struct nsr_spawn_req *req, const struct nsr_monitor_req *m, int res_fd,
             int ack_fd)
{
    struct mon_state s = {.m = m, .self = getpid(), .log_fd = -1,
                          .lasting = on_lasting_fs(m->record_dirfd)};
    struct mon_result r;
    int pidfd = -1, keep[5];
    char c;

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
        s.started_at = now_real();
        s.start = start_ticks(s.pid);
        s.self_start = start_ticks(s.self);
        record(&s, 0, NULL);
    }
    nsr_sync_write(res_fd, &r, sizeof r);
    if (r.pid <= 0)
        _exit(0);
    keep[0] = pidfd, keep[1] = m->log_in_fd, keep[2] = m->log_dirfd;
    keep[3] = m->record_dirfd, keep[4] = ack_fd;
    close_others(keep, 5);
    while (read(ack_fd, &c, 1) < 0 && errno == EINTR)
        ;  /* the caller has the container's pidfd (or died): it may be reaped now */
    close(ack_fd);
    open_log(&s);
    monitor_loop(&s, pidfd);
    _exit(0);
}

/* Fork the monitor, which spawns the container. Returns the container's pid with *pidfd_out
 * and *monitor_pidfd_out; -1 with *rep when the spawn failed (the monitor has exited then,
 * and is reaped). */
int nsr_spawn_monitored(const struct nsr_spawn_req *req, const struct nsr_monitor_req *m,
                        int *pidfd_out, int *monitor_pidfd_out, struct nsr_report *rep)
{
    int res[2] = {-1, -1}, ack[2] = {-1, -1}, mfd = -1;
    struct mon_result r;
    pid_t mpid;

    nsr_set_report(rep, -1, 0, -1);
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
