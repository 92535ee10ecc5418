"""The ``image`` verbs (``import``, ``busybox``, ``ls``, ``rm``) and ``version``/``--version``.

Long work (copying or removing an image's files) prints one progress line on stderr when
stderr is a terminal, nothing otherwise.
"""

from __future__ import annotations

import json

from nsrun.errors import UsageError
from nsrun.report.progress import Progress

# What a launcher may test for (``nsrun version -o json``'s "features").
FEATURES = ("sdnotify", "wait", "events", "watch-json", "jsonpath", "label-selector",
            "systemd-notify-unit", "image-progress", "image-archives", "exit-codes-v1")


def add_image(sub) -> None:
    im = sub.add_parser("image", help="manage the image store (OCI bundles)")
    isub = im.add_subparsers(dest="image_verb", metavar="ACTION", required=True)
    imp = isub.add_parser("import", help="make a bundle from a root filesystem directory, an "
                          "OCI image layout or a docker save tarball")
    imp.add_argument("name")
    src = imp.add_mutually_exclusive_group(required=True)
    src.add_argument("--rootfs", metavar="DIR", help="a root filesystem directory (copied)")
    src.add_argument("--oci-archive", metavar="FILE", help="an OCI image layout: a directory "
                     "or a tar of one (podman save --format oci-archive)")
    src.add_argument("--docker-archive", metavar="FILE", help="a docker save tarball (podman "
                     "save --format docker-archive)")
    imp.add_argument("--command", nargs="+", help="the bundle's process.args (default: sh, or "
                     "the image's Entrypoint and Cmd)")
    imp.set_defaults(func=cmd_image_import)
    bb = isub.add_parser("busybox", help="make a bundle from Debian's busybox-static")
    bb.add_argument("name", nargs="?", default="busybox")
    bb.set_defaults(func=cmd_image_busybox)
    ls = isub.add_parser("ls", help="list images")
    ls.add_argument("-o", "--output", choices=("json", "yaml", "name"))
    ls.set_defaults(func=cmd_image_ls)
    rm = isub.add_parser("rm", help="remove an image")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_image_rm)


def _store(args):
    from nsrun.bundle.images import ImageStore

    return ImageStore(args.world.images)


def cmd_image_import(args) -> int:
    progress = Progress(f"importing {args.name}")
    if args.rootfs is not None:
        path = _store(args).import_rootfs(args.name, args.rootfs, args.command, progress)
    else:
        from nsrun.bundle import imagearchive

        kind, file = ((imagearchive.OCI, args.oci_archive) if args.oci_archive is not None
                      else (imagearchive.DOCKER, args.docker_archive))
        path = imagearchive.import_archive(_store(args), args.name, file, kind, args.command,
                                           progress)
    progress.done()
    print(path)
    return 0


def cmd_image_busybox(args) -> int:
    from nsrun.bundle.images import build_busybox

    print(build_busybox(_store(args), args.name))
    return 0


def cmd_image_ls(args) -> int:
    from nsrun.core.printer import table

    images = _store(args).list()
    listed = [{"image": ref, "bundle": str(path)} for ref, path in images]
    if args.output == "json":
        print(json.dumps(listed, indent=2))
    elif args.output == "yaml":
        import yaml

        print(yaml.safe_dump(listed, sort_keys=False), end="")
    elif args.output == "name":
        print("\n".join(f"image/{ref}" for ref, _ in images))
    else:
        print(table([(ref, str(path)) for ref, path in images], ("IMAGE", "BUNDLE")))
    return 0


def cmd_image_rm(args) -> int:
    progress = Progress(f"removing {args.name}")
    _store(args).remove(args.name, progress)
    progress.done()
    return 0


def add_version(sub) -> None:
    v = sub.add_parser("version", help="print nsrun's version (-o json: with its features)")
    v.add_argument("-o", "--output", choices=("json", "yaml"))
    v.set_defaults(func=lambda args: print_version(args.output or ""))


def version_object() -> dict:
    import platform

    from nsrun import __version__, exitcodes

    return {"nsrun": {"version": __version__, "python": platform.python_version(),
                      "features": list(FEATURES),
                      "exitCodes": {name.lower(): getattr(exitcodes, name) for name in
                                    ("OK", "FAILED", "USAGE", "HOST", "STATE", "RUNTIME",
                                     "INTERNAL")}}}


def print_version(output: str) -> int:
    if output == "json":
        print(json.dumps(version_object(), indent=2))
    elif output == "yaml":
        from nsrun.report.output import print_objects

        print_objects([version_object()], "yaml", single=True)
    elif output:
        raise UsageError(f"--output {output}: json or yaml")
    else:
        from nsrun import __version__

        print(f"nsrun version {__version__}")
    return 0
