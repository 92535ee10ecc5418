"""Compiled seccomp programs kept on disk, one file per profile, so that a supervisor whose
profile was compiled before (RuntimeDefault, every pod) needs neither libseccomp nor
pyseccomp: pyseccomp's import alone runs ``ldconfig -p`` twice, and compiling containerd's
default profile costs more than starting a container.

The directory is ``NSRUN_SECCOMP_CACHE`` (the supervisor sets ``<state root>/cache/seccomp``);
empty means no cache. A program's key is the SHA-256 of the profile's canonical JSON and of
the identity (size, mtime) of pyseccomp's module and of ``/etc/ld.so.cache``, which changes
whenever a library such as libseccomp is installed or upgraded: a stale program is never
read. Files are written atomically; an unreadable or short one is a miss.
"""

from __future__ import annotations

import os
import sys

try:  # the builtin module: hashlib would load OpenSSL on the start path
    from _sha256 import sha256
except ImportError:  # pragma: no cover - Python 3.12 renamed it
    from hashlib import sha256

from nsrun.files import write_atomic

ENV_CACHE = "NSRUN_SECCOMP_CACHE"
LD_CACHE = "/etc/ld.so.cache"
_HEADER = 4  # the filter flags, little-endian, before the program


def _identity(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _pyseccomp() -> str:
    for entry in sys.path:
        path = os.path.join(entry or ".", "pyseccomp.py")
        if os.path.exists(path):
            return _identity(path)
    return "-"


def key(profile_json: str) -> str:
    """The file name of ``profile_json``'s program with this host's libraries."""
    h = sha256(profile_json.encode())
    h.update(f"\0{_pyseccomp()}\0{_identity(LD_CACHE)}\0{os.uname().machine}".encode())
    return h.hexdigest()


def load(cache_dir: str, name: str) -> tuple[bytes, int] | None:
    """(program, flags), or None on a miss."""
    if not cache_dir:
        return None
    try:
        with open(os.path.join(cache_dir, name), "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) <= _HEADER or (len(data) - _HEADER) % 8:  # struct sock_filter: 8 bytes
        return None
    return data[_HEADER:], int.from_bytes(data[:_HEADER], "little")


def store(cache_dir: str, name: str, program: tuple[bytes, int]) -> None:
    """Keep ``program`` (best effort: a full or read-only disk only costs the next build)."""
    if not cache_dir:
        return
    bpf, flags = program
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        write_atomic(os.path.join(cache_dir, name), flags.to_bytes(_HEADER, "little") + bpf,
                     0o600)
    except OSError:
        pass
