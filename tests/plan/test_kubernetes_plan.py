"""`pyscale plan` for the Kubernetes platforms: an eks or existing-cluster stack's key
settings are the cluster, its node groups and add-ons, the app's pods and their cache, not
an EC2 launch template and Auto Scaling group."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.kubernetes.image_repository import repository_name
from pyscale import stacks
from pyscale.offline.runner import EKS_STAND_IN_DIGEST
from pyscale.plan import diff_plans

EKS_STACKS = stacks.stacks_on("eks")
CLUSTER_STACKS = stacks.stacks_on("kubernetes")


def configured(stack: str, key: str) -> str:
    return stacks.engine_config(stack)[f"pyscale:{key}"]


def registered(plan: dict[str, Any], type_token: str) -> list[dict[str, Any]]:
    return [
        resource
        for component in plan["components"]
        for resource in component["resources"]
        if resource["type"] == type_token
    ]


@pytest.mark.parametrize("stack", EKS_STACKS)
def test_an_eks_stacks_key_settings_are_its_cluster_node_groups_addons_and_pods(
    plan_json, stack: str
) -> None:
    # GIVEN the shipped eks stack WHEN planned
    plan = plan_json(stack)
    settings = plan["key_settings"]

    # THEN it is named an eks plan, with the areas that matter there and no EC2 fleet
    assert plan["platform"] == "eks"
    assert list(settings) == [
        "network",
        "load_balancer",
        "cluster",
        "node_groups",
        "addons",
        "workload",
        "cache",
        "alarms",
    ]
    cluster = settings["cluster"]
    assert cluster["version"] == configured(stack, "kubernetesVersion")
    assert cluster["endpoint_private"] is True
    assert cluster["endpoint_public"] is True
    assert cluster["public_access_cidrs"] == json.loads(configured(stack, "eksPublicAccessCidrs"))
    assert (cluster["authentication_mode"], cluster["support_type"]) == ("API", "STANDARD")
    assert cluster["secrets_encryption"] is True

    on_demand = settings["node_groups"]["on_demand"]
    assert on_demand["instance_types"] == [configured(stack, "instanceType")]
    assert [on_demand["min_size"], on_demand["desired_size"], on_demand["max_size"]] == [
        int(configured(stack, key)) for key in ("minSize", "desiredCapacity", "maxSize")
    ]
    assert on_demand["ami_type"].startswith("AL2023_")

    # every add-on the cluster registers is shown with the version it pins
    addons = {
        r["settings"]["addon"]: r["settings"].get("version")
        for r in registered(plan, "aws:eks/addon:Addon")
    }
    assert {name: settings["addons"][name] for name in addons} == addons
    assert {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent"} <= set(addons)
    assert all(version for version in addons.values())
    assert settings["addons"]["aws-load-balancer-controller (Helm chart)"]

    # the app's pods: the HPA's bounds and target, no replica count fighting it, requests
    workload = settings["workload"]
    assert [workload["hpa_min_replicas"], workload["hpa_max_replicas"]] == [
        int(configured(stack, key)) for key in ("hpaMinReplicas", "hpaMaxReplicas")
    ]
    assert workload["hpa_cpu_target_percent"] == int(configured(stack, "cpuTargetPercent"))
    assert workload["replicas"] is None
    assert workload["pods_per_node"] == int(configured(stack, "podsPerNode"))
    assert workload["cpu_request"].endswith("m")
    assert workload["memory_request"] == workload["memory_limit"]
    assert workload["cpu_limit"] is None
    assert workload["gunicorn_workers"] >= 1
    assert workload["max_unavailable_rollout"] == 0
    # the deploy passes the commit's image; offline, the stand-in in the stack's repository
    repository = repository_name(f"{stacks.project_name()}-{stack}")
    assert workload["image"].endswith(f"/{repository}@{EKS_STAND_IN_DIGEST}")

    # the cache is the same ElastiCache as on ec2
    assert settings["cache"]["node_type"] == configured(stack, "cacheNodeType")

    # and the alarms are the eks ones beside the shared ALB and cache alarms
    alarms = {alarm["name"].removeprefix(f"pyscale-{stack}-") for alarm in settings["alarms"]}
    assert {"hpa-at-max", "nodes-on-demand-at-max", "unschedulable-pods", "alb-5xx-rate"} <= alarms
    assert "asg-at-max" not in alarms


@pytest.mark.parametrize("stack", EKS_STACKS)
def test_an_eks_plans_workload_is_the_deployment_its_hpa_scales(plan_json, stack: str) -> None:
    # The Cluster Autoscaler is a Deployment too: the workload must be the app's.
    plan = plan_json(stack)
    (hpa,) = registered(plan, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    deployments = registered(plan, "kubernetes:apps/v1:Deployment")
    assert len(deployments) > 1
    assert plan["key_settings"]["workload"]["deployment"] == hpa["settings"]["target"]


@pytest.mark.parametrize("stack", CLUSTER_STACKS)
def test_an_existing_cluster_stacks_key_settings_are_its_pods_and_in_cluster_valkey(
    plan_json, stack: str
) -> None:
    plan = plan_json(stack)
    settings = plan["key_settings"]
    assert plan["platform"] == "kubernetes"
    assert list(settings) == ["cluster", "workload", "cache", "alarms"]
    assert settings["cluster"]["cluster_identifier"] == configured(stack, "clusterIdentifier")
    workload = settings["workload"]
    assert [workload["hpa_min_replicas"], workload["hpa_max_replicas"]] == [
        int(configured(stack, key)) for key in ("hpaMinReplicas", "hpaMaxReplicas")
    ]
    assert workload["pods_per_node"] == int(configured(stack, "podsPerNode"))
    assert workload["service_type"] == configured(stack, "serviceType")
    cache = settings["cache"]
    assert cache["source"] == "in-cluster Valkey"
    assert cache["valkey_image"] == configured(stack, "valkeyImage")
    assert cache["valkey_memory_limit"]
    # the URL's password is a variable reference, never the password
    assert "$(REDIS_PASSWORD)" in cache["redis_url"]


def test_an_external_redis_url_is_shown_as_coming_from_a_secret_never_its_value(run_cli) -> None:
    url = "rediss://:do-not-print-me@cache.example.com:6379/0"
    # GIVEN the example cluster stack with an external Redis in place of its Valkey
    result = run_cli(
        "plan", "--stack", "dev-k8s", "--json", "-c", "valkeyImage=", "-c", f"redisUrl={url}"
    )
    assert result.exit_code == 0, result.stderr
    cache = json.loads(result.stdout)["key_settings"]["cache"]
    assert cache["source"] == "external (REDIS_URL from a Secret)"
    assert cache["redis_url"] == "secret pyscale-cache/url"
    assert cache["valkey_image"] is None
    assert "do-not-print-me" not in result.stdout


def test_the_diff_of_an_eks_stack_and_an_ec2_stack_names_the_platforms_first(plan_json) -> None:
    diff = diff_plans(plan_json("dev"), plan_json("dev-eks"))
    assert diff["settings"][0] == {"setting": "platform", "a": "ec2", "b": "eks"}
    rows = {row["setting"]: (row["a"], row["b"]) for row in diff["settings"]}
    assert rows["fleet.instance_type"] == ("t4g.small", None)
    assert rows["node_groups.on_demand.instance_types"] == (None, ["t4g.medium"])
    assert rows["workload.hpa_max_replicas"] == (None, 6)


def test_the_terminal_plan_of_an_eks_stack_shows_the_node_groups_and_pods(run_cli) -> None:
    result = run_cli("plan", "--stack", "dev-eks")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for expected in (
        "platform eks",
        "node_groups",
        "instance_types=t4g.medium",
        "hpa_max_replicas",
        "1.35",
        "coredns",
    ):
        assert expected in out, expected
    assert "warm_pool" not in out  # no EC2 fleet row
