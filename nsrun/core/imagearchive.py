"""What an image archive says, as decisions (pure): which image of an OCI image layout or a
``docker save`` tarball to import, what each layer entry does to the root filesystem, and
the bundle's ``process`` from the image config.

* **Choosing**: an OCI layout's ``index.json`` (nested indexes followed) or a ``docker save``
  ``manifest.json`` may hold several images. The one whose ref name
  (``org.opencontainers.image.ref.name``) or ``RepoTags`` entry is the imported name wins;
  else the only one; else the one for this host's platform. Blobs are named by digest
  (``sha256:<64 hex>``), never by a path the archive chooses.
* **Entries** (``entry``): a layer member's name is a relative path: ``./`` and trailing
  ``/`` are dropped; an absolute name, a ``..`` component or a NUL is refused (the importer
  names the layer and the entry). Whiteouts as the OCI image spec has them: ``.wh.NAME``
  removes ``NAME`` from the layers below, ``.wh..wh..opq`` empties its directory of what
  the layers below put there; other ``.wh..wh.`` names (aufs metadata) are skipped.
  Character and block devices are skipped, as rootless runtimes do (the rootfs is mounted
  ``nodev`` and ``/dev`` is the runtime's own, so no container could use them).
* **Process** (``process``): ``Entrypoint`` + ``Cmd`` as ``process.args`` (the entrypoint is
  kept in the bundle's annotations, so a pod's ``args`` replace ``Cmd`` only, as the
  kubelet does), ``Env`` (with the default ``PATH`` when the image sets none),
  ``WorkingDir`` as ``cwd``, and ``User`` resolved against the image's own
  ``/etc/passwd`` and ``/etc/group`` (``user``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"

# what an entry does (``Entry.kind``)
DIR, FILE, SYMLINK, HARDLINK, FIFO = "dir", "file", "symlink", "hardlink", "fifo"
REMOVE, EMPTY, SKIP_DEVICE, SKIP = "remove", "empty", "skip-device", "skip"


class ArchiveError(ValueError):
    """An archive or image config nsrun cannot use; the message names the part."""


class Entry(msgspec.Struct, frozen=True):
    """One layer member's effect: ``path`` below the root (components), ``link`` the
    hard link's target (components)."""

    kind: str
    path: tuple[str, ...]
    link: tuple[str, ...] = ()


def components(name: str) -> tuple[str, ...]:
    """A layer member's name as path components below the root (``()`` is the root)."""
    if "\0" in name:
        raise ArchiveError(f"{name!r}: a NUL byte in the name")
    if name.startswith("/"):
        raise ArchiveError(f"{name}: an absolute name")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError(f"{name}: a '..' component leaves the root")
    return parts


# tarfile's type flags (tarfile.REGTYPE …), spelled out to stay free of I/O modules
_KINDS = {b"0": FILE, b"\0": FILE, b"7": FILE, b"5": DIR, b"2": SYMLINK, b"1": HARDLINK,
          b"6": FIFO, b"3": SKIP_DEVICE, b"4": SKIP_DEVICE}


def entry(name: str, typeflag: bytes, linkname: str = "") -> Entry:
    """What the member ``name`` of type ``typeflag`` does (module docstring)."""
    path = components(name)
    base = path[-1] if path else ""
    if base == OPAQUE:
        return Entry(EMPTY, path[:-1])
    if base.startswith(WHITEOUT + WHITEOUT):
        return Entry(SKIP, path)
    if base.startswith(WHITEOUT):
        return Entry(REMOVE, path[:-1] + (base[len(WHITEOUT):],))
    kind = _KINDS.get(typeflag)
    if kind is None:
        raise ArchiveError(f"{name}: unsupported entry type {typeflag!r}")
    if not path:
        return Entry(SKIP, path)  # the root itself ("./")
    if kind == HARDLINK:
        return Entry(kind, path, components(linkname))
    return Entry(kind, path)


# ------------------------------------------------------------------ choosing the image


def host_platform(machine: str) -> str:
    """``uname -m`` as an OCI architecture."""
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine)


def digest_of(descriptor: Any, where: str) -> str:
    digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise ArchiveError(f"{where}: digest {digest!r} is not sha256:<64 hex>")
    return digest


def choose_oci(index: Any, want: tuple[str, str], arch: str, where: str = "index.json") -> dict:
    """The manifest descriptor to import from an OCI index; ``want``: (name, tag)."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise ArchiveError(f"{where}: no manifests")
    if not all(isinstance(m, dict) for m in manifests):
        raise ArchiveError(f"{where}: a manifest descriptor is not an object")
    refs = [(m.get("annotations") or {}).get(REF_NAME, "") for m in manifests]
    named = [m for m, ref in zip(manifests, refs, strict=True) if ref and _names(ref, want)]
    chosen = _one(named or manifests, arch, where, [r for r in refs if r])
    return chosen


def _names(ref: str, want: tuple[str, str]) -> bool:
    """Whether an archive's ref (``1.36``, ``busybox:1.36``, ``docker.io/library/busybox:1.36``)
    names the image ``want`` = (name, tag)."""
    name, tag = want
    if ref == tag:
        return True
    repo, _, ref_tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
    return (ref_tag or "latest") == tag and (repo == name or repo.endswith("/" + name))


def _one(candidates: list[dict], arch: str, where: str, refs: list[str]) -> dict:
    if len(candidates) == 1:
        return candidates[0]
    mine = [m for m in candidates if (m.get("platform") or {}).get("architecture") == arch
            and (m.get("platform") or {}).get("os", "linux") == "linux"]
    if len(mine) == 1:
        return mine[0]
    listed = ", ".join(refs) if refs else f"{len(candidates)} unnamed manifests"
    raise ArchiveError(f"{where}: {len(candidates)} images ({listed}); import it under one "
                       "of these names to choose")


def choose_docker(manifest: Any, want: tuple[str, str]) -> dict:
    """The image to import from a ``docker save`` ``manifest.json``."""
    if not isinstance(manifest, list) or not manifest or \
            not all(isinstance(m, dict) for m in manifest):
        raise ArchiveError("manifest.json: not a list of images")
    tags = [t for m in manifest for t in (m.get("RepoTags") or []) if isinstance(t, str)]
    named = [m for m in manifest if any(_names(t, want) for t in (m.get("RepoTags") or [])
                                        if isinstance(t, str))]
    chosen = named or manifest
    if len(chosen) > 1:
        raise ArchiveError(f"manifest.json: {len(chosen)} images ({', '.join(tags)}); "
                           "import it under one of these names to choose")
    return chosen[0]


def member_path(path: Any, where: str) -> str:
    """A path a ``docker save`` manifest names: relative, without ``..``."""
    if not isinstance(path, str) or not path:
        raise ArchiveError(f"{where}: not a path: {path!r}")
    return "/".join(components(path))


def blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


# ------------------------------------------------------------------ the image config


def image_config(doc: Any, where: str) -> dict:
    """The ``config`` object of an image config document (``{}`` when it has none)."""
    if not isinstance(doc, dict):
        raise ArchiveError(f"{where}: not a JSON object")
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ArchiveError(f"{where}: config is not an object")
    for key in ("Env", "Cmd", "Entrypoint"):
        value = cfg.get(key)
        if value is not None and not (isinstance(value, list) and
                                      all(isinstance(v, str) for v in value)):
            raise ArchiveError(f"{where}: config.{key} is not a list of strings")
    for key in ("WorkingDir", "User"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            raise ArchiveError(f"{where}: config.{key} is not a string")
    return cfg


def diff_ids(doc: dict, layers: int, where: str) -> list[str | None]:
    """The uncompressed digests of the layers (``rootfs.diff_ids``), None where unknown."""
    ids = (doc.get("rootfs") or {}).get("diff_ids") if isinstance(doc.get("rootfs"), dict) \
        else None
    if ids is None:
        return [None] * layers
    if not isinstance(ids, list) or len(ids) != layers:
        raise ArchiveError(f"{where}: rootfs.diff_ids has {len(ids) if isinstance(ids, list) else 'no'}"
                           f" entries for {layers} layers")
    return [digest_of({"digest": d}, f"{where}: rootfs.diff_ids") for d in ids]


def process(cfg: dict, default_path: str) -> dict[str, Any]:
    """The bundle's ``process`` fields from the image ``cfg`` (its ``config`` object);
    ``user`` is resolved later (``user``)."""
    entrypoint, cmd = cfg.get("Entrypoint") or [], cfg.get("Cmd") or []
    env = list(cfg.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, f"PATH={default_path}")
    return {"args": entrypoint + cmd or ["sh"], "env": env,
            "cwd": cfg.get("WorkingDir") or "/"}


def user(spec: str, passwd: str, group: str) -> tuple[int, int]:
    """``User`` (``uid``, ``name``, ``uid:gid``, ``name:group``) as (uid, gid), names
    looked up in the image's ``/etc/passwd`` and ``/etc/group`` texts; a uid alone takes
    its passwd entry's group, else 0."""
    who, _, grp = spec.partition(":")
    users = _table(passwd, 3)
    if who.isdigit():
        uid = int(who)
        gid = next((int(row[3]) for row in users.values() if row[2] == who), 0)
    elif who in users:
        uid, gid = int(users[who][2]), int(users[who][3])
    else:
        raise ArchiveError(f'config.User "{spec}": no user "{who}" in the image\'s /etc/passwd')
    if grp.isdigit():
        gid = int(grp)
    elif grp:
        groups = _table(group, 2)
        if grp not in groups:
            raise ArchiveError(f'config.User "{spec}": no group "{grp}" in the image\'s '
                               "/etc/group")
        gid = int(groups[grp][2])
    return uid, gid


def _table(text: str, numeric: int) -> dict[str, list[str]]:
    """name -> fields of a passwd/group file, rows whose id fields are numbers."""
    rows = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > numeric and all(f.isdigit() for f in fields[2:numeric + 1]):
            rows.setdefault(fields[0], fields)
    return rows
