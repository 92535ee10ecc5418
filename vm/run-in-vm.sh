#!/bin/bash
# vm/run-in-vm.sh - nsrun's VM test ring (docs/vm.md): run a command inside
# a throw-away Linux guest that has a pure cgroup v2 hierarchy (cpu, memory,
# pids, io, cpuset ...), its own network namespaces, and the host's root
# filesystem visible read-only (writes go to a tmpfs overlay and are
# discarded). The current project checkout (git top
# level, else $PWD) is shared read-write at the same path, so test results
# land on the host. The command's stdout/stderr stream back, and this script
# exits with the command's exit code.
#
#   vm/run-in-vm.sh [options] [--] COMMAND [ARGS...]
#   vm/run-in-vm.sh -- .venv/bin/python -m pytest -q tests/vm
#   make test-vm                       (mk/vm.mk; see docs/vm.md)
#
# Everything it needs is installed/downloaded on first use, idempotently and
# under a lock: Debian packages through vm/provision.sh (vm-host step), the
# guest kernel (apt-get download into the cache dir), for uml a forky
# user-mode-linux + libc6, for qemu a bookworm-backports qemu (both extracted
# into the cache, never installed; the host's apt sources are untouched).
#
# Options:
#   --backend qemu|uml   qemu (default): Debian bookworm kernel under
#                        qemu-system-x86_64 (TCG, or KVM where usable), all
#                        cgroup v2 controllers incl. cpuset, SMP.
#                        uml: User-Mode Linux (Debian forky/sid build),
#                        ~2-4x faster here, but 1 CPU and no cpuset controller.
#   --cpus N             guest CPUs (qemu only; default 2)
#   --mem SIZE           guest memory, e.g. 2G (default 2G)
#   --rw DIR             also share DIR read-write at the same path (repeatable)
#   --no-rw-checkout     don't share the checkout read-write (it is still
#                        visible through the read-only root; writes discarded)
#   --timeout SECS       kill the guest after SECS (default 3600; exit 124)
#   --accel auto|kvm|tcg qemu accelerator (default auto: KVM only when a
#                        VMX/SVM kvm module is loaded; PVM's /dev/kvm cannot
#                        boot stock kernels, so it means TCG there)
#   --systemd            boot the host's own systemd as PID 1 (only the
#                        command's unit is started) so systemd-run works
#   --verbose, -v        stream the guest kernel console to stderr
#   --keep               keep the run directory (prints its path)
#   --prepare            only install/download/build what is needed, then exit
#   -h, --help
#
# Environment: NSRUN_VM_BACKEND (default qemu), NSRUN_VM_CACHE (default
# /var/cache/nsrun-vm; kept across runs, outside the checkout),
# NSRUN_VM_CPUS, NSRUN_VM_MEM, NSRUN_VM_TIMEOUT, NSRUN_VM_ACCEL,
# NSRUN_VM_QEMU=system (skip the backports qemu), NSRUN_VM_QEMU_CPU,
# NSRUN_VM_DEBIAN_MIRROR, NSRUN_VM_REFRESH=1 (re-resolve the kernel package).
# Exit codes: the command's own; 124 timeout; 125 the VM failed to run it.
set -u -o pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)
BACKEND=${NSRUN_VM_BACKEND:-qemu}
CACHE=${NSRUN_VM_CACHE:-/var/cache/nsrun-vm}
CPUS=${NSRUN_VM_CPUS:-2}
MEM=${NSRUN_VM_MEM:-2G}
TIMEOUT=${NSRUN_VM_TIMEOUT:-3600}
ACCEL=${NSRUN_VM_ACCEL:-auto}
VERBOSE=0
KEEP=0
PREPARE=0
RW_CHECKOUT=1
SYSTEMD=0
RW_DIRS=()

log() { echo "run-in-vm: $*" >&2; }
T0=${EPOCHREALTIME:-0}
elapsed() { awk -v a="$T0" -v b="${EPOCHREALTIME:-0}" 'BEGIN{printf "%.1f", b-a}'; }
die() { log "$*"; exit 125; }

usage() { sed -n '2,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
    case "$1" in
    --backend) BACKEND=$2; shift 2 ;;
    --backend=*) BACKEND=${1#*=}; shift ;;
    --cpus) CPUS=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --rw) RW_DIRS+=("$2"); shift 2 ;;
    --no-rw-checkout) RW_CHECKOUT=0; shift ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --accel) ACCEL=$2; shift 2 ;;
    -v | --verbose) VERBOSE=1; shift ;;
    --keep) KEEP=1; shift ;;
    --systemd) SYSTEMD=1; shift ;;
    --prepare) PREPARE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || [ "$PREPARE" = 1 ] || { usage >&2; exit 2; }
case "$BACKEND" in qemu | uml) ;; *) die "unknown backend '$BACKEND'" ;; esac

# ---------------------------------------------------------------- installs --
APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" = 1 ] && return 0
    log "apt-get update"
    apt-get update -qq -o DPkg::Lock::Timeout=600 >&2 || die "apt-get update failed"
    APT_UPDATED=1
}

# Debian packages come through the provision script shared with the Vagrant
# box (its vm-host step also installs the base packages nsrun's tests need).
ensure_host_pkgs() {
    "$HERE/provision.sh" vm-host "$BACKEND" || die "provisioning the host failed (vm/provision.sh vm-host $BACKEND)"
    # the initramfs needs a static busybox (busybox-static, not busybox)
    file_is_static /bin/busybox || die "/bin/busybox is not statically linked: install busybox-static"
}
file_is_static() { [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1; }

# qemu: Debian's current bookworm kernel (linux-image-amd64 -> versioned pkg),
# vmlinux (uncompressed: saves the decompression under TCG), its modules, and
# an initramfs with busybox + the modules needed to mount the 9p root.
prepare_qemu() {
    ensure_host_pkgs
    local kpkg=
    # which kernel package linux-image-amd64 means; re-resolved once a day
    if [ -z "${NSRUN_VM_REFRESH:-}" ] && [ -n "$(find "$CACHE/qemu/kpkg" -mmin -1440 2>/dev/null)" ]; then
        kpkg=$(cat "$CACHE/qemu/kpkg")
        [ -f "$CACHE/qemu/${kpkg#linux-image-}/vmlinux" ] || kpkg=
    fi
    [ -n "$kpkg" ] || kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    if [ -z "$kpkg" ]; then
        apt_update_once
        kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64"
    mkdir -p "$CACHE/qemu"
    [ "$(cat "$CACHE/qemu/kpkg" 2>/dev/null)" = "$kpkg" ] && [ -n "$(find "$CACHE/qemu/kpkg" -mmin -1440 2>/dev/null)" ] ||
        echo "$kpkg" >"$CACHE/qemu/kpkg"
    KVER=${kpkg#linux-image-}
    KDIR=$CACHE/qemu/$KVER
    # drop kernels superseded by a newer point release more than 2 days ago
    local old
    for old in "$CACHE"/qemu/*/; do
        old=${old%/}
        [ "$old" = "$KDIR" ] && continue
        [ -n "$(find "$old" -maxdepth 0 -mmin +2880 2>/dev/null)" ] && rm -rf "$old"
    done
    if [ ! -f "$KDIR/vmlinux" ]; then
        log "fetching kernel $kpkg"
        local tmp
        tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
        (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg" >/dev/null 2>&1) || {
            apt_update_once
            (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg" >&2)
        } || die "apt-get download $kpkg failed"
        dpkg -x "$tmp"/*.deb "$tmp/x" || die "dpkg -x failed"
        # drop hardware drivers a VM never loads (~400 -> ~130 MB)
        (cd "$tmp/x/lib/modules/$KVER/kernel" &&
            find drivers -mindepth 1 -maxdepth 1 ! -name net ! -name block ! -name md \
                ! -name char ! -name virtio ! -name vhost -exec rm -rf {} + &&
            rm -rf drivers/net/wireless drivers/net/ethernet sound)
        depmod -b "$tmp/x" "$KVER" || die "depmod failed"
        python3 - "$tmp/x/boot/vmlinuz-$KVER" "$tmp/vmlinux" <<'PY' || die "cannot decompress the kernel"
import sys, lzma, gzip, zlib
d = open(sys.argv[1], 'rb').read()
out = None
i = d.find(b'\xfd7zXZ\x00')
if i >= 0:
    out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[i:])
else:
    i = d.find(b'\x1f\x8b\x08\x00')
    out = zlib.decompressobj(31).decompress(d[i:])
assert out[:4] == b'\x7fELF', 'not an ELF kernel'
open(sys.argv[2], 'wb').write(out)
PY
        rm -rf "$KDIR"
        mkdir -p "$KDIR"
        mkdir -p "$KDIR/lib/modules"
        mv "$tmp/x/lib/modules/$KVER" "$KDIR/lib/modules/$KVER"
        mv "$tmp/vmlinux" "$KDIR/vmlinux.tmp"
        mv "$KDIR/vmlinux.tmp" "$KDIR/vmlinux"
        rm -rf "$tmp"
    fi
    # initramfs, rebuilt when guest/init-qemu changes
    local sum
    sum=$(cat "$HERE/guest/init-qemu" /bin/busybox | md5sum | cut -c1-12)
    INITRD=$KDIR/initrd-$sum.cpio
    if [ ! -f "$INITRD" ]; then
        local root m f b
        root=$(mktemp -d "$CACHE/tmp.XXXXXX")
        mkdir -p "$root/bin" "$root/lib/modules"
        cp /bin/busybox "$root/bin/busybox"
        cp "$HERE/guest/init-qemu" "$root/init"
        chmod 755 "$root/init"
        : >"$root/modules.order"
        for m in virtio_pci virtio_console 9pnet_virtio 9p overlay; do
            for f in $(modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}'); do
                b=$(basename "$f")
                grep -qx "$b" "$root/modules.order" && continue
                cp "$f" "$root/lib/modules/$b"
                echo "$b" >>"$root/modules.order"
            done
        done
        grep -qx 9p.ko "$root/modules.order" || die "could not collect the 9p modules"
        (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$INITRD.tmp" &&
            mv "$INITRD.tmp" "$INITRD" || die "cpio failed"
        rm -rf "$root"
        # older initramfs builds of this kernel
        find "$KDIR" -maxdepth 1 -name 'initrd-*.cpio' ! -name "${INITRD##*/}" -mmin +60 -delete 2>/dev/null
    fi
    touch "$KDIR"
    MODDIR=$KDIR/lib/modules/$KVER
    prepare_qemu_bin
}

# The qemu binary: bookworm's qemu 7.2 is the fallback; when the system qemu
# is older than 9, the <codename>-backports build (10.x, linked against the
# same libraries) is extracted into the cache and preferred: its TCG runs
# this guest's fork/exec ~2.5x and Python ~1.4x faster. NSRUN_VM_QEMU=system
# skips it. Private apt lists: the host's apt sources are untouched.
# The Debian archive URI the host's apt already uses (no host name is
# hard-coded here); NSRUN_VM_DEBIAN_MIRROR overrides it.
debian_mirror() {
    if [ -n "${NSRUN_VM_DEBIAN_MIRROR:-}" ]; then echo "$NSRUN_VM_DEBIAN_MIRROR"; return; fi
    apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -m1 -E '/debian/?$' ||
        grep -rhoE '(https?|file)://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null |
        head -1 | tr -d ' '
}

extract_debs() {
    local dest=$1 d
    shift
    for d in "$@"; do dpkg -x "$d" "$dest" || return 1; done
}

prepare_qemu_bin() {
    QEMU=qemu-system-x86_64
    QEMU_DATA=/usr/share/qemu
    [ "${NSRUN_VM_QEMU:-auto}" = system ] && return 0
    local major
    major=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p;q')
    [ "${major:-0}" -ge 9 ] && return 0
    local QD=$CACHE/qemu-backports
    if [ ! -x "$QD/usr/bin/qemu-system-x86_64" ] && [ ! -f "$QD.failed" ]; then
        local code A tmp
        code=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        A=$CACHE/qemu-backports-apt
        mkdir -p "$A/lists/partial"
        echo "deb $(debian_mirror) $code-backports main" >"$A/sources.list"
        local APTO=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o Dir::State::Lists="$A/lists" -o Dir::Cache::Archives="$A"
            -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root)
        tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
        log "fetching qemu from Debian $code-backports"
        if [ -n "$code" ] && apt-get "${APTO[@]}" update -qq >&2 &&
            (cd "$tmp" && apt-get "${APTO[@]}" download -qq qemu-system-x86 qemu-system-common qemu-system-data >&2) &&
            extract_debs "$tmp/x" "$tmp"/*.deb; then
            rm -rf "$QD"
            mv "$tmp/x" "$QD"
        else
            log "no backports qemu; using the system qemu"
            touch "$QD.failed"
        fi
        rm -rf "$tmp"
    fi
    if [ -x "$QD/usr/bin/qemu-system-x86_64" ] && "$QD/usr/bin/qemu-system-x86_64" --version >/dev/null 2>&1; then
        QEMU=$QD/usr/bin/qemu-system-x86_64
        QEMU_DATA=$QD/usr/share/qemu
    fi
}

# uml: Debian forky's user-mode-linux (sid as fallback). Bookworm's 6.1 and
# trixie's 6.12 builds die at once on AVX-512 hosts ("ptrace set fp regs
# failed, errno = 14"); the 7.x build works. It needs glibc >= 2.38, so it
# runs against a private copy of forky's libc6 (patchelf'd interpreter+rpath).
# These downloads use private apt lists; the host's apt sources are untouched.
prepare_uml() {
    ensure_host_pkgs
    local A=$CACHE/uml/apt
    mkdir -p "$A/lists/partial" "$A/archives/partial"
    local suite
    local UDIR=$CACHE/uml/current
    if [ ! -x "$UDIR/linux.uml" ]; then
        for suite in forky sid; do
            echo "deb $(debian_mirror) $suite main" >"$A/sources.list"
            local APTO=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o Dir::State::Lists="$A/lists" -o Dir::Cache::Archives="$A/archives"
                -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Get::List-Cleanup=0
                -o APT::Sandbox::User=root)
            log "fetching user-mode-linux + libc6 from Debian $suite"
            apt-get "${APTO[@]}" update -qq >&2 || continue
            local tmp
            tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
            if (cd "$tmp" && apt-get "${APTO[@]}" download -qq user-mode-linux libc6 >&2); then
                mkdir -p "$tmp/uml" "$tmp/libc"
                dpkg -x "$tmp"/user-mode-linux_*.deb "$tmp/uml" && dpkg -x "$tmp"/libc6_*.deb "$tmp/libc" || die "dpkg -x failed"
                rm -rf "$UDIR"
                mkdir -p "$UDIR"
                mv "$tmp/libc/usr/lib/x86_64-linux-gnu" "$UDIR/libc"
                mv "$tmp/uml/usr/lib/uml/modules" "$UDIR/modules"
                cp "$tmp/uml/usr/bin/linux.uml" "$UDIR/linux.uml.tmp"
                patchelf --set-interpreter "$UDIR/libc/ld-linux-x86-64.so.2" \
                    --set-rpath "$UDIR/libc" "$UDIR/linux.uml.tmp" || die "patchelf failed"
                mv "$UDIR/linux.uml.tmp" "$UDIR/linux.uml"
                rm -rf "$tmp" "$A"
                break
            fi
            rm -rf "$tmp"
        done
        [ -x "$UDIR/linux.uml" ] || die "could not fetch user-mode-linux"
    fi
    UML=$UDIR/linux.uml
    KVER=$(ls "$UDIR/modules" | head -1)
    MODDIR=$UDIR/modules/$KVER
}

mkdir -p "$CACHE" || die "cannot create $CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ "$BACKEND" = qemu ]; then prepare_qemu; else prepare_uml; fi
flock -u 9
if [ "$PREPARE" = 1 ]; then
    log "ready ($BACKEND, kernel $KVER${QEMU:+, $($QEMU --version | head -1)}, cache $CACHE, $(elapsed)s)"
    exit 0
fi
log "booting $BACKEND guest (kernel $KVER; setup took $(elapsed)s)"

# ---------------------------------------------------------------- the run --
CWD=$(pwd -P)
CHECKOUT=$(git -C "$CWD" rev-parse --show-toplevel 2>/dev/null || echo "$CWD")
[ "$RW_CHECKOUT" = 1 ] && RW_DIRS=("$CHECKOUT" "${RW_DIRS[@]}")
RW=()
for d in "${RW_DIRS[@]}"; do
    d=$(cd "$d" 2>/dev/null && pwd -P) || die "--rw: no such directory"
    case "$d" in
    / | /proc* | /sys* | /dev* | /run | /tmp) [ "$VERBOSE" = 1 ] && log "not sharing $d read-write"; continue ;;
    *[[:space:]]*) die "paths with whitespace are not supported: '$d'" ;;
    esac
    RW+=("$d")
done

TMPBASE=${TMPDIR:-/tmp}
case "$TMPBASE" in *[[:space:],]*) TMPBASE=/tmp ;; esac
RUN=$(mktemp -d "$TMPBASE/nsrun-vm.XXXXXX") || die "mktemp failed"
SHARE=$RUN/share
mkdir -p "$SHARE"
QPID=
cleanup() {
    [ -n "$QPID" ] && kill "$QPID" 2>/dev/null
    if [ "$KEEP" = 1 ]; then log "run dir kept: $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
    echo "VMR_RUN=$(sq "$SHARE")"
    echo "VMR_CWD=$(sq "$CWD")"
    echo "VMR_KVER=$(sq "$KVER")"
    echo "VMR_MODDIR=$(sq "$MODDIR")"
    echo "VMR_SYSTEMD=$SYSTEMD"
    echo "VMR_NRW=${#RW[@]}"
    for i in "${!RW[@]}"; do echo "VMR_RW_$i=$(sq "${RW[$i]}")"; done
} >"$SHARE/config"
export -p | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_|HOSTNAME|TERMCAP|SSH_[A-Z_]*|XDG_RUNTIME_DIR|DISPLAY|WAYLAND_DISPLAY|DBUS_SESSION_BUS_ADDRESS)(=|$)' >"$SHARE/env.sh"
{
    echo "source $(sq "$SHARE/env.sh")"
    echo "export NSRUN_VM=$BACKEND"
    echo "cd -- $(sq "$CWD") || exit 126"
    printf 'exec'
    printf ' %q' "$@"
    echo
} >"$SHARE/cmd.sh"
cp "$HERE/guest/stage2.sh" "$SHARE/stage2.sh"
cp "$HERE/guest/init-uml" "$SHARE/init-uml"
chmod 755 "$SHARE"/*.sh "$SHARE/init-uml"

# stdout/stderr come back through FIFOs drained by cat, so they share our
# file offsets (a plain file as stdout is appended to, never overwritten).
mkfifo "$RUN/out" "$RUN/err" "$RUN/con"
cat "$RUN/out" &
C1=$!
cat "$RUN/err" >&2 &
C2=$!
if [ "$VERBOSE" = 1 ]; then cat "$RUN/con" >&2 & else cat "$RUN/con" >"$RUN/console.log" & fi
C3=$!

KLOG="quiet loglevel=1"
[ "$VERBOSE" = 1 ] && KLOG="loglevel=6"
qopt() { printf '%s' "${1//,/,,}"; } # escape commas in qemu option values

if [ "$BACKEND" = qemu ]; then
    if [ "$ACCEL" = auto ]; then
        ACCEL=tcg
        if [ -w /dev/kvm ] && [ -d /sys/module/kvm_intel -o -d /sys/module/kvm_amd ]; then ACCEL=kvm; fi
    fi
    if [ "$ACCEL" = kvm ]; then CPU=host; else CPU=max; fi
    CPU=${NSRUN_VM_QEMU_CPU:-$CPU}
    BIOS=(-L "$QEMU_DATA")
    [ -f "$QEMU_DATA/qboot.rom" ] && BIOS+=(-bios "$QEMU_DATA/qboot.rom")
    Q=("$QEMU" -machine q35,accel="$ACCEL" -cpu "$CPU" -smp "$CPUS" -m "$MEM"
        -nodefaults -no-user-config -display none -no-reboot "${BIOS[@]}"
        -serial "file:$RUN/con"
        -kernel "$KDIR/vmlinux" -initrd "$INITRD"
        -append "console=ttyS0 $KLOG panic=-1 cgroup_no_v1=all mitigations=off 8250.nr_uarts=1 i8042.noaux i8042.nokbd i8042.nopnp"
        -fsdev "local,id=fsroot,path=/,security_model=none,readonly=on,multidevs=remap"
        -device virtio-9p-pci,fsdev=fsroot,mount_tag=hostroot
        -fsdev "local,id=fsrun,path=$(qopt "$SHARE"),security_model=none,multidevs=remap"
        -device virtio-9p-pci,fsdev=fsrun,mount_tag=vmrrun)
    for i in "${!RW[@]}"; do
        Q+=(-fsdev "local,id=fsrw$i,path=$(qopt "${RW[$i]}"),security_model=passthrough,multidevs=remap"
            -device "virtio-9p-pci,fsdev=fsrw$i,mount_tag=vmrrw$i")
    done
    Q+=(-device virtio-serial-pci
        -chardev "file,id=so,path=$RUN/out" -device virtserialport,chardev=so,name=vmr.stdout
        -chardev "file,id=se,path=$RUN/err" -device virtserialport,chardev=se,name=vmr.stderr)
    timeout -k 10 "$TIMEOUT" "${Q[@]}" </dev/null >"$RUN/vmm.log" 2>&1 &
else
    UMLMEM=$MEM
    timeout -k 10 "$TIMEOUT" "$UML" mem="$UMLMEM" root=/dev/root rootfstype=hostfs rootflags=/ ro \
        $KLOG seccomp=auto umid="nsrunvm-${RUN##*.}" uml_dir="$RUN" \
        init="$SHARE/init-uml" vmr.run="$SHARE" \
        con=null ssl=null con0=null,fd:5 con1=null,fd:3 con2=null,fd:4 \
        3>"$RUN/out" 4>"$RUN/err" 5>"$RUN/con" </dev/null >"$RUN/vmm.log" 2>&1 &
fi
QPID=$!
wait "$QPID"
VMRC=$?
QPID=
# make sure the cats see EOF even if the VMM never opened the FIFOs
for f in out err con; do exec 8<>"$RUN/$f"; exec 8>&-; done
wait "$C1" "$C2" "$C3" 2>/dev/null

if [ -f "$SHARE/rc" ]; then
    RC=$(cat "$SHARE/rc")
    log "guest command exited with status $RC after $(elapsed)s"
    exit "$RC"
fi
if [ "$VMRC" = 124 ] || [ "$VMRC" = 137 ]; then
    log "timed out after ${TIMEOUT}s"
    exit 124
fi
log "the guest did not report an exit code (VMM exit $VMRC); last lines:"
tail -n 25 "$RUN/vmm.log" >&2 2>/dev/null
[ -f "$RUN/console.log" ] && tail -n 25 "$RUN/console.log" >&2
exit 125
