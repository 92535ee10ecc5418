/* monitor.h: the part of a container's monitor that runs once its container is started
 * (monitor_loop.c): the log copy with rotation, the reaping and the durable record. It is
 * compiled into the extension (the in-process fallback) and into the nsrun-monitor
 * executable (monitor_exe.c), which a started monitor execs so that it no longer holds a
 * copy-on-write image of the Python supervisor. */
#ifndef NSRUN_MONITOR_H
#define NSRUN_MONITOR_H

#include "nsrun.h"

struct nsr_mon_state {
    const struct nsr_monitor_req *m;
    pid_t pid, self;
    unsigned long long start, self_start;
    double started_at;
    int log_fd;
    uint64_t log_size;
    int rotations;
    uint64_t dropped;
};

double nsr_now_real(void);  /* CLOCK_REALTIME in seconds */

/* The record <record_dir>/<record_name>: the start record (exited 0, info NULL) or the exit
 * record. */
void nsr_mon_record(struct nsr_mon_state *s, int exited, const siginfo_t *info);

/* The rest of the monitor's life: wait for the caller's ack (EOF on ack_fd: it holds the
 * container's pidfd), copy the log until the container is reaped, record its exit. */
void nsr_mon_run(struct nsr_mon_state *s, int pidfd, int ack_fd);

#endif
