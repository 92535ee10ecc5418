/* cffi declarations of nsrun._native (declarations only; parsed by cffi, not by a C
 * compiler). The structs must match csrc/nsrun.h field for field. */

/* kernel constants, taken from the real headers at build time */
#define MS_RDONLY ...
#define MS_NOSUID ...
#define MS_NODEV ...
#define MS_NOEXEC ...
#define MS_SYNCHRONOUS ...
#define MS_REMOUNT ...
#define MS_MANDLOCK ...
#define MS_DIRSYNC ...
#define MS_NOATIME ...
#define MS_NODIRATIME ...
#define MS_BIND ...
#define MS_REC ...
#define MS_SILENT ...
#define MS_UNBINDABLE ...
#define MS_PRIVATE ...
#define MS_SLAVE ...
#define MS_SHARED ...
#define MS_RELATIME ...
#define MS_STRICTATIME ...
#define MS_LAZYTIME ...
#define MNT_DETACH ...
#define CLONE_NEWNS ...
#define CLONE_NEWCGROUP ...
#define CLONE_NEWUTS ...
#define CLONE_NEWIPC ...
#define CLONE_NEWUSER ...
#define CLONE_NEWPID ...
#define CLONE_NEWNET ...
#define NSR_CHILD_STEPS ...
#define NSR_CLONE_AUTO ...
#define NSR_CLONE_FALLBACK ...
#define NSR_CLONE_FORK ...
#define NSR_STEP_COUNT ...
#define NSR_CREATE_NONE ...
#define NSR_CREATE_DIR ...
#define NSR_CREATE_FILE ...
#define NSR_STOP_HOOKS ...
#define NSR_STOP_START ...
#define NSR_STOPPED ...
#define CAP_LAST_CAP ...
#define RLIM_INFINITY ...
#define BPF_DEVCG_ACC_MKNOD ...
#define BPF_DEVCG_ACC_READ ...
#define BPF_DEVCG_ACC_WRITE ...
#define BPF_DEVCG_DEV_BLOCK ...
#define BPF_DEVCG_DEV_CHAR ...

struct nsr_mount {
    const char *source;
    const char *target;
    const char *fstype;
    unsigned long flags;
    unsigned long propagation;
    const char *data;
    const char *sub_path;
};

struct nsr_device {
    const char *path;
    uint32_t mode;
    uint32_t uid, gid;
    uint64_t rdev;
};

struct nsr_rlimit {
    int resource;
    uint64_t soft, hard;
};

struct nsr_caps {
    uint64_t bounding, effective, permitted, inheritable, ambient;
};

struct nsr_spawn_req {
    char *const *argv;
    char *const *envp;
    char *const *exec_paths;
    const char *rootfs;
    const char *cwd;
    uint32_t uid, gid;
    const uint32_t *groups;
    int ngroups;
    int rootfs_readonly;
    const struct nsr_mount *mounts;
    int nmounts;
    int populate_dev;
    const struct nsr_device *devices;
    int ndevices;
    char *const *masked_paths;
    char *const *readonly_paths;
    unsigned long rootfs_propagation;
    char *const *sysctl_paths;
    char *const *sysctl_values;
    int set_oom_score_adj;
    int oom_score_adj;
    int umask;
    const struct nsr_rlimit *rlimits;
    int nrlimits;
    int set_caps;
    struct nsr_caps caps;
    int no_new_privs;
    const void *seccomp_filter;
    uint32_t seccomp_len;
    uint32_t seccomp_flags;
    const char *hostname;
    const int *ns_fds;
    const int *ns_types;
    int nns;
    int new_pid_ns;
    int cgroup_fd;
    int stdio[3];
    int clone_mode;
    int ctty;
    int die_with_parent;
    int new_user_ns;
    const char *uid_map;
    const char *gid_map;
    const int *cgroup_join_fds;
    int ncgroup_join;
    int stops;
    int stop_fd;
    int console;
    int console_fd;
    int preserve_fds;
    const char *session_keyring;
};

struct nsr_dev_rule {
    int32_t type;
    int64_t major, minor;
    uint32_t access;
};

struct nsr_report {
    int32_t step;
    int32_t err;
    int32_t index;
};

int nsr_spawn(const struct nsr_spawn_req *req, int *pidfd_out, struct nsr_report *rep);
int nsr_spawn_stopped(const struct nsr_spawn_req *req, int *pidfd_out, int *report_fd_out,
                      struct nsr_report *rep);
int nsr_exec_in(const struct nsr_spawn_req *req, int target_pidfd, unsigned int ns_flags,
                int *pidfd_out, struct nsr_report *rep);
int nsr_socket_in_netns(int net_fd, int family, int type, int protocol,
                        struct nsr_report *rep);
int nsr_sandbox_create(const char *hostname, int keep, int cgroup_fd, int fds[3],
                       int *pidfd_out, struct nsr_report *rep);
int nsr_has_clone3(void);
int nsr_have_clone_vm(void);
const char *nsr_step_name(int step);
int nsr_open_in_root(int rootfd, const char *path, int create);
int nsr_device_filter(int cgroup_fd, const struct nsr_dev_rule *rules, int n,
                      int default_allow, int replace_fd);

/* libc, for host-side mounts done by the supervisor itself (emptyDir medium: Memory) */
int mount(const char *source, const char *target, const char *fstype, unsigned long flags,
          const void *data);
int umount2(const char *target, int flags);
