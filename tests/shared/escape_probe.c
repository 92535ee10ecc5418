/* escape_probe: tries one escape per argument and prints "<what> <errno name or ok>" for
 * each, so a test can tell the mechanism that refused it (EPERM from seccomp or the device
 * cgroup, EACCES from nodev, the kernel's own answer when nothing filters).
 *
 * It refuses to run (exit 99) unless /.nsrun-escape-marker exists: the test puts that file
 * only in the root of the container image it builds, never on the host's "/".
 * Built static by tests/integration/test_escape.py (gcc -static). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name(int rc)
{
    if (rc >= 0)
        return "ok";
    switch (errno) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOKEY: return "ENOKEY";
    case EKEYREVOKED: return "EKEYREVOKED";
    case EEXIST: return "EEXIST";
    case EFAULT: return "EFAULT";
    default: return strerror(errno);
    }
}

/* mknod:PATH:TYPE:MAJOR:MINOR  -> "mknod PATH <r>" and "open PATH <r>" */
static void try_mknod(char *spec)
{
    char *path = strtok(spec, ":"), *type = strtok(NULL, ":");
    unsigned major = atoi(strtok(NULL, ":")), minor = atoi(strtok(NULL, ":"));
    mode_t mode = (type[0] == 'b' ? S_IFBLK : S_IFCHR) | 0600;
    int rc = mknod(path, mode, makedev(major, minor)), fd;

    printf("mknod %s %s\n", path, name(rc));
    fd = open(path, O_RDONLY | O_NONBLOCK);
    printf("open %s %s\n", path, name(fd));
    if (fd >= 0)
        close(fd);
}

/* keyread:SERIAL: read a key by its serial; keyring: the session keyring's description */
static void try_keys(const char *what, const char *arg)
{
    char buf[256];
    long rc;

    if (!strcmp(what, "keyread")) {
        rc = syscall(SYS_keyctl, 11 /* KEYCTL_READ */, atol(arg), buf, sizeof buf);
        printf("keyread %s\n", name(rc));
    } else if (!strcmp(what, "keyctl")) {  /* an unknown operation: EOPNOTSUPP unfiltered */
        rc = syscall(SYS_keyctl, 9999, 0, 0, 0);
        printf("keyctl %s\n", name(rc));
    } else {
        rc = syscall(SYS_keyctl, 6 /* KEYCTL_DESCRIBE */, -3 /* @s */, buf, sizeof buf);
        printf("keyring %s\n", rc < 0 ? name(rc) : buf);
    }
}

static void try_ptrace(void)
{
    pid_t child = fork();
    char byte;
    struct iovec local = {&byte, 1}, remote = {&byte, 1};
    long rc;

    if (child == 0) {
        pause();
        _exit(0);
    }
    rc = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, child, 0, 0);
    printf("ptrace %s\n", name(rc));
    rc = process_vm_readv(child, &local, 1, &remote, 1, 0);
    printf("process_vm_readv %s\n", name(rc));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static void try_one(char *arg)
{
    if (!strncmp(arg, "mknod:", 6))
        try_mknod(arg + 6);
    else if (!strncmp(arg, "keyread:", 8))
        try_keys("keyread", arg + 8);
    else if (!strcmp(arg, "keyctl") || !strcmp(arg, "keyring"))
        try_keys(arg, "");
    else if (!strcmp(arg, "unshare-user"))
        printf("unshare-user %s\n", name(unshare(CLONE_NEWUSER)));
    else if (!strcmp(arg, "bpf"))  /* an unknown command: EINVAL unfiltered */
        printf("bpf %s\n", name(syscall(SYS_bpf, 9999, NULL, 0)));
    else if (!strcmp(arg, "rawsock"))
        printf("rawsock %s\n", name(socket(AF_INET, SOCK_RAW, 1)));
    else if (!strcmp(arg, "packet"))
        printf("packet %s\n", name(socket(AF_PACKET, SOCK_RAW, 0)));
    else if (!strcmp(arg, "vsock"))
        printf("vsock %s\n", name(socket(40 /* AF_VSOCK */, SOCK_STREAM, 0)));
    else if (!strcmp(arg, "alg"))
        printf("alg %s\n", name(socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0)));
    else if (!strcmp(arg, "ptrace"))
        try_ptrace();
    else if (!strcmp(arg, "perf"))  /* a NULL attr: EFAULT unfiltered */
        printf("perf %s\n", name(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)));
    else
        printf("%s unknown\n", arg);
}

int main(int argc, char **argv)
{
    int i;

    if (access("/.nsrun-escape-marker", F_OK) != 0) {
        fprintf(stderr, "escape_probe: not in a test container, refusing to run\n");
        return 99;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 1; i < argc; i++)
        try_one(argv[i]);
    return 0;
}
