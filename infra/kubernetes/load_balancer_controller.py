"""The AWS Load Balancer Controller, only to register the app's pods in the Pulumi-owned
ALB's ``ip`` target group (TargetGroupBinding); its AWS permissions through Pod Identity.

No Ingress and no ``Service: LoadBalancer``: an ALB made by the controller lives outside
Pulumi state (the policy pack and the plan can't see it; destroy order orphans it or hangs
on its finalizers), and the controller's mutating webhook would turn any LoadBalancer
Service into an NLB, so that webhook is off.

Helm, pinned: the chart's rendered objects are invisible offline (no helm binary here); the
tests check the chart, its version and every value passed. The IAM policy is the one the
controller publishes for this version (vendored: data/aws-load-balancer-controller-iam-
policy.json; checked identical to docs/install/iam_policy.json at tag v3.5.0, commit
11eb202c, 2026-08-03). The controller gets the region and VPC explicitly: with IMDS hop
limit 1 it cannot read them from instance metadata. Every value key passed exists in the
chart's values.yaml at that tag.

The image is the chart's own, by tag: chart 3.5.0 renders
``public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0`` as ``"{{ repository }}:{{ tag }}"``
(templates/deployment.yaml). No source read here publishes that tag's digest and no registry
is reachable, so it is NOT pinned by digest; to pin it, read it with ``crane digest
public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0`` and pass ``image.tag`` as
``v3.5.0@sha256:<digest>`` (the template then renders ``repository:v3.5.0@sha256:...``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from infra.kubernetes.pod_identity import PodIdentityRole, PodIdentityRoleArgs

CHART: Final = "aws-load-balancer-controller"
CHART_VERSION: Final = "3.5.0"
CHART_REPOSITORY: Final = "https://aws.github.io/eks-charts"
NAMESPACE: Final = "kube-system"
SERVICE_ACCOUNT: Final = "aws-load-balancer-controller"
IAM_POLICY_FILE: Final = (
    Path(__file__).resolve().parent / "data" / ("aws-load-balancer-controller-iam-policy.json")
)


def iam_statements() -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(IAM_POLICY_FILE.read_text())["policy"][
        "Statement"
    ]
    return statements


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    """Inputs of LoadBalancerController: the cluster, its region and VPC."""

    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)


class LoadBalancerController(pulumi.ComponentResource):
    """The controller's Helm release (its CRDs included) and Pod Identity role.
    Attribute ``release``: custom resources it serves depend on it."""

    def __init__(
        self,
        name: str,
        args: LoadBalancerControllerArgs,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pyscale:kubernetes:LoadBalancerController", name, None, opts)
        self.identity = PodIdentityRole(
            f"{name}-identity",
            PodIdentityRoleArgs(
                cluster_name=args.cluster_name,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                statements=iam_statements(),
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            namespace=NAMESPACE,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            values={
                "clusterName": args.cluster_name,
                "region": args.region,
                "vpcId": args.vpc_id,
                "replicaCount": 2,
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "enableServiceMutatorWebhook": False,
                "podDisruptionBudget": {"maxUnavailable": 1},
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
            },
            # Wait for the controller's pods: its webhook must answer before the first
            # TargetGroupBinding is applied.
            skip_await=False,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.identity]),
        )
        self.register_outputs({"role_arn": self.identity.role.arn})
