"""What the Kubernetes platforms decide before any resource is registered: the pod budget
(refused, one line per problem, like any configuration error), the cluster admin (a data
source, which registers nothing) and the add-on versions the stack pins."""

from __future__ import annotations

import pulumi_aws as aws

from infra.kubernetes.addon_versions import ADDONS
from infra.kubernetes.capacity import (
    EKS_SYSTEM_PODS,
    EXISTING_CLUSTER_SYSTEM_PODS,
    CapacityError,
    CapacityPlan,
    plan_capacity,
)
from infra.settings import ConfigError, Settings
from infra.settings.platform import Platform


def capacity_plan(settings: Settings) -> CapacityPlan:
    """The checked pod budget for the stack's nodes and HPA; ConfigError naming the keys."""
    platform = settings.platform
    problems: list[str] = []
    if platform.platform is Platform.EKS and settings.fleet.min_size < 1:
        # CoreDNS and the controllers need a node: with none, the CoreDNS add-on stays
        # DEGRADED (its create wait fails after 20 minutes), and the Cluster Autoscaler,
        # which would add nodes, has nowhere to run.
        problems.append(
            "pyscale:minSize: must be at least 1 on platform eks (CoreDNS and the Cluster "
            "Autoscaler need a node to run on)"
        )
    plan: CapacityPlan | None = None
    try:
        plan = plan_capacity(
            settings.fleet.instance_type,
            pods_per_node=platform.pods_per_node,
            max_nodes=settings.fleet.max_size,
            max_replicas=platform.hpa_max_replicas,
            system_pods=EKS_SYSTEM_PODS
            if platform.platform is Platform.EKS
            else EXISTING_CLUSTER_SYSTEM_PODS,
        )
    except CapacityError as error:
        problems += [f"pyscale:{line}" for line in error.problems]
    if problems or plan is None:
        raise ConfigError(settings.stack, problems)
    return plan


def admin_principal_arn(settings: Settings) -> str:
    """eksAdminRoleArn, else the IAM identity running `pulumi up` (an assumed role's role:
    access entries take the role's ARN, not the session's)."""
    if settings.platform.eks_admin_role_arn is not None:
        return settings.platform.eks_admin_role_arn
    caller = aws.get_caller_identity()
    return aws.iam.get_session_context(arn=caller.arn).issuer_arn


def addon_versions(settings: Settings) -> dict[str, str]:
    """The stack's pinned add-on versions (the settings require one for each add-on on eks,
    so none is ever left to EKS's default, which moves)."""
    pinned = settings.platform.addon_versions
    missing = [name for name in ADDONS if pinned.get(name) is None]
    if missing:  # the settings refuse this first; a guard for callers that bypass them
        raise ConfigError(
            settings.stack, [f"no version pinned for the {name} add-on" for name in missing]
        )
    return {name: str(pinned[name]) for name in ADDONS}
