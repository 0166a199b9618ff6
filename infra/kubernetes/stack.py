"""What the Kubernetes platforms decide before any resource is registered: the pod budget
(refused, one line per problem, like any configuration error), the cluster admin and the
add-on versions (data sources, which register nothing)."""

from __future__ import annotations

import pulumi_aws as aws

from infra.kubernetes.capacity import (
    EKS_SYSTEM_PODS,
    EXISTING_CLUSTER_SYSTEM_PODS,
    CapacityError,
    CapacityPlan,
    plan_capacity,
)
from infra.kubernetes.eks_cluster import ADDONS_AFTER_NODES, ADDONS_BEFORE_NODES
from infra.settings import ConfigError, Settings
from infra.settings.platform import Platform


def capacity_plan(settings: Settings) -> CapacityPlan:
    """The checked pod budget for the stack's nodes and HPA; ConfigError naming the keys."""
    platform = settings.platform
    try:
        return plan_capacity(
            settings.fleet.instance_type,
            pods_per_node=platform.pods_per_node,
            max_nodes=settings.fleet.max_size,
            max_replicas=platform.hpa_max_replicas,
            system_pods=EKS_SYSTEM_PODS
            if platform.platform is Platform.EKS
            else EXISTING_CLUSTER_SYSTEM_PODS,
        )
    except CapacityError as error:
        raise ConfigError(settings.stack, [f"pyscale:{line}" for line in error.problems]) from None


def admin_principal_arn(settings: Settings) -> str:
    """eksAdminRoleArn, else the IAM identity running `pulumi up` (an assumed role's role:
    access entries take the role's ARN, not the session's)."""
    if settings.platform.eks_admin_role_arn is not None:
        return settings.platform.eks_admin_role_arn
    caller = aws.get_caller_identity()
    return aws.iam.get_session_context(arn=caller.arn).issuer_arn


def addon_versions(settings: Settings) -> dict[str, str]:
    """The stack's pinned add-on versions; EKS's default for the cluster version where the
    stack pins none (the plan shows which, so a pin is one copy away)."""
    pinned = settings.platform.addon_versions
    return {
        name: pinned[name]
        or aws.eks.get_addon_version(
            addon_name=name, kubernetes_version=settings.platform.kubernetes_version
        ).version
        for name in (*ADDONS_BEFORE_NODES, *ADDONS_AFTER_NODES)
    }
