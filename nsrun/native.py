"""The gatekeeper of the C extension ``nsrun._native``: the only module that imports it.

:func:`ext` is the extension (``ffi``, ``lib``), imported on first use so that importing this
module costs nothing. The C interface is typed once, in ``csrc/`` (``cdef.h`` declares it,
``nsrun.h`` and the kernel headers give the values): every constant Python needs is read
from the compiled extension, never re-typed here.

* Kernel constants by their kernel names: ``native.MS_BIND``, ``native.CLONE_NEWNET``,
  ``native.CAP_SYS_ADMIN``, ``native.RLIM_INFINITY``, ``native.MNT_DETACH``, ... (every
  integer the ``cdef`` declares with a prefix of :data:`_PREFIXES`), and nsrun's own
  ``NSR_*`` (clone modes, stop points, create modes).
* Tables derived from them: :data:`STEPS` (the child's steps, in order), ``CAPABILITIES``
  (name → number) and ``CAP_NAMES``, ``NS_FLAGS`` (namespace name → ``CLONE_NEW*``),
  ``MS_PROPAGATION``.

They are module attributes resolved on first access (PEP 562) and then cached.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

# The integer constants of the cdef this module exposes (by prefix).
_PREFIXES = ("MS_", "MNT_", "CLONE_NEW", "NSR_", "CAP_", "RLIM_", "BPF_DEVCG_",
             "SECCOMP_FILTER_FLAG_")

# Namespace names (as in /proc/<pid>/ns and the OCI spec) and their clone flags.
_NS_CONSTANTS = {"net": "CLONE_NEWNET", "ipc": "CLONE_NEWIPC", "uts": "CLONE_NEWUTS",
                 "cgroup": "CLONE_NEWCGROUP", "user": "CLONE_NEWUSER", "pid": "CLONE_NEWPID",
                 "mnt": "CLONE_NEWNS"}

_EXT: Any = None


def ext() -> Any:
    """The extension module (``ffi``, ``lib``), imported on first use."""
    global _EXT
    if _EXT is None:
        from nsrun import _native

        _EXT = _native
    return _EXT


def step_name(step: int) -> str:
    """The name of a step id a C report carries (``enum nsr_step``: ``pivot_root``, ...)."""
    mod = ext()
    return mod.ffi.string(mod.lib.nsr_step_name(step)).decode()


def _steps() -> tuple[str, ...]:
    return tuple(step_name(i) for i in range(ext().lib.NSR_CHILD_STEPS))


def _capabilities() -> dict[str, int]:
    lib = ext().lib
    return {name: getattr(lib, name) for name in dir(lib)
            if name.startswith("CAP_") and name != "CAP_LAST_CAP"}


def _cap_names() -> dict[int, str]:
    return {v: k for k, v in __getattr__("CAPABILITIES").items()}


def _ns_flags() -> dict[str, int]:
    lib = ext().lib
    return {name: getattr(lib, const) for name, const in _NS_CONSTANTS.items()}


def _propagation() -> int:
    lib = ext().lib
    return lib.MS_UNBINDABLE | lib.MS_PRIVATE | lib.MS_SLAVE | lib.MS_SHARED


_DERIVED = {"STEPS": _steps, "CAPABILITIES": _capabilities, "CAP_NAMES": _cap_names,
            "NS_FLAGS": _ns_flags, "MS_PROPAGATION": _propagation}


def __getattr__(name: str) -> Any:
    if name in _DERIVED:
        value = _DERIVED[name]()
    elif name.startswith(_PREFIXES) and isinstance(getattr(ext().lib, name, None), int):
        value = getattr(ext().lib, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
