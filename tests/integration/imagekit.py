"""Real image archives for the import tests, built with tarfile: an OCI image layout (a
directory or a tar of one) and a ``docker save`` tarball, from layers described entry by
entry (``Layer``), with real digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "echo", "id", "pwd", "ls", "test", "cat", "stat", "sleep")


class Layer:
    """A layer's tar, entry by entry."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", *,
            mode: int = 0o644, uid: int = 0, gid: int = 0, link: str = "",
            devmajor: int = 0, devminor: int = 0, xattrs: dict | None = None) -> Layer:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.linkname = kind, mode, uid, gid, link
        info.mtime, info.devmajor, info.devminor = 1_700_000_000, devmajor, devminor
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        self.tar.addfile(info, io.BytesIO(data) if info.size else None)
        return self

    def dir(self, name: str, mode: int = 0o755) -> Layer:
        return self.add(name, tarfile.DIRTYPE, mode=mode)

    def file(self, name: str, data: bytes | str, mode: int = 0o644, **kw) -> Layer:
        return self.add(name, data=data.encode() if isinstance(data, str) else data,
                        mode=mode, **kw)

    def symlink(self, name: str, target: str) -> Layer:
        return self.add(name, tarfile.SYMTYPE, link=target, mode=0o777)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def busybox_layer() -> Layer:
    """bin/busybox with a few applets, etc/passwd (root, app 1000) and etc/group."""
    layer = Layer().dir("bin").dir("etc").dir("tmp", 0o1777)
    layer.file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
    for applet in APPLETS:
        layer.symlink(f"bin/{applet}", "busybox")
    layer.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    return layer.file("etc/group", "root:x:0:\napp:x:1000:\nstaff:x:50:\n")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_doc(config: dict, layers: list[bytes]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                       "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]}
                       }).encode()


def compressed(data: bytes, how: str) -> bytes:
    if how == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return gzip.compress(data, mtime=0) if how == "gzip" else data


def oci_layout(path: Path, config: dict, layers: list[Layer], ref: str = "latest",
               compress: str = "gzip") -> dict[str, bytes]:
    """An OCI image layout at ``path`` (layers compressed ``gzip``, ``zstd`` or ``""``);
    returns its blobs by digest."""
    tars = [layer.bytes() for layer in layers]
    stored = [compressed(t, compress) for t in tars]
    cfg = config_doc(config, tars)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar"
                    + (f"+{compress}" if compress else ""), "digest": sha(b), "size": len(b)}
                   for b in stored]}).encode()
    blobs = {sha(b): b for b in [*stored, cfg, manifest]}
    for digest, data in blobs.items():
        blob = path / "blobs" / "sha256" / digest.split(":")[1]
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref}}]}))
    return blobs


def tar_of(directory: Path, out: Path) -> Path:
    """A tar of ``directory``'s contents (what ``oci-archive`` is)."""
    with tarfile.open(out, "w") as tar:
        for name in sorted(os.listdir(directory)):
            tar.add(directory / name, arcname=name)
    return out


def docker_archive(out: Path, config: dict, layers: list[Layer], tag: str) -> Path:
    """A ``docker save`` tarball (the classic layout: <id>/layer.tar, <id>.json)."""
    tars = [layer.bytes() for layer in layers]
    cfg = config_doc(config, tars)
    cfg_name = sha(cfg).split(":")[1] + ".json"
    names = [f"{sha(t).split(':')[1]}/layer.tar" for t in tars]
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": names}]).encode()
    with tarfile.open(out, "w") as tar:
        for name, data in [(cfg_name, cfg), ("manifest.json", manifest), *zip(names, tars, strict=True)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out
