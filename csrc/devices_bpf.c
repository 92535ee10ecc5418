/* devices_bpf.c: a container's device allow-list on cgroup v2, as a
 * BPF_PROG_TYPE_CGROUP_DEVICE program attached to its cgroup (cgroup v2 has no devices
 * controller). Built and attached as crun and runc do, without libbpf: the instructions are
 * assembled here and loaded with bpf(2) BPF_PROG_LOAD, then BPF_PROG_ATTACH'ed to the cgroup
 * with BPF_F_ALLOW_MULTI (programs of the parent cgroups still apply: every one must allow),
 * replacing the container's previous program (BPF_F_REPLACE) when there is one.
 *
 * The rules come from nsrun.core.devices, already reduced to a default and its exceptions
 * (all of the other kind, so their order does not matter). The program, per access:
 *
 *   r2 = ctx->access_type & 0xffff   type: BPF_DEVCG_DEV_CHAR / BPF_DEVCG_DEV_BLOCK
 *   r3 = ctx->access_type >> 16      access: BPF_DEVCG_ACC_MKNOD / READ / WRITE bits
 *   r4 = ctx->major, r5 = ctx->minor
 *   for each exception: if type, access (requested bits all in the rule's), major and minor
 *       match: return !default
 *   return default                    (1: allow, 0: deny with EPERM)
 */
#include "nsrun.h"

#include <errno.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NSR_BPF_MAX_RULES 512
#define INSNS_PER_RULE 9
#define INSN(c, d, s, o, i) \
    ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

static int bpf(int cmd, union bpf_attr *attr)
{
    return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* One exception: its instructions at p, the jump to `next` filled in; returns how many. */
static int emit_rule(struct bpf_insn *p, const struct nsr_dev_rule *r, int allow)
{
    int n = 0, i, all = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

    if (r->type)  /* if (r2 != type) goto next */
        p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0, r->type);
    if ((int)r->access != all) {  /* if ((r3 & access) != r3) goto next */
        p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
        p[n++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, (int)r->access);
        p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
    }
    if (r->major >= 0)
        p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int)r->major);
    if (r->minor >= 0)
        p[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int)r->minor);
    p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, allow);
    p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    for (i = 0; i < n - 2; i++)  /* every jump goes past this rule */
        if (BPF_CLASS(p[i].code) == BPF_JMP)
            p[i].off = (short)(n - 1 - i);
    return n;
}

static int build(struct bpf_insn *p, const struct nsr_dev_rule *rules, int n, int allow)
{
    int len = 0, i;

    p[len++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
    p[len++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
    p[len++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
    p[len++] = INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
    p[len++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);
    p[len++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);
    for (i = 0; i < n; i++)
        len += emit_rule(p + len, &rules[i], !allow);
    p[len++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, allow);
    p[len++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    return len;
}

static int valid(const struct nsr_dev_rule *rules, int n)
{
    int i;

    if (n < 0 || n > NSR_BPF_MAX_RULES)
        return 0;
    for (i = 0; i < n; i++) {
        if (rules[i].type != 0 && rules[i].type != BPF_DEVCG_DEV_CHAR &&
            rules[i].type != BPF_DEVCG_DEV_BLOCK)
            return 0;
        if (rules[i].major > 0x7fffffff || rules[i].minor > 0x7fffffff ||
            (rules[i].access & ~7u) || !rules[i].access)
            return 0;
    }
    return 1;
}

/* Returns the program's fd (CLOEXEC), attached to cgroup_fd; -1 with errno. replace_fd >= 0:
 * the program it replaces. */
int nsr_device_filter(int cgroup_fd, const struct nsr_dev_rule *rules, int n,
                      int default_allow, int replace_fd)
{
    static const char license[] = "GPL";
    struct bpf_insn prog[6 + NSR_BPF_MAX_RULES * INSNS_PER_RULE + 2];
    union bpf_attr attr;
    int fd, saved;

    if (!valid(rules, n)) {
        errno = EINVAL;
        return -1;
    }
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uintptr_t)prog;
    attr.insn_cnt = (unsigned)build(prog, rules, n, default_allow ? 1 : 0);
    attr.license = (uintptr_t)license;
    fd = bpf(BPF_PROG_LOAD, &attr);
    if (fd < 0)
        return -1;
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (unsigned)cgroup_fd;
    attr.attach_bpf_fd = (unsigned)fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (replace_fd >= 0) {
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = (unsigned)replace_fd;
    }
    if (bpf(BPF_PROG_ATTACH, &attr) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}
