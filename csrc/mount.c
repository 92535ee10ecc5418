/* mount.c: the child's filesystem steps: private propagation, the rootfs bind, the mount
 * table, /dev and device nodes, masked and read-only paths, pivot_root, the rootfs
 * propagation and the read-only root. All of it happens in the child's own mount namespace
 * (CLONE_NEWNS), after / was made rprivate: nothing reaches the host. Every path inside the
 * container is resolved in the rootfs by nsr_open_in_root (resolve.c) and mounted onto as
 * /proc/self/fd/<n>: a symlink in the image cannot redirect a mount to the host. */
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

/* Per-mount flags a bind remount must restate (ST_* and MS_* share these bit values). */
#define KEEP_FLAGS (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME)

static void close_keep_errno(int fd)
{
    int saved = errno;

    if (fd >= 0)
        close(fd);
    errno = saved;
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
    struct statfs sfs;

    /* pivot_root needs new_root to be a mount point: bind the rootfs onto itself. Then hold
     * the top of that bind: every path below is resolved from it. */
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -1;
    /* nodev: a device node made (or shipped) in the image does not open. The remount keeps
     * the flags the bind already has (a user namespace may not clear locked ones). */
    if (statfs(rootfs, &sfs) < 0 ||
        mount(NULL, rootfs, NULL,
              MS_REMOUNT | MS_BIND | MS_NODEV | ((unsigned long)sfs.f_flags & KEEP_FLAGS),
              NULL) < 0)
        return -1;
    ctx->rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return ctx->rootfd < 0 ? -1 : 0;
}

/* Remount (bind flags) and propagation of the mount now on m->target: resolved again, so the
 * fd is the new mount's root, not the directory underneath it. */
static int finish_mount(struct nsr_ctx *ctx, const struct nsr_mount *m)
{
    unsigned long per_mount = m->flags & ~(MS_BIND | MS_REC);
    char target[32];
    int fd, rc = 0;

    if (!((m->flags & MS_BIND) && per_mount) && !m->propagation)
        return 0;
    fd = nsr_open_in_root(ctx->rootfd, m->target, NSR_CREATE_NONE);
    if (fd < 0)
        return -1;
    nsr_fd_path(target, fd);
    /* A bind ignores every flag but MS_REC: ro, nosuid, ... need a second, remount call
     * (it applies to the top mount only, not to submounts of an rbind). */
    if ((m->flags & MS_BIND) && per_mount)
        rc = mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | per_mount, NULL);
    /* Propagation cannot be combined with other flags: its own call. */
    if (rc == 0 && m->propagation)
        rc = mount(NULL, target, NULL, m->propagation, NULL);
    close_keep_errno(fd);
    return rc;
}

/* The bind source of a subPath: `sub_path` inside the volume `source`, resolved with the
 * volume as its root (a symlink a container left in a shared volume cannot lead out of it)
 * and made as a directory when missing, as the kubelet does. Opened here, in the child's
 * mount namespace: the kernel binds only from mounts of the caller's own namespace. */
static int open_sub_path(const struct nsr_mount *m)
{
    int volfd, fd, saved;

    volfd = open(m->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (volfd < 0)
        return -1;
    fd = nsr_open_in_root(volfd, m->sub_path, NSR_CREATE_DIR);
    saved = errno;
    close(volfd);
    errno = saved;
    return fd;
}

static int mount_one(struct nsr_ctx *ctx, const struct nsr_mount *m)
{
    const char *fstype = m->fstype && m->fstype[0] ? m->fstype : NULL;
    const char *source = m->source;
    char src_path[32], target[32];
    int create = NSR_CREATE_DIR, fd, srcfd = -1, rc = -1;
    struct stat st;

    if ((m->flags & MS_BIND) && m->sub_path) {
        ctx->step = NSR_STEP_SUBPATH;
        srcfd = open_sub_path(m);
        if (srcfd < 0)
            return -1;
        nsr_fd_path(src_path, srcfd);
        source = src_path;
    }
    if (m->flags & MS_BIND) {
        if (srcfd < 0)
            ctx->step = NSR_STEP_MOUNT;  /* a missing bind source is a mount failure */
        if (stat(source, &st) < 0)
            goto out;
        if (!S_ISDIR(st.st_mode))
            create = NSR_CREATE_FILE;  /* a file (or device) is bound onto an empty file */
    }
    ctx->step = NSR_STEP_MOUNTPOINT;
    fd = nsr_open_in_root(ctx->rootfd, m->target, create);
    if (fd < 0)
        goto out;
    ctx->step = NSR_STEP_MOUNT;
    nsr_fd_path(target, fd);
    rc = mount(source, target, fstype, m->flags, m->data);
    close_keep_errno(fd);
    if (rc == 0)
        rc = finish_mount(ctx, m);
out:
    close_keep_errno(srcfd);
    return rc;
}

int nsr_step_mounts(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    int i;

    for (i = 0; i < req->nmounts; i++) {
        ctx->index = i;
        if (mount_one(ctx, &req->mounts[i]) < 0)
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
 * cgroup's blessing and a /dev mounted without nodev; a bind keeps the host node. The file
 * is opened without following a symlink (an image's /dev/null -> /etc/shadow stays a
 * refusal, not a bind onto the host file). */
static int bind_dev_node(int devfd, const char *name)
{
    char host[32] = "/dev/", target[32];
    struct stat st;
    int fd, rc;

    memcpy(host + 5, name, strlen(name) + 1);
    if (mknodat(devfd, name, S_IFREG | 0666, 0) < 0 && errno != EEXIST)
        return -1;
    fd = openat(devfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0) {
        close_keep_errno(fd);
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        close(fd);
        errno = ELOOP;
        return -1;
    }
    nsr_fd_path(target, fd);
    rc = mount(host, target, NULL, MS_BIND, NULL);
    close_keep_errno(fd);
    return rc;
}

int nsr_step_populate_dev(struct nsr_ctx *ctx)
{
    size_t i, nnodes = sizeof dev_nodes / sizeof dev_nodes[0];
    int devfd;

    if (!ctx->req->populate_dev)
        return 0;
    devfd = nsr_open_in_root(ctx->rootfd, "/dev", NSR_CREATE_DIR);
    if (devfd < 0)
        return -1;
    for (i = 0; i < nnodes; i++) {
        ctx->index = (int)i;
        if (bind_dev_node(devfd, dev_nodes[i]) < 0)
            goto fail;
    }
    for (i = 0; i < sizeof dev_links / sizeof dev_links[0]; i++) {
        ctx->index = (int)(i + nnodes);
        if (symlinkat(dev_links[i].target, devfd, dev_links[i].name) < 0 && errno != EEXIST)
            goto fail;
    }
    ctx->index = -1;
    close(devfd);
    return 0;
fail:
    close_keep_errno(devfd);
    return -1;
}

/* Split path into its parent (resolved and created in the root) and its last component. */
static int open_parent(int rootfd, const char *path, char *name, size_t size)
{
    char dir[PATH_MAX];
    size_t len = strlen(path);
    const char *slash;

    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, len);
    dir[len] = '\0';
    slash = strrchr(dir, '/');
    if (!slash || !slash[1] || strlen(slash + 1) >= size || !strcmp(slash + 1, "..") ||
        !strcmp(slash + 1, ".")) {
        errno = EINVAL;
        return -1;
    }
    memcpy(name, slash + 1, strlen(slash + 1) + 1);
    dir[slash - dir] = '\0';
    return nsr_open_in_root(rootfd, dir[0] ? dir : "/", NSR_CREATE_DIR);
}

/* mknod one device; an existing node of that name is kept (as runc does). Owner and mode
 * are set through the new node's own fd (mknod is subject to the umask). */
static int make_device(int rootfd, const struct nsr_device *d)
{
    char name[NAME_MAX + 1], node[32];
    int dirfd, fd = -1, rc = -1;

    dirfd = open_parent(rootfd, d->path, name, sizeof name);
    if (dirfd < 0)
        return -1;
    if (mknodat(dirfd, name, d->mode, d->rdev) < 0) {
        rc = errno == EEXIST ? 0 : -1;
        goto out;
    }
    fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        goto out;
    nsr_fd_path(node, fd);
    if (chmod(node, d->mode & 07777) < 0 || chown(node, d->uid, d->gid) < 0)
        goto out;
    rc = 0;
out:
    close_keep_errno(fd);
    close_keep_errno(dirfd);
    return rc;
}

int nsr_step_devices(struct nsr_ctx *ctx)
{
    const struct nsr_spawn_req *req = ctx->req;
    int i;

    for (i = 0; i < req->ndevices; i++) {
        ctx->index = i;
        if (make_device(ctx->rootfd, &req->devices[i]) < 0)
            return -1;
    }
    ctx->index = -1;
    return 0;
}

/* Hide a path: a read-only empty tmpfs over a directory, the host's /dev/null over anything
 * else (runc's maskPath). A path the container does not have is skipped. */
static int mask_path(int rootfd, const char *path)
{
    char target[32];
    struct stat st;
    int fd, rc;

    fd = nsr_open_in_root(rootfd, path, NSR_CREATE_NONE);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    nsr_fd_path(target, fd);
    if (fstat(fd, &st) < 0)
        rc = -1;
    else if (S_ISDIR(st.st_mode))
        rc = mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   NULL);
    else
        rc = mount("/dev/null", target, NULL, MS_BIND, NULL);
    close_keep_errno(fd);
    return rc;
}

/* A read-only bind of a path onto itself (runc's readonlyPath); missing paths are skipped. */
static int readonly_path(int rootfd, const char *path)
{
    char target[32];
    struct statfs sfs;
    int fd, rc;

    fd = nsr_open_in_root(rootfd, path, NSR_CREATE_NONE);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    nsr_fd_path(target, fd);
    rc = mount(target, target, NULL, MS_BIND | MS_REC, NULL);
    close_keep_errno(fd);
    if (rc < 0)
        return -1;
    fd = nsr_open_in_root(rootfd, path, NSR_CREATE_NONE);  /* the new bind's root */
    if (fd < 0)
        return -1;
    nsr_fd_path(target, fd);
    rc = fstatfs(fd, &sfs);
    if (rc == 0)
        rc = mount(NULL, target, NULL,
                   MS_REMOUNT | MS_BIND | MS_RDONLY | ((unsigned long)sfs.f_flags & KEEP_FLAGS),
                   NULL);
    close_keep_errno(fd);
    return rc;
}

int nsr_step_masked_paths(struct nsr_ctx *ctx)
{
    char *const *paths = ctx->req->masked_paths;
    int i;

    for (i = 0; paths && paths[i]; i++) {
        ctx->index = i;
        if (mask_path(ctx->rootfd, paths[i]) < 0)
            return -1;
    }
    ctx->index = -1;
    return 0;
}

int nsr_step_readonly_paths(struct nsr_ctx *ctx)
{
    char *const *paths = ctx->req->readonly_paths;
    int i;

    for (i = 0; paths && paths[i]; i++) {
        ctx->index = i;
        if (readonly_path(ctx->rootfd, paths[i]) < 0)
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
    if (fchdir(ctx->rootfd) < 0)
        return -1;
    close(ctx->rootfd);
    ctx->rootfd = -1;
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return -1;
    if (umount2(".", MNT_DETACH) < 0)
        return -1;
    return chdir("/");
}

int nsr_step_rootfs_propagation(struct nsr_ctx *ctx)
{
    unsigned long propagation = ctx->req->rootfs_propagation;

    /* linux.rootfsPropagation: the host was cut off by mount_private and pivot_root, so even
     * "shared" only makes a new peer group inside this mount namespace. */
    return propagation ? mount(NULL, "/", NULL, propagation, NULL) : 0;
}

int nsr_step_readonly_root(struct nsr_ctx *ctx)
{
    struct statfs sfs;

    if (!ctx->req->rootfs_readonly)
        return 0;
    /* A bind remount replaces the per-mount flags: keep the ones the rootfs already has. */
    if (statfs("/", &sfs) < 0)
        return -1;
    return mount(NULL, "/", NULL,
                 MS_REMOUNT | MS_BIND | MS_RDONLY | ((unsigned long)sfs.f_flags & KEEP_FLAGS),
                 NULL);
}
