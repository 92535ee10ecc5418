/* mount.c: the child's filesystem steps: private propagation, the rootfs bind, the mount
 * table, /dev, pivot_root and the read-only root. All of it happens in the child's own
 * mount namespace (CLONE_NEWNS), after / was made rprivate: nothing reaches the host. */
#include "nsrun.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Join a and b into buf (no snprintf: not async-signal-safe). */
static int path_join(char *buf, size_t size, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la + 1 + lb + 1 > size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, a, la);
    buf[la] = '/';
    memcpy(buf + la + 1, b, lb + 1);
    return 0;
}

/* mkdir -p path; with skip_last, only its parents (for a file mount point). */
static int mkdir_p(const char *path, int skip_last)
{
    char buf[PATH_MAX];
    size_t len = strlen(path), i;

    if (len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (buf[i] == '\0' && skip_last)
            break;
        buf[i] = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        if (i < len)
            buf[i] = '/';
    }
    return 0;
}

/* An empty regular file to bind a non-directory onto (mknod: no open, so an existing
 * device node or fifo in the image is not opened). */
static int make_file(const char *path)
{
    if (mkdir_p(path, 1) < 0)
        return -1;
    if (mknod(path, S_IFREG | 0644, 0) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

int nsr_step_mount_private(struct nsr_ctx *ctx)
{
    (void)ctx;
    /* First: with the copied mount table still shared with the host's peer groups, any
     * mount below would propagate back to the host. */
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

int nsr_step_bind_rootfs(struct nsr_ctx *ctx)
{
    const char *rootfs = ctx->req->rootfs;

    /* pivot_root needs new_root to be a mount point: bind the rootfs onto itself. */
    return mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL);
}

/* Create the mount point: a directory, or an empty file for a bind of a non-directory. */
static int make_mountpoint(struct nsr_ctx *ctx, const struct nsr_mount *m)
{
    struct stat st;

    if (m->flags & MS_BIND) {
        ctx->step = NSR_STEP_MOUNT;  /* a missing bind source is a mount failure */
        if (stat(m->source, &st) < 0)
            return -1;
        ctx->step = NSR_STEP_MOUNTPOINT;
        if (!S_ISDIR(st.st_mode))
            return make_file(m->target);
    }
    ctx->step = NSR_STEP_MOUNTPOINT;
    return mkdir_p(m->target, 0);
}

static int do_mount(const struct nsr_mount *m)
{
    const char *fstype = m->fstype && m->fstype[0] ? m->fstype : NULL;
    unsigned long per_mount = m->flags & ~(MS_BIND | MS_REC);

    if (mount(m->source, m->target, fstype, m->flags, m->data) < 0)
        return -1;
    /* A bind ignores every flag but MS_REC: ro, nosuid, ... need a second, remount call
     * (it applies to the top mount only, not to submounts of an rbind). */
    if ((m->flags & MS_BIND) && per_mount &&
        mount(NULL, m->target, NULL, MS_REMOUNT | MS_BIND | per_mount, NULL) < 0)
        return -1;
    /* Propagation cannot be combined with other flags: its own call. */
    if (m->propagation && mount(NULL, m->target, NULL, m->propagation, NULL) < 0)
        return -1;
    return 0;
}

int nsr_step_mounts(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    int i;

    for (i = 0; i < req->nmounts; i++) {
        ctx->index = i;
        if (make_mountpoint(ctx, &req->mounts[i]) < 0)
            return -1;
        ctx->step = NSR_STEP_MOUNT;
        if (do_mount(&req->mounts[i]) < 0)
            return -1;
    }
    ctx->index = -1;
    return 0;
}

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

static const struct {
    const char *target, *name;
} dev_links[] = {
    {"/proc/self/fd", "fd"},
    {"/proc/self/fd/0", "stdin"},
    {"/proc/self/fd/1", "stdout"},
    {"/proc/self/fd/2", "stderr"},
    {"pts/ptmx", "ptmx"},
};

/* Bind the host's node onto an empty file, as runc does: mknod would need the device
 * cgroup's blessing and a /dev mounted without nodev; a bind keeps the host node. */
static int bind_dev_node(const char *dev_dir, const char *name)
{
    char host[32], path[PATH_MAX];

    if (path_join(host, sizeof host, "/dev", name) < 0 ||
        path_join(path, sizeof path, dev_dir, name) < 0)
        return -1;
    if (mknod(path, S_IFREG | 0666, 0) < 0 && errno != EEXIST)
        return -1;
    return mount(host, path, NULL, MS_BIND, NULL);
}

int nsr_step_populate_dev(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    char path[PATH_MAX];
    size_t i;

    if (!req->populate_dev)
        return 0;
    if (mkdir_p(req->dev_dir, 0) < 0)
        return -1;
    for (i = 0; i < sizeof dev_nodes / sizeof dev_nodes[0]; i++) {
        ctx->index = (int)i;
        if (bind_dev_node(req->dev_dir, dev_nodes[i]) < 0)
            return -1;
    }
    for (i = 0; i < sizeof dev_links / sizeof dev_links[0]; i++) {
        ctx->index = (int)(i + sizeof dev_nodes / sizeof dev_nodes[0]);
        if (path_join(path, sizeof path, req->dev_dir, dev_links[i].name) < 0)
            return -1;
        if (symlink(dev_links[i].target, path) < 0 && errno != EEXIST)
            return -1;
    }
    ctx->index = -1;
    return 0;
}

int nsr_step_pivot_root(struct nsr_ctx *ctx)
{
    /* pivot_root(".", "."): the old root ends up stacked on top of the new one at "/";
     * detaching "." then drops it (and every host mount under it) from this namespace.
     * No put_old directory is needed, so a read-only rootfs works too. The old root is
     * already private (mount_private), so the detach cannot propagate to the host. */
    if (chdir(ctx->req->rootfs) < 0)
        return -1;
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return -1;
    if (umount2(".", MNT_DETACH) < 0)
        return -1;
    return chdir("/");
}

int nsr_step_readonly_root(struct nsr_ctx *ctx)
{
    unsigned long keep = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
                         MS_RELATIME;
    struct statfs sfs;

    if (!ctx->req->rootfs_readonly)
        return 0;
    /* A bind remount replaces the per-mount flags: keep the ones the rootfs already has
     * (ST_* and MS_* share these bit values). */
    if (statfs("/", &sfs) < 0)
        return -1;
    return mount(NULL, "/", NULL,
                 MS_REMOUNT | MS_BIND | MS_RDONLY | ((unsigned long)sfs.f_flags & keep), NULL);
}
