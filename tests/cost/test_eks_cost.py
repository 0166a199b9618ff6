"""`pyscale cost` of an eks stack: the control plane by the hour, the node groups as the
stack's instances, and what the app's pods serve (pods x what one pod serves at the HPA's
target), with the nodes those pods keep running."""

from __future__ import annotations

import math

import pytest

from pyscale import stacks

EKS_STACKS = stacks.stacks_on("eks")


def config(stack: str, key: str) -> int:
    return int(stacks.engine_config(stack)[f"pyscale:{key}"])


@pytest.mark.parametrize("stack", EKS_STACKS)
def test_the_control_plane_bills_every_hour_at_the_standard_support_price(
    cost_json, stack: str
) -> None:
    document = cost_json(stack)
    (line,) = [
        line for line in document["lines"] if line["resource_type"] == "aws:eks/cluster:Cluster"
    ]
    assert line["price_id"] == "eks/cluster"
    assert line["monthly_quantity"] == document["totals"]["hours_per_month"]
    price = document["prices"]["eks/cluster"]
    # sourced and dated, like every price
    assert all(price[key] for key in ("source", "source_ref", "source_date", "read_on"))


@pytest.mark.parametrize("stack", EKS_STACKS)
def test_node_groups_are_the_instances_that_scale_with_the_pods(cost_json, stack: str) -> None:
    document = cost_json(stack)
    node_lines = [
        line for line in document["lines"] if line["resource_type"] == "aws:eks/nodeGroup:NodeGroup"
    ]
    assert node_lines
    assert all(line["scales_with_fleet"] for line in node_lines if line["status"] == "priced")
    others = [
        line for line in document["lines"] if line["resource_type"] != "aws:eks/nodeGroup:NodeGroup"
    ]
    assert not any(line["scales_with_fleet"] for line in others)


@pytest.mark.parametrize("stack", EKS_STACKS)
def test_an_eks_stack_serves_its_hpas_pods_at_the_cpu_target_of_their_request(
    cost_json, plan_json, stack: str
) -> None:
    # GIVEN the stack's pods (HPA bounds, CPU request) on its node group
    capacity = cost_json(stack)["capacity"]
    workload = plan_json(stack)["key_settings"]["workload"]
    fleet = capacity["fleet"]

    # THEN the unit is the pod, sized by its request and bounded by the HPA
    assert fleet["unit"] == "pod"
    assert fleet["vcpus"] == int(workload["cpu_request"].removesuffix("m")) / 1000
    assert (fleet["min_size"], fleet["max_size"]) == (
        config(stack, "hpaMinReplicas"),
        config(stack, "hpaMaxReplicas"),
    )
    assert fleet["cpu_target_percent"] == config(stack, "cpuTargetPercent")
    assert fleet["instance_type"] == stacks.engine_config(stack)["pyscale:instanceType"]

    # AND the nodes are those the pods need at podsPerNode, within the node group's bounds
    per_node = config(stack, "podsPerNode")
    for pods, nodes in (
        (fleet["min_size"], fleet["nodes_at_min"]),
        (fleet["max_size"], fleet["nodes_at_max"]),
    ):
        needed = math.ceil(pods / per_node)
        assert nodes == min(config(stack, "maxSize"), max(config(stack, "minSize"), needed))

    # AND one pod serves request x target x per-core; the fleet that times its pods
    for entry in capacity["scenarios"]:
        per_pod = fleet["vcpus"] * fleet["cpu_target_percent"] / 100 * entry["per_core_rps"]
        assert entry["per_instance_rps_at_cpu_target"] == pytest.approx(per_pod, abs=0.1)
        assert entry["binding_target"] == "cpu_target"  # no request-count target on eks
        assert entry["fleet_rps_at_max"] == pytest.approx(per_pod * fleet["max_size"], abs=0.2)


@pytest.mark.parametrize("stack", EKS_STACKS)
def test_the_cost_at_max_pods_adds_the_extra_nodes_only(cost_json, stack: str) -> None:
    document = cost_json(stack)
    capacity, fleet = document["capacity"], document["capacity"]["fleet"]
    node_lines = [
        line
        for line in document["lines"]
        if line["resource_type"] == "aws:eks/nodeGroup:NodeGroup" and line["status"] == "priced"
    ]
    desired = config(stack, "desiredCapacity")
    per_node = sum(line["monthly_usd"] for line in node_lines) / desired
    extra_nodes = fleet["nodes_at_max"] - fleet["nodes_at_min"]
    assert capacity["monthly_usd_at_max"] - capacity["monthly_usd_at_min"] == pytest.approx(
        extra_nodes * per_node, abs=0.02
    )
    assert any("HPA" in note for note in capacity["extrapolations"])


def test_the_terminal_view_says_pods_and_nodes(run_cli) -> None:
    result = run_cli("cost", "--stack", EKS_STACKS[0])
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "pods (HPA) on" in text
    assert "EKS control plane (standard support)" in text
