"""Runs probes and lifecycle hooks beside the supervisor's loop.

Each check runs in a small worker thread (imported only for pods that have probes or
hooks) and posts its result to a queue, waking the supervisor's poll through a pipe. Exec
checks run inside the container (its namespaces, cgroup and confinement) through the C
extension; tcpSocket and httpGet connect from inside the pod's network namespace.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import msgspec

from nsrun.core.spec import Container, HTTPGetAction, Probe, TCPSocketAction


class Result(msgspec.Struct, frozen=True):
    """The outcome of one check: ``key`` says which (probe state, hook) it answers."""

    key: Any
    ok: bool
    message: str = ""


class Checks:
    """A thread pool for probes and hooks, and the pipe that wakes the supervisor."""

    def __init__(self, workers: int = 4) -> None:
        import queue
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nsrun-probe")
        self.results: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def submit(self, key: Any, check: Callable[[], tuple[bool, str]]) -> None:
        self.pool.submit(self._run, key, check)

    def _run(self, key: Any, check: Callable[[], tuple[bool, str]]) -> None:
        try:
            ok, message = check()
        except Exception as err:  # a probe that cannot run has failed, it never crashes
            ok, message = False, str(err)
        self.results.put(Result(key, ok, message))
        try:
            os.write(self.write_fd, b"r")
        except BlockingIOError:
            pass

    def drain(self) -> list[Result]:
        """Every result posted since the last call (after the pipe polled readable)."""
        try:
            while os.read(self.read_fd, 512):
                pass
        except BlockingIOError:
            pass
        out = []
        while not self.results.empty():
            out.append(self.results.get())
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        os.close(self.read_fd)
        os.close(self.write_fd)


def needs_checks(containers: list[Container]) -> bool:
    """Whether any container has a probe or a lifecycle hook."""
    return any(c.startup_probe or c.liveness_probe or c.readiness_probe or c.lifecycle
               for c in containers)


def resolve_port(port: int | str, container: Container) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    for p in container.ports or []:
        if p.name == port:
            return p.container_port
    raise ValueError(f'port "{port}" is not a named port of container "{container.name}"')


def tcp_check(net_fd: int, action: TCPSocketAction, container: Container,
              timeout: float) -> tuple[bool, str]:
    """Connect to the port from inside the pod's network namespace."""
    host, port = action.host or "127.0.0.1", resolve_port(action.port, container)
    try:
        with _connect(net_fd, host, port, timeout):
            return True, ""
    except OSError as err:
        return False, f"dial tcp {host}:{port}: connect: {_reason(err)}"


def http_check(net_fd: int, action: HTTPGetAction, container: Container,
               timeout: float) -> tuple[bool, str]:
    """GET the path from inside the pod's network namespace: 200–399 is a success."""
    host, port = action.host or "127.0.0.1", resolve_port(action.port, container)
    path = action.path or "/"
    headers = "".join(f"{h.name}: {h.value}\r\n" for h in action.http_headers or [])
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\n"
               f"Accept: */*\r\nConnection: close\r\n{headers}\r\n")
    try:
        with _connect(net_fd, host, port, timeout) as sock:
            sock.sendall(request.encode())
            code = _status_code(sock.recv(4096))
    except OSError as err:
        return False, f'Get "http://{host}:{port}{path}": dial tcp {host}:{port}: {_reason(err)}'
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


def _connect(net_fd: int, host: str, port: int, timeout: float):
    import socket

    from nsrun.host import nsfds

    fd = nsfds.socket_in_netns(net_fd, socket.AF_INET, socket.SOCK_STREAM)
    sock = socket.socket(fileno=fd)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _status_code(head: bytes) -> int:
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(0, "malformed HTTP response")
    return int(parts[1])


def _reason(err: OSError) -> str:
    if isinstance(err, TimeoutError) or "timed out" in str(err):
        return "i/o timeout"
    return (err.strerror or str(err)).lower()


def handler_of(probe: Probe) -> str:
    """Which kind of check a probe is: exec, httpGet or tcpSocket."""
    if probe.exec is not None:
        return "exec"
    if probe.http_get is not None:
        return "httpGet"
    return "tcpSocket"
