"""A container's environment and ``$(VAR)`` expansion, as the kubelet builds them (pure).

Owns:

* ``expand``: Kubernetes' ``third_party/forked/golang/expansion``: ``$(NAME)`` is replaced
  when NAME is defined and kept literally otherwise, ``$$`` is an escaped ``$``, ``$(`` without
  a closing ``)`` and ``$x`` are kept as written;
* ``container_env``: ``env`` in order, each value expanded over the entries before it; values
  from the Downward API (``fieldRef``), from the container's resources (``resourceFieldRef``
  with ``divisor``, unset limits resolving to the pod-level limit, then to node allocatable)
  and from secret/config map keys the runtime resolved (``key_refs``);
* ``expand_command_and_args`` and ``expand_sub_path_expr`` (kubelet's
  ``ExpandContainerCommandAndArgs`` / ``ExpandContainerVolumeMounts``).
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping

from nsrun.core.quantity import Quantity, QuantityError, parse_json_quantity
from nsrun.core.spec import Container, EnvVar, Pod, ResourceFieldSelector, all_containers
from nsrun.errors import Problem, SpecError

OPERATOR, OPENER, CLOSER = "$", "(", ")"
MAX_ARG_STRLEN = 131072

FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
               "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
               "status.podIPs")
RESOURCE_PATHS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                  "requests.ephemeral-storage", "requests.memory")


def expand(s: str, env: Mapping[str, str]) -> str:
    """``s`` with ``$(VAR)`` references to ``env`` replaced, by Kubernetes' rules."""
    return expand_with(s, lambda name: _lookup(name, env))


def expand_with(s: str, mapping: Callable[[str], str]) -> str:
    """Kubernetes' ``expansion.Expand``: ``mapping`` turns a variable name into its text.

    Raises ``SpecError`` when the result would pass ``MAX_ARG_STRLEN`` (execve would refuse
    it anyway; this keeps chained references from growing without bound)."""
    out, checkpoint, cursor, size = [], 0, 0, 0
    last_closer = s.rfind(CLOSER)
    while cursor < len(s):
        if s[cursor] == OPERATOR and cursor + 1 < len(s):
            read, is_var, advance = _read_variable(s, cursor + 1, last_closer)
            pieces = (s[checkpoint:cursor], mapping(read) if is_var else read)
            size += len(pieces[0]) + len(pieces[1])
            _check_size(size)
            out.extend(pieces)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    _check_size(size + len(s) - checkpoint)
    return "".join(out) + s[checkpoint:]


def _check_size(size: int) -> None:
    if size > MAX_ARG_STRLEN:
        raise SpecError([Problem("", "Invalid value", f"an expanded value is longer than "
                                 f"{MAX_ARG_STRLEN} characters, the kernel's limit for one "
                                 "argument or environment string")])


def _lookup(name: str, env: Mapping[str, str]) -> str:
    value = env.get(name)
    return value if value is not None else f"{OPERATOR}{OPENER}{name}{CLOSER}"


def _read_variable(s: str, start: int, last_closer: int) -> tuple[str, bool, int]:
    """What follows the ``$`` before ``start``: (text, is a variable name, chars consumed).
    ``last_closer`` (the last ``)`` in ``s``) keeps unclosed references linear-time."""
    if s[start] == OPERATOR:
        return OPERATOR, False, 1
    if s[start] == OPENER:
        end = s.find(CLOSER, start + 1) if last_closer > start else -1
        if end != -1:
            return s[start + 1:end], True, end - start + 1
        return OPERATOR + OPENER, False, 1
    return OPERATOR + s[start], False, 1


def expand_command_and_args(container: Container, env: Mapping[str, str]
                            ) -> tuple[list[str] | None, list[str] | None]:
    """The container's command and args expanded with its final environment."""
    command = [expand(s, env) for s in container.command] if container.command else None
    args = [expand(s, env) for s in container.args] if container.args else None
    return command, args


def expand_sub_path_expr(expr: str, env: Mapping[str, str]) -> str:
    """A ``subPathExpr`` expanded; a missing or empty variable, an absolute result or one
    with a ``..`` step is an error (the kubelet's ``CreateContainerConfigError``, with its
    makeMounts messages)."""
    missing: set[str] = set()

    def mapping(name: str) -> str:
        value = env.get(name)
        if not value:
            missing.add(name)
        return value or ""

    expanded = expand_with(expr, mapping)
    if missing:
        raise SpecError([Problem("subPathExpr", "Invalid value",
                                 f"missing value for {', '.join(sorted(missing))}")])
    if expanded.startswith("/"):
        raise SpecError([Problem("subPathExpr", "Invalid value",
                                 f"error SubPath `{expanded}` must not be an absolute path")])
    if ".." in expanded.split("/"):
        raise SpecError([Problem("subPathExpr", "Invalid value",
                                 f"unable to provision SubPath `{expanded}`: must not "
                                 "contain '..'")])
    return expanded


# ---------------------------------------------------------------- the environment


def container_env(pod: Pod, container: Container, *, pod_ip: str = "", host_ip: str = "",
                  node_name: str = "", node_allocatable: Mapping[str, object] | None = None,
                  key_refs: Mapping[tuple[str, str, str], str] | None = None,
                  service_links: list[tuple[str, str]] | None = None
                  ) -> list[tuple[str, str]]:
    """The container's environment in declaration order (a repeated name keeps its first
    place and its last value), each value expanded over the entries before it and the
    Service variables; then the Service variables the container does not define.

    ``node_name`` wins over ``spec.nodeName``; ``node_allocatable`` (resource -> quantity)
    answers ``resourceFieldRef`` limits nobody set; ``key_refs`` maps
    (``"secret"``/``"configMap"``, name, key) to values the runtime read;
    ``service_links`` are ``core.servicelinks.service_env``'s variables."""
    ctx = _Context(pod, container, pod_ip, host_ip, node_name, node_allocatable or {},
                   key_refs or {})
    links = service_links or []
    env: dict[str, str] = {}
    scope = ChainMap(env, dict(links))
    for index, var in enumerate(container.env or ()):
        env[var.name] = ctx.value(var, scope, index)
    return list(env.items()) + [(k, v) for k, v in links if k not in env]


class _Context:
    """What resolving one container's env values needs."""

    def __init__(self, pod: Pod, container: Container, pod_ip: str, host_ip: str,
                 node_name: str, allocatable: Mapping[str, object],
                 key_refs: Mapping[tuple[str, str, str], str]) -> None:
        self.pod, self.container = pod, container
        self.pod_ip, self.host_ip = pod_ip, host_ip
        self.node_name = node_name or pod.spec.node_name or ""
        self.allocatable, self.key_refs = allocatable, key_refs

    def value(self, var: EnvVar, env: Mapping[str, str], index: int) -> str:
        if var.value:
            return expand(var.value, env)
        source = var.value_from
        if source is None:
            return ""
        if source.field_ref is not None:
            return self.field(source.field_ref.field_path)
        if source.resource_field_ref is not None:
            return self.resource(source.resource_field_ref, index)
        return self.key_ref(var, index)

    def path(self, index: int) -> str:
        for key, i, c in all_containers(self.pod):
            if c is self.container:
                return f"spec.{key}[{i}].env[{index}].valueFrom"
        return f"env[{index}].valueFrom"

    def field(self, path: str) -> str:
        return field_ref_value(self.pod, path, pod_ip=self.pod_ip, host_ip=self.host_ip,
                               node_name=self.node_name)

    def resource(self, ref: ResourceFieldSelector, index: int) -> str:
        where = f"{self.path(index)}.resourceFieldRef"
        target = self.container
        if ref.container_name:
            target = _find_container(self.pod, ref.container_name, where)
        return resource_ref_value(self.pod, target, ref, self.allocatable, where)

    def key_ref(self, var: EnvVar, index: int) -> str:
        source = var.value_from
        kind, ref = ("secret", source.secret_key_ref) if source.secret_key_ref else (
            "configMap", source.config_map_key_ref)
        if ref is None:
            return ""
        value = self.key_refs.get((kind, ref.name or "", ref.key))
        if value is None and not ref.optional:
            what = "Secret" if kind == "secret" else "ConfigMap"
            where = f"{self.path(index)}.{kind}KeyRef"
            raise SpecError([Problem(where, "Not found", f"couldn't find key {ref.key} in "
                                     f"{what} {self.pod.metadata.namespace}/{ref.name}")])
        return value or ""


def _find_container(pod: Pod, name: str, where: str) -> Container:
    for _, _, c in all_containers(pod):
        if c.name == name:
            return c
    raise SpecError([Problem(f"{where}.containerName", "Not found", f'"{name}"')])


def field_ref_value(pod: Pod, path: str, *, pod_ip: str = "", host_ip: str = "",
                    node_name: str = "") -> str:
    """The Downward API value of ``path`` (``metadata.labels['k']`` included)."""
    meta = pod.metadata
    simple = {
        "metadata.name": meta.name, "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid, "spec.nodeName": node_name or pod.spec.node_name or "",
        "spec.serviceAccountName": pod.spec.service_account_name or "",
        "status.hostIP": host_ip, "status.hostIPs": host_ip,
        "status.podIP": pod_ip, "status.podIPs": pod_ip,
        "spec.host": node_name or pod.spec.node_name or "",
    }
    if path in simple:
        return simple[path]
    base, key = split_subscript(path)
    if base == "metadata.labels":
        return meta.labels.get(key, "")
    if base == "metadata.annotations":
        return meta.annotations.get(key, "")
    raise SpecError([Problem("fieldRef.fieldPath", "Unsupported value", f'"{path}"')])


def split_subscript(path: str) -> tuple[str, str]:
    """``metadata.labels['k']`` -> (``metadata.labels``, ``k``); else (path, "")."""
    if not path.endswith("']") or "['" not in path:
        return path, ""
    base, _, rest = path[:-2].partition("['")
    return (base, rest) if base else (path, "")


def resource_ref_value(pod: Pod, container: Container, ref: ResourceFieldSelector,
                       allocatable: Mapping[str, object], where: str = "resourceFieldRef"
                       ) -> str:
    """``ExtractContainerResourceValue``: the value over the divisor, rounded up."""
    kind, _, name = ref.resource.partition(".")
    divisor = _quantity(ref.divisor, f"{where}.divisor") if ref.divisor not in (None, "") \
        else None
    divisor = divisor if divisor is not None and not divisor.is_zero() else None
    amount = _resource_amount(pod, container, kind, name, allocatable, where)
    if name == "cpu":
        per = divisor.milli_value() if divisor else 1000
        return str(_ceil_div(amount.milli_value(), per))
    per = divisor.value() if divisor else 1
    return str(_ceil_div(amount.value(), per))


def _resource_amount(pod: Pod, container: Container, kind: str, name: str,
                     allocatable: Mapping[str, object], where: str) -> Quantity:
    from nsrun.core import resources

    if kind == "requests":
        found = resources.container_requests(container).get(name)
    elif kind == "limits":
        found = resources.container_limits(container).get(name) \
            or resources.pod_level(pod, "limits").get(name)
        if found is None and name in allocatable:
            found = _quantity(allocatable[name], "node allocatable")
    else:
        raise SpecError([Problem(f"{where}.resource", "Unsupported value", f'"{kind}.{name}"')])
    return found if found is not None else Quantity(0)


def _quantity(raw: object, where: str) -> Quantity:
    if isinstance(raw, Quantity):
        return raw
    try:
        return parse_json_quantity(raw)
    except QuantityError as err:
        raise SpecError([Problem(where, "Invalid value", str(err))]) from None


def _ceil_div(n: int, d: int) -> int:
    if d == 0:
        return 0
    q = -(-abs(n) // abs(d))
    return q if (n >= 0) == (d > 0) else -q
