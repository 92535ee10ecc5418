/* resolve.c: paths inside the container's rootfs, resolved by the kernel as if the rootfs
 * were "/" (openat2 RESOLVE_IN_ROOT): ".." stops at the rootfs, absolute symlinks restart at
 * it and magic links (/proc/<pid>/root, /proc/<pid>/fd/<n>) are refused. Every mount target,
 * device node and masked path goes through here, so an image whose /data is a symlink to
 * "../../../etc" cannot make the child mount, mkdir or mknod on the host: the result is an
 * O_PATH fd, and the child mounts onto "/proc/self/fd/<n>", the very inode that was checked
 * (no second path walk that a concurrent rename could redirect). Used by the parent too, for
 * a volume's subPath (resolved inside the volume). */
#include "nsrun.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* "/proc/self/fd/<fd>" into buf (no snprintf: not async-signal-safe). */
int nsr_fd_path(char buf[32], int fd)
{
    static const char prefix[] = "/proc/self/fd/";
    char digits[12];
    int n = 0;
    unsigned int v = (unsigned int)fd;

    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < (int)sizeof digits);
    memcpy(buf, prefix, sizeof prefix - 1);
    buf += sizeof prefix - 1;
    while (n)
        *buf++ = digits[--n];
    *buf = '\0';
    return 0;
}

static int open_in_root(int rootfd, const char *path)
{
    struct open_how how;
    int fd, tries = 0;

    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    /* EAGAIN: a rename raced a ".." walk; the kernel asks us to retry. */
    do
        fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    while (fd < 0 && errno == EAGAIN && ++tries < 64);
    return fd;
}

/* Is buf[i..] only slashes (i.e. the component ending at i is the last one)? */
static int only_slashes(const char *s)
{
    while (*s == '/')
        s++;
    return *s == '\0';
}

/* Replace component buf[start..end) (a dangling symlink in dirfd; buf[end] is its NUL) by
 * its target: the rest of the path follows it. An absolute target restarts at the root; the kernel resolves the
 * result in the root again, so ".." in the target cannot climb out either. */
static int splice_link(int dirfd, char *buf, size_t start, size_t end, size_t len)
{
    char link[PATH_MAX], out[PATH_MAX];
    const char *rest = end < len ? buf + end + 1 : "";
    size_t n_prefix, n_link, n_rest = strlen(rest);
    ssize_t n;

    n = readlinkat(dirfd, buf + start, link, sizeof link - 1);
    if (n < 0)
        return -1;
    n_link = (size_t)n;
    link[n_link] = '\0';
    n_prefix = link[0] == '/' ? 0 : start;
    if (n_prefix + n_link + 1 + n_rest + 1 > sizeof out) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out, buf, n_prefix);
    memcpy(out + n_prefix, link, n_link);
    out[n_prefix + n_link] = '/';
    memcpy(out + n_prefix + n_link + 1, rest, n_rest + 1);
    memcpy(buf, out, n_prefix + n_link + 1 + n_rest + 1);
    return 0;
}

/* Create the missing components of buf one by one: each is made (mkdirat/mknodat) in its
 * parent, which was itself resolved in the root, then resolved again from the root (a
 * component made meanwhile by someone else, even a symlink, is followed in the root). A
 * dangling symlink is followed by hand and its target made, like filepath-securejoin's
 * MkdirAll: <root>/escape -> /outside makes <root>/outside. */
static int create_in_root(int rootfd, char *buf, int create)
{
    size_t start, i, len;
    int parent, fd, rc, saved, links = 0;

restart:
    len = strlen(buf);
    parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    if (parent < 0)
        return -1;
    for (start = 0; start < len; start = i + 1) {
        for (i = start; i < len && buf[i] != '/'; i++)
            ;
        if (i == start)
            continue;
        buf[i] = '\0';
        fd = open_in_root(rootfd, buf);
        if (fd < 0 && errno == ENOENT) {
            const char *name = buf + start;

            if (create == NSR_CREATE_FILE && (i == len || only_slashes(buf + i + 1)))
                rc = mknodat(parent, name, S_IFREG | 0644, 0);
            else
                rc = mkdirat(parent, name, 0755);
            if (rc < 0 && errno != EEXIST)
                goto fail;
            fd = open_in_root(rootfd, buf);
            if (fd < 0 && errno == ENOENT && rc < 0) {  /* there, yet not: a dangling link */
                if (++links > 40) {
                    errno = ELOOP;
                    goto fail;
                }
                if (splice_link(parent, buf, start, i, len) < 0)
                    goto fail;
                close(parent);
                goto restart;
            }
        }
        if (fd < 0)
            goto fail;
        if (i < len)
            buf[i] = '/';
        close(parent);
        parent = fd;
    }
    return parent;
fail:
    saved = errno;
    close(parent);
    errno = saved;
    return -1;
}

/* An O_PATH|O_CLOEXEC fd of `path` (absolute or relative, taken as inside the root) under
 * rootfd, following symlinks only inside it. create: NSR_CREATE_NONE, or make what is
 * missing (NSR_CREATE_DIR: directories; NSR_CREATE_FILE: the last one an empty file). */
int nsr_open_in_root(int rootfd, const char *path, int create)
{
    char buf[PATH_MAX];
    size_t len;
    int fd;

    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    fd = open_in_root(rootfd, path);
    if (fd >= 0 || errno != ENOENT || create == NSR_CREATE_NONE)
        return fd;
    len = strlen(path);
    if (len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    return create_in_root(rootfd, buf, create);
}
