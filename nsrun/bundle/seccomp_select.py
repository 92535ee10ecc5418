"""Which seccomp profile a pod's container gets, as the kubelet and containerd decide it
(the profile is compiled by ``bundle.security``):

1. a privileged container: none (``security.confine`` never asks);
2. the container's ``securityContext.seccompProfile``, else the pod's:
   ``RuntimeDefault`` → containerd's default profile (``seccomp_default``) for the
   container's bounding set; ``Unconfined`` → none; ``Localhost`` → the OCI seccomp JSON at
   ``<--seccomp-profile-root>/<localhostProfile>`` (the kubelet's layout; the API server's
   validation already refused absolute paths and ``..``);
3. the bundle's own ``linux.seccomp`` when it has one;
4. ``RuntimeDefault`` when ``--seccomp-default`` is on (nsrun's default), else none.

The OCI face (``nsrun-oci``) has no Kubernetes side: only the bundle's ``linux.seccomp``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import msgspec

from nsrun.errors import BundleError

ENV_DEFAULT, ENV_ROOT = "NSRUN_SECCOMP_DEFAULT", "NSRUN_SECCOMP_PROFILE_ROOT"
DEFAULT_PROFILE_ROOT = "/var/lib/nsrun/seccomp"
BUNDLE = "bundle"  # choose(): keep the bundle's linux.seccomp (or none)
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class Settings(msgspec.Struct, frozen=True):
    """``--seccomp-default`` and ``--seccomp-profile-root``; ``default_on`` False and no
    root is the OCI face's (no Kubernetes defaults)."""

    default_on: bool = False
    profile_root: str = ""
    cache_dir: str = ""  # compiled programs (``bundle.seccompcache``); "" for none

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """The pods' settings (the CLI puts its options in the environment)."""
        from nsrun.bundle.seccompcache import ENV_CACHE

        env = os.environ if env is None else env
        return cls(parse_bool(env.get(ENV_DEFAULT, "true"), ENV_DEFAULT),
                   env.get(ENV_ROOT) or DEFAULT_PROFILE_ROOT, env.get(ENV_CACHE, ""))


def parse_bool(word: str, where: str) -> bool:
    """``true``/``false`` (and 1/0, yes/no, on/off), as Go's flag package reads a bool."""
    if word.lower() in TRUE_WORDS:
        return True
    if word.lower() in FALSE_WORDS:
        return False
    raise BundleError(f"{where}: expected true or false, not {json.dumps(word)}")


def _requested(security_context: Any, pod_security_context: Any) -> Any:
    for sc in (security_context, pod_security_context):
        profile = getattr(sc, "seccomp_profile", None) if sc is not None else None
        if profile is not None:
            return profile
    return None


def choose(security_context: Any, pod_security_context: Any, settings: Settings,
           bundle_has_one: bool, bounding: frozenset[str]) -> dict | None | str:
    """The OCI profile to compile, None for none, or ``BUNDLE`` (the module docstring)."""
    asked = _requested(security_context, pod_security_context)
    kind = asked.type if asked is not None else None
    if kind is None:
        if bundle_has_one or not settings.default_on:
            return BUNDLE
        kind = "RuntimeDefault"
    if kind == "Unconfined":
        return None
    if kind == "Localhost":
        return load_localhost(settings.profile_root, asked.localhost_profile or "")
    from nsrun.bundle import seccomp_default

    return seccomp_default.profile(bounding)


def confine_seccomp(f: Any, security_context: Any, pod_security_context: Any,
                    settings: Settings, bounding: int, bundle: Any) -> Any:
    """The container's compiled filter (``ociseccomp.Seccomp`` or None): ``bundle`` (the
    bundle's own, already compiled) unless the pod or the default chooses another."""
    from nsrun.bundle.capabilities import cap_list
    from nsrun.bundle.configfields import Fields
    from nsrun.bundle.ociseccomp import seccomp_of

    chosen = choose(security_context, pod_security_context, settings,
                    f.get("linux.seccomp", dict) is not None, frozenset(cap_list(bounding)))
    if chosen is BUNDLE:
        return bundle
    if chosen is None:
        return None
    return seccomp_of(Fields({"linux": {"seccomp": chosen}}, "seccompProfile"),
                      settings.cache_dir)


def load_localhost(root: str, name: str) -> dict:
    """The OCI seccomp JSON ``root/name``; ``BundleError`` with containerd's words if it
    cannot be read (the container waits with ``CreateContainerError``)."""
    path = os.path.join(root or DEFAULT_PROFILE_ROOT, name)
    try:
        with open(path, "rb") as f:
            profile = json.loads(f.read())
    except OSError as err:
        raise BundleError(f'cannot load seccomp profile "{path}": open {path}: '
                          f"{os.strerror(err.errno or 0).lower()}") from None
    except ValueError as err:
        raise BundleError(f'cannot load seccomp profile "{path}": {err}') from None
    if not isinstance(profile, dict):
        raise BundleError(f'cannot load seccomp profile "{path}": expected a JSON object')
    return profile
