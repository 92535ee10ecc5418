"""$(VAR) expansion and a container's environment (Downward API, resources, key refs)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsrun.core.expand import (
    container_env,
    expand,
    expand_command_and_args,
    expand_sub_path_expr,
    field_ref_value,
)
from nsrun.core.manifest import load_pods
from nsrun.core.spec import Pod
from nsrun.errors import SpecError

ENV = {"FOO": "foo-value", "BAR": "bar-value", "TEST_VAR": "test-value", "EMPTY": ""}

EXPANSIONS = [
    ("$(FOO);;$(BAR)", "foo-value;;bar-value"),  # Kubernetes' dependent-variables example
    ('TEST_VAR=wrong echo "$(TEST_VAR)"', 'TEST_VAR=wrong echo "test-value"'),
    ("$(UNDEFINED)", "$(UNDEFINED)"),  # undefined references are kept literally
    ("$$(FOO)", "$(FOO)"),  # $$ escapes
    ("$$$(FOO)", "$foo-value"),
    ("$$$$", "$$"),
    ("$(FOO", "$(FOO"),  # no closing paren
    ("$FOO", "$FOO"),  # not a reference
    ("$", "$"),
    ("a$", "a$"),
    ("$()", "$()"),
    ("$(EMPTY)x", "x"),
    ("$(FOO)$(BAR)", "foo-valuebar-value"),
    ("($(FOO))", "(foo-value)"),
    ("$(FOO)$(", "foo-value$("),
    ("", ""),
    ("no refs", "no refs"),
    ("$(FO O)", "$(FO O)"),
    ("é$(FOO)ü", "éfoo-valueü"),
]


@pytest.mark.parametrize("text,expected", EXPANSIONS)
def test_expand(text, expected):
    assert expand(text, ENV) == expected


def only_unescape(text: str) -> str:
    """What expansion does with no variable defined: ``$$`` -> ``$``, references kept."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and ")" in text[i:]:
            end = text.index(")", i)
            out.append(text[i:end + 1])
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@given(st.text(alphabet="$()AB x", max_size=30))
def test_with_nothing_defined_only_escapes_change(text):
    assert expand(text, {}) == only_unescape(text)


@given(st.text(alphabet="abc()", max_size=20))
def test_text_without_dollar_is_unchanged(text):
    assert expand(text, ENV) == text


def pod_of(spec: dict, **meta) -> Pod:
    doc = {"metadata": {"name": "web", "namespace": "prod", "uid": "u-1",
                        "labels": {"app": "web"}, "annotations": {"team": "a"}, **meta},
           "spec": spec}
    return load_pods(json.dumps(doc))[0]


def app_with_env(env: list[dict], **kw) -> Pod:
    return pod_of({"containers": [{"name": "app", "image": "b", "env": env, **kw}]})


def env_of(p: Pod, **kw) -> list[tuple[str, str]]:
    return container_env(p, p.spec.containers[0], **kw)


def test_values_reference_earlier_entries_only():
    p = app_with_env([{"name": "FOO", "value": "foo-value"}, {"name": "BAR", "value": "bar"},
                      {"name": "FOOBAR", "value": "$(FOO);;$(BAR)"},
                      {"name": "LATER", "value": "$(AFTER)"}, {"name": "AFTER", "value": "x"}])
    assert env_of(p) == [("FOO", "foo-value"), ("BAR", "bar"), ("FOOBAR", "foo-value;;bar"),
                         ("LATER", "$(AFTER)"), ("AFTER", "x")]


def test_a_repeated_name_keeps_its_place_and_takes_the_last_value():
    p = app_with_env([{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)"},
                      {"name": "A", "value": "2"}, {"name": "C", "value": "$(A)"}])
    assert env_of(p) == [("A", "2"), ("B", "1"), ("C", "2")]


def test_empty_value_and_no_source():
    assert env_of(app_with_env([{"name": "A"}, {"name": "B", "value": ""}])) == [("A", ""),
                                                                                  ("B", "")]


FIELD_REFS = [
    ("metadata.name", "web"), ("metadata.namespace", "prod"), ("metadata.uid", "u-1"),
    ("metadata.labels['app']", "web"), ("metadata.labels['missing']", ""),
    ("metadata.annotations['team']", "a"), ("spec.nodeName", "node-1"),
    ("spec.serviceAccountName", "sa"), ("status.podIP", "10.0.0.2"),
    ("status.podIPs", "10.0.0.2"), ("status.hostIP", "192.168.1.1"),
    ("status.hostIPs", "192.168.1.1"),
]


@pytest.mark.parametrize("path,expected", FIELD_REFS)
def test_downward_api_field_refs(path, expected):
    p = pod_of({"serviceAccountName": "sa", "containers": [
        {"name": "app", "image": "b",
         "env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": path}}},
                 {"name": "W", "value": "<$(V)>"}]}]})
    env = env_of(p, pod_ip="10.0.0.2", host_ip="192.168.1.1", node_name="node-1")
    assert env == [("V", expected), ("W", f"<{expected}>")]


def test_node_name_falls_back_to_the_spec():
    p = pod_of({"nodeName": "from-spec", "containers": [{"name": "app", "image": "b"}]})
    assert field_ref_value(p, "spec.nodeName") == "from-spec"
    assert field_ref_value(p, "spec.nodeName", node_name="host") == "host"


def resource_env(resource: str, divisor: str | None = None, res: dict | None = None,
                 **pod_spec) -> str:
    ref = {"resource": resource, **({"divisor": divisor} if divisor else {})}
    p = pod_of({"containers": [{"name": "app", "image": "b", "resources": res or {},
                                "env": [{"name": "R", "valueFrom": {"resourceFieldRef": ref}}]}],
                **pod_spec})
    return env_of(p, node_allocatable={"cpu": "4", "memory": "8Gi"})[0][1]


RESOURCE_REFS = [
    ("limits.cpu", None, {"limits": {"cpu": "500m"}}, "1"),  # rounded up to whole cores
    ("limits.cpu", "1m", {"limits": {"cpu": "500m"}}, "500"),
    ("limits.cpu", "1", {"limits": {"cpu": "2"}}, "2"),
    ("requests.cpu", "1m", {"requests": {"cpu": "250m"}}, "250"),
    ("requests.cpu", "1m", {"limits": {"cpu": "300m"}}, "300"),  # request defaulted from limit
    ("requests.cpu", None, {}, "0"),
    ("limits.memory", None, {"limits": {"memory": "64Mi"}}, "67108864"),
    ("limits.memory", "1Mi", {"limits": {"memory": "64Mi"}}, "64"),
    ("limits.memory", "1Gi", {"limits": {"memory": "1500Mi"}}, "2"),
    ("limits.memory", "1M", {"limits": {"memory": "1Gi"}}, "1074"),
    ("requests.memory", "1Ki", {"requests": {"memory": "1Mi"}}, "1024"),
    ("limits.cpu", None, {}, "4"),  # unset limits resolve to node allocatable
    ("limits.memory", "1Gi", {}, "8"),
]


@pytest.mark.parametrize("resource,divisor,res,expected", RESOURCE_REFS)
def test_resource_field_refs(resource, divisor, res, expected):
    assert resource_env(resource, divisor, res) == expected


def test_unset_limit_uses_the_pod_level_limit_first():
    assert resource_env("limits.memory", "1Mi", {},
                        resources={"limits": {"memory": "512Mi"}}) == "512"


def test_resource_ref_to_another_container():
    p = pod_of({"initContainers": [{"name": "init", "image": "b",
                                    "resources": {"limits": {"memory": "32Mi"}}}],
                "containers": [{"name": "app", "image": "b", "env": [
                    {"name": "R", "valueFrom": {"resourceFieldRef": {
                        "resource": "limits.memory", "containerName": "init",
                        "divisor": "1Mi"}}}]}]})
    assert env_of(p) == [("R", "32")]


def test_key_refs_are_resolved_by_the_runtime():
    p = app_with_env([
        {"name": "S", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        {"name": "O", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x",
                                                        "optional": True}}}])
    refs = {("secret", "db", "password"): "s3cret", ("configMap", "cfg", "mode"): "fast"}
    assert env_of(p, key_refs=refs) == [("S", "s3cret"), ("C", "fast"), ("O", "")]
    with pytest.raises(SpecError, match="couldn't find key password in Secret prod/db"):
        env_of(p)


def test_command_and_args_use_the_final_environment():
    p = app_with_env([{"name": "TEST_VAR", "value": "test-value"}],
                     command=["sh", "-c", 'TEST_VAR=wrong echo "$(TEST_VAR)"'],
                     args=["$(TEST_VAR)", "$$(TEST_VAR)", "$(NOPE)"])
    c = p.spec.containers[0]
    command, args = expand_command_and_args(c, dict(env_of(p)))
    assert command == ["sh", "-c", 'TEST_VAR=wrong echo "test-value"']
    assert args == ["test-value", "$(TEST_VAR)", "$(NOPE)"]
    assert expand_command_and_args(pod_of({"containers": [{"name": "a", "image": "b"}]})
                                   .spec.containers[0], {}) == (None, None)


def test_sub_path_expr():
    assert expand_sub_path_expr("logs/$(POD)", {"POD": "web"}) == "logs/web"
    with pytest.raises(SpecError, match="missing value for EMPTY, NOPE"):
        expand_sub_path_expr("$(NOPE)/$(EMPTY)", {"EMPTY": ""})
    assert expand_sub_path_expr("a..b/$(X)", {"X": "..c"}) == "a..b/..c"  # no ".." step
    with pytest.raises(SpecError, match="error SubPath `/etc` must not be an absolute path"):
        expand_sub_path_expr("$(X)", {"X": "/etc"})
    with pytest.raises(SpecError, match="unable to provision SubPath `a/../../b`: must not "
                                        "contain '..'"):
        expand_sub_path_expr("a/$(X)/b", {"X": "../.."})


def test_expansion_is_linear():
    import time

    start = time.monotonic()
    assert expand("$" * 200_000, {}) == "$" * 100_000
    assert len(expand("$(" * 60_000, {})) == 120_000
    with pytest.raises(SpecError, match="longer than 131072"):
        expand("$(" * 1_000_000, {})
    assert time.monotonic() - start < 5


def test_chained_references_cannot_explode():
    env = [{"name": "A0", "value": "x" * 1000}]
    env += [{"name": f"A{i}", "value": f"$(A{i - 1})$(A{i - 1})"} for i in range(1, 60)]
    p = app_with_env(env)
    with pytest.raises(SpecError, match="longer than 131072"):
        env_of(p)
