"""The EKS cluster component (infra/kubernetes/eks_cluster.py) under the offline mocks:
what the engine receives for each resource, and the creation order it must enforce."""

from __future__ import annotations

import json

import pytest

from infra.kubernetes.addon_versions import ADDONS, listed_versions
from infra.kubernetes.eks_cluster import (
    ALL_LOG_TYPES,
    CLUSTER_ADMIN_POLICY,
    EksCluster,
    EksClusterArgs,
    NodeGroupSpec,
)
from pyscale.offline.runner import ProgramRun, RecordedResource, run_function

ADMIN_ROLE = "arn:aws:iam::123456789012:role/pyscale-deploy"
STACK_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
# The newest version the catalogue lists for 1.33 (what the mocks' EKS accepts).
ADDON_VERSIONS = {name: listed_versions(name, "1.33")[-1] for name in ADDONS}


def cluster_args(**overrides) -> EksClusterArgs:
    values = {
        "cluster_name": "pyscale-dev-eks",
        "kubernetes_version": "1.33",
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
        "public_access_cidrs": ["203.0.113.0/24"],
        "admin_principal_arn": ADMIN_ROLE,
        "log_types": ALL_LOG_TYPES,
        "log_retention_days": 90,
        "log_key_arn": STACK_KEY,
        "deletion_protection": True,
        "node_groups": [
            NodeGroupSpec("on-demand", "ON_DEMAND", ("t4g.medium",), "arm64", 2, 2, 4),
            NodeGroupSpec("spot", "SPOT", ("m7g.large", "m6g.large"), "arm64", 0, 0, 3),
        ],
        "root_volume_size_gb": 20,
        "addon_versions": ADDON_VERSIONS,
        "region": "us-east-1",
    }
    values.update(overrides)
    return EksClusterArgs(**values)


def run_cluster(args: EksClusterArgs | None = None) -> ProgramRun:
    return run_function(lambda: EksCluster("eks", args or cluster_args()))


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return run_cluster()


def named(run: ProgramRun, name: str) -> RecordedResource:
    return next(r for r in run.resources if r.name == name)


def test_the_cluster_uses_access_entries_and_encrypts_secrets_with_its_own_key(run):
    cluster = run.one("aws:eks/cluster:Cluster").inputs
    assert cluster["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    key = run.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert cluster["encryptionConfig"] == {
        "provider": {"keyArn": key.outputs["arn"]},
        "resources": ["secrets"],
    }
    assert cluster["upgradePolicy"] == {"supportType": "STANDARD"}
    assert cluster["version"] == "1.33"
    assert cluster["bootstrapSelfManagedAddons"] is False
    assert cluster["deletionProtection"] is True


def test_the_endpoint_is_private_plus_public_for_the_allowed_cidrs_only(run):
    vpc = run.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_no_allowed_cidrs_means_a_private_only_endpoint():
    vpc = run_cluster(cluster_args(public_access_cidrs=[])).one("aws:eks/cluster:Cluster")
    assert vpc.inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc.inputs["vpcConfig"]


def test_control_plane_logs_go_to_a_log_group_made_first_with_retention(run):
    cluster = run.one("aws:eks/cluster:Cluster")
    assert cluster.inputs["enabledClusterLogTypes"] == list(ALL_LOG_TYPES)
    log_group = run.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == "/aws/eks/pyscale-dev-eks/cluster"
    assert log_group.inputs["retentionInDays"] == 90
    assert log_group.inputs["kmsKeyId"] == STACK_KEY  # customerManagedKey
    assert run.is_created_after(cluster, log_group)


def test_the_cluster_role_policy_exists_before_the_cluster(run):
    attachment = named(run, "eks-cluster-policy")
    assert attachment.inputs["policyArn"].endswith("/AmazonEKSClusterPolicy")
    assert run.is_created_after(run.one("aws:eks/cluster:Cluster"), attachment)


def test_the_deploy_role_is_cluster_admin_through_an_access_entry(run):
    entry = run.one("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["principalArn"] == ADMIN_ROLE
    # STANDARD (the provider's default, and a replacement if changed): a user or role, not
    # a node type. Its rights come only from the policy association, not from Kubernetes
    # groups (which would also need RBAC bindings the program does not make).
    assert entry.inputs["type"] == "STANDARD"
    assert "kubernetesGroups" not in entry.inputs
    policy = run.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert policy.inputs["policyArn"] == CLUSTER_ADMIN_POLICY
    assert policy.inputs["accessScope"] == {"type": "cluster"}
    assert run.is_created_after(policy, entry)


def test_networking_and_pod_identity_come_before_any_node_and_dns_and_metrics_after(run):
    addons = {r.inputs["addonName"]: r for r in run.of_type("aws:eks/addon:Addon")}
    assert sorted(addons) == sorted(ADDON_VERSIONS)
    for addon in addons.values():
        assert addon.inputs["addonVersion"] == ADDON_VERSIONS[addon.inputs["addonName"]]
    groups = run.of_type("aws:eks/nodeGroup:NodeGroup")
    assert groups
    for group in groups:
        # A node is Ready only with the CNI, whose aws-node reaches the API server through
        # the kubernetes Service's cluster IP, which only kube-proxy routes.
        for first in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
            assert run.is_created_after(group, addons[first]), (group.name, first)
        # Deployments stay DEGRADED without a node, and the create wait would fail on it.
        for later in ("coredns", "metrics-server"):
            assert run.is_created_after(addons[later], group), (later, group.name)
    # Nothing on the cluster is applied before DNS is up.
    provider = run.one("pulumi:providers:kubernetes")
    assert run.is_created_after(provider, addons["coredns"])


def test_add_ons_overwrite_hand_edits_and_networking_outlives_its_add_on_resource(run):
    addons = {r.inputs["addonName"]: r.inputs for r in run.of_type("aws:eks/addon:Addon")}
    for name, inputs in addons.items():
        assert inputs["resolveConflictsOnCreate"] == "OVERWRITE", name
        assert inputs["resolveConflictsOnUpdate"] == "OVERWRITE", name
        assert "configurationValues" not in inputs, name  # EKS's defaults, nothing else
    # DeleteAddon with preserve leaves the software running: removing the resource never
    # takes pod networking, Service routing or DNS away from running pods.
    assert {name for name, inputs in addons.items() if inputs.get("preserve")} == {
        "vpc-cni",
        "kube-proxy",
        "coredns",
    }


def test_node_groups_follow_the_clusters_kubernetes_version(run):
    cluster = run.one("aws:eks/cluster:Cluster")
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        # Set, so an upgrade rolls the nodes (UpdateNodegroupVersion) after the cluster.
        assert group.inputs["version"] == cluster.inputs["version"] == "1.33"
        assert run.is_created_after(group, cluster)


def test_node_groups_leave_the_desired_size_to_the_autoscaler_and_are_autonamed(run):
    groups = {r.name: r for r in run.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert sorted(groups) == ["eks-nodes-on-demand", "eks-nodes-spot"]
    for group in groups.values():
        assert group.options.ignore_changes == ("scalingConfig.desiredSize",)
        # No fixed name and no delete-before-replace: an instance-type change creates the
        # new group before the old one is deleted.
        assert "nodeGroupName" not in group.inputs
        assert "nodeGroupNamePrefix" not in group.inputs
        assert group.options.delete_before_replace is None
        assert group.inputs["updateConfig"] == {"maxUnavailablePercentage": 33}
        assert group.inputs["amiType"] == "AL2023_ARM_64_STANDARD"
    on_demand = groups["eks-nodes-on-demand"].inputs
    assert on_demand["capacityType"] == "ON_DEMAND"
    assert on_demand["instanceTypes"] == ["t4g.medium"]
    assert on_demand["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 4}
    assert groups["eks-nodes-spot"].inputs["capacityType"] == "SPOT"


def test_x86_instance_types_get_the_x86_ami():
    args = cluster_args(
        node_groups=[NodeGroupSpec("on-demand", "ON_DEMAND", ("m7i.large",), "x86_64", 1, 1, 2)]
    )
    group = run_cluster(args).one("aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["amiType"] == "AL2023_x86_64_STANDARD"


def test_nodes_boot_from_a_template_with_imdsv2_hop_1_and_an_encrypted_gp3_root(run):
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    ebs = template.inputs["blockDeviceMappings"][0]["ebs"]
    assert (ebs["volumeType"], ebs["encrypted"], ebs["volumeSize"]) == ("gp3", "true", 20)
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert group.inputs["launchTemplate"] == {
            "id": template.id,
            "version": str(int(template.outputs["latestVersion"])),
        }


def test_the_node_role_has_only_the_node_policies(run):
    attachments = [
        r.inputs["policyArn"].rsplit("/", 1)[-1]
        for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("eks-node-")
    ]
    assert sorted(attachments) == [
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
    ]


def test_the_kubernetes_provider_is_identified_by_the_cluster_arn(run):
    provider = run.one("pulumi:providers:kubernetes")
    cluster = run.one("aws:eks/cluster:Cluster")
    assert provider.inputs["clusterIdentifier"] == cluster.outputs["arn"]
    config = json.loads(provider.inputs["kubeconfig"])
    assert config["clusters"][0]["cluster"]["server"] == cluster.outputs["endpoint"]
    user = config["users"][0]["user"]["exec"]
    assert user["command"] == "aws"
    assert user["args"] == [
        "eks", "get-token", "--region", "us-east-1",
        "--cluster-name", "pyscale-dev-eks", "--output", "json",
    ]  # fmt: skip
    policy = run.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert run.is_created_after(provider, policy)
