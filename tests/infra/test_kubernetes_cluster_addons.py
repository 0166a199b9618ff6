"""The cluster's own controllers and AWS pieces under the offline mocks: the Cluster
Autoscaler (typed objects, strictly valid, IAM scoped to this cluster), the AWS Load
Balancer Controller (pinned chart, values), Pod Identity roles (least privilege) and the
image repository."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pulumi_kubernetes as k8s
import pytest
import yaml

from infra.kubernetes.cluster_autoscaler import (
    ADDED_TO_UPSTREAM,
    OMITTED_UPSTREAM_PERMISSIONS,
    RELEASES,
    ClusterAutoscaler,
    ClusterAutoscalerArgs,
    UnsupportedKubernetesVersionError,
    image_for,
)
from infra.kubernetes.image_repository import ImageRepository, ImageRepositoryArgs
from infra.kubernetes.load_balancer_controller import (
    CHART_VERSION,
    LoadBalancerController,
    LoadBalancerControllerArgs,
)
from infra.kubernetes.pod_identity import (
    POD_IDENTITY_PRINCIPAL,
    PodIdentityRole,
    PodIdentityRoleArgs,
)
from pyscale.offline.kubernetes import PROVIDER_TYPE, kubernetes_objects, validate_strictly
from pyscale.offline.runner import ProgramRun, run_function

CLUSTER = "pyscale-dev-eks"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pyscale-cache-auth-AbCdEf"


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    def build() -> None:
        provider = k8s.Provider("cluster", kubeconfig="{}", cluster_identifier="arn")
        ClusterAutoscaler(
            "cas",
            ClusterAutoscalerArgs(CLUSTER, "1.33", "us-east-1", "123456789012"),
            provider,
        )
        LoadBalancerController(
            "lbc",
            LoadBalancerControllerArgs(CLUSTER, "us-east-1", "vpc-0123456789abcdef0"),
            provider,
        )
        PodIdentityRole(
            "web",
            PodIdentityRoleArgs(
                cluster_name=CLUSTER,
                namespace="pyscale",
                service_account="web",
                statements=[
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": SECRET_ARN,
                    }
                ],
            ),
        )
        ImageRepository("image", ImageRepositoryArgs("pyscale-dev-eks-app"))

    return run_function(build)


def test_every_autoscaler_object_validates_strictly_and_uses_the_cluster_provider(run):
    provider = run.one(PROVIDER_TYPE)
    objects = kubernetes_objects(run)
    assert sorted(item.kind for item in objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    for item in objects:
        validate_strictly(item.manifest, "1.33")
        assert item.resource.options.provider.startswith(provider.urn + "::"), item.kind


def test_the_autoscaler_matches_the_cluster_version_and_discovers_only_its_groups(run):
    deployment = next(o for o in kubernetes_objects(run) if o.kind == "Deployment").manifest
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == RELEASES["1.33"].image
    assert (
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
        f"k8s.io/cluster-autoscaler/{CLUSTER}"
    ) in container["command"]
    assert "--skip-nodes-with-local-storage=false" in container["command"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_a_kubernetes_version_without_a_pinned_autoscaler_is_refused():
    with pytest.raises(UnsupportedKubernetesVersionError, match=r"Kubernetes 1\.20"):
        image_for("1.20")


def test_each_pinned_autoscaler_is_its_minors_release_by_digest():
    for minor, release in RELEASES.items():
        pinned = re.fullmatch(
            r"registry\.k8s\.io/autoscaling/cluster-autoscaler:(v[\d.]+)@sha256:[0-9a-f]{64}",
            image_for(minor),
        )
        assert pinned is not None, minor
        tag = pinned.group(1)
        assert tag.startswith(f"v{minor}."), minor
        # The vendored RBAC is the example manifest at that very release's tag.
        assert f"tag cluster-autoscaler-{tag[1:]})" in release.upstream_rbac.read_text()


Permission = tuple[str, str, str, str]  # API group, resource, verb, resource name ("" = any)


def permissions(rules: Iterable[dict[str, Any]]) -> set[Permission]:
    """RBAC rules as single grants, so two rule lists compare whatever their grouping."""
    return {
        (group, resource, verb, name)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
    }


def upstream_rbac(minor: str) -> dict[str, set[Permission]]:
    documents = yaml.safe_load_all(RELEASES[minor].upstream_rbac.read_text())
    return {doc["kind"]: permissions(doc["rules"]) for doc in documents if doc}


@pytest.mark.parametrize("minor", sorted(RELEASES))
def test_the_autoscalers_rbac_is_upstreams_for_its_release_less_only_what_it_never_uses(minor):
    run = run_function(
        lambda: ClusterAutoscaler(
            "cas",
            ClusterAutoscalerArgs(CLUSTER, minor, "us-east-1", "123456789012"),
            k8s.Provider("cluster", kubeconfig="{}", cluster_identifier="arn"),
        )
    )
    granted = {
        o.kind: permissions(o.manifest["rules"])
        for o in kubernetes_objects(run)
        if o.kind in ("ClusterRole", "Role")
    }
    upstream = upstream_rbac(minor)
    omitted = {permission for permission, _reason in OMITTED_UPSTREAM_PERMISSIONS}
    added = {permission for permission, _reason in ADDED_TO_UPSTREAM.get(RELEASES[minor].tag, ())}
    every_upstream = upstream["ClusterRole"] | upstream["Role"]
    assert omitted <= every_upstream  # each omission names a grant upstream really makes
    assert not added & every_upstream  # each addition is one upstream's tag lacks
    assert granted["ClusterRole"] == (upstream["ClusterRole"] - omitted) | added
    assert granted["Role"] == upstream["Role"] - omitted
    # The status ConfigMap and the leader Lease stay writable: CAS cannot run without them.
    assert ("", "configmaps", "update", "cluster-autoscaler-status") in granted["Role"]
    assert ("coordination.k8s.io", "leases", "update", "cluster-autoscaler") in granted[
        "ClusterRole"
    ]
    reads_attachments = ("storage.k8s.io", "volumeattachments", "watch", "")
    assert (reads_attachments in granted["ClusterRole"]) == (minor >= "1.33")
    # From 1.35 Dynamic Resource Allocation is always on: CAS lists its objects.
    reads_slices = ("resource.k8s.io", "resourceslices", "list", "")
    assert (reads_slices in granted["ClusterRole"]) == (minor >= "1.35")


def test_bindings_refer_to_the_roles_and_the_service_account_that_exist(run):
    objects = {(o.kind, o.name): o.manifest for o in kubernetes_objects(run)}
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = objects[(kind, "cluster-autoscaler")]
        assert (role_kind, binding["roleRef"]["name"]) in objects
        subject = binding["subjects"][0]
        assert ("ServiceAccount", subject["name"]) in objects


def role_policies(run: ProgramRun) -> dict[str, list[dict]]:
    return {
        r.name: json.loads(r.inputs["policy"])["Statement"]
        for r in run.of_type("aws:iam/rolePolicy:RolePolicy")
    }


def test_pod_roles_trust_only_pod_identity_and_are_bound_to_one_service_account(run):
    for role in run.of_type("aws:iam/role:Role"):
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust == [
            {
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ]
    associations = {
        r.inputs["serviceAccount"]: r.inputs["namespace"]
        for r in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    assert associations == {
        "cluster-autoscaler": "kube-system",
        "aws-load-balancer-controller": "kube-system",
        "web": "pyscale",
    }


def test_the_app_role_reads_exactly_the_cache_secret(run):
    assert role_policies(run)["web-policy"] == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET_ARN}
    ]


def test_the_autoscaler_changes_capacity_only_of_this_clusters_groups(run):
    statements = {s["Sid"]: s for s in role_policies(run)["cas-identity-policy"]}
    scale = statements["ScaleOwnNodeGroups"]
    assert scale["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{CLUSTER}": "owned"}
    }
    assert statements["DescribeOwnNodeGroups"]["Resource"] == (
        f"arn:aws:eks:us-east-1:123456789012:nodegroup/{CLUSTER}/*"
    )
    writes = [
        action
        for statement in statements.values()
        for action in statement["Action"]
        if not action.split(":")[1].startswith(("Describe", "Get"))
    ]
    assert sorted(writes) == [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]


def test_the_load_balancer_controller_is_a_pinned_chart_with_explicit_region_and_vpc(run):
    release = run.one("kubernetes:helm.sh/v3:Release").inputs
    assert (release["chart"], release["version"]) == ("aws-load-balancer-controller", CHART_VERSION)
    assert release["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    values = release["values"]
    assert values["clusterName"] == CLUSTER
    assert (values["region"], values["vpcId"]) == ("us-east-1", "vpc-0123456789abcdef0")
    assert values["enableServiceMutatorWebhook"] is False
    assert values["serviceAccount"] == {"create": True, "name": "aws-load-balancer-controller"}


def test_the_image_repository_is_immutable_scanned_and_expires_old_images(run):
    repository = run.one("aws:ecr/repository:Repository").inputs
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    rules = json.loads(run.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    assert [rule["action"]["type"] for rule in rules["rules"]] == ["expire", "expire"]
    untagged, count = rules["rules"]
    assert untagged["selection"]["tagStatus"] == "untagged"  # the deploy pushes none
    # 30 releases to roll back to, each a manifest list and one image per CPU (all tagged)
    assert count["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 30 * 3,
    }
