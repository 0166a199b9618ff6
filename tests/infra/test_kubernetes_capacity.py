"""The pod budget (infra/kubernetes/capacity.py): what a node gives, what the app's pod
asks, and the stack numbers that can never be scheduled, refused naming their keys."""

from __future__ import annotations

import re

import pytest

from app.sizing import default_workers
from infra.kubernetes.capacity import (
    APP_SHARE_OF_NODE,
    EKS_SYSTEM_PODS,
    ENI_MAX_PODS,
    NODE_ALLOCATABLE,
    CapacityError,
    node_shape,
    plan_capacity,
)


def test_the_vendored_tables_name_their_source_commit():
    assert re.match(
        r"# Vendored from aws/amazon-vpc-cni-k8s@[0-9a-f]{40} misc/eni-max-pods.txt",
        ENI_MAX_PODS.read_text(),
    )
    assert re.match(
        r"# aws/karpenter-provider-aws@[0-9a-f]{40}:website/", NODE_ALLOCATABLE.read_text()
    )


def test_the_two_sources_agree_on_every_pod_limit_they_share():
    rows = [
        line.split(",")
        for line in NODE_ALLOCATABLE.read_text().splitlines()[3:]  # two comments + header
    ]
    assert len(rows) > 1000
    for name, *_, max_pods in rows:
        assert node_shape(name).max_pods == int(max_pods), name


@pytest.mark.parametrize(
    ("instance_type", "max_pods"),
    [("t4g.small", 11), ("t4g.medium", 17), ("t4g.large", 35), ("m7g.medium", 8)],
)
def test_pod_limits_follow_the_eni_formula(instance_type, max_pods):
    assert node_shape(instance_type).max_pods == max_pods


def test_a_node_gives_pods_less_than_its_size():
    node = node_shape("t4g.medium")
    assert (node.vcpus, node.memory_mib) == (2, 4096)
    assert node.allocatable_cpu_millicores < 2000
    assert node.allocatable_memory_mib < 4096


def test_app_pods_share_what_the_daemonsets_leave_and_workers_follow_the_cpu_request():
    plan = plan_capacity("m7g.xlarge", pods_per_node=2, max_nodes=3, max_replicas=6)
    node = plan.node
    daemon_cpu = sum(pod.cpu_millicores for pod in EKS_SYSTEM_PODS if pod.per_node)
    budget = (node.allocatable_cpu_millicores - daemon_cpu) * APP_SHARE_OF_NODE / 2
    assert budget - 10 < plan.pod.cpu_millicores <= budget
    assert plan.pod.cpu_millicores % 10 == 0
    assert plan.pod.workers == default_workers(round(plan.pod.cpu_millicores / 1000))


def test_a_pod_below_one_core_still_gets_one_cores_workers():
    plan = plan_capacity("t4g.medium", pods_per_node=4, max_nodes=4, max_replicas=8)
    assert plan.pod.cpu_millicores < 1000
    assert plan.pod.workers == default_workers(1)


def test_more_pods_per_node_than_the_eni_limit_is_refused_naming_the_keys():
    with pytest.raises(CapacityError) as caught:
        plan_capacity("t4g.small", pods_per_node=9, max_nodes=10, max_replicas=9)
    first = caught.value.problems[0]
    assert first.startswith("podsPerNode: 9 app pods per node do not fit")
    assert "at most 11 pods" in first
    assert "instanceType" in first


def test_pods_too_small_to_run_are_refused():
    with pytest.raises(CapacityError) as caught:
        plan_capacity("t4g.small", pods_per_node=8, max_nodes=10, max_replicas=8)
    assert any("at least 100m and 256Mi" in problem for problem in caught.value.problems)


def test_an_hpa_maximum_the_nodes_cannot_hold_is_refused_naming_both_keys():
    with pytest.raises(CapacityError) as caught:
        plan_capacity("t4g.medium", pods_per_node=1, max_nodes=2, max_replicas=6)
    cpu = [problem for problem in caught.value.problems if " CPU, " in problem]
    assert len(cpu) == 1
    assert cpu[0].startswith("hpaMaxReplicas: 6 app pods")
    assert "2 t4g.medium nodes (maxSize)" in cpu[0]


def test_too_few_pod_slots_for_the_hpa_maximum_is_refused():
    with pytest.raises(CapacityError) as caught:
        plan_capacity("m7g.medium", pods_per_node=1, max_nodes=2, max_replicas=12)
    assert any("pods besides DaemonSets" in problem for problem in caught.value.problems)


def test_every_problem_is_reported_at_once_one_line_each():
    with pytest.raises(CapacityError) as caught:
        plan_capacity("t4g.small", pods_per_node=10, max_nodes=1, max_replicas=50)
    assert len(caught.value.problems) >= 3
    assert str(caught.value).splitlines() == list(caught.value.problems)


def test_an_instance_type_missing_from_the_tables_is_refused_naming_the_key():
    with pytest.raises(CapacityError) as caught:
        plan_capacity("mac1.metal", pods_per_node=1, max_nodes=1, max_replicas=1)
    assert caught.value.problems[0].startswith("instanceType: 'mac1.metal' has no pod limit")


def test_a_stack_that_fits_passes():
    plan = plan_capacity("t4g.medium", pods_per_node=2, max_nodes=4, max_replicas=6)
    assert plan.pod.memory_mib >= 256
