/* clone_vm.c: clone3(CLONE_VM | CLONE_VFORK) onto a separate stack, like posix_spawn.
 *
 * Why: a fork-like clone copies the parent's page tables, which costs ~0.3 ms for a small
 * Python process and grows with its size (6 ms at +200 MB). With CLONE_VM the child shares
 * the parent's memory and CLONE_VFORK suspends the calling thread until the child exec()s
 * or exits, so nothing is copied. Safe here because:
 *   - the child runs on its own mmap()ed stack (it never returns into a parent frame);
 *   - all signals are blocked around the clone, and the child (which has its own copy of
 *     the handler table: no CLONE_SIGHAND) resets every disposition to SIG_DFL before it
 *     unblocks, so no parent handler ever runs in the child;
 *   - the child writes only to its own stack and to errno in the TLS of the suspended
 *     calling thread; it calls no function that takes a lock or allocates;
 *   - its fd table and fs (cwd/root) are copies (no CLONE_FILES/CLONE_FS).
 *
 * glibc 2.36 exports no clone3 wrapper, and a child on a new stack cannot return from the
 * syscall() wrapper, so the trampoline is a few lines of assembly per architecture (the
 * same shape as glibc's internal clone3.S). Other architectures use the fork-like path.
 */
#include "nsrun.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHILD_STACK_SIZE (256 * 1024)  /* steps use a few PATH_MAX buffers at most */
#define GUARD_SIZE 4096

/* long nsr_clone3_tramp(struct nsr_clone_args *args, size_t size, int (*fn)(void *), void *arg)
 * Parent: returns the pid or -errno. Child: runs on args->stack, calls fn(arg), exits. */
long nsr_clone3_tramp(struct nsr_clone_args *args, size_t size, int (*fn)(void *), void *arg);

#if defined(__x86_64__)
#define HAVE_TRAMPOLINE 1
__asm__(
    ".text\n"
    ".globl nsr_clone3_tramp\n"
    ".hidden nsr_clone3_tramp\n"
    ".type nsr_clone3_tramp,@function\n"
    "nsr_clone3_tramp:\n"
    "    mov %rdx, %r8\n"          /* fn: syscall preserves r8/r9 (clobbers rcx, r11) */
    "    mov %rcx, %r9\n"          /* arg */
    "    mov $435, %eax\n"         /* __NR_clone3 */
    "    syscall\n"
    "    test %rax, %rax\n"
    "    jz 1f\n"
    "    ret\n"                    /* parent (pid) or error (-errno) */
    "1:  xor %ebp, %ebp\n"         /* child: the kernel switched to the new stack */
    "    mov %r9, %rdi\n"
    "    call *%r8\n"
    "    mov %eax, %edi\n"
    "    mov $60, %eax\n"          /* __NR_exit (fn never returns; belt and braces) */
    "    syscall\n"
    "    hlt\n"
    ".size nsr_clone3_tramp, .-nsr_clone3_tramp\n");
#elif defined(__aarch64__)
#define HAVE_TRAMPOLINE 1
__asm__(
    ".text\n"
    ".globl nsr_clone3_tramp\n"
    ".hidden nsr_clone3_tramp\n"
    ".type nsr_clone3_tramp,%function\n"
    "nsr_clone3_tramp:\n"
    "    mov x10, x2\n"            /* fn: svc preserves every register but x0 */
    "    mov x11, x3\n"            /* arg */
    "    mov x8, #435\n"           /* __NR_clone3 */
    "    svc #0\n"
    "    cbz x0, 1f\n"
    "    ret\n"
    "1:  mov x29, xzr\n"
    "    mov x30, xzr\n"
    "    mov x0, x11\n"
    "    blr x10\n"
    "    mov x8, #93\n"            /* __NR_exit */
    "    svc #0\n"
    "    brk #0\n"
    ".size nsr_clone3_tramp, .-nsr_clone3_tramp\n");
#else
#define HAVE_TRAMPOLINE 0
#endif

int nsr_have_clone_vm(void)
{
    return HAVE_TRAMPOLINE;
}

#if HAVE_TRAMPOLINE
static void *stack_alloc(void)
{
    void *base = mmap(NULL, CHILD_STACK_SIZE + GUARD_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

    if (base == MAP_FAILED)
        return NULL;
    /* a guard page below the stack: an overflow faults instead of scribbling */
    if (mprotect(base, GUARD_SIZE, PROT_NONE) < 0) {
        munmap(base, CHILD_STACK_SIZE + GUARD_SIZE);
        return NULL;
    }
    return base;
}

/* Returns the pid in the calling thread once the child has exec()ed or exited; fn(arg)
 * runs in the child. */
pid_t nsr_clone_vm(uint64_t flags, int cgroup_fd, int *pidfd_out, int (*fn)(void *), void *arg)
{
    struct nsr_clone_args args;
    int pidfd = -1;
    void *stack;
    long rc;

    *pidfd_out = -1;
    stack = stack_alloc();
    if (!stack)
        return -1;
    memset(&args, 0, sizeof args);
    args.flags = flags | CLONE_VM | CLONE_VFORK | CLONE_PIDFD;
    args.pidfd = (uintptr_t)&pidfd;
    /* clone3 wants 0 with CLONE_PARENT: the child gets our own exit signal (SIGCHLD) */
    args.exit_signal = flags & CLONE_PARENT ? 0 : SIGCHLD;
    args.stack = (uintptr_t)stack + GUARD_SIZE;
    args.stack_size = CHILD_STACK_SIZE;
    if (cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    rc = nsr_clone3_tramp(&args, sizeof args, fn, arg);
    /* CLONE_VFORK: the child no longer runs on the stack (it exec()ed or exited) */
    munmap(stack, CHILD_STACK_SIZE + GUARD_SIZE);
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    *pidfd_out = pidfd;
    return (pid_t)rc;
}
#else
pid_t nsr_clone_vm(uint64_t flags, int cgroup_fd, int *pidfd_out, int (*fn)(void *), void *arg)
{
    (void)flags; (void)cgroup_fd; (void)fn; (void)arg;
    *pidfd_out = -1;
    errno = ENOSYS;
    return -1;
}
#endif
