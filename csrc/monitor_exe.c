/* monitor_exe.c: the nsrun-monitor executable. A container's monitor (monitor.c), forked
 * from the supervisor, execs it once its container runs and its start is recorded, so that
 * the rest of the monitor's life (monitor_loop.c) costs a few hundred kB, not a
 * copy-on-write image of the Python supervisor. The container is its child (children
 * survive execve); everything else comes in inherited fds and the arguments:
 *
 *   nsrun-monitor PIDFD LOG_IN LOG_DIRFD LOG_NAME RECORD_DIRFD RECORD_NAME LOG_MAX_SIZE
 *                 LOG_MAX_FILES ACK_FD PID START_TICKS MONITOR_START_TICKS STARTED_AT
 *
 * The signal dispositions, the mask, the session and the parent-death signal were set
 * before the execve and survive it. Not meant to be run by hand. */
#include "monitor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NARGS 14

/* An integer argument (>= -1: LOG_IN may be -1, no pipe); -2 if it is not one. */
static long long number(const char *text)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    return errno || end == text || *end || v < -1 ? -2 : v;
}

int main(int argc, char **argv)
{
    struct nsr_monitor_req m = {.log_in_fd = -1, .cgroup_fd = -1};
    struct nsr_mon_state s = {.m = &m, .self = getpid(), .log_fd = -1};
    long long v[NARGS] = {0};
    int i;

    for (i = 1; i < argc && i < NARGS; i++)
        v[i] = i == 4 || i == 6 || i == 13 ? 0 : number(argv[i]);
    for (i = 1; i < NARGS; i++)
        if (argc != NARGS || v[i] < (i == 2 ? -1 : 0)) {
            fprintf(stderr, "nsrun-monitor: started by nsrun only (a container's monitor)\n");
            return 2;
        }
    m.log_in_fd = v[2], m.log_dirfd = v[3], m.log_name = argv[4];
    m.record_dirfd = v[5], m.record_name = argv[6];
    m.log_max_size = v[7], m.log_max_files = v[8];
    s.pid = v[10], s.start = v[11], s.self_start = v[12];
    s.started_at = strtod(argv[13], NULL);
    prctl(PR_SET_NAME, "nsrun-monitor", 0, 0, 0);
    nsr_mon_run(&s, v[1], v[9]);
    return 0;
}
