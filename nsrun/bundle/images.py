"""The image store: an image reference → an OCI bundle directory (``config.json`` + rootfs).

Layout: ``<store>/<name>/<tag>/`` where ``<name>`` may hold slashes (``library/busybox``) and
``<tag>`` defaults to ``latest``, so ``busybox`` and ``busybox:latest`` are the same image.
nsrun never pulls: a reference with no bundle is the container's ``ErrImageNeverPull``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from nsrun.bundle.oci import DEFAULT_MOUNTS
from nsrun.errors import BundleError, StateError, UsageError

_REF = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?$")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def split_ref(ref: str) -> tuple[str, str]:
    """``name[:tag]`` → (name, tag); a registry host or digest is not a local image."""
    if not _REF.match(ref):
        raise BundleError(f'invalid image reference "{ref}": expected name[:tag] of a local '
                          "bundle (lowercase, digits, . _ - /)")
    name, _, tag = ref.partition(":")
    return name, tag or "latest"


class ImageStore:
    """Finds, imports and lists bundles under one directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, ref: str) -> Path:
        name, tag = split_ref(ref)
        return self.root / name / tag

    def find(self, ref: str) -> Path | None:
        """The bundle dir for ``ref``, or None when it is not present."""
        path = self.path(ref)
        return path if (path / "config.json").is_file() else None

    def list(self) -> list[tuple[str, Path]]:
        """(reference, bundle dir) of every image, sorted: only ``<name>/<tag>`` directories
        holding ``config.json`` and ``rootfs`` (never a ``config.json`` inside an image's
        files, never an import in progress)."""
        found = []
        for top, dirs, files in os.walk(self.root):
            here = Path(top)
            rel = here.relative_to(self.root)
            if "config.json" in files and "rootfs" in dirs and len(rel.parts) >= 2:
                found.append((f"{'/'.join(rel.parts[:-1])}:{rel.parts[-1]}", here))
                dirs.clear()  # a bundle is a leaf: its rootfs is not searched
                continue
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        return sorted(found)

    def remove(self, ref: str, progress=None) -> None:
        path = self.find(ref)
        if path is None:
            raise StateError(f'image "{ref}" not found in {self.root}')
        remove_files(path, progress)

    def import_rootfs(self, ref: str, rootfs: str, args: list[str] | None = None,
                      progress=None) -> Path:
        """Copy ``rootfs`` into a bundle for ``ref`` with a generated config.json: built
        beside the old one, then swapped in at once (a running pod or a reader never sees
        half an image, and a failed import leaves the old one)."""
        if not os.path.isdir(rootfs):
            raise UsageError(f"--rootfs {rootfs}: not a directory")
        return self.build(ref, lambda bundle: _copy_rootfs(rootfs, bundle, args, progress))

    def build(self, ref: str, make) -> Path:
        """``make(dir)`` fills a new bundle beside ``ref``'s; then it replaces it atomically."""
        final = self.path(ref)
        made = [d for d in (final.parent, *final.parent.parents) if not d.exists()]
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".{final.name}.importing-{os.getpid()}"
        if staging.exists():
            remove_files(staging)
        staging.mkdir()
        try:
            make(staging)
            swap_in(staging, final)
        finally:
            if staging.exists():
                remove_files(staging)
            _remove_empty(made if not final.exists() else [])  # a failed first import
        return final


def _remove_empty(dirs: list[Path]) -> None:
    """rmdir ``dirs`` (deepest first) while they are empty."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


def _copy_rootfs(rootfs: str, bundle: Path, args: list[str] | None, progress) -> None:
    import shutil

    def copy(src, dst):
        shutil.copy2(src, dst)
        if progress is not None:
            progress(1, os.lstat(dst).st_size)
        return dst
    shutil.copytree(rootfs, bundle / "rootfs", symlinks=True, copy_function=copy)
    write_config(bundle, args or ["sh"])


def swap_in(new: Path, final: Path) -> None:
    """Put ``new`` at ``final``: a rename, or an exchange (``renameat2(RENAME_EXCHANGE)``)
    when ``final`` exists, after which ``new`` holds the old bundle."""
    if not final.exists():
        os.rename(new, final)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    rename_exchange, at_fdcwd = 2, -100
    if libc.renameat2(at_fdcwd, bytes(new), at_fdcwd, bytes(final), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise BundleError(f"replace image {final}: {os.strerror(err)}")


def remove_files(path: Path, progress=None) -> None:
    """Remove a directory tree (symlinks are removed, never followed), reporting each
    file to ``progress(files, bytes)``."""
    for top, dirs, files in os.walk(path, topdown=False):
        links = [d for d in dirs if os.path.islink(os.path.join(top, d))]
        for name in files + links:
            full = os.path.join(top, name)
            size = os.lstat(full).st_size
            os.unlink(full)
            if progress is not None:
                progress(1, size)
        for name in dirs:
            if name not in links:
                os.rmdir(os.path.join(top, name))
    os.rmdir(path)


def default_config(args: list[str]) -> dict:
    """A config.json like ``runc spec`` makes (read-only root, the usual mounts), plus a
    tmpfs on /tmp so a read-only image still has a scratch directory. runc and crun run the
    same bundle."""
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"], "cwd": "/",
                    "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "nsrun",
        "mounts": [*DEFAULT_MOUNTS,
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]},
    }


def write_config(bundle: Path, args: list[str], process: dict | None = None,
                 annotations: dict[str, str] | None = None) -> None:
    """``default_config(args)``, its ``process`` fields updated from ``process`` (an image
    config's), with ``annotations``."""
    config = default_config(args)
    config["process"].update(process or {})
    if annotations:
        config["annotations"] = annotations
    (bundle / "config.json").write_text(json.dumps(config, indent=2) + "\n")


BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def build_busybox(store: ImageStore, ref: str = "busybox") -> Path:
    """A bundle from Debian's busybox-static: /bin/busybox, one symlink per applet, and the
    usual empty directories and passwd/group files."""
    busybox = next((p for p in BUSYBOX_CANDIDATES if _is_static(p)), None)
    if busybox is None:
        raise UsageError("busybox-static not found: apt-get install busybox-static")
    return store.build(ref, lambda bundle: _busybox_bundle(busybox, bundle))


def _busybox_bundle(busybox: str, bundle: Path) -> None:
    rootfs = bundle / "rootfs"
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "run", "usr"):
        (rootfs / d).mkdir(parents=True)
    import shutil

    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in _applets(busybox):
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                           "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    write_config(bundle, ["sh"])


def _is_static(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x7fELF") and b"/lib64/ld-linux" not in head


def _applets(busybox: str) -> list[str]:
    import subprocess

    out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and "/" not in a and a != "busybox"]
