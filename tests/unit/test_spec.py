"""The manifest loader: strict model, unknown/unsupported/scheduling fields, defaulting,
documents and streams, and hostile input (always ``SpecError``, never a hang)."""

from __future__ import annotations

import json
import time

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsrun.core import resources, validate
from nsrun.core.expand import container_env
from nsrun.core.manifest import MAX_BYTES, load_pods, load_pods_with_warnings
from nsrun.core.schema import SpecWarning
from nsrun.core.spec import Container, Pod, all_containers, is_sidecar
from nsrun.errors import SpecError

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: myapp-pod
  labels: {app: myapp}
spec:
  initContainers:
  - name: init-myservice
    image: busybox:1.28
    command: ['sh', '-c', 'until nslookup myservice; do sleep 2; done']
  containers:
  - name: myapp-container
    image: busybox:1.28
    command: ['sh', '-c', 'echo The app is running! && sleep 3600']
"""


def one(text: str | bytes, **kw) -> Pod:
    pods = load_pods(text, "pod.yaml", **kw)
    assert len(pods) == 1
    return pods[0]


def error_of(text: str | bytes, **kw) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_pods(text, "pod.yaml", **kw)
    return info.value


def manifest(spec: dict, **meta) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "p", **meta}, "spec": spec})


APP = {"name": "app", "image": "busybox"}


# ---------------------------------------------------------------- the model


def test_the_documents_example_pod():
    pod = one(POD)
    assert pod.metadata.name == "myapp-pod"
    assert pod.metadata.namespace == "default"
    assert pod.metadata.uid == ""  # the runtime fills it in
    assert [c.name for c in pod.spec.init_containers] == ["init-myservice"]
    assert pod.spec.containers[0].command[0] == "sh"
    assert pod.spec.restart_policy == "Always"
    assert pod.spec.termination_grace_period_seconds == 30
    assert validate.validate(pod) == []


def test_all_containers_and_sidecars():
    pod = one(manifest({"initContainers": [{"name": "i", "image": "b"},
                                           {"name": "s", "image": "b", "restartPolicy": "Always"}],
                        "containers": [APP]}))
    assert [(k, i, c.name) for k, i, c in all_containers(pod)] == [
        ("initContainers", 0, "i"), ("initContainers", 1, "s"), ("containers", 0, "app")]
    assert [is_sidecar(c) for _, _, c in all_containers(pod)] == [False, True, False]


def test_json_input_and_multiple_documents():
    text = manifest({"containers": [APP]}) + "\n" + manifest({"containers": [APP]})
    assert len(load_pods(text)) == 2
    yaml_stream = POD + "---\n" + POD.replace("myapp-pod", "second") + "---\n"
    assert [p.metadata.name for p in load_pods(yaml_stream)] == ["myapp-pod", "second"]


def test_a_kind_list_is_flattened():
    text = json.dumps({"apiVersion": "v1", "kind": "List",
                       "items": [json.loads(manifest({"containers": [APP]}))] * 2})
    assert len(load_pods(text)) == 2


def test_bytes_with_a_bom():
    assert one(b"\xef\xbb\xbf" + POD.encode()).metadata.name == "myapp-pod"


def test_timestamps_stay_strings():
    pod = one(POD.replace("busybox:1.28", "2001-12-14", 1))
    assert pod.spec.init_containers[0].image == "2001-12-14"


# ---------------------------------------------------------------- defaulting


def test_api_server_defaulting():
    pod = one(manifest({
        "hostNetwork": True,
        "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}],
        "containers": [{**APP, "ports": [{"containerPort": 80}],
                        "livenessProbe": {"httpGet": {"port": 80}},
                        "env": [{"name": "N", "valueFrom": {"fieldRef": {
                            "fieldPath": "metadata.name"}}}],
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}))
    c = pod.spec.containers[0]
    assert (c.ports[0].protocol, c.ports[0].host_port) == ("TCP", 80)
    probe = c.liveness_probe
    assert (probe.timeout_seconds, probe.period_seconds, probe.success_threshold,
            probe.failure_threshold) == (1, 10, 1, 3)
    assert (probe.http_get.path, probe.http_get.scheme) == ("/", "HTTP")
    assert c.env[0].value_from.field_ref.api_version == "v1"
    assert c.resources.requests == {"cpu": "1", "memory": "1Gi"}
    assert (c.termination_message_path, c.termination_message_policy) == (
        "/dev/termination-log", "File")
    assert pod.spec.volumes[0].empty_dir is not None
    assert pod.spec.volumes[1].secret.default_mode == 0o644


def test_pod_level_requests_default():
    pod = one(manifest({"resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
                        "containers": [{**APP, "resources": {"requests": {"cpu": "500m"}}}]}))
    assert pod.spec.resources.requests == {"cpu": "500m", "memory": "1Gi"}


# ---------------------------------------------------------------- unknown, unsupported, ignored


def test_unknown_field_reads_like_kubectl():
    err = error_of("metadata: {name: p}\nspec:\n  containers:\n"
                   "  - {name: a, image: busybox, imagee: x}\n")
    assert err.problems[0].field == "spec.containers[0].imagee"
    assert 'unknown field "spec.containers[0].imagee"' in str(err)


def test_every_unknown_field_at_once():
    err = error_of(manifest({"containers": [{**APP, "imagee": "x", "comand": ["a"]}],
                             "restartPolicyy": "Never"}, nmae="x"))
    assert [p.field for p in err.problems] == [
        "metadata.nmae", "spec.containers[0].imagee", "spec.containers[0].comand",
        "spec.restartPolicyy"]
    assert 'The Pod "p" is invalid' in str(err)


SCHEDULING = ["nodeSelector", "affinity", "tolerations", "priority", "priorityClassName",
              "schedulerName", "preemptionPolicy", "topologySpreadConstraints", "nodeName"]


@pytest.mark.parametrize("field,value", [
    ("nodeSelector", {"disk": "ssd"}), ("affinity", {"nodeAffinity": {}}),
    ("tolerations", [{"key": "k"}]), ("priority", 10), ("priorityClassName", "high"),
    ("schedulerName", "other"), ("preemptionPolicy", "Never"),
    ("topologySpreadConstraints", [{"maxSkew": 1}]), ("nodeName", "node-1")])
def test_scheduling_fields_are_accepted_with_one_warning_each(field, value):
    pods, warnings = load_pods_with_warnings(manifest({field: value, "containers": [APP]}))
    assert warnings == [SpecWarning(f"spec.{field}",
                                    "ignored: scheduling has no meaning on one host")]
    assert validate.validate(pods[0]) == []


def test_node_name_is_kept_for_the_downward_api():
    pods, _ = load_pods_with_warnings(manifest({"nodeName": "node-1", "containers": [APP]}))
    assert pods[0].spec.node_name == "node-1"


@pytest.mark.parametrize("path,doc", [
    ("spec.hostPID", {"hostPID": True}),
    ("spec.hostIPC", {"hostIPC": True}),
    ("spec.runtimeClassName", {"runtimeClassName": "gvisor"}),
    ("spec.ephemeralContainers", {"ephemeralContainers": [APP]}),
    ("spec.hostUsers", {"hostUsers": False}),
    ("spec.os", {"os": {"name": "windows"}}),
    ("spec.containers[0].envFrom", {"containers": [{**APP, "envFrom": [{"prefix": "x"}]}]}),
    ("spec.containers[0].tty", {"containers": [{**APP, "tty": True}]}),
    ("spec.containers[0].livenessProbe.grpc",
     {"containers": [{**APP, "livenessProbe": {"grpc": {"port": 1}}}]}),
    ("spec.containers[0].lifecycle.preStop.httpGet",
     {"containers": [{**APP, "lifecycle": {"preStop": {"httpGet": {"port": 1}}}}]}),
    ("spec.containers[0].securityContext.appArmorProfile",
     {"containers": [{**APP, "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}}]}),
    ("spec.volumes[0].persistentVolumeClaim",
     {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]}),
    ("metadata.generateName", None),
])
def test_behaviour_changing_fields_are_not_supported(path, doc):
    if doc is None:
        text = manifest({"containers": [APP]}, generateName="p-")
    else:
        text = manifest({"containers": [APP], **doc})
    err = error_of(text)
    assert [str(p) for p in err.problems] == [f"{path}: Forbidden: not supported by nsrun"]


@pytest.mark.parametrize("doc", [
    {"dnsPolicy": "ClusterFirst"}, {"dnsPolicy": "Default"}, {"hostPID": False},
    {"enableServiceLinks": True}, {"os": {"name": "linux"}}, {"hostUsers": True},
    {"containers": [{**APP, "tty": False, "stdin": False}]},
    {"containers": [{**APP, "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]},
    {"containers": [{**APP, "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}]},
    {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "a.json"}}},
])
def test_neutral_values_are_accepted_silently(doc):
    pods, warnings = load_pods_with_warnings(manifest({"containers": [APP], **doc}))
    assert warnings == []
    assert validate.validate(pods[0]) == []


def test_kubectl_dry_run_output_loads_cleanly():
    text = """apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: nginx
  name: nginx
spec:
  containers:
  - image: nginx
    name: nginx
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
"""
    pods, warnings = load_pods_with_warnings(text)
    assert warnings == [] and validate.validate(pods[0]) == []


# ---------------------------------------------------------------- wrong types and documents


@pytest.mark.parametrize("text,expected", [
    (manifest({"containers": [{**APP, "image": 5}]}),
     "spec.containers[0].image: Invalid value: expected string, got integer"),
    (manifest({"containers": "x"}), "spec.containers: Invalid value: expected array, got string"),
    (manifest({"activeDeadlineSeconds": 1.5, "containers": [APP]}),
     "spec.activeDeadlineSeconds: Invalid value: expected integer, got number"),
    (json.dumps({"metadata": {"name": "p", "labels": {"a": 1}}}),
     "metadata.labels: Invalid value: expected string, got integer"),
    ("kind: Deployment\n", 'kind: Unsupported value: "Deployment": supported values: "Pod"'),
    ("apiVersion: v2\nkind: Pod\n", 'no matches for kind "Pod" in version "v2"'),
    ("- a\n- b\n", "expected a Pod object, found array"),
    ("hello\n", "expected a Pod object, found string"),
    ("", "no Pod document found"),
    ("---\n---\n", "no Pod document found"),
    ("spec: [unclosed\n", "invalid YAML"),
    ('{"a": ]', "invalid JSON"),
    ("{name: p, kind: Pod}", 'unknown field "name"'),
    (b"\xff\xfe\x00garbage", "not valid UTF-8"),
    ("a: \x00\n", "invalid YAML"),
    (json.dumps({"kind": "List", "items": 5}), "items: expected a list of Pods"),
])
def test_bad_documents(text, expected):
    assert expected in str(error_of(text))


def test_huge_input_is_refused_before_parsing():
    assert "nsrun reads at most" in str(error_of(b"#" * (MAX_BYTES + 1)))


def test_yaml_alias_bomb_is_refused_quickly():
    bomb = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        bomb += f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]\n"
    start = time.monotonic()
    assert "excessive YAML aliasing" in str(error_of(bomb))
    assert time.monotonic() - start < 2


def test_recursive_alias_is_refused():
    assert "refers to itself" in str(error_of("metadata: &m {name: p, x: *m}\n"))


def test_small_aliases_are_fine():
    text = ("x-common: &c {image: busybox}\n"
            "metadata: {name: p}\nspec:\n  containers:\n  - {<<: *c, name: a}\n")
    err = error_of(text)  # x-common is unknown, but the alias itself is fine
    assert [p.field for p in err.problems] == ["x-common"]


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "{a: " * 200 + "1" + "}" * 200,
                                  "".join("  " * i + "a:\n" for i in range(300)),
                                  "[" * 150 + "]" * 150])
def test_deep_nesting_is_refused(text):
    assert "nest" in str(error_of(text)).lower() or "invalid YAML" in str(error_of(text))


def test_deep_json_is_refused():
    assert "nested more than" in str(error_of("[" * 150 + "]" * 150 + "\n"))
    assert "invalid JSON" in str(error_of("[" * 100000 + "]" * 100000))


def test_huge_numbers():
    assert "invalid" in str(error_of("spec:\n  activeDeadlineSeconds: " + "9" * 5000 + "\n"))
    err = error_of(manifest({"containers": [APP]}).replace('"p"', '"p", "x": ' + "9" * 5000))
    assert "invalid JSON" in str(err)
    pod = one(manifest({"activeDeadlineSeconds": 10**30, "containers": [APP]}))
    assert "spec.activeDeadlineSeconds" in str(validate.validate(pod)[0])


# ---------------------------------------------------------------- properties

FIELD_NAMES = ["metadata", "spec", "name", "image", "containers", "initContainers", "command",
               "args", "env", "value", "valueFrom", "fieldRef", "fieldPath", "resources",
               "requests", "limits", "cpu", "memory", "ports", "containerPort", "hostPort",
               "volumes", "volumeMounts", "mountPath", "emptyDir", "livenessProbe", "exec",
               "httpGet", "port", "restartPolicy", "lifecycle", "postStart", "labels",
               "annotations", "overhead", "securityContext", "runAsUser", "hostNetwork",
               "kind", "apiVersion", "items", "nodeSelector", "hostPID", "status", "x", "",
               "pod.beta.kubernetes.io/init-containers", "divisor", "resourceFieldRef"]
leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
          | st.sampled_from(["1", "500m", "1Gi", "Always", "busybox", "v1", "Pod", "$(X)"]))
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=5),
    max_leaves=40)
container = st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=6).map(
    lambda d: {"name": "c", "image": "b", **d})
pod_like = st.fixed_dictionaries({
    "metadata": st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=3)
    | st.just({"name": "p"}),
    "spec": st.fixed_dictionaries({"containers": st.lists(container, max_size=3),
                                   "initContainers": st.lists(container, max_size=2)}),
})


quantity_text = st.sampled_from(["0", "1", "100m", "1.5", "64Mi", "1Gi", "2e3", "-1", "1x",
                                 "0.1m", "1E", "1Ki", "500M"]) | st.integers(-5, 10**6)
resource_map = st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage",
                                                "hugepages-2Mi", "example.com/x"]),
                               quantity_text, max_size=3)
env_var = st.fixed_dictionaries({"name": st.sampled_from(["A", "B", "C", "", "D=E"])},
                                optional={
    "value": st.sampled_from(["x", "$(A)", "$$(A)", "$(B)-$(C)", "$("]),
    "valueFrom": st.one_of(
        st.fixed_dictionaries({"fieldRef": st.fixed_dictionaries({"fieldPath": st.sampled_from(
            ["metadata.name", "metadata.labels['a']", "status.podIP", "spec.nodeName", "x",
             "metadata.annotations['b']", "status.phase"])})}),
        st.fixed_dictionaries({"resourceFieldRef": st.fixed_dictionaries(
            {"resource": st.sampled_from(["limits.cpu", "requests.memory", "limits.memory",
                                          "limits.x"])},
            optional={"divisor": st.sampled_from(["1m", "1", "1Mi", "3", "0", "x"]),
                      "containerName": st.sampled_from(["c0", "c1", "nope"])})}))})
probe = st.fixed_dictionaries({}, optional={
    "exec": st.just({"command": ["true"]}), "tcpSocket": st.just({"port": 80}),
    "httpGet": st.fixed_dictionaries({"port": st.sampled_from([80, "http", 0, "x--y"])}),
    "successThreshold": st.integers(-1, 3), "periodSeconds": st.integers(-1, 3),
    "terminationGracePeriodSeconds": st.integers(-1, 3)})
semi_container = st.fixed_dictionaries({"image": st.sampled_from(["b", "", " b"])}, optional={
    "resources": st.fixed_dictionaries({}, optional={"requests": resource_map,
                                                     "limits": resource_map}),
    "env": st.lists(env_var, max_size=4),
    "restartPolicy": st.sampled_from(["Always", "OnFailure", ""]),
    "livenessProbe": probe, "startupProbe": probe, "readinessProbe": probe,
    "ports": st.lists(st.fixed_dictionaries({"containerPort": st.integers(0, 70000)},
                                            optional={"hostPort": st.integers(0, 3)}),
                      max_size=2),
    "command": st.lists(st.sampled_from(["$(A)", "$$", "x"]), max_size=2)})


@st.composite
def semi_valid_pods(draw) -> dict:
    cs = draw(st.lists(semi_container, min_size=1, max_size=4))
    named = [{**c, "name": f"c{i}"} for i, c in enumerate(cs)]
    split = draw(st.integers(0, len(named) - 1))
    spec = {"initContainers": named[:split], "containers": named[split:]}
    spec.update(draw(st.fixed_dictionaries({}, optional={
        "overhead": resource_map, "resources": st.fixed_dictionaries(
            {}, optional={"requests": resource_map, "limits": resource_map}),
        "restartPolicy": st.sampled_from(["Never", "x"]),
        "hostNetwork": st.booleans()})))
    return {"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": spec}


def exercise(text: str | bytes) -> None:
    """Load; for every pod, validate; for a valid one, the resource math and the env."""
    try:
        pods = load_pods(text, "x")
    except SpecError:
        return
    for pod in pods:
        if validate.validate(pod):
            continue
        resources.compute(pod, node_memory=2**33, node_pids_limit=100).to_json()
        for _, _, c in all_containers(pod):
            try:
                container_env(pod, c)
            except SpecError:
                pass


QUICK = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(st.binary(max_size=300))
def test_binary_junk_never_raises_anything_but_spec_error(data):
    exercise(data)


@QUICK
@given(st.text(max_size=300))
def test_text_junk_never_raises_anything_but_spec_error(text):
    exercise(text)


@QUICK
@given(values)
def test_random_documents_never_raise_anything_but_spec_error(doc):
    exercise(json.dumps(doc))
    exercise(yaml.safe_dump(doc))


@QUICK
@given(semi_valid_pods())
def test_nearly_valid_pods_never_raise_anything_but_spec_error(doc):
    exercise(json.dumps(doc))


@QUICK
@given(pod_like)
def test_random_pods_never_raise_anything_but_spec_error(doc):
    exercise(json.dumps(doc))
    exercise(yaml.safe_dump(doc))


names = st.from_regex(r"\A[a-z]([-a-z0-9]{0,10}[a-z0-9])?\Z", fullmatch=True)
quantities = st.sampled_from(["100m", "1", "250m", "64Mi", "1Gi", "2", "500M"])
valid_container = st.builds(
    lambda name, cpu, mem, cmd: {"name": name, "image": "busybox", "command": cmd,
                                 "resources": {"requests": {"cpu": cpu}, "limits": {"memory": mem}},
                                 "env": [{"name": "A", "value": "$(B)"}]},
    names, quantities, quantities,  # any text but a NUL or a surrogate (core.rawstrings)
    st.lists(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"),
                     max_size=8), max_size=3))


@QUICK
@given(st.lists(valid_container, min_size=1, max_size=3, unique_by=lambda c: c["name"]),
       st.sampled_from(["Always", "OnFailure", "Never"]))
def test_valid_pods_round_trip(containers, policy):
    inits = [{**c, "name": "init-" + c["name"]} for c in containers[:1]]
    text = manifest({"containers": containers, "initContainers": inits,
                     "restartPolicy": policy})
    pod = one(text)
    assert validate.validate(pod) == []
    again = one(msgspec.json.encode(pod))
    assert again == pod
    assert one(yaml.safe_dump(msgspec.to_builtins(pod))) == pod


def test_container_struct_is_strict():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"name": "a", "imagee": "x"}, Container)
