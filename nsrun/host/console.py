"""Terminals for processes in containers: the pty comes from the container's own devpts.

The C child opens ``/dev/ptmx`` inside the container (``SpawnRequest``/``ExecRequest``
``console_fd``) and sends the master over a unix socket, as runc does with
``--console-socket``; so ``tty`` inside prints ``/dev/pts/N`` of the container, not "not a
tty" (a pty of the host's devpts has no name there). :func:`pair` is that socket for a caller
that wants the master itself (``nsrun exec -t``, ``nsrun-oci exec -t`` without a socket);
:func:`receive` takes the master; :func:`relay` copies between it and our terminal.
"""

from __future__ import annotations

import os
import select


def pair() -> tuple[int, int]:
    """``(ours, theirs)``: a connected unix stream socket pair (CLOEXEC); ``theirs`` is the
    request's ``console_fd``."""
    import _socket

    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    return a.detach(), b.detach()


def receive(sock: int) -> tuple[int, str]:
    """The pty master the child sent on ``sock`` and its name (``/dev/pts/N``);
    ``OSError`` when nothing (or not exactly one fd) came."""
    import array
    import socket

    s = socket.socket(fileno=os.dup(sock))
    try:
        fds = array.array("i")
        msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    finally:
        s.close()
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise OSError(f"expected one pty master on the console socket, got {len(fds)} fds")
    os.set_inheritable(fds[0], False)
    return fds[0], msg.decode(errors="replace")


def copy_winsize(src: int, dst: int) -> None:
    import fcntl
    import termios

    try:
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def relay(master: int, child_pidfd: int) -> None:
    """Copy stdin → pty and pty → stdout until the process exits or the pty closes."""
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(child_pidfd, select.POLLIN)
    poller.register(0, select.POLLIN)
    while True:
        for fd, events in poller.poll():
            if fd == child_pidfd:
                return _drain(master)
            if fd == master:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave closed it
                    data = b""
                if not data:
                    return None  # the caller waits for the process itself
                _write_all(1, data)
            elif events & (select.POLLERR | select.POLLNVAL):
                poller.unregister(0)  # no usable stdin
            else:
                data = os.read(0, 65536)
                if data:
                    _write_all(master, data)
                else:  # end of input: the terminal's end-of-file character, like a shell
                    _write_all(master, b"\x04")
                    poller.unregister(0)


def _drain(master: int) -> None:
    """What the process wrote before it exited (its children may still hold the pty)."""
    os.set_blocking(master, False)
    try:
        while True:
            data = os.read(master, 65536)
            if not data:
                return
            _write_all(1, data)
    except (BlockingIOError, OSError):
        return
