"""``nsrun image import NAME --oci-archive FILE|--docker-archive FILE``: a bundle from an OCI
image layout (a directory, or a tar of one as ``podman save --format oci-archive`` writes)
or a ``docker save`` tarball (``podman save --format docker-archive``).

The archive is read where it is (a tar by random access, never unpacked whole); the choice
of image and every decision per layer entry are ``core.imagearchive``'s; layers are applied
in order by ``bundle.imagelayers`` into a bundle built beside the old one and swapped in
(``ImageStore.build``), so a failed import leaves nothing and the old image intact. Each
JSON document and layer is checked against its digest where the archive gives one.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import msgspec

from nsrun.bundle import imagelayers
from nsrun.bundle.images import DEFAULT_PATH, ImageStore, split_ref, write_config
from nsrun.bundle.oci import ENTRYPOINT_ANNOTATION
from nsrun.core import imagearchive as ia
from nsrun.errors import BundleError, UsageError

OCI, DOCKER = "oci", "docker"


class Layer(msgspec.Struct, frozen=True):
    path: str  # in the archive
    digest: str | None  # of the stored bytes
    diff_id: str | None  # of the uncompressed tar


class Image(msgspec.Struct, frozen=True):
    config: dict  # the image config's ``config`` object
    layers: list[Layer]


class DirSource:
    """An OCI layout directory: files read below it, never through a link out of it."""

    def __init__(self, path: str) -> None:
        self.root = os.path.realpath(path)

    def open(self, rel: str):
        full = os.path.realpath(os.path.join(self.root, rel))
        if not full.startswith(self.root + os.sep):
            raise BundleError(f"{rel}: leaves the layout directory")
        try:
            return open(full, "rb")
        except FileNotFoundError:
            raise BundleError(f"{rel}: not in the archive") from None
        except OSError as err:
            raise BundleError(f"{rel}: {err.strerror}") from None

    def close(self) -> None:
        pass


class TarSource:
    """A tar archive (plain or compressed) read by member name."""

    def __init__(self, path: str) -> None:
        import tarfile

        try:
            self.tar = tarfile.open(path, "r:*")
            self.members = {"/".join(ia.components(m.name)): m for m in self.tar}
        except (tarfile.TarError, ia.ArchiveError) as err:
            raise UsageError(f"{path}: not a readable tar archive ({err})") from None

    def open(self, rel: str):
        member = self.members.get(rel)
        if member is None or not (member.isfile() or member.issym() or member.islnk()):
            raise BundleError(f"{rel}: not in the archive")
        try:
            return self.tar.extractfile(member)
        except KeyError:  # a link to a member that is not there
            raise BundleError(f"{rel}: a link to nothing in the archive") from None

    def close(self) -> None:
        self.tar.close()


def open_source(path: str, option: str):
    if os.path.isdir(path):
        return DirSource(path)
    if not os.path.isfile(path):
        raise UsageError(f"{option} {path}: no such file or directory")
    return TarSource(path)


def read_json(source, rel: str, digest: str | None = None) -> Any:
    with source.open(rel) as f:
        data = f.read()
    if digest is not None and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise BundleError(f"{rel}: content does not match its digest {digest}")
    try:
        return json.loads(data)
    except ValueError as err:
        raise BundleError(f"{rel}: not JSON ({err})") from None


def read_oci(source, want: tuple[str, str]) -> Image:
    """The image ``want`` of an OCI image layout (index.json, nested indexes, manifest)."""
    read_json(source, "oci-layout")
    arch = ia.host_platform(platform.machine())
    desc, where = ia.choose_oci(read_json(source, "index.json"), want, arch), "index.json"
    for _ in range(8):
        digest = ia.digest_of(desc, where)
        doc, where = read_json(source, ia.blob_path(digest), digest), ia.blob_path(digest)
        if desc.get("mediaType") not in ia.INDEX_TYPES and "manifests" not in doc:
            break
        desc = ia.choose_oci(doc, want, arch, where)
    else:
        raise BundleError(f"{where}: image indexes nested too deep")
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise BundleError(f"{where}: not an image manifest (no layers)")
    config_digest = ia.digest_of(doc.get("config"), f"{where}: config")
    config_doc = read_json(source, ia.blob_path(config_digest), config_digest)
    digests = [ia.digest_of(d, f"{where}: layers[{i}]") for i, d in enumerate(doc["layers"])]
    ids = ia.diff_ids(config_doc, len(digests), ia.blob_path(config_digest))
    return Image(ia.image_config(config_doc, ia.blob_path(config_digest)),
                 [Layer(ia.blob_path(d), d, i) for d, i in zip(digests, ids, strict=True)])


def read_docker(source, want: tuple[str, str]) -> Image:
    """The image ``want`` of a ``docker save`` tarball (manifest.json)."""
    chosen = ia.choose_docker(read_json(source, "manifest.json"), want)
    config_path = ia.member_path(chosen.get("Config"), "manifest.json: Config")
    config_doc = read_json(source, config_path)
    paths = chosen.get("Layers")
    if not isinstance(paths, list):
        raise BundleError("manifest.json: Layers is not a list")
    paths = [ia.member_path(p, f"manifest.json: Layers[{i}]") for i, p in enumerate(paths)]
    ids = ia.diff_ids(config_doc, len(paths), config_path)
    return Image(ia.image_config(config_doc, config_path),
                 [Layer(p, _digest_in(p), i) for p, i in zip(paths, ids, strict=True)])


def _digest_in(path: str) -> str | None:
    """docker 25+ stores layers as ``blobs/sha256/<hex>``: their digest is their name."""
    parts = path.split("/")
    digest = f"sha256:{parts[-1]}" if len(parts) == 3 and parts[:2] == ["blobs", "sha256"] \
        else ""
    return digest if ia.DIGEST.match(digest) else None


def import_archive(store: ImageStore, ref: str, path: str, kind: str,
                   command: list[str] | None = None, progress=None) -> Path:
    """Import the image ``ref`` from the archive at ``path`` (``OCI`` or ``DOCKER``)."""
    option = f"--{kind}-archive"
    source = open_source(path, option)
    try:
        want = split_ref(ref)
        try:
            image = (read_oci if kind == OCI else read_docker)(source, want)
        except ia.ArchiveError as err:
            raise BundleError(str(err)) from None
        except BundleError as err:
            raise BundleError(f"{err}{_hint(source, kind)}") from None
        return store.build(ref, lambda bundle: _unpack(bundle, source, image, command,
                                                       progress))
    except BundleError as err:
        raise BundleError(f"{option} {path}: {err}") from None
    finally:
        source.close()


def _hint(source, kind: str) -> str:
    """A pointer to the other option when the archive is of the other kind."""
    other, marker = (DOCKER, "manifest.json") if kind == OCI else (OCI, "oci-layout")
    try:
        source.open(marker).close()
    except BundleError:
        return ""
    return f" (it has {marker}: use --{other}-archive)"


def _unpack(bundle: Path, source, image: Image, command, progress) -> None:
    (bundle / "rootfs").mkdir(mode=0o755)
    root = imagelayers.Rootfs(str(bundle / "rootfs"), progress)
    try:
        for i, layer in enumerate(image.layers):
            _apply(root, source, layer, f"layer {i} ({layer.digest or layer.path})")
        process = ia.process(image.config, DEFAULT_PATH)
        try:
            process["user"] = _user(root, image.config.get("User") or "")
        except ia.ArchiveError as err:
            raise BundleError(str(err)) from None
    finally:
        root.close()
    if root.devices:
        print(f"nsrun: warning: {root.devices} device node(s) skipped (a container's /dev is "
              "its own)", file=sys.stderr)
    entrypoint = image.config.get("Entrypoint") or []
    if command:
        process["args"], entrypoint = list(command), []
    write_config(bundle, process["args"], process=process,
                 annotations={ENTRYPOINT_ANNOTATION: json.dumps(entrypoint)})


def _apply(root, source, layer: Layer, where: str) -> None:
    with source.open(layer.path) as raw:
        stored = imagelayers.HashingReader(raw)
        plain = imagelayers.HashingReader(imagelayers.decompressed(stored, where))
        try:
            imagelayers.apply_layer(root, plain, where)
        except (OSError, EOFError) as err:  # a truncated or corrupt stream
            raise BundleError(f"{where}: {err}") from None
        for want, got in ((layer.diff_id, plain.drain()), (layer.digest, stored.drain())):
            if want is not None and got != want:
                raise BundleError(f"{where}: content is {got}, not {want}")


def _user(root, spec: str) -> dict[str, int]:
    if not spec:
        return {"uid": 0, "gid": 0}
    uid, gid = ia.user(spec, root.read_text(("etc", "passwd")), root.read_text(("etc", "group")))
    return {"uid": uid, "gid": gid}
