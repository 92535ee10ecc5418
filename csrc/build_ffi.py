"""cffi build script for ``nsrun._native`` (API mode, out-of-line).

Used by ``setup.py`` (``cffi_modules=["csrc/build_ffi.py:ffibuilder"]``); rebuild in place
after editing ``csrc/`` with::

    .venv/bin/pip install -q --no-build-isolation --config-settings editable_mode=compat -e .

The declarations live in ``cdef.h``; the C in ``spawn.c`` (the parent of a spawn), ``steps.c``
(the child's step tables and their driver), ``proc.c`` (process creation shared by all),
``clone_vm.c``,
``exec.c``, ``execin.c`` (a process joining a running container; a socket in a netns),
``ns.c`` (namespace steps, the sandbox and its pause process), ``mount.c``, ``resolve.c``
(paths inside the rootfs), ``caps.c`` (capabilities, no_new_privs, seccomp),
``devices_bpf.c`` (the cgroup v2 device program), ``monitor.c`` (a container's monitor,
forked: it starts the container, then execs ``nsrun-monitor``), ``monitor_loop.c`` (the
monitor's reaper, exit record and log copier, also linked into the ``nsrun-monitor``
executable that ``setup.py`` builds) and ``oci.c`` (an OCI runtime's stop
points and console), sharing
``nsrun.h``.
"""

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("spawn.c", "steps.c", "proc.c", "clone_vm.c", "exec.c", "execin.c", "ns.c", "mount.c", "resolve.c",
           "caps.c", "devices_bpf.c", "oci.c", "monitor.c", "monitor_loop.c")


def _rel(name: str) -> str:
    # setuptools wants source paths relative to the project root (the cwd of the build)
    return os.path.relpath(os.path.join(HERE, name))


with open(os.path.join(HERE, "cdef.h"), encoding="utf-8") as f:
    CDEF = f.read()

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "nsrun._native",
    '#include "nsrun.h"\n#include <sched.h>\n#include <sys/mount.h>\n#include <sys/resource.h>\n'
    '#include <linux/capability.h>\n#include <linux/bpf.h>\n#include <linux/seccomp.h>\n',
    sources=[_rel(name) for name in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    depends=[_rel("nsrun.h"), _rel("cdef.h"), _rel("monitor.h")],
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
