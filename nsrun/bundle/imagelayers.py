"""Apply image layers to a root filesystem, safely: every write is made relative to a
directory fd reached without following a symbolic link, so no entry can reach outside the
rootfs (``core.imagearchive.entry`` has already refused absolute names and ``..``).

A layer is a tar stream (plain, gzip or zstd, told by its first bytes). Its digest (of the
bytes as stored) and diff id (of the uncompressed tar) are checked against the manifest and
config when they are known. Per entry, what is in the way is removed first (a directory
only when the entry is not one), then the file, directory, symbolic link, hard link or
FIFO is made with the entry's owner, mode, mtime and extended attributes. A parent that
exists but is not a directory (a symbolic link, a file) refuses the entry; missing parents
are made (0755, root). Whiteouts remove what the layers below put there, never what this
layer made. Devices are skipped and counted.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Callable

from nsrun.core import imagearchive as ia
from nsrun.errors import BundleError

CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTRS = "SCHILY.xattr."


class HashingReader:
    """A file object's ``read`` that hashes what passes (sha256), with a look at the first
    bytes without consuming them."""

    def __init__(self, raw) -> None:
        self.raw, self.hash, self.head = raw, hashlib.sha256(), b""

    def peek(self, n: int) -> bytes:
        while len(self.head) < n:
            more = self.raw.read(n - len(self.head))
            if not more:
                break
            self.head += more
        return self.head[:n]

    def read(self, n: int = -1) -> bytes:
        data, self.head = self.head, b""
        if n < 0:
            data += self.raw.read()
        elif len(data) < n:
            data += self.raw.read(n - len(data))
        elif len(data) > n:
            data, self.head = data[:n], data[n:]
        self.hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(CHUNK):
            pass
        return "sha256:" + self.hash.hexdigest()


def decompressed(stored: HashingReader, where: str):
    """The uncompressed stream of a layer (told by its magic bytes)."""
    head = stored.peek(4)
    if head[:2] == b"\x1f\x8b":
        import gzip

        return gzip.GzipFile(fileobj=stored, mode="rb")
    if head == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            raise BundleError(f"{where}: zstd-compressed, and the zstandard module is not "
                              "installed") from None
        return zstandard.ZstdDecompressor().stream_reader(stored)
    return stored


class Rootfs:
    """A root filesystem being built: parent directory fds reached without symlinks."""

    def __init__(self, path: str, progress: Callable[[int, int], None] | None = None) -> None:
        self.fd = os.open(path, _DIR_FLAGS)
        self.progress = progress
        self.devices = 0
        self._parent: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self._drop_parent()
        os.close(self.fd)

    def _drop_parent(self) -> None:
        if self._parent is not None:
            os.close(self._parent[1])
            self._parent = None

    def parent(self, path: tuple[str, ...], where: str) -> int:
        """An fd of ``path``'s parent directory (made when missing); kept for the next
        entry, since tar members come directory by directory."""
        dirs = path[:-1]
        if self._parent is not None and self._parent[0] == dirs:
            return self._parent[1]
        self._drop_parent()
        self._parent = (dirs, self.open_dir(dirs, where))
        return self._parent[1]

    def open_dir(self, dirs: tuple[str, ...], where: str, make: bool = True) -> int | None:
        """A new fd of the directory ``dirs`` for the caller to close; a missing one is made
        (``make``) or None."""
        fd: int | None = os.dup(self.fd)
        for i, name in enumerate(dirs):
            fd = _step(fd, name, where, "/".join(dirs[:i + 1]), make)  # closes the old fd
            if fd is None:
                return None
        return fd

    def read_text(self, path: tuple[str, ...]) -> str:
        """A regular file's text ("" when missing or not a regular file: never followed
        through a symbolic link)."""
        try:
            fd = self.open_dir(path[:-1], "/".join(path), make=False)
        except BundleError:
            return ""
        if fd is None:
            return ""
        try:
            f = os.open(path[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            return ""
        finally:
            os.close(fd)
        with open(f, "rb") as src:
            if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                return ""
            return src.read().decode("utf-8", "replace")

    def forget(self) -> None:
        """After a removal the cached parent may name a directory that is gone."""
        self._drop_parent()


def _step(fd: int, name: str, where: str, shown: str, make: bool = True) -> int | None:
    """The fd of directory ``name`` in ``fd`` (made 0755 when missing and ``make``, else
    None); closes ``fd``."""
    try:
        try:
            nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not make:
                return None
            os.mkdir(name, 0o755, dir_fd=fd)
            nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise BundleError(f"{where}: {shown} is not a directory (a symbolic link or a "
                              "file): an entry below it would leave the root") from None
        raise BundleError(f"{where}: {shown}: {err.strerror}") from None
    finally:
        os.close(fd)
    return nxt


def apply_layer(root: Rootfs, stream, where: str) -> None:
    """Apply one layer's tar ``stream`` (uncompressed) to ``root``."""
    made: set[tuple[str, ...]] = set()
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            try:
                act = ia.entry(member.name, member.type, member.linkname)
            except ia.ArchiveError as err:
                raise BundleError(f"{where}: entry {err}") from None
            _apply(root, tar, member, act, made, f"{where}: entry {member.name}")


def _apply(root: Rootfs, tar, member, act: ia.Entry, made: set, where: str) -> None:
    if act.kind == ia.SKIP:
        return
    if act.kind == ia.SKIP_DEVICE:
        root.devices += 1
        return
    if act.kind in (ia.REMOVE, ia.EMPTY):
        _whiteout(root, act, made, where)
        return
    fd, name = root.parent(act.path, where), act.path[-1]
    _clear(fd, name, keep_dir=act.kind == ia.DIR)
    made.add(act.path)
    try:
        _make(root, fd, name, tar, member, act, where)
    except OSError as err:
        raise BundleError(f"{where}: {err.strerror}") from None
    if root.progress is not None:
        root.progress(1, member.size if act.kind == ia.FILE else 0)


def _clear(fd: int, name: str, keep_dir: bool) -> None:
    """Remove what is at ``name`` (a directory only when ``keep_dir`` is false)."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            shutil.rmtree(name, dir_fd=fd)
    else:
        os.unlink(name, dir_fd=fd)


def _make(root: Rootfs, fd: int, name: str, tar, member, act: ia.Entry, where: str) -> None:
    mode = member.mode & 0o7777
    if act.kind == ia.DIR:
        if not _is_dir(fd, name):
            os.mkdir(name, 0o700, dir_fd=fd)
        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
        try:
            _own(sub, member, mode)
        finally:
            os.close(sub)
    elif act.kind == ia.FILE:
        _write_file(fd, name, tar, member, mode)
    elif act.kind == ia.SYMLINK:
        os.symlink(member.linkname, name, dir_fd=fd)
        os.chown(name, member.uid, member.gid, dir_fd=fd, follow_symlinks=False)
        os.utime(name, (member.mtime, member.mtime), dir_fd=fd, follow_symlinks=False)
    elif act.kind == ia.HARDLINK:
        src = root.open_dir(act.link[:-1], where)
        try:
            os.link(act.link[-1], name, src_dir_fd=src, dst_dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(src)
    else:  # FIFO
        os.mkfifo(name, 0o600, dir_fd=fd)
        sub = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                      dir_fd=fd)
        try:
            _own(sub, member, mode)
        finally:
            os.close(sub)


def _is_dir(fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _write_file(fd: int, name: str, tar, member, mode: int) -> None:
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o600, dir_fd=fd)
    try:
        src = tar.extractfile(member)
        while chunk := src.read(CHUNK):
            os.write(out, chunk)
        _own(out, member, mode)
    finally:
        os.close(out)


def _own(fd: int, member, mode: int) -> None:
    """Owner, then mode (chown clears set-id bits), xattrs, then times of an open file."""
    os.fchown(fd, member.uid, member.gid)
    os.fchmod(fd, mode)
    for key, value in member.pax_headers.items():
        if key.startswith(_XATTRS):
            raw = value.encode("utf-8", "surrogateescape")
            os.setxattr(fd, key[len(_XATTRS):], raw)
    os.utime(fd, (member.mtime, member.mtime))


def _whiteout(root: Rootfs, act: ia.Entry, made: set, where: str) -> None:
    """``.wh.NAME`` removes NAME, ``.wh..wh..opq`` its directory's contents: only what the
    layers below made."""
    if act.kind == ia.REMOVE and act.path in made:
        return
    root.forget()
    dirs = act.path[:-1] if act.kind == ia.REMOVE else act.path
    fd = root.open_dir(dirs, where, make=False)
    if fd is None:
        return  # nothing there to hide
    try:
        if act.kind == ia.REMOVE:
            _clear(fd, act.path[-1], keep_dir=False)
        else:
            _empty(fd, act.path, made)
    finally:
        os.close(fd)


def _empty(fd: int, path: tuple[str, ...], made: set) -> None:
    """Remove below ``fd`` (the directory ``path``) what this layer did not make."""
    for child in os.listdir(fd):
        here = path + (child,)
        if here not in made:
            _clear(fd, child, keep_dir=False)
        elif _is_dir(fd, child):
            sub = os.open(child, _DIR_FLAGS, dir_fd=fd)
            try:
                _empty(sub, here, made)
            finally:
                os.close(sub)
