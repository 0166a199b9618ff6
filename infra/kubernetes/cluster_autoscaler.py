"""The Cluster Autoscaler as typed objects (ServiceAccount, RBAC, Deployment, PDB) with its
AWS permissions through EKS Pod Identity, scoped to this cluster's node groups by tag.

Why the Cluster Autoscaler and not Karpenter: the blueprint's unit is an auto-scaling
group whose instance size the stack chooses, which is exactly a managed node group; CAS
moves each group's desired size between its min and max. Karpenter launches nodes outside
any group, needs SQS/EventBridge interruption handling, a node role and access entry, CRDs
(NodePool, EC2NodeClass) these tests cannot validate, and still a node group for itself;
AWS's best-practices guide reserves it for spiky or diverse compute (README, "Deploy to
EKS").

The RBAC rules and IAM actions follow kubernetes/autoscaler's AWS example manifest
(cluster-autoscaler-autodiscover.yaml) and AWS cloud-provider README; the image's minor
version must match the cluster's ("cross version compatibility is not tested or
supported", EKS best practices).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from infra.kubernetes.pod_identity import PodIdentityRole, PodIdentityRoleArgs
from infra.kubernetes.pod_security import restricted_container, restricted_pod

NAMESPACE: Final = "kube-system"
NAME: Final = "cluster-autoscaler"
# registry.k8s.io/autoscaling/cluster-autoscaler tags per Kubernetes minor (the project's
# release for that minor; by tag: no registry is reachable here to resolve digests).
IMAGE_TAGS: Final = {"1.31": "v1.31.0", "1.32": "v1.32.0", "1.33": "v1.33.0"}
IMAGE_REPOSITORY: Final = "registry.k8s.io/autoscaling/cluster-autoscaler"
CPU: Final = "100m"
MEMORY: Final = "600Mi"
NOBODY: Final = 65534

_READ = ["get", "list", "watch"]
# One RBAC rule: API group, resources, verbs, resource names (empty: every object).
Rule = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
CLUSTER_RULES: Final[tuple[Rule, ...]] = (
    ("", ("events", "endpoints"), ("create", "patch"), ()),
    ("", ("pods/eviction",), ("create",), ()),
    ("", ("pods/status",), ("update",), ()),
    ("", ("endpoints",), ("get", "update"), (NAME,)),
    ("", ("nodes",), ("watch", "list", "get", "update"), ()),
    (
        "",
        (
            "namespaces",
            "pods",
            "services",
            "replicationcontrollers",
            "persistentvolumeclaims",
            "persistentvolumes",
        ),
        tuple(_READ),
        (),
    ),
    ("extensions", ("replicasets", "daemonsets"), tuple(_READ), ()),
    ("policy", ("poddisruptionbudgets",), ("watch", "list"), ()),
    ("apps", ("statefulsets", "replicasets", "daemonsets"), tuple(_READ), ()),
    (
        "storage.k8s.io",
        ("storageclasses", "csinodes", "csidrivers", "csistoragecapacities"),
        tuple(_READ),
        (),
    ),
    ("batch", ("jobs", "cronjobs"), tuple(_READ), ()),
    ("coordination.k8s.io", ("leases",), ("create",), ()),
    ("coordination.k8s.io", ("leases",), ("get", "update"), (NAME,)),
)
NAMESPACE_RULES: Final[tuple[Rule, ...]] = (
    ("", ("configmaps",), ("create", "list", "watch"), ()),
    (
        "",
        ("configmaps",),
        ("delete", "get", "update", "watch"),
        ("cluster-autoscaler-status", "cluster-autoscaler-priority-expander"),
    ),
)


class UnsupportedKubernetesVersionError(ValueError):
    """No Cluster Autoscaler release is pinned for this Kubernetes minor version."""


def image_for(kubernetes_version: str) -> str:
    minor = ".".join(kubernetes_version.split(".")[:2])
    tag = IMAGE_TAGS.get(minor)
    if tag is None:
        raise UnsupportedKubernetesVersionError(
            f"no Cluster Autoscaler release pinned for Kubernetes {minor} (pinned: "
            f"{', '.join(IMAGE_TAGS)}): add its tag to IMAGE_TAGS in {__name__}"
        )
    return f"{IMAGE_REPOSITORY}:{tag}"


def iam_statements(cluster_name: str, region: str, account_id: str) -> list[dict[str, Any]]:
    """Read what discovery needs anywhere; change capacity only of this cluster's groups
    (EKS tags a managed node group's ASG ``k8s.io/cluster-autoscaler/<cluster>=owned``)."""
    return [
        {
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            "Resource": "*",
        },
        {
            "Sid": "DescribeOwnNodeGroups",
            "Effect": "Allow",
            "Action": ["eks:DescribeNodegroup"],
            "Resource": f"arn:aws:eks:{region}:{account_id}:nodegroup/{cluster_name}/*",
        },
        {
            "Sid": "ScaleOwnNodeGroups",
            "Effect": "Allow",
            "Action": [
                "autoscaling:SetDesiredCapacity",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                }
            },
        },
    ]


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    """Inputs of ClusterAutoscaler: the cluster's name, version, region and account."""

    cluster_name: str
    kubernetes_version: str
    region: str
    account_id: str
    tags: Mapping[str, str] = field(default_factory=dict)


def _rules(rules: Iterable[Rule]) -> list[k8s.rbac.v1.PolicyRuleArgs]:
    return [
        k8s.rbac.v1.PolicyRuleArgs(
            api_groups=[group],
            resources=list(resources),
            verbs=list(verbs),
            resource_names=list(names) or None,
        )
        for group, resources, verbs, names in rules
    ]


class ClusterAutoscaler(pulumi.ComponentResource):
    """CAS in kube-system, bound to the cluster's provider."""

    def __init__(
        self,
        name: str,
        args: ClusterAutoscalerArgs,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pyscale:kubernetes:ClusterAutoscaler", name, None, opts)
        image = image_for(args.kubernetes_version)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "pulumi"}
        metadata = k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=NAMESPACE, labels=labels)
        cluster_metadata = k8s.meta.v1.ObjectMetaArgs(name=NAME, labels=labels)
        subject = k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=NAME, namespace=NAMESPACE)

        self.identity = PodIdentityRole(
            f"{name}-identity",
            PodIdentityRoleArgs(
                cluster_name=args.cluster_name,
                namespace=NAMESPACE,
                service_account=NAME,
                statements=iam_statements(args.cluster_name, args.region, args.account_id),
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=metadata, opts=child
        )
        cluster_role = k8s.rbac.v1.ClusterRole(
            f"{name}-cluster-role",
            metadata=cluster_metadata,
            rules=_rules(CLUSTER_RULES),
            opts=child,
        )
        cluster_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-cluster-role-binding",
            metadata=cluster_metadata,
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=NAME
            ),
            subjects=[subject],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[cluster_role])
            ),
        )
        role = k8s.rbac.v1.Role(
            f"{name}-role", metadata=metadata, rules=_rules(NAMESPACE_RULES), opts=child
        )
        role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-role-binding",
            metadata=metadata,
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=NAME
            ),
            subjects=[subject],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[role])),
        )
        selector = {"app.kubernetes.io/name": NAME}
        health_probe = k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/health-check", port=8085),
            period_seconds=30,
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata,
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,  # one active instance (leader election), no HPA here
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=NAME,
                        priority_class_name="system-cluster-critical",
                        security_context=restricted_pod(NOBODY, fs_group=False),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name=NAME,
                                image=image,
                                command=[
                                    "./cluster-autoscaler",
                                    "--cloud-provider=aws",
                                    "--v=2",
                                    "--node-group-auto-discovery=asg:tag="
                                    "k8s.io/cluster-autoscaler/enabled,"
                                    f"k8s.io/cluster-autoscaler/{args.cluster_name}",
                                    "--balance-similar-node-groups",
                                    "--expander=least-waste",
                                    # The app's pods use emptyDirs (/tmp, metrics): with the
                                    # default (true) no node running one could scale down.
                                    "--skip-nodes-with-local-storage=false",
                                ],
                                env=[k8s.core.v1.EnvVarArgs(name="AWS_REGION", value=args.region)],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": CPU, "memory": MEMORY},
                                    limits={"memory": MEMORY},
                                ),
                                # CAS serves /health-check on its metrics port (8085).
                                readiness_probe=health_probe,
                                liveness_probe=health_probe,
                                security_context=restricted_container(),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[account, cluster_binding, role_binding, self.identity]
                ),
            ),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=metadata,
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector)
            ),
            opts=child,
        )
        self.register_outputs({"image": image, "role_arn": self.identity.role.arn})
