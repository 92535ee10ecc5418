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
from nsrun.errors import BundleError, UsageError

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
        """(reference, bundle dir) of every image, sorted."""
        found = []
        for config in sorted(self.root.glob("**/config.json")):
            bundle = config.parent
            rel = bundle.relative_to(self.root)
            if len(rel.parts) >= 2:
                found.append((f"{'/'.join(rel.parts[:-1])}:{rel.parts[-1]}", bundle))
        return found

    def remove(self, ref: str) -> None:
        path = self.find(ref)
        if path is None:
            raise UsageError(f'image "{ref}" not found in {self.root}')
        import shutil  # image management only: kept off the pod start path

        shutil.rmtree(path)

    def import_rootfs(self, ref: str, rootfs: str, args: list[str] | None = None) -> Path:
        """Copy ``rootfs`` into a new bundle for ``ref`` with a generated config.json."""
        if not os.path.isdir(rootfs):
            raise UsageError(f"--rootfs {rootfs}: not a directory")
        bundle = self._fresh(ref)
        import shutil

        shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)
        write_config(bundle, args or ["sh"])
        return bundle

    def _fresh(self, ref: str) -> Path:
        bundle = self.path(ref)
        if bundle.exists():
            import shutil

            shutil.rmtree(bundle)
        bundle.mkdir(parents=True)
        return bundle


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


def write_config(bundle: Path, args: list[str]) -> None:
    (bundle / "config.json").write_text(json.dumps(default_config(args), indent=2) + "\n")


BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def build_busybox(store: ImageStore, ref: str = "busybox") -> Path:
    """A bundle from Debian's busybox-static: /bin/busybox, one symlink per applet, and the
    usual empty directories and passwd/group files."""
    busybox = next((p for p in BUSYBOX_CANDIDATES if _is_static(p)), None)
    if busybox is None:
        raise UsageError("busybox-static not found: apt-get install busybox-static")
    bundle = store._fresh(ref)
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
    return bundle


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
