"""The EKS and workload policies against what the components really register: the compliant
run passes; flipping the one field a policy guards makes that policy, and only it, report."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import pytest
from pulumi_policy import EnforcementLevel

from infra.kubernetes.eks_cluster import EksCluster
from infra.kubernetes.workload import AppWorkload
from policy import rules
from policy.offline import PolicySetting, Violation, WireResource, evaluate, from_registered
from pyscale.offline.runner import run_function
from tests.infra.test_kubernetes_eks_cluster import cluster_args
from tests.infra.test_kubernetes_workload import workload_args

MANDATORY = EnforcementLevel.MANDATORY
# Production's levels; tags and the instance allow-list judge whole stacks (test_rules.py).
STACK_WIDE = ("instance-type-allowed", "required-tags")
SETTINGS = {
    policy.name: PolicySetting(
        EnforcementLevel.DISABLED if policy.name in STACK_WIDE else MANDATORY, {}
    )
    for policy in rules.POLICIES
}


@functools.cache
def _recorded() -> tuple[WireResource, ...]:
    def build() -> None:
        eks = EksCluster("eks", cluster_args())
        AppWorkload("app", workload_args(), eks.provider)

    return tuple(from_registered(r) for r in run_function(build).resources)


def resources() -> list[WireResource]:
    return copy.deepcopy(list(_recorded()))


def judge(items: list[WireResource]) -> list[Violation]:
    return evaluate(items, SETTINGS, stack="prod")


def flip(type_: str, change: Callable[[dict], None]) -> list[Violation]:
    items = resources()
    targets = [item for item in items if item.type == type_ and item.name != "eks-k8s"]
    assert targets, type_
    change(targets[0].inputs)
    return judge(items)


def pod(inputs: dict) -> dict:
    return inputs["spec"]["template"]["spec"]


def test_the_components_pass_every_policy():
    assert judge(resources()) == []


CASES = {
    "eks-secrets-encrypted": (
        rules.EKS_CLUSTER,
        lambda inputs: inputs.pop("encryptionConfig"),
    ),
    "eks-control-plane-logging": (
        rules.EKS_CLUSTER,
        lambda inputs: inputs.update(enabledClusterLogTypes=["api"]),
    ),
    "prod-eks-all-control-plane-logs": (
        rules.EKS_CLUSTER,
        lambda inputs: inputs.update(
            enabledClusterLogTypes=["api", "audit", "authenticator", "scheduler"]
        ),
    ),
    "eks-endpoint-access": (
        rules.EKS_CLUSTER,
        lambda inputs: inputs["vpcConfig"].update(publicAccessCidrs=["0.0.0.0/0"]),
    ),
    "prod-customer-managed-key": (
        rules.LOG_GROUP,
        lambda inputs: inputs.pop("kmsKeyId"),
    ),
    "pods-not-privileged-or-root": (
        "kubernetes:apps/v1:Deployment",
        lambda inputs: pod(inputs)["containers"][0]["securityContext"].update(privileged=True),
    ),
    "pods-have-probes-and-resources": (
        "kubernetes:apps/v1:Deployment",
        lambda inputs: pod(inputs)["containers"][0].pop("readinessProbe"),
    ),
}


@pytest.mark.parametrize("policy", sorted(CASES))
def test_flipping_the_guarded_field_trips_exactly_its_policy(policy):
    type_, change = CASES[policy]
    violations = flip(type_, change)
    expected = {policy}
    if policy == "eks-control-plane-logging":  # the production rule wants a superset
        expected.add("prod-eks-all-control-plane-logs")
    assert {v.policy for v in violations} == expected, violations
    assert len(violations) == len(expected)
    assert violations[0].resource


def test_a_public_endpoint_without_allowed_cidrs_is_reported():
    violations = flip(
        rules.EKS_CLUSTER, lambda inputs: inputs["vpcConfig"].pop("publicAccessCidrs", None)
    )
    assert [v.policy for v in violations] == ["eks-endpoint-access"]
    assert "no public_access_cidrs" in violations[0].message


def test_a_pod_running_as_root_is_reported_even_when_the_container_is_silent():
    def root(inputs: dict) -> None:
        pod(inputs)["securityContext"].update(runAsNonRoot=False, runAsUser=0)
        pod(inputs)["containers"][0]["securityContext"].pop("runAsNonRoot")

    violations = flip("kubernetes:apps/v1:Deployment", root)
    assert {v.policy for v in violations} == {"pods-not-privileged-or-root"}
    assert len(violations) == 2  # may run as root, and runs as UID 0


def test_a_container_without_a_memory_limit_is_reported():
    violations = flip(
        "kubernetes:apps/v1:Deployment",
        lambda inputs: pod(inputs)["containers"][0]["resources"].pop("limits"),
    )
    assert [v.policy for v in violations] == ["pods-have-probes-and-resources"]
    assert "limits.memory" in violations[0].message
