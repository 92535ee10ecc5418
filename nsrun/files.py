"""Small file-system operations shared by the pod state and the OCI face, with nothing but
``os`` imported (both sit on start paths)."""

from __future__ import annotations

import os


def write_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644, *,
                 durable: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never a mix, and
    (``durable``) so a crash of the machine right after leaves one of them too: the data is
    ``fsync``ed before the rename and the directory after it. On failure (ENOSPC) the old
    file is kept and no temporary file is left; the ``OSError`` is raised.

    ``durable=False`` is for what names things that do not outlive the machine (pids,
    cgroups, addresses): another process sees the write all the same, and it costs no
    ``fsync``, which on a disk is milliseconds on every start."""
    _replace(os.fspath(path), data, mode, durable)
    if durable:
        sync_dir(os.path.dirname(os.fspath(path)) or ".")


def write_atomic_all(files: list[tuple[str | os.PathLike, bytes]], mode: int = 0o644) -> None:
    """:func:`write_atomic` (durable) of several files, in order, with one ``fsync`` of
    each directory at the end (not one per file): a crash leaves each file old or new."""
    for path, data in files:
        _replace(os.fspath(path), data, mode, True)
    for head in dict.fromkeys(os.path.dirname(os.fspath(p)) or "." for p, _ in files):
        sync_dir(head)


def _replace(path: str, data: bytes, mode: int, durable: bool) -> None:
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        _try(os.unlink, tmp)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def sync_dir(path: str | os.PathLike) -> None:
    """``fsync`` a directory, so the entries made or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a state directory as far as it can, like ``shutil.rmtree(path,
    ignore_errors=True)`` (whose imports of bz2 and lzma would sit on the start path)."""
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            _try(os.unlink, os.path.join(top, name))
        for name in dirs:
            if not os.path.islink(os.path.join(top, name)):
                _try(os.rmdir, os.path.join(top, name))
    _try(os.rmdir, path)


def _try(op, path: str) -> None:
    try:
        op(path)
    except OSError:
        pass
