#!/bin/bash
# vm/provision.sh - the provisioning steps shared by the Vagrant box
# (vagrant/Vagrantfile) and the VM test ring (vm/run-in-vm.sh, mk/vm.mk).
# Debian 12 (bookworm) or newer, run as root. Every step is idempotent and
# cheap when there is nothing to do; apt work happens under a lock.
#
#   vm/provision.sh [STEP...]          default: packages venv check
#
# Steps:
#   packages          Debian packages to build nsrun and run its test suite:
#                     busybox-static python3-venv python3-dev gcc make git
#                     iproute2 runc crun hyperfine
#   vm-host qemu|uml  host packages for the VM ring's backend (qemu:
#                     qemu-system-x86 kmod; uml: patchelf) plus `packages`
#   venv              $VENV (default <checkout>/.venv) with nsrun[dev]
#                     installed editable (`make setup` when the Makefile has
#                     it); `venv-min` (the VM ring) accepts any venv with
#                     pytest and falls back to plain pytest when the project
#                     cannot be installed (yet)
#   check             print the cgroup v2 / systemd situation; fails when
#                     /sys/fs/cgroup is not a cgroup2 mount
#   test              `make test` in the checkout
#   install PKG...    install these Debian packages when missing
#
# Environment: VENV, NSRUN_PROVISION_LOCK (default /run/lock/nsrun-provision.lock),
# NSRUN_APT_LOG (default /var/log/nsrun-provision-apt.log).
set -u -o pipefail

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)
CHECKOUT=$(cd "$HERE/.." && pwd -P)
VENV=${VENV:-$CHECKOUT/.venv}
case "$VENV" in /*) ;; *) VENV=$CHECKOUT/$VENV ;; esac
LOCK=${NSRUN_PROVISION_LOCK:-/run/lock/nsrun-provision.lock}
APT_LOG=${NSRUN_APT_LOG:-/var/log/nsrun-provision-apt.log}

# What nsrun needs on a Debian host to build (cffi + gcc) and to run all of
# its tests (busybox-static: the static busybox used as a container rootfs
# and in the VM initramfs; runc/crun: OCI comparisons; hyperfine: bench).
BASE_PKGS=(busybox-static python3-venv python3-dev gcc make git iproute2 runc crun hyperfine)
QEMU_PKGS=(qemu-system-x86 kmod)
UML_PKGS=(patchelf)

log() { echo "provision: $*" >&2; }
die() { log "error: $*"; exit 1; }

# missing PKG... - print the packages that are not installed
missing() {
    local p st
    for p in "$@"; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
        [ "$st" = installed ] || echo "$p"
    done
}

install_pkgs() {
    local want
    mapfile -t want < <(missing "$@")
    [ ${#want[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing Debian packages ${want[*]} and not root: install them first"
    mkdir -p "$(dirname "$LOCK")" "$(dirname "$APT_LOG")"
    (
        flock 8
        # another provision run may have installed them meanwhile
        mapfile -t want < <(missing "${want[@]}")
        [ ${#want[@]} -eq 0 ] && exit 0
        log "installing ${want[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq -o DPkg::Lock::Timeout=600 >>"$APT_LOG" 2>&1 ||
            { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed (log: $APT_LOG)"; }
        apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
            "${want[@]}" >>"$APT_LOG" 2>&1 ||
            { tail -n 20 "$APT_LOG" >&2; die "apt-get install ${want[*]} failed (log: $APT_LOG)"; }
    ) 8>"$LOCK"
}

step_packages() { install_pkgs "${BASE_PKGS[@]}"; }

step_vm_host() {
    case "${1:-qemu}" in
    qemu) install_pkgs "${BASE_PKGS[@]}" "${QEMU_PKGS[@]}" ;;
    uml) install_pkgs "${BASE_PKGS[@]}" "${UML_PKGS[@]}" ;;
    *) die "vm-host: unknown backend '${1:-}'" ;;
    esac
}

venv_ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import pytest' 2>/dev/null; }

# step_venv [min] - $VENV with nsrun[dev]: through the main Makefile's
# `setup` target when there is one (the project's own way to build the
# venv and the cffi extension), else python3 -m venv + pip install -e.
# `min` (the VM ring): an existing venv with pytest is enough, and when the
# project cannot be installed yet, plain pytest keeps the ring usable.
step_venv() {
    local min=${1:-}
    if venv_ok && { [ "$min" = min ] || "$VENV/bin/python" -c 'import nsrun' 2>/dev/null; }; then
        return 0
    fi
    install_pkgs python3-venv python3-dev gcc make || return 1
    (
        flock 8
        venv_ok && [ "$min" = min ] && exit 0
        if [ -f "$CHECKOUT/Makefile" ] && grep -q '^setup:' "$CHECKOUT/Makefile"; then
            log "make setup VENV=$VENV"
            make -C "$CHECKOUT" setup VENV="$VENV" >&2 && exit 0
        else
            if [ ! -x "$VENV/bin/python" ]; then
                log "creating $VENV"
                python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
            fi
            log "installing nsrun[dev] into $VENV"
            "$VENV/bin/pip" install -q --disable-pip-version-check -e "$CHECKOUT[dev]" >&2 && exit 0
        fi
        [ "$min" = min ] || die "could not install nsrun[dev] into $VENV"
        log "warning: nsrun is not installable; installing only pytest for the VM ring"
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
        "$VENV/bin/pip" install -q --disable-pip-version-check pytest pytest-timeout >&2 ||
            die "pip install pytest failed"
    ) 8>"$LOCK.venv"
}

step_check() {
    local fs ctl
    fs=$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)
    if [ "$fs" != cgroup2fs ]; then
        log "/sys/fs/cgroup is '$fs', not cgroup2: boot with systemd.unified_cgroup_hierarchy=1"
        return 1
    fi
    ctl=$(cat /sys/fs/cgroup/cgroup.controllers)
    log "cgroup v2 at /sys/fs/cgroup, controllers: $ctl"
    for c in cpu memory pids; do
        case " $ctl " in *" $c "*) ;; *) log "warning: controller $c is not available" ;; esac
    done
    if [ -d /run/systemd/system ]; then
        log "systemd $(systemctl --version | awk 'NR==1{print $2}') is PID 1"
    else
        log "systemd is not PID 1 (systemd-run based tests will skip)"
    fi
}

step_test() {
    cd "$CHECKOUT" || die "cd $CHECKOUT"
    make test VENV="$VENV"
}

[ $# -eq 0 ] && set -- packages venv check
while [ $# -gt 0 ]; do
    step=$1
    shift
    rc=0
    case "$step" in
    packages) step_packages || rc=$? ;;
    vm-host)
        backend=${1:-qemu}
        [ $# -gt 0 ] && shift
        step_vm_host "$backend" || rc=$?
        ;;
    venv) step_venv || rc=$? ;;
    venv-min) step_venv min || rc=$? ;;
    check) step_check || rc=$? ;;
    test) step_test || rc=$? ;;
    install)
        install_pkgs "$@" || rc=$?
        set --
        ;;
    -h | --help) sed -n '2,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown step '$step' (see --help)" ;;
    esac
    [ "$rc" = 0 ] || exit "$rc"
done
