#!/usr/bin/env bash
# make demo: run the source document's myapp-pod and watch STATUS go
# Init:0/2 -> Init:1/2 -> Running as the two "services" appear, then delete the pod.
# Uses its own state dir and image store, and removes both at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
NSRUN=${NSRUN:-.venv/bin/nsrun}
work=$(mktemp -d /tmp/nsrun-demo-state.XXXXXX)
export NSRUN_ROOT=$work/state NSRUN_IMAGES=$work/images
services=/tmp/nsrun-demo/services

cleanup() {
  "$NSRUN" delete myapp-pod >/dev/null 2>&1 || true
  rm -rf "$work" /tmp/nsrun-demo
}
trap cleanup EXIT

status() { "$NSRUN" get myapp-pod | awk 'NR==2 {print $3}'; }
wait_for() {  # wait_for STATUS: poll `nsrun get` until the STATUS column shows it
  for _ in $(seq 100); do [ "$(status)" = "$1" ] && return 0; sleep 0.1; done
  echo "timed out waiting for $1 (now: $(status))" >&2; return 1
}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

rm -rf /tmp/nsrun-demo
step "$NSRUN" image busybox busybox:1.28
step "$NSRUN" run -d examples/myapp-pod.yaml
wait_for Init:0/2
step "$NSRUN" get myapp-pod
sleep 1.5
step "$NSRUN" logs myapp-pod -c init-myservice

printf '\n# the Service "myservice" appears\n'; mkdir -p "$services"; touch "$services/myservice"
wait_for Init:1/2
step "$NSRUN" get myapp-pod

printf '\n# the Service "mydb" appears\n'; touch "$services/mydb"
wait_for Running
step "$NSRUN" get myapp-pod
step "$NSRUN" logs myapp-pod -c init-mydb
step "$NSRUN" logs myapp-pod -c myapp-container
# `sleep` as PID 1 ignores SIGTERM: cut the 30 s grace period short, as kubectl --grace-period does
step "$NSRUN" delete myapp-pod --grace-period 1
