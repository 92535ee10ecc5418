# The device cgroup probe (tests/integration/test_device_cgroup.py and
# tests/vm/test_nsrun_device_program.py embed it as a container's command). It runs only in a
# container: the manifest sets the marker variable, and it must be pid 1 of its pid namespace
# ($$$$ is the shell's $$: Kubernetes turns $$ into $ in a command).
[ "$NSRUN_DEVICE_PROBE" = in-container ] && [ $$$$ = 1 ] || exit 99
# a fresh tmpfs with dev: nodev cannot be what refuses (that would be EACCES, not EPERM)
mkdir -p /tmp/d && mount -t tmpfs -o dev,mode=755 probe /tmp/d || exit 98
grep ' /tmp/d ' /proc/self/mountinfo
for spec in "null c 1 3" "fuse c 10 229" "loop0 b 7 0" "tun c 10 200" "disk b $PROBE_DISK"; do
  set -- $spec
  mknod /tmp/d/$1 $2 $3 $4 && echo "mknod $1 ok" || echo "mknod $1 failed"
  head -c 0 /tmp/d/$1 2>&1 && echo "open $1 ok"
done
exit 0
