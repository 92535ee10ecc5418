#!/usr/bin/env bash
# make demo: the init-container walk-through (examples/myapp.yaml), verbatim, with nsrun in place of kubectl.
# The pod waits in its init containers (`until nslookup myservice`) until the two Services
# exist; then it runs. Then the same with the annotation form (--legacy-annotations) and the
# English page's variant (FQDN and the service-account namespace file).
#
# Its own state dir and image store, its own network (pods 169.254.120.0/24, Services
# 169.254.220.0/24) and an empty resolver file: the cluster DNS answers the cluster's names
# itself and relays nothing off this host. Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
NSRUN=${NSRUN:-.venv/bin/nsrun}
work=$(mktemp -d /tmp/nsrun-demo.XXXXXX)
: > "$work/resolv.conf"
export NSRUN_ROOT=$work/state NSRUN_IMAGES=$work/images NSRUN_RESOLV_CONF=$work/resolv.conf
export NSRUN_POD_CIDR=${NSRUN_POD_CIDR:-169.254.120.0/24}
export NSRUN_SERVICE_CIDR=${NSRUN_SERVICE_CIDR:-169.254.220.0/24}

cleanup() {
  for f in examples/services.yaml examples/myapp.yaml; do
    "$NSRUN" delete -f "$f" --grace-period 0 >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

status() { "$NSRUN" get myapp-pod 2>/dev/null | awk 'NR==2 {print $3}'; }
wait_for() {  # wait_for STATUS: poll `nsrun get` until the STATUS column shows it
  for _ in $(seq 300); do [ "$(status)" = "$1" ] && return 0; sleep 0.1; done
  echo "timed out waiting for $1 (now: $(status))" >&2; return 1
}
show() { printf '\n\033[1m$ nsrun %s\033[0m\n' "$*"; }
step() { show "${@:2}"; "$@"; }
title() { printf '\n\033[1;34m# %s\033[0m\n' "$*"; }

walkthrough() {  # walkthrough MYAPP SERVICES [CREATE OPTIONS]
  local myapp=$1 services=$2; shift 2
  step "$NSRUN" create -f "$myapp" "$@"
  wait_for Init:0/2
  step "$NSRUN" get -f "$myapp"
  show describe -f "$myapp" "  (trimmed)"
  "$NSRUN" describe -f "$myapp" | sed -n '/^Name:/p;/^Namespace:/p;/^Labels:/p;/^Status:/p;/^IP:/p;/^Init Containers:/,/^Conditions:/{/^  [a-z]/p;/State:/p;/Reason:/p;/Ready:/p}'
  sleep 1
  step "$NSRUN" logs myapp-pod -c init-myservice
  step "$NSRUN" create -f "$services"
  wait_for Running
  step "$NSRUN" get -f "$myapp"
  step "$NSRUN" get svc
  step "$NSRUN" logs myapp-pod -c myapp-container
  step "$NSRUN" delete -f "$services"
  # `sleep` as PID 1 ignores SIGTERM: cut the 30 s grace period short, as kubectl's does
  step "$NSRUN" delete -f "$myapp" --grace-period 0
}

step "$NSRUN" image busybox
step "$NSRUN" image busybox busybox:1.28

title "the document's example (spec.initContainers)"
walkthrough examples/myapp.yaml examples/services.yaml
title "the same pod in the annotation form of Kubernetes 1.5"
walkthrough examples/myapp-annotations.yaml examples/services.yaml --legacy-annotations
title "the English page's variant: busybox:1.28, nslookup of the FQDN"
walkthrough examples/en/myapp.yaml examples/en/services.yaml
