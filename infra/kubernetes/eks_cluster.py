"""An EKS cluster from pulumi_aws primitives, shaped like terraform-aws-eks v21: every
resource is the program's own, so the mocks, the policy pack and the offline plan see all of
it (pulumi-eks is a multi-language component whose ~20 children never reach them).

Order, and why (terraform-provider-aws internal/service/eks: each create waits for ACTIVE):
1. the cluster role's policy attachment, the KMS key and the log group
   ``/aws/eks/<cluster>/cluster`` exist before the cluster (EKS would otherwise create the
   log group itself, with no retention; and deleting the role first strands the cluster's
   ENIs and security groups);
2. the cluster: authentication mode API (access entries; no aws-auth ConfigMap, and the
   mode can never go back), no creator admin, KMS envelope encryption of Secrets, the
   control-plane logs, STANDARD upgrade support (EXTENDED bills several times the control
   plane once a version ages), a pinned version, a private endpoint plus a public one
   restricted to CIDRs (or private only), deletion protection where asked;
3. the deploy role's access entry and its cluster-admin policy association;
4. the vpc-cni, kube-proxy and Pod Identity agent add-ons *before* any node: a node is
   Ready only once the CNI runs, and the CNI's aws-node reaches the API server through the
   ``kubernetes`` Service's cluster IP, which only kube-proxy routes (amazon-vpc-cni-k8s
   #1078, #1847; node groups failing health checks without both, terraform-aws-eks#3525);
   with ``bootstrap_self_managed_addons=False`` EKS installs neither itself. These are
   DaemonSets, which go ACTIVE with no node to run on (terraform-aws-eks creates vpc-cni
   and the agent "before_compute" behind the same create wait); pods need the agent for
   their IAM role;
5. managed node groups: launch template with IMDSv2 (hop limit 1, so pods cannot borrow
   the node role) and an encrypted gp3 root, AL2023 AMI of the instance type's
   architecture, desired size ignored after create (the Cluster Autoscaler owns it), an
   update config that replaces a third of the nodes at a time, and no fixed name, so an
   instance-type change (which replaces the group) creates the new group before deleting
   the old one; Spot capacity in its own group;
6. CoreDNS and metrics-server after the nodes: they are Deployments, which stay DEGRADED
   with no node to schedule on, and the provider's create wait (internal/service/eks/
   addon.go waitAddonCreated: pending CREATING or DEGRADED, target ACTIVE, 20 minutes)
   would then fail the deploy (terraform-aws-eks#2021, "last state: 'DEGRADED', timeout:
   20m0s").

What the provider does with each add-on setting (addon.go): ``addon_name`` and
``cluster_name`` replace the add-on; ``addon_version`` and ``configuration_values`` update it
in place (UpdateAddon, then a 20-minute wait for the update). ``resolve_conflicts_on_create``
and ``_on_update`` are sent with those calls only: OVERWRITE lets EKS take over fields that
someone else (kubectl, a self-managed copy) set; the alternatives fail the call on such a
conflict (NONE) or keep the other value (PRESERVE, update only). Nothing else configures
these add-ons here, so OVERWRITE keeps them exactly EKS's defaults; no
``configuration_values`` are set (EKS's defaults: CoreDNS two replicas with a PDB).
``preserve`` is read only on delete: with it DeleteAddon leaves the software running and
only ends EKS's management. The networking add-ons set it, so removing one from the
program never pulls pod networking, Service routing or DNS from under running pods.
The node groups' ``version`` follows ``kubernetes_version``: the provider sends it with
UpdateNodegroupVersion (node_group.go: a version or launch-template change rolls the nodes,
waiting up to 60 minutes) after the cluster itself is upgraded.

The Kubernetes provider authenticates with ``aws eks get-token`` and carries the cluster
ARN as its identifier, so a kubeconfig change (a new CA, endpoint or CLI flag) does not
replace every object on it (pulumi-kubernetes#4019).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.kubernetes.addon_versions import ADDONS_AFTER_NODES, ADDONS_BEFORE_NODES

ALL_LOG_TYPES: Final = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_ADMIN_POLICY: Final = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
AMI_TYPES: Final = {"arm64": "AL2023_ARM_64_STANDARD", "x86_64": "AL2023_x86_64_STANDARD"}
# Add-ons whose DeleteAddon keeps the software running (networking the nodes rely on).
PRESERVED_ON_DELETE: Final = ("vpc-cni", "kube-proxy", "coredns")
NODE_POLICIES: Final = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
UPDATE_MAX_UNAVAILABLE_PERCENT: Final = 33


def control_plane_log_group_name(cluster_name: str) -> str:
    """Where EKS writes a cluster's control-plane logs (a name it fixes, not a setting)."""
    return f"/aws/eks/{cluster_name}/cluster"


@dataclass(frozen=True)
class NodeGroupSpec:
    """One managed node group: its capacity type, instance types and sizes."""

    key: str  # "on-demand" or "spot": part of the resource name
    capacity_type: Literal["ON_DEMAND", "SPOT"]
    instance_types: tuple[str, ...]
    architecture: Literal["arm64", "x86_64"]
    min_size: int
    desired_size: int
    max_size: int


def asg_name_of(node_group: aws.eks.NodeGroup) -> pulumi.Output[str]:
    """The Auto Scaling group EKS made for a managed node group: known only after create
    (terraform-provider-aws internal/service/eks/node_group.go sets the computed
    ``resources[0].autoscaling_groups[*].name`` from DescribeNodegroup once the group is
    ACTIVE; EKS makes one group per node group), so it is an Output for what watches it."""

    def first(resources: Sequence[aws.eks.outputs.NodeGroupResource] | None) -> str:
        names = [
            group.name
            for resource in resources or []
            for group in resource.autoscaling_groups or []
            if group.name
        ]
        if not names:  # EKS reports the group once the node group is ACTIVE
            raise ValueError("the node group reports no Auto Scaling group")
        return names[0]

    return node_group.resources.apply(first)


@dataclass(frozen=True)
class EksClusterArgs:
    """Inputs of EksCluster.

    cluster_name: the EKS cluster's name (also names its log group, so it is not autonamed).
    kubernetes_version: pinned minor version, e.g. "1.33".
    vpc_id / subnet_ids: the private subnets the control plane ENIs and the nodes use.
    public_access_cidrs: who may reach the public endpoint; empty = private endpoint only
        (then `pulumi up` must run inside the VPC: a self-hosted runner or a VPN).
    admin_principal_arn: the IAM role given cluster admin through an access entry (the
        deploy role CI assumes).
    log_types / log_retention_days: control-plane logs and how long they are kept.
    log_key_arn: the stack's KMS key for the control-plane log group (customerManagedKey;
        its policy lets CloudWatch Logs use it for exactly that group); None: the Logs
        service's own encryption.
    deletion_protection: refuse DeleteCluster until turned off.
    node_groups: the managed node groups.
    root_volume_size_gb: each node's encrypted gp3 root.
    addon_versions: add-on name -> pinned version.
    region: for the kubeconfig's ``aws eks get-token``.
    tags: tags for every AWS resource.
    """

    cluster_name: str
    kubernetes_version: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    public_access_cidrs: Sequence[str]
    admin_principal_arn: pulumi.Input[str]
    log_types: Sequence[str]
    log_retention_days: int
    log_key_arn: pulumi.Input[str] | None
    deletion_protection: bool
    node_groups: Sequence[NodeGroupSpec]
    root_volume_size_gb: int
    addon_versions: Mapping[str, str]
    region: str
    tags: Mapping[str, str] = field(default_factory=dict)


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }
    )


def kubeconfig(cluster: aws.eks.Cluster, region: str) -> pulumi.Output[str]:
    """A kubeconfig whose user runs ``aws eks get-token`` (AWS CLI v2 or v1 >= 1.16)."""
    return pulumi.Output.json_dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "eks",
                    "cluster": {
                        "server": cluster.endpoint,
                        "certificate-authority-data": cluster.certificate_authority.data,
                    },
                }
            ],
            "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
            "current-context": "eks",
            "users": [
                {
                    "name": "eks",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--region",
                                region,
                                "--cluster-name",
                                cluster.name,
                                "--output",
                                "json",
                            ],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


class EksCluster(pulumi.ComponentResource):
    """The cluster, its access, add-ons and managed node groups, and a provider for it.

    Attributes: ``cluster``, ``provider`` (pulumi_kubernetes, bound to this cluster),
    ``node_groups`` (key -> NodeGroup), ``node_role``, ``cluster_security_group_id``.
    Outputs: ``cluster_name``, ``cluster_arn``, ``endpoint``, ``oidc_issuer``."""

    def __init__(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:kubernetes:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        def after(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=list(resources))

        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=_assume_role_policy("eks.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=child,
        )
        self.secrets_key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"EKS {args.cluster_name}: envelope encryption of Kubernetes Secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets-key-alias",
            name=f"alias/eks/{args.cluster_name}",
            target_key_id=self.secrets_key.key_id,
            opts=child,
        )
        # EKS writes to exactly this name; made first so its retention is ours.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=control_plane_log_group_name(args.cluster_name),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_key_arn,
            tags=tags,
            opts=child,
        )
        public = bool(args.public_access_cidrs)
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            role_arn=cluster_role.arn,
            version=args.kubernetes_version,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # Add-ons are the program's own EKS add-ons below; set at creation, since
            # changing it replaces the cluster.
            bootstrap_self_managed_addons=False,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=public,
                public_access_cidrs=list(args.public_access_cidrs) if public else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(args.log_types),
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            deletion_protection=args.deletion_protection,
            tags=tags,
            opts=after(cluster_policy, log_group),
        )
        self.cluster_security_group_id = self.cluster.vpc_config.cluster_security_group_id

        admin_entry = aws.eks.AccessEntry(
            f"{name}-admin-access",
            cluster_name=self.cluster.name,
            principal_arn=args.admin_principal_arn,
            type="STANDARD",
            tags=tags,
            opts=child,
        )
        admin_policy = aws.eks.AccessPolicyAssociation(
            f"{name}-admin-policy",
            cluster_name=self.cluster.name,
            principal_arn=args.admin_principal_arn,
            policy_arn=CLUSTER_ADMIN_POLICY,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=after(admin_entry),
        )

        def addon(addon_name: str, *prerequisites: pulumi.Resource) -> aws.eks.Addon:
            return aws.eks.Addon(
                f"{name}-addon-{addon_name}",
                cluster_name=self.cluster.name,
                addon_name=addon_name,
                addon_version=args.addon_versions[addon_name],
                # The add-on's settings are EKS's defaults; overwrite drift made by hand.
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                preserve=addon_name in PRESERVED_ON_DELETE,
                tags=tags,
                opts=after(*prerequisites) if prerequisites else child,
            )

        before_nodes = [addon(addon_name) for addon_name in ADDONS_BEFORE_NODES]

        self.node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=_assume_role_policy("ec2.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=self.node_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-node-template",
            description=f"EKS {args.cluster_name} nodes: IMDSv2 hop 1, encrypted gp3 root",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=args.root_volume_size_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                for kind in ("instance", "volume")
            ],
            update_default_version=True,
            tags=tags,
            opts=child,
        )
        self.node_groups: dict[str, aws.eks.NodeGroup] = {}
        for spec in args.node_groups:
            self.node_groups[spec.key] = aws.eks.NodeGroup(
                f"{name}-nodes-{spec.key}",
                cluster_name=self.cluster.name,
                node_role_arn=self.node_role.arn,
                subnet_ids=list(args.subnet_ids),
                instance_types=list(spec.instance_types),
                ami_type=AMI_TYPES[spec.architecture],
                # Upgrading kubernetesVersion rolls the nodes onto it after the cluster.
                version=args.kubernetes_version,
                capacity_type=spec.capacity_type,
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=spec.min_size,
                    desired_size=spec.desired_size,
                    max_size=spec.max_size,
                ),
                update_config=aws.eks.NodeGroupUpdateConfigArgs(
                    max_unavailable_percentage=UPDATE_MAX_UNAVAILABLE_PERCENT
                ),
                launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                    id=launch_template.id, version=launch_template.latest_version.apply(str)
                ),
                labels={"pyscale.dev/capacity": spec.key},
                tags=tags,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*before_nodes, *node_policies, admin_policy],
                    # The Cluster Autoscaler moves the desired size between min and max.
                    ignore_changes=["scalingConfig.desiredSize"],
                ),
            )
        after_nodes = [
            addon(addon_name, *self.node_groups.values()) for addon_name in ADDONS_AFTER_NODES
        ]
        self.addons: dict[str, aws.eks.Addon] = dict(
            zip(
                (*ADDONS_BEFORE_NODES, *ADDONS_AFTER_NODES),
                (*before_nodes, *after_nodes),
                strict=True,
            )
        )

        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig(self.cluster, args.region),
            cluster_identifier=self.cluster.arn,
            # The cluster's objects are created only once its admin can reach the API.
            opts=after(admin_policy, *after_nodes),
        )
        self.register_outputs(
            {
                "cluster_name": self.cluster.name,
                "cluster_arn": self.cluster.arn,
                "endpoint": self.cluster.endpoint,
            }
        )
