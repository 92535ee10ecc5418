/* monitor_loop.c: a container's monitor once the container runs (monitor.h): it copies the
 * container's stdout/stderr from a pipe to its log file (rotated at a size, the oldest files
 * removed), reaps it and records its exit durably. Compiled into the extension (the
 * in-process monitor) and into the nsrun-monitor executable. No malloc: in the extension
 * this runs in a raw copy of a process that may have threads.
 *
 * The record, <record_dir>/<name>, is JSON written atomically and durably twice: once the
 * container runs ({"pid", "monitorPid", "startTicks", "monitorStartTicks", "startedAt"}) and
 * once it was reaped (plus "exitCode", "signal", "finishedAt", "logDropped"). The exit record
 * is retried every second while the disk is full; log bytes that cannot be written are
 * dropped and counted. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD_RETRIES 600  /* seconds a full disk may delay an exit record */

double nsr_now_real(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
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

static int dir_removed(int dirfd)
{
    struct stat st;

    return fstat(dirfd, &st) < 0 || st.st_nlink == 0;
}

void nsr_mon_record(struct nsr_mon_state *s, int exited, const siginfo_t *info)
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
                 killed ? info->si_status : 0, nsr_now_real(),
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

static int open_log(struct nsr_mon_state *s)
{
    struct stat st;

    s->log_fd = openat(s->m->log_dirfd, s->m->log_name,
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    s->log_size = s->log_fd >= 0 && fstat(s->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return s->log_fd;
}

/* <name> becomes <name>.<k>; <name>.<k - max_files + 1> is removed (the kubelet's
 * containerLogMaxFiles counts the live file too). */
static void rotate(struct nsr_mon_state *s)
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

static void log_write(struct nsr_mon_state *s, const char *buf, size_t len)
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
static void log_chunk(struct nsr_mon_state *s, const char *buf, size_t len)
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
static int drain(struct nsr_mon_state *s, int fd)
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

static void copy_until_reaped(struct nsr_mon_state *s, int pidfd)
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
    if (s->log_fd >= 0 && on_lasting_fs(s->m->record_dirfd))
        fsync(s->log_fd);
    nsr_mon_record(s, 1, &info);
}

void nsr_mon_run(struct nsr_mon_state *s, int pidfd, int ack_fd)
{
    char c;

    while (read(ack_fd, &c, 1) < 0 && errno == EINTR)
        ;  /* the caller has the container's pidfd (or died): it may be reaped now */
    close(ack_fd);
    open_log(s);
    copy_until_reaped(s, pidfd);
}
