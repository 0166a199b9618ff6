"""The Cluster Autoscaler as typed objects (ServiceAccount, RBAC, Deployment, PDB) with its
AWS permissions through EKS Pod Identity, scoped to this cluster's node groups by tag.

Why the Cluster Autoscaler and not Karpenter: the blueprint's unit is an auto-scaling
group whose instance size the stack chooses, which is exactly a managed node group; CAS
moves each group's desired size between its min and max. Karpenter launches nodes outside
any group, needs SQS/EventBridge interruption handling, a node role and access entry, CRDs
(NodePool, EC2NodeClass) these tests cannot validate, and still a node group for itself;
AWS's best-practices guide reserves it for spiky or diverse compute (README, "Deploy to
EKS").

The image's minor version matches the cluster's ("cross version compatibility is not tested
or supported", EKS best practices), and it is pinned by digest: the digest of each tag is the
multi-arch index that kubernetes/k8s.io's image-promoter manifest
(registry.k8s.io/images/k8s-staging-autoscaling/images.yaml, entry ``cluster-autoscaler``)
promoted to registry.k8s.io/autoscaling: 1.31-1.33 as read at kubernetes/k8s.io @ fe84f3f6;
1.34-1.36 as read in the same file of the fork soltysh/k8s.io @ 2d7cc8e8 (the store's
kubernetes/k8s.io copy stops at v1.33.1; the fork's file also lists every digest above
unchanged, and its v1.35.0, v1.35.2 and v1.36.1 digests match pins seen in public code). No
registry is reachable here, so the digests are that manifest's, not a pull's: ``crane
digest registry.k8s.io/autoscaling/cluster-autoscaler:<tag>`` must print the same.

RBAC: the rules of kubernetes/autoscaler's AWS example manifest
(cloudprovider/aws/examples/cluster-autoscaler-autodiscover.yaml) at the release's own tag,
vendored under data/ with its commit, minus what that release's code never uses
(``OMITTED_UPSTREAM_PERMISSIONS``, each with the code that shows it); a spec compares the
two. IAM actions follow the AWS cloud provider's README.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from infra.kubernetes.pod_identity import PodIdentityRole, PodIdentityRoleArgs
from infra.kubernetes.pod_security import restricted_container, restricted_pod

NAMESPACE: Final = "kube-system"
NAME: Final = "cluster-autoscaler"
STATUS_CONFIG_MAP: Final = "cluster-autoscaler-status"
IMAGE_REPOSITORY: Final = "registry.k8s.io/autoscaling/cluster-autoscaler"
DATA: Final = Path(__file__).resolve().parent / "data"
CPU: Final = "100m"
MEMORY: Final = "600Mi"
NOBODY: Final = 65534

# One RBAC rule: (API group, resources, verbs, resource names); no names = any object.
Rule = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True)
class AutoscalerRelease:
    """The Cluster Autoscaler release pinned for one Kubernetes minor version.

    tag / digest: the image (digest of the multi-arch index, from the promoter manifest).
    storage_resources: the storage.k8s.io objects its scheduler simulation watches (the
        1.33 scheduler framework also counts VolumeAttachments: upstream added the rule in
        kubernetes/autoscaler 442ad2d5, "Fix failed to watch *v1.VolumeAttachment").
    upstream_rbac: the example manifest's ClusterRole and Role at the release's tag.
    dra_resources: the resource.k8s.io objects it lists (Dynamic Resource Allocation, on
        and locked on from 1.35: config/flags/flags.go "--enable-dynamic-resource-allocation
        ... locked to true"; simulator/dynamicresources/provider/provider.go lists
        ResourceClaims, ResourceSlices and DeviceClasses).
    """

    tag: str
    digest: str
    storage_resources: tuple[str, ...]
    upstream_rbac: Path
    dra_resources: tuple[str, ...] = ()

    @property
    def image(self) -> str:
        return f"{IMAGE_REPOSITORY}:{self.tag}@{self.digest}"


_STORAGE = ("storageclasses", "csinodes", "csidrivers", "csistoragecapacities")
_DRA = ("deviceclasses", "resourceslices", "resourceclaims")
# The newest patch of each minor in the promoter manifest (above); the example manifests are
# those of tags cluster-autoscaler-1.31.3 (0f59059c), -1.32.2 (f302c917), -1.33.1
# (c95a8d9f), -1.34.5 (cb2123ed), -1.35.2 (2d425888) and -1.36.1 (35e8a280), read in
# kubernetes/autoscaler @ 55c37cd5 (2026-08-22).
RELEASES: Final = {
    "1.31": AutoscalerRelease(
        "v1.31.3",
        "sha256:b5ac5d93d0e43c6f4f14b0a3994ff905ed169aa0d614d7af702eca0a254cb8a8",
        _STORAGE,
        DATA / "cluster-autoscaler-rbac-v1.31.3.yaml",
    ),
    "1.32": AutoscalerRelease(
        "v1.32.2",
        "sha256:c627d8d159a8cd6705a2612afd8a9ffc499e2fc37bad3525364427439b9224c0",
        _STORAGE,
        DATA / "cluster-autoscaler-rbac-v1.32.2.yaml",
    ),
    "1.33": AutoscalerRelease(
        "v1.33.1",
        "sha256:0d53371b73eae57dbed927a72b71d4fe756ce4dbfe528b4217a1078cb13445f0",
        (*_STORAGE, "volumeattachments"),
        DATA / "cluster-autoscaler-rbac-v1.33.1.yaml",
    ),
    "1.34": AutoscalerRelease(
        "v1.34.5",
        "sha256:5c3a56440ffc76eac79e7d7e840153c1fbe7b6e02d415e76a45ba2e0ef99a266",
        (*_STORAGE, "volumeattachments"),
        DATA / "cluster-autoscaler-rbac-v1.34.5.yaml",
    ),
    # 1.35.2's example manifest grants no resource.k8s.io read although the release lists
    # those objects (DRA locked on): upstream added the rule after the tag (af108c1a and
    # 71612d68, 2026-04-14; in -1.36.1's manifest). Granted here: ADDED_TO_UPSTREAM.
    "1.35": AutoscalerRelease(
        "v1.35.2",
        "sha256:aac369dc283927a623deb1af54696efcc722ae79255aa07788422e495bab887d",
        (*_STORAGE, "volumeattachments"),
        DATA / "cluster-autoscaler-rbac-v1.35.2.yaml",
        _DRA,
    ),
    "1.36": AutoscalerRelease(
        "v1.36.1",
        "sha256:461388d03eb5b55db58941ee7a81d9a619dd15302b01cbab9f5a9946715994b4",
        (*_STORAGE, "volumeattachments"),
        DATA / "cluster-autoscaler-rbac-v1.36.1.yaml",
        _DRA,
    ),
}

_READ = ("get", "list", "watch")
# What the upstream example grants that these releases never use (checked in the code at
# each tag), as (API group, resource, verb, resource name or "" for any) with the reason.
OMITTED_UPSTREAM_PERMISSIONS: Final = (
    *(
        (("", "endpoints", verb, name), "the leader lock is a Lease (main.go: ResourceLock: "
         "resourcelock.LeasesResourceLock); nothing reads or writes Endpoints")
        for verb, name in (("create", ""), ("patch", ""), ("get", NAME), ("update", NAME))
    ),
    *(
        (("extensions", resource, verb, ""), "the extensions group has served none of these "
         "since Kubernetes 1.16; the listers use apps/v1 and batch/v1 (utils/kubernetes/"
         "listers.go)")
        for resource in ("replicasets", "daemonsets", "jobs")
        for verb in (*_READ, "patch")
        if resource == "jobs" or verb != "patch"
    ),
    (("batch", "jobs", "patch", ""), "jobs are only listed (listers.go: Jobs().Lister())"),
    *(
        (("", "configmaps", verb, name), "only the priority expander lists, watches or reads "
         "cluster-autoscaler-priority-expander (expander/factory); this Deployment uses "
         "--expander=least-waste, and the status ConfigMap is only got, created, updated "
         "and deleted (clusterstate/utils/status.go)")
        for verb, name in (
            ("list", ""),
            ("watch", ""),
            ("watch", STATUS_CONFIG_MAP),
            *((verb, "cluster-autoscaler-priority-expander")
              for verb in ("delete", "get", "update", "watch")),
        )
    ),
)  # fmt: skip


# What a release needs beyond its own example manifest (tag -> grants), each with the code.
ADDED_TO_UPSTREAM: Final = {
    "v1.35.2": tuple(
        (("resource.k8s.io", resource, verb, ""), "DRA is locked on in 1.35 and its provider "
         "lists these (dra_resources above); the tag's example manifest predates the rule")
        for resource in _DRA
        for verb in _READ
    ),
}  # fmt: skip


def cluster_rules(release: AutoscalerRelease) -> tuple[Rule, ...]:
    """The ClusterRole: what the release reads to simulate scheduling, evicts and writes."""
    dra: tuple[Rule, ...] = (
        (("resource.k8s.io", release.dra_resources, _READ, ()),) if release.dra_resources else ()
    )
    return (
        ("", ("events",), ("create", "patch"), ()),
        ("", ("pods/eviction",), ("create",), ()),
        ("", ("pods/status",), ("update",), ()),
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
            _READ,
            (),
        ),
        ("policy", ("poddisruptionbudgets",), ("watch", "list"), ()),
        ("apps", ("statefulsets", "replicasets", "daemonsets"), _READ, ()),
        *dra,
        ("storage.k8s.io", release.storage_resources, _READ, ()),
        ("batch", ("jobs",), _READ, ()),
        ("coordination.k8s.io", ("leases",), ("create",), ()),
        ("coordination.k8s.io", ("leases",), ("get", "update"), (NAME,)),
    )


# The Role in kube-system: its status ConfigMap (create cannot be limited by name in RBAC).
NAMESPACE_RULES: Final[tuple[Rule, ...]] = (
    ("", ("configmaps",), ("create",), ()),
    ("", ("configmaps",), ("delete", "get", "update"), (STATUS_CONFIG_MAP,)),
)


class UnsupportedKubernetesVersionError(ValueError):
    """No Cluster Autoscaler release is pinned for this Kubernetes minor version."""


def release_for(kubernetes_version: str) -> AutoscalerRelease:
    minor = ".".join(kubernetes_version.split(".")[:2])
    release = RELEASES.get(minor)
    if release is None:
        raise UnsupportedKubernetesVersionError(
            f"no Cluster Autoscaler release pinned for Kubernetes {minor} (pinned: "
            f"{', '.join(RELEASES)}): add it to RELEASES in {__name__}"
        )
    return release


def image_for(kubernetes_version: str) -> str:
    return release_for(kubernetes_version).image


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


def _rules(rules: tuple[Rule, ...]) -> list[k8s.rbac.v1.PolicyRuleArgs]:
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
        release = release_for(args.kubernetes_version)
        image = release.image
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
            rules=_rules(cluster_rules(release)),
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
