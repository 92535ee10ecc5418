"""Pod manifests the host and the VM cgroup tests share: a pod of init and app containers
with an emptyDir at /work, a busybox container running a shell script, and the two pods
whose effective values each ring checks against numbers worked out by hand."""

from __future__ import annotations


def pod(inits: str, apps: str, policy: str = "Never", name: str = "p") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 1
  initContainers: [{inits}]
  containers: [{apps}]
  volumes: [{{name: work, emptyDir: {{}}}}]
"""


def ctr(name: str, script: str, requests: str = "", limits: str = "") -> str:
    res = ""
    if requests or limits:
        res = ", resources: {" + ", ".join(
            f"{k}: {{{v}}}" for k, v in (("requests", requests), ("limits", limits)) if v) + "}"
    return (f"{{name: {name}, image: busybox, command: [sh, -c, {script!r}], "
            f"volumeMounts: [{{name: work, mountPath: /work}}]{res}}}")


# the init container asks for more than the app containers together: its value wins, and
# it allocates 160 MiB, more than the apps' 128 MiB sum (only possible because the pod's
# limit is the init value, written before it started); Guaranteed
INIT_WINS = (
    ctr("init", "dd if=/dev/zero of=/dev/null bs=160M count=1",
        limits="cpu: '1', memory: 256Mi"),
    ctr("a", "sleep 600", limits="cpu: 250m, memory: 64Mi") + ", "
    + ctr("b", "sleep 600", limits="cpu: 250m, memory: 64Mi"),
)
# the opposite: the apps' sum wins; Burstable (requests below limits), all limits set
APPS_WIN = (
    ctr("init", "true", limits="cpu: 200m, memory: 32Mi"),
    ctr("a", "sleep 600", requests="cpu: 300m, memory: 64Mi", limits="cpu: 600m, memory: 96Mi")
    + ", " + ctr("b", "sleep 600", requests="cpu: 300m, memory: 64Mi",
                 limits="cpu: 600m, memory: 96Mi"),
)
