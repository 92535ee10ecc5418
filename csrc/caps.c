/* caps.c: capabilities, no_new_privs and the seccomp filter.
 *
 * The order is the point (see the step table in steps.c):
 *   bounding      PR_CAPBSET_DROP needs CAP_SETPCAP: done first, while the child is still
 *                 full root (before setgroups/setgid/setuid);
 *   setuid        with PR_SET_KEEPCAPS, so the permitted set survives a switch to non-root;
 *   no_new_privs  before the filter: with it, loading a filter needs no privilege;
 *   seccomp       before capset: without no_new_privs, loading needs CAP_SYS_ADMIN, which
 *                 the final sets may well drop (runc does the same);
 *   capset        effective, permitted, inheritable (ambient needs the last two set);
 *   ambient       raised last, then execve.
 * With no_new_privs, execve grants no more than the permitted set held just before it (file
 * capabilities and set-uid bits are ignored): a root container then ends up with its
 * bounding set intersected with the permitted set given to capset.
 * A seccomp profile must therefore allow capset, prctl and execve (Docker's and runc's do).
 */
#include "nsrun.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cap_get(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};

    return syscall(SYS_capget, &hdr, data) < 0 ? -1 : 0;
}

static int cap_set(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};

    return syscall(SYS_capset, &hdr, data) < 0 ? -1 : 0;
}

int nsr_step_bounding(struct nsr_ctx *ctx)
{
    uint64_t keep = ctx->req->caps.bounding;
    int cap, have;

    if (!ctx->req->set_caps)
        return 0;
    /* Up to the kernel's last capability: PR_CAPBSET_READ says EINVAL past it. */
    for (cap = 0; cap < 64; cap++) {
        have = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (have < 0 && errno == EINVAL)
            break;
        if (have < 0)
            return -1;
        if (have && !(keep & (1ULL << cap))) {
            ctx->index = cap;
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                return -1;
        }
    }
    ctx->index = -1;
    return 0;
}

int nsr_step_no_new_privs(struct nsr_ctx *ctx)
{
    return ctx->req->no_new_privs ? prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) : 0;
}

int nsr_step_seccomp(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    struct __user_cap_data_struct data[2];
    struct sock_fprog prog;

    if (!req->seccomp_len)
        return 0;
    /* Without no_new_privs the kernel wants CAP_SYS_ADMIN in the effective set. A switch to
     * a non-root uid emptied that set (keepcaps keeps only the permitted one): raise it back
     * to the permitted set for this call; capset sets the final sets right after. */
    if (!req->no_new_privs && req->set_caps) {
        if (cap_get(data) < 0)
            return -1;
        data[0].effective = data[0].permitted;
        data[1].effective = data[1].permitted;
        if (cap_set(data) < 0)
            return -1;
    }
    prog.len = (unsigned short)req->seccomp_len;
    prog.filter = (struct sock_filter *)req->seccomp_filter;
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, req->seccomp_flags, &prog) < 0 ? -1
                                                                                      : 0;
}

int nsr_step_capset(struct nsr_ctx *ctx)
{
    const struct nsr_caps *c = &ctx->req->caps;
    struct __user_cap_data_struct data[2];

    if (!ctx->req->set_caps)
        return 0;
    data[0].effective = (uint32_t)c->effective;
    data[1].effective = (uint32_t)(c->effective >> 32);
    data[0].permitted = (uint32_t)c->permitted;
    data[1].permitted = (uint32_t)(c->permitted >> 32);
    data[0].inheritable = (uint32_t)c->inheritable;
    data[1].inheritable = (uint32_t)(c->inheritable >> 32);
    return cap_set(data);
}

int nsr_step_ambient(struct nsr_ctx *ctx)
{
    uint64_t ambient = ctx->req->caps.ambient;
    int cap;

    if (!ctx->req->set_caps)
        return 0;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return -1;
    for (cap = 0; cap < 64; cap++) {
        if (!(ambient & (1ULL << cap)))
            continue;
        ctx->index = cap;
        /* needs the capability in both the permitted and the inheritable set (capset) */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            return -1;
    }
    ctx->index = -1;
    return 0;
}
