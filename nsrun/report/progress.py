"""Progress of long work on a terminal (nothing when stderr is not one): a line rewritten in
place for ``image import``/``rm`` (files and bytes), and a ticking line while ``delete``
waits out a pod's grace period."""

from __future__ import annotations

import sys
import time


class Progress:
    """``importing busybox: 412 files, 1.2 MB`` rewritten in place on a terminal."""

    def __init__(self, what: str, out=None) -> None:
        self.what, self.out = what, out or sys.stderr
        self.files = self.bytes = 0
        self.shown = 0.0
        self.live = self.out.isatty()

    def __call__(self, files: int, size: int) -> None:
        self.files += files
        self.bytes += size
        now = time.monotonic()
        if self.live and now - self.shown >= 0.2:
            self.shown = now
            self._show("\r")

    def _show(self, start: str) -> None:
        self.out.write(f"{start}{self.what}: {self.files} files, "
                       f"{self.bytes / 1e6:.1f} MB\x1b[K")
        self.out.flush()

    def done(self) -> None:
        if self.live:
            self._show("\r")
            self.out.write("\n")


def ticking(what: str, act, out=None):
    """``act()``, showing ``<what>: waiting for termination (Ns)`` every half second on a
    terminal while it runs; the line is erased afterwards."""
    out = out or sys.stderr
    if not out.isatty():
        return act()
    import threading

    done, start = threading.Event(), time.monotonic()

    def show() -> None:
        while not done.wait(0.5):
            out.write(f"\r{what}: waiting for termination "
                      f"({time.monotonic() - start:.0f}s)\x1b[K")
            out.flush()
    thread = threading.Thread(target=show, daemon=True)
    thread.start()
    try:
        return act()
    finally:
        done.set()
        thread.join()
        out.write("\r\x1b[K")
        out.flush()
