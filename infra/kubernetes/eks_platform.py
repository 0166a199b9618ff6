"""The eks platform: the cluster, its controllers, the app's image repository and IAM, and
the app workload behind the stack's ALB, cached by the stack's ElastiCache.

The network, security groups, ALB (with an ``ip`` target group) and cache are the same
components as on ec2, built before this one. Here:
- the EKS cluster and its managed node groups sized by the fleet keys (EksCluster);
- the Cluster Autoscaler and the AWS Load Balancer Controller, through Pod Identity;
- security-group rules: the ALB may reach the pods' port on the nodes (EKS puts managed
  nodes in the cluster security group), the pods may reach the cache;
- the app's Pod Identity role, reading exactly the cache's AUTH secret, or connecting as
  exactly the app's cache user (cacheAuth: iam);
- the ECR repository, and the app workload once ``appImage`` names an image (the first
  deploy creates the repository for the image to be pushed to; see README).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from app.contract import DEFAULT_PORT, Env
from infra import instance_types
from infra.cache import CacheConnection
from infra.kubernetes.capacity import CapacityPlan
from infra.kubernetes.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from infra.kubernetes.eks_cluster import (
    ALL_LOG_TYPES,
    EksCluster,
    EksClusterArgs,
    NodeGroupSpec,
)
from infra.kubernetes.image_repository import (
    ImageRepository,
    ImageRepositoryArgs,
    repository_name,
)
from infra.kubernetes.load_balancer_controller import (
    LoadBalancerController,
    LoadBalancerControllerArgs,
)
from infra.kubernetes.pod_identity import PodIdentityRole, PodIdentityRoleArgs
from infra.kubernetes.workload import APP_NAME, AppWorkload, WorkloadArgs
from infra.settings import FleetSettings, ReleaseSettings
from infra.settings.platform import PlatformSettings

ESSENTIAL_LOG_TYPES = ("api", "audit", "authenticator")


def cache_environment(cache: CacheConnection, region: str) -> dict[str, pulumi.Input[str]]:
    """The app's cache variables, as the EC2 boot script sets them (infra/boot)."""
    scheme = "rediss" if cache.tls else "redis"
    environment: dict[str, pulumi.Input[str]] = {
        Env.REDIS_URL: pulumi.Output.concat(scheme, "://", cache.endpoint, ":", str(cache.port)),
        Env.REDIS_CLUSTER: "true" if cache.cluster_mode else "false",
        Env.CACHE_TTL_SECONDS: str(cache.ttl_seconds),
        Env.AWS_REGION: region,
    }
    if cache.auth_secret_arn is not None:
        environment[Env.REDIS_AUTH_SECRET_ARN] = cache.auth_secret_arn
    if cache.iam_user is not None:
        environment[Env.REDIS_IAM_USER] = cache.iam_user.user_id
        environment[Env.REDIS_IAM_REPLICATION_GROUP] = cache.iam_user.replication_group_id
    return environment


def app_pod_statements(
    cache: CacheConnection, region: str, key_arn: pulumi.Input[str] | None
) -> list[dict[str, object]]:
    """What the app's pods may do with their Pod Identity role: read exactly the cache's
    AUTH secret (decrypting it with the stack key, through Secrets Manager only, when
    customerManagedKey is on), or connect as exactly the app's cache user (cacheAuth: iam).
    The same grants as the EC2 instance role's (infra/fleet.py)."""
    statements: list[dict[str, object]] = []
    if cache.auth_secret_arn is not None:
        statements.append(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": cache.auth_secret_arn,
            }
        )
        if key_arn is not None:
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": key_arn,
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
                    },
                }
            )
    if cache.iam_user is not None:
        statements.append(cache.iam_user.connect_statement())
    return statements


@dataclass(frozen=True)
class EksPlatformArgs:
    """Inputs of EksPlatform.

    platform / fleet / release: the stack's settings of those areas.
    capacity: the pod budget, checked before any resource (capacity.plan_capacity).
    admin_principal_arn: cluster admin (eksAdminRoleArn or the deploying role).
    addon_versions: add-on -> version (the stack's pins, else EKS's defaults).
    region / account_id / log_retention_days / tags: the stack's.
    vpc_id / private_subnet_ids / forwarded_allow_ips: from Network.
    alb_security_group_id / cache_security_group_id: from SecurityGroups.
    target_group_arn: the ALB's ``ip`` target group.
    cache: how the app reaches the cache.
    key_arn: the stack's KMS key for the control-plane log group and the cache secret
        (customerManagedKey); None: AWS managed keys.
    """

    platform: PlatformSettings
    fleet: FleetSettings
    release: ReleaseSettings
    capacity: CapacityPlan
    admin_principal_arn: pulumi.Input[str]
    addon_versions: Mapping[str, str]
    region: str
    account_id: str
    log_retention_days: int
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    forwarded_allow_ips: str
    alb_security_group_id: pulumi.Input[str]
    cache_security_group_id: pulumi.Input[str]
    cache_port: int
    target_group_arn: pulumi.Input[str]
    cache: CacheConnection
    key_arn: pulumi.Input[str] | None
    tags: Mapping[str, str] = field(default_factory=dict)


def node_groups(platform: PlatformSettings, fleet: FleetSettings) -> list[NodeGroupSpec]:
    architecture = instance_types.lookup(fleet.instance_type).linux_architecture()
    groups = [
        NodeGroupSpec(
            "on-demand",
            "ON_DEMAND",
            (fleet.instance_type,),
            architecture,
            fleet.min_size,
            fleet.desired_capacity,
            fleet.max_size,
        )
    ]
    if platform.eks_spot_instance_types:
        spot = platform.eks_spot_instance_types
        groups.append(
            NodeGroupSpec(
                "spot",
                "SPOT",
                tuple(spot),
                instance_types.lookup(spot[0]).linux_architecture(),
                0,
                0,
                platform.eks_spot_max_size,
            )
        )
    return groups


class EksPlatform(pulumi.ComponentResource):
    """Outputs: ``cluster_name``, ``image_repository_url``, ``namespace``."""

    def __init__(
        self, name: str, args: EksPlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:kubernetes:EksPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        platform = args.platform
        tags = dict(args.tags)
        self.repository = ImageRepository(
            f"{name}-image",
            ImageRepositoryArgs(repository_name=repository_name(name), tags=tags),
            child,
        )
        self.eks = EksCluster(
            f"{name}-eks",
            EksClusterArgs(
                cluster_name=name,
                kubernetes_version=platform.kubernetes_version,
                vpc_id=args.vpc_id,
                subnet_ids=args.private_subnet_ids,
                public_access_cidrs=platform.eks_public_access_cidrs,
                admin_principal_arn=args.admin_principal_arn,
                log_types=ALL_LOG_TYPES
                if platform.eks_all_control_plane_logs
                else ESSENTIAL_LOG_TYPES,
                log_retention_days=args.log_retention_days,
                log_key_arn=args.key_arn,
                deletion_protection=platform.eks_deletion_protection,
                node_groups=node_groups(platform, args.fleet),
                root_volume_size_gb=args.fleet.root_volume_size_gb,
                addon_versions=args.addon_versions,
                region=args.region,
                tags=tags,
            ),
            child,
        )
        cluster_name = self.eks.cluster.name
        # Managed nodes (no security groups in their launch template) are in the cluster
        # security group: the ALB reaches the pods' port there, the pods reach the cache.
        # The ALB's group allows only the egress it is given (SecurityGroups).
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-out-to-pods",
            security_group_id=args.alb_security_group_id,
            referenced_security_group_id=self.eks.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=DEFAULT_PORT,
            to_port=DEFAULT_PORT,
            description="ALB to the app pods (TargetGroupBinding ip targets)",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-alb-to-pods",
            security_group_id=self.eks.cluster_security_group_id,
            referenced_security_group_id=args.alb_security_group_id,
            ip_protocol="tcp",
            from_port=DEFAULT_PORT,
            to_port=DEFAULT_PORT,
            description="ALB to the app pods (TargetGroupBinding ip targets)",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-pods-to-cache",
            security_group_id=args.cache_security_group_id,
            referenced_security_group_id=self.eks.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=args.cache_port,
            to_port=args.cache_port,
            description="EKS pods to the cache",
            opts=child,
        )
        on_cluster = pulumi.ResourceOptions(parent=self, depends_on=[self.eks])
        ClusterAutoscaler(
            f"{name}-autoscaler",
            ClusterAutoscalerArgs(
                cluster_name=name,
                kubernetes_version=platform.kubernetes_version,
                region=args.region,
                account_id=args.account_id,
                tags=tags,
            ),
            self.eks.provider,
            on_cluster,
        )
        controller = LoadBalancerController(
            f"{name}-lb-controller",
            LoadBalancerControllerArgs(
                cluster_name=cluster_name, region=args.region, vpc_id=args.vpc_id, tags=tags
            ),
            self.eks.provider,
            on_cluster,
        )
        # EKS sets a pod's Pod Identity variables when the pod is created, from the
        # associations that exist then (CreatePodIdentityAssociation: "If a pod uses a
        # service account that has an association, Amazon EKS sets environment variables in
        # the containers of the pod"): the app's pods start only after its association.
        app_prerequisites: list[pulumi.Resource] = [controller]
        app_statements = app_pod_statements(args.cache, args.region, args.key_arn)
        if app_statements:
            app_identity = PodIdentityRole(
                f"{name}-app-identity",
                PodIdentityRoleArgs(
                    cluster_name=cluster_name,
                    namespace=platform.namespace,
                    service_account=APP_NAME,
                    statements=app_statements,
                    tags=tags,
                ),
                on_cluster,
            )
            app_prerequisites.append(app_identity)
        self.workload: AppWorkload | None = None
        if platform.app_image is None:
            pulumi.log.warn(
                "pyscale:appImage is empty: the cluster and its image repository are created "
                "but no app runs yet; the deploy workflow pushes the commit's image and passes "
                "its digest (README, Deploy to EKS)"
            )
        else:
            self.workload = AppWorkload(
                f"{name}-app",
                WorkloadArgs(
                    namespace=platform.namespace,
                    image=platform.app_image,
                    capacity=args.capacity,
                    min_replicas=platform.hpa_min_replicas,
                    max_replicas=platform.hpa_max_replicas,
                    cpu_target_percent=args.fleet.cpu_target_percent,
                    wsgi_module=args.release.wsgi_module,
                    environment={
                        **cache_environment(args.cache, args.region),
                        Env.APP_VERSION: platform.app_image.rsplit("@sha256:", 1)[1][:12],
                        Env.FORWARDED_ALLOW_IPS: args.forwarded_allow_ips,
                    },
                    readiness_gates=True,
                    target_group_arn=args.target_group_arn,
                    vpc_id=args.vpc_id,
                ),
                self.eks.provider,
                pulumi.ResourceOptions(parent=self, depends_on=app_prerequisites),
            )
        self.image_repository_url = self.repository.repository_url
        self.register_outputs(
            {
                "cluster_name": cluster_name,
                "image_repository_url": self.image_repository_url,
                "namespace": platform.namespace,
            }
        )
