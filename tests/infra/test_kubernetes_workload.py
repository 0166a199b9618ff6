"""The app's Kubernetes objects (infra/kubernetes/workload.py) under the offline mocks.

Every object the component registers is normalised the way the API server would receive it
and validated strictly (no unknown fields) with kubernetes-validate at the cluster's minor
version; references between objects resolve; every object is bound to the cluster's
provider, never to an ambient kubeconfig.
"""

from __future__ import annotations

import jsonschema
import pulumi
import pulumi_kubernetes as k8s
import pytest
from kubernetes_validate import ValidationError

from app.contract import DEFAULT_PORT, HEALTH_PATH, READY_PATH, Env
from infra.kubernetes.capacity import plan_capacity
from infra.kubernetes.workload import (
    IMAGE_UID,
    METRICS_DIR,
    TMP_DIR,
    AppWorkload,
    SecretEnv,
    WorkloadArgs,
)
from pyscale.offline.kubernetes import (
    PROVIDER_TYPE,
    KubernetesObject,
    kubernetes_objects,
    normalise,
    validate_strictly,
)
from pyscale.offline.runner import ProgramRun, run_function

KUBERNETES_VERSION = "1.33"
TARGET_GROUP_ARN = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-ip/0123456789abcdef"
)
ALL_KINDS = [
    "Deployment",
    "HorizontalPodAutoscaler",
    "Namespace",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
    "TargetGroupBinding",
]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pyscale@sha256:" + "a" * 64


def workload_args(**overrides) -> WorkloadArgs:
    values = {
        "namespace": "pyscale",
        "image": IMAGE,
        "capacity": plan_capacity("t4g.medium", pods_per_node=2, max_nodes=4, max_replicas=6),
        "min_replicas": 2,
        "max_replicas": 6,
        "cpu_target_percent": 60,
        "environment": {Env.REDIS_URL: "redis://:$(REDIS_PASSWORD)@valkey:6379/0"},
        "secret_environment": {"REDIS_PASSWORD": SecretEnv("valkey", "password")},
        "readiness_gates": True,
        "target_group_arn": TARGET_GROUP_ARN,
        "vpc_id": "vpc-0123456789abcdef0",
    }
    values.update(overrides)
    return WorkloadArgs(**values)


def run_workload(args: WorkloadArgs | None = None) -> ProgramRun:
    def build() -> None:
        provider = k8s.Provider(
            "cluster", kubeconfig="{}", cluster_identifier="arn:aws:eks:::cluster/test"
        )
        AppWorkload("app", args or workload_args(), provider)

    return run_function(build)


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return run_workload()


@pytest.fixture(scope="module")
def objects(run) -> dict[str, KubernetesObject]:
    return {item.kind: item for item in kubernetes_objects(run)}


def pod_spec(objects) -> dict:
    return objects["Deployment"].manifest["spec"]["template"]["spec"]


def test_the_component_registers_the_app_objects(objects):
    assert sorted(objects) == ALL_KINDS


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_object_validates_strictly_at_the_clusters_version(objects, kind):
    validate_strictly(objects[kind].manifest, KUBERNETES_VERSION)


def test_strict_validation_refuses_an_unknown_field(objects):
    manifest = normalise(objects["Deployment"].manifest)
    manifest["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(ValidationError):
        validate_strictly(manifest, KUBERNETES_VERSION)


def test_strict_validation_of_the_binding_uses_the_controllers_crd_schema(objects):
    manifest = normalise(objects["TargetGroupBinding"].manifest)
    manifest["spec"]["targetType"] = "pod"  # not in the CRD's enum
    with pytest.raises(jsonschema.ValidationError):
        validate_strictly(manifest, KUBERNETES_VERSION)
    manifest = normalise(objects["TargetGroupBinding"].manifest)
    manifest["spec"]["serviceRef"]["namespace"] = "elsewhere"  # unknown field
    with pytest.raises(jsonschema.ValidationError):
        validate_strictly(manifest, KUBERNETES_VERSION)


def test_the_binding_targets_the_services_port_by_pod_ip(objects):
    binding = objects["TargetGroupBinding"].manifest["spec"]
    service = objects["Service"]
    assert binding["serviceRef"] == {
        "name": service.name,
        "port": service.manifest["spec"]["ports"][0]["port"],
    }
    assert binding["targetType"] == "ip"
    assert binding["targetGroupARN"] == TARGET_GROUP_ARN
    assert objects["TargetGroupBinding"].namespace == service.namespace


def test_without_a_target_group_there_is_no_binding():
    kinds = {
        item.kind for item in kubernetes_objects(run_workload(workload_args(target_group_arn=None)))
    }
    assert "TargetGroupBinding" not in kinds


def test_every_object_has_an_explicit_name_and_lives_in_the_apps_namespace(objects):
    for item in objects.values():
        assert item.name, item.kind
        if item.kind != "Namespace":
            assert item.namespace == "pyscale", item.kind


def test_every_object_is_bound_to_the_clusters_provider(run, objects):
    provider = run.one(PROVIDER_TYPE)
    for item in objects.values():
        assert item.resource.options.provider.startswith(provider.urn + "::"), item.kind


def test_the_hpa_owns_the_replica_count(objects):
    assert "replicas" not in objects["Deployment"].manifest["spec"]
    hpa = objects["HorizontalPodAutoscaler"].manifest["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": objects["Deployment"].name,
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 60},
            },
        }
    ]


def test_a_rollout_never_removes_a_ready_pod_before_its_replacement(objects):
    strategy = objects["Deployment"].manifest["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_probes_use_the_contract_paths_on_the_container_port(objects):
    container = pod_spec(objects)["containers"][0]
    assert container["ports"] == [
        {"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": READY_PATH, "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": HEALTH_PATH, "port": "http"}


def test_requests_come_from_the_capacity_plan_and_workers_from_the_cpu_request(objects):
    plan = plan_capacity("t4g.medium", pods_per_node=2, max_nodes=4, max_replicas=6)
    container = pod_spec(objects)["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": plan.pod.cpu, "memory": plan.pod.memory},
        "limits": {"memory": plan.pod.memory},  # no CPU limit: no throttling
    }
    environment = {item["name"]: item.get("value") for item in container["env"]}
    assert environment[Env.WEB_CONCURRENCY] == str(plan.pod.workers)


def test_pods_spread_over_zones_and_nodes(objects):
    spread = pod_spec(objects)["topologySpreadConstraints"]
    assert [item["topologyKey"] for item in spread] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
    selector = objects["Deployment"].manifest["spec"]["selector"]["matchLabels"]
    assert all(item["labelSelector"]["matchLabels"] == selector for item in spread)


def test_the_pod_is_locked_down(objects):
    spec = pod_spec(objects)
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": IMAGE_UID,
        "runAsGroup": IMAGE_UID,
        "fsGroup": IMAGE_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = spec["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts == {TMP_DIR: "tmp", METRICS_DIR: "metrics"}
    assert {volume["name"]: "emptyDir" in volume for volume in spec["volumes"]} == {
        "tmp": True,
        "metrics": True,
    }
    environment = {item["name"]: item.get("value") for item in container["env"]}
    assert environment[Env.PROMETHEUS_MULTIPROC_DIR] == METRICS_DIR
    assert spec["automountServiceAccountToken"] is False
    namespace_labels = objects["Namespace"].manifest["metadata"]["labels"]
    assert namespace_labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_secret_variables_come_first_so_plain_ones_can_refer_to_them(objects):
    names = [item["name"] for item in pod_spec(objects)["containers"][0]["env"]]
    assert names.index("REDIS_PASSWORD") < names.index(Env.REDIS_URL)


def test_the_pdb_never_blocks_a_node_group_update(objects):
    pdb = objects["PodDisruptionBudget"].manifest["spec"]
    assert pdb["maxUnavailable"] == 1
    assert "minAvailable" not in pdb
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["selector"] == objects["Deployment"].manifest["spec"]["selector"]


def test_the_service_selects_the_deployments_pods(objects):
    service = objects["Service"].manifest["spec"]
    template_labels = objects["Deployment"].manifest["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= template_labels.items()
    assert service["ports"][0]["targetPort"] == "http"


def test_the_pod_uses_the_workloads_service_account(objects):
    assert pod_spec(objects)["serviceAccountName"] == objects["ServiceAccount"].name


def test_readiness_gates_are_injected_only_when_asked(run):
    quiet = run_workload(workload_args(readiness_gates=False))
    labels = {
        item.kind: item.manifest["metadata"]["labels"]
        for item in kubernetes_objects(quiet)
        if item.kind == "Namespace"
    }["Namespace"]
    assert "elbv2.k8s.aws/pod-readiness-gate-inject" not in labels
    gated = next(item for item in kubernetes_objects(run) if item.kind == "Namespace")
    assert gated.manifest["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == (
        "enabled"
    )


def test_a_new_image_digest_is_a_new_pod_template():
    other = IMAGE.replace("a" * 64, "b" * 64)
    images = {
        image: next(
            item
            for item in kubernetes_objects(run_workload(workload_args(image=image)))
            if item.kind == "Deployment"
        ).manifest["spec"]["template"]["spec"]["containers"][0]["image"]
        for image in (IMAGE, other)
    }
    assert images == {IMAGE: IMAGE, other: other}


def test_without_an_explicit_provider_an_object_would_use_the_ambient_kubeconfig():
    """The check above can fail: an object registered without a provider has none."""

    def build() -> None:
        k8s.core.v1.Namespace("stray", metadata={"name": "stray"})

    stray = run_function(build)
    assert kubernetes_objects(stray)[0].resource.options.provider == ""


def test_normalise_makes_whole_numbers_ints_and_unwraps_secrets():
    secret = pulumi.runtime.rpc._special_sig_key
    wire = {
        "a": 2.0,
        "b": [0.0, 1.5],
        "c": {secret: "1b47061264138c4ac30d75fd1eb44270", "value": "x"},
    }
    assert normalise(wire) == {"a": 2, "b": [0, 1.5], "c": "x"}
