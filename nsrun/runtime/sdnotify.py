"""Readiness to systemd (``run --sdnotify=initialized|ready|started|none``), as podman's
``--sdnotify`` does for a container.

With ``NOTIFY_SOCKET`` set, the supervisor sends ``READY=1`` once the pod is Initialized
(every init container exited 0), Ready, or started (its sandbox exists), ``STATUS=`` with the
pod's STATUS column on every change (``Init:1/2``, ``Running``, ``Init:CrashLoopBackOff``),
``MAINPID=`` when the supervisor is not the process systemd started (``run -d``), and
``STOPPING=1`` once the pod is being deleted.

The protocol is sd_notify(3)'s datagram: ``KEY=VALUE`` lines sent to the unix socket named
by ``NOTIFY_SOCKET`` (``@`` for the abstract namespace). It is written here in a few lines:
the Python packages for it add nothing to one ``sendto`` and are not maintained.
``messages`` decides what to send (pure); ``Notifier`` sends it.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

MODES = ("initialized", "ready", "started", "none")
CONDITION = {"initialized": "Initialized", "ready": "Ready"}


def condition_true(pod: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def messages(mode: str, pod: dict[str, Any], sent: dict[str, str]) -> list[str]:
    """What to send for this Pod object, given what was already sent (``sent`` is
    updated): one datagram's lines, empty when nothing changed."""
    from nsrun.core.printer import get_row

    lines = []
    status = get_row(pod, 0)[2]
    if sent.get("STATUS") != status:
        sent["STATUS"] = status
        lines.append(f"STATUS={status}")
    if "READY" not in sent and (mode == "started" or (
            mode in CONDITION and condition_true(pod, CONDITION[mode]))):
        sent["READY"] = "1"
        lines.append("READY=1")
    if "STOPPING" not in sent and pod.get("metadata", {}).get("deletionTimestamp"):
        sent["STOPPING"] = "1"
        lines.append("STOPPING=1")
    return lines


def send(address: str, lines: list[str]) -> None:
    """One datagram to ``address`` (``NOTIFY_SOCKET``'s value)."""
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(address)
        s.sendall("\n".join(lines).encode() + b"\n")


class Notifier:
    """The ``on_change`` hook that keeps systemd told (a no-op without a socket)."""

    def __init__(self, mode: str, address: str | None, mainpid: bool) -> None:
        self.mode, self.address = mode, address
        self.sent: dict[str, str] = {}
        self.mainpid = mainpid
        self.failed = False

    @classmethod
    def from_env(cls, mode: str, detached: bool) -> Notifier:
        address = os.environ.get("NOTIFY_SOCKET") if mode != "none" else None
        return cls(mode, address or None, mainpid=detached)

    def __call__(self, pod: dict[str, Any]) -> None:
        if not self.address or self.failed:
            return
        lines = messages(self.mode, pod, self.sent)
        if self.mainpid:  # the detached supervisor is not the process systemd started
            lines.insert(0, f"MAINPID={os.getpid()}")
            self.mainpid = False
        if lines:
            try:
                send(self.address, lines)
            except OSError as err:
                self.failed = True
                print(f"nsrun: warning: NOTIFY_SOCKET {self.address}: {err.strerror}",
                      file=sys.stderr)
