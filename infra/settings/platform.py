"""Platform keys: where the app runs — the EC2 fleet (``ec2``, the default), an EKS cluster
the program builds (``eks``), or a Kubernetes cluster you already have (``kubernetes``) —
and the Kubernetes shape of the app.

Each key below applies to some platforms only (``APPLIES_TO``); a stack that sets a key
its platform does not use is refused naming the key, so a typo'd platform or a copied
stack never deploys with settings silently ignored. The fleet's sizes (``instanceType``,
``minSize``, ``desiredCapacity``, ``maxSize``), ``cpuTargetPercent`` and
``rootVolumeSizeGb`` size the EKS managed node group and the HPA target on eks.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Annotated, Self

from pydantic import BeforeValidator, field_validator, model_validator

from infra.kubernetes.addon_versions import kube_proxy_minor, listed_versions
from infra.kubernetes.cluster_autoscaler import RELEASES
from infra.settings.base import (
    AreaSettings,
    Problems,
    empty_is_none,
    in_place,
    matches,
    refused,
    replacement,
    setting,
)
from infra.settings.fleet import InstanceTypeName


class Platform(enum.StrEnum):
    EC2 = "ec2"
    EKS = "eks"
    KUBERNETES = "kubernetes"


class ServiceType(enum.StrEnum):
    """How the app's Service is exposed on an existing cluster (eks always uses the ALB)."""

    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


# The digest the shipped example stacks carry where only the user can supply a real one.
PLACEHOLDER_DIGEST = "@sha256:" + "0" * 64
_DIGEST_REF = r"^[a-z0-9][a-z0-9.:/_-]*@sha256:[0-9a-f]{64}$"
_ADDON_VERSION = r"^v\d+\.\d+\.\d+-eksbuild\.\d+$"
_MINOR = r"^1\.\d{2}$"
_ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$"
_NAMESPACE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DigestRef = Annotated[
    str | None,
    BeforeValidator(empty_is_none),
    matches(_DIGEST_REF, "must be an image reference by digest (repository@sha256:<64 hex>)"),
]
AddonVersion = Annotated[
    str | None,
    BeforeValidator(empty_is_none),
    matches(_ADDON_VERSION, "must be an EKS add-on version such as v1.2.3-eksbuild.1"),
]

# add-on -> the key pinning its version
ADDON_VERSION_KEYS = {
    "vpc-cni": "eksVpcCniVersion",
    "eks-pod-identity-agent": "eksPodIdentityAgentVersion",
    "kube-proxy": "eksKubeProxyVersion",
    "coredns": "eksCorednsVersion",
    "metrics-server": "eksMetricsServerVersion",
}

_ROLLS_PODS = "a new pod template: the Deployment rolls, one pod at a time"
_ADDON_CHANGE = in_place(
    "EKS updates the add-on in place (UpdateAddon; its pods roll; the deploy waits up to 20 "
    "minutes for the update); move one minor version at a time"
)
_ADDON_ALLOWED = "vX.Y.Z-eksbuild.N that describe-addon-versions lists for kubernetesVersion"


class PlatformSettings(AreaSettings):
    platform: Platform = setting(
        "platform",
        "ec2",
        doc="Where the app runs: EC2 Auto Scaling groups, an EKS cluster, or an existing "
        "Kubernetes cluster.",
        change=refused(
            "the compute moves to another platform: deploy a new stack and move traffic"
        ),
    )
    kubernetes_version: Annotated[str, matches(_MINOR, "must be a minor version like 1.33")] = (
        setting(
            "kubernetesVersion",
            "1.33",
            allowed=f"{', '.join(RELEASES)} (a Cluster Autoscaler release is pinned for each)",
            doc="eks: the cluster's pinned version (a preview warns from 90 days before its "
            "end of EKS standard support: README 'Upgrading Kubernetes'); kubernetes: the API "
            "version the manifests are validated against.",
            change=in_place(
                "eks upgrades the control plane one minor at a time, then rolls the node "
                "groups onto it; change the add-on pins (kube-proxy, coredns) with it"
            ),
        )
    )
    namespace: Annotated[str, matches(_NAMESPACE, "must be a DNS label")] = setting(
        "kubernetesNamespace",
        "pyscale",
        doc="The app's namespace (created by the program).",
        change=replacement("every app object is recreated in the new namespace"),
    )
    pods_per_node: int = setting(
        "podsPerNode",
        2,
        ge=1,
        le=250,
        doc="App pods sized to share one node: the pods' requests are the node's "
        "allocatable CPU and memory (after DaemonSets) divided by this.",
        change=in_place(_ROLLS_PODS),
    )
    hpa_min_replicas: int = setting(
        "hpaMinReplicas",
        2,
        ge=1,
        le=1000,
        doc="Fewest app pods (the HPA's minimum; also `pyscale local up`'s replicas).",
        change=in_place("the HPA adjusts the replica count"),
    )
    hpa_max_replicas: int = setting(
        "hpaMaxReplicas",
        6,
        ge=1,
        le=1000,
        doc="Most app pods (the HPA's maximum); checked against the nodes' capacity.",
        change=in_place("the HPA adjusts the replica count"),
    )
    app_image: DigestRef = setting(
        "appImage",
        "",
        allowed="repository@sha256:<digest>, or empty",
        doc="The app's container image by digest (container/Dockerfile). eks: not in the "
        "stack file: the deploy workflow passes the commit's image on every deploy (empty: "
        "the cluster without the app).",
        change=in_place(_ROLLS_PODS),
    )
    eks_public_access_cidrs: tuple[str, ...] = setting(
        "eksPublicAccessCidrs",
        (),
        allowed="IPv4 CIDRs (not 0.0.0.0/0), or empty for a private-only endpoint",
        doc="Who may reach the EKS API's public endpoint (CI's egress IPs); empty: the "
        "endpoint is private only and `pulumi up` must run inside the VPC.",
        change=in_place("EKS updates the endpoint (several minutes)"),
    )
    eks_admin_role_arn: Annotated[
        str | None, BeforeValidator(empty_is_none), matches(_ROLE_ARN, "must be an IAM role ARN")
    ] = setting(
        "eksAdminRoleArn",
        "",
        allowed="an IAM role ARN, or empty for the deploying role",
        doc="The IAM role given cluster admin through an access entry.",
        change=replacement(
            "the new role's access entry is created, then the old one deleted: if `pulumi up` "
            "runs as the old role, it loses Kubernetes access"
        ),
    )
    # Each add-on's version is pinned by the stack (required on eks): left to EKS's default
    # it would change under the stack whenever AWS moves the default, and a later `pulumi
    # up` would roll it. Versions with their sources: infra/kubernetes/addon_versions.py.
    eks_vpc_cni_version: AddonVersion = setting(
        "eksVpcCniVersion", "", allowed=_ADDON_ALLOWED,
        doc="eks: the vpc-cni add-on's version (required; nodes start only after it is "
        "ACTIVE).", change=_ADDON_CHANGE,
    )  # fmt: skip
    eks_pod_identity_agent_version: AddonVersion = setting(
        "eksPodIdentityAgentVersion", "", allowed=_ADDON_ALLOWED,
        doc="eks: the eks-pod-identity-agent add-on's version (required).",
        change=_ADDON_CHANGE,
    )  # fmt: skip
    eks_kube_proxy_version: AddonVersion = setting(
        "eksKubeProxyVersion", "", allowed=f"{_ADDON_ALLOWED}, of kubernetesVersion's minor "
        "or up to three older", doc="eks: the kube-proxy add-on's version (required).",
        change=_ADDON_CHANGE,
    )  # fmt: skip
    eks_coredns_version: AddonVersion = setting(
        "eksCorednsVersion", "", allowed=_ADDON_ALLOWED,
        doc="eks: the coredns add-on's version (required; created once nodes exist).",
        change=_ADDON_CHANGE,
    )  # fmt: skip
    eks_metrics_server_version: AddonVersion = setting(
        "eksMetricsServerVersion", "", allowed=_ADDON_ALLOWED,
        doc="eks: the metrics-server add-on's version (required; the HPA reads it).",
        change=_ADDON_CHANGE,
    )  # fmt: skip
    eks_spot_instance_types: tuple[InstanceTypeName, ...] = setting(
        "eksSpotInstanceTypes",
        (),
        allowed="EC2 instance types of one architecture, or empty for no Spot group",
        doc="Instance types of a separate Spot node group (same CPU/memory shape).",
        change=replacement("the Spot node group is replaced, new nodes first"),
    )
    eks_spot_max_size: int = setting(
        "eksSpotMaxSize",
        0,
        ge=0,
        le=1000,
        doc="Most Spot nodes (the group starts at 0; the Cluster Autoscaler adds them).",
        change=in_place(),
    )
    eks_deletion_protection: bool = setting(
        "eksDeletionProtection",
        False,
        doc="The EKS cluster refuses deletion until this is turned off (prod).",
        change=in_place(),
    )
    eks_all_control_plane_logs: bool = setting(
        "eksAllControlPlaneLogs",
        False,
        doc="Send all five control-plane log types (prod); else api, audit, authenticator.",
        change=in_place("EKS updates the cluster's logging (a few minutes)"),
    )
    kubeconfig: Annotated[str | None, BeforeValidator(empty_is_none)] = setting(
        "kubeconfig",
        "",
        allowed="a kubeconfig (set with `pulumi config set --secret`)",
        doc="kubernetes: the existing cluster's kubeconfig.",
        change=in_place("the provider is reconfigured; objects stay (clusterIdentifier)"),
    )
    cluster_identifier: Annotated[str | None, BeforeValidator(empty_is_none)] = setting(
        "clusterIdentifier",
        "",
        doc="kubernetes: a stable name for the cluster; a kubeconfig change does not "
        "replace the objects while it stays the same.",
        change=replacement("every Kubernetes object is replaced"),
    )
    redis_url: Annotated[str | None, BeforeValidator(empty_is_none)] = setting(
        "redisUrl",
        "",
        allowed="redis:// or rediss:// URL (a secret), or empty for the in-cluster Valkey",
        doc="kubernetes: an external Redis for the app's cache.",
        change=in_place(_ROLLS_PODS),
    )
    valkey_image: DigestRef = setting(
        "valkeyImage",
        "",
        allowed="docker.io/valkey/valkey:<tag>@sha256:<digest>, or empty with redisUrl",
        doc="kubernetes: the in-cluster Valkey's image by digest (used without redisUrl).",
        change=in_place("the Valkey pod restarts: the cache starts cold"),
    )
    service_type: ServiceType = setting(
        "serviceType",
        "ClusterIP",
        doc="kubernetes: the app Service's type (ClusterIP for your own Ingress).",
        change=in_place("the Service is updated; LoadBalancer makes your cluster's balancer"),
    )

    @field_validator("eks_public_access_cidrs")
    @classmethod
    def _cidrs(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in cidrs:
            try:
                network = ipaddress.IPv4Network(cidr)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IPv4 CIDR") from None
            if network.prefixlen == 0:
                raise ValueError(
                    "0.0.0.0/0 opens the cluster API to the internet: list CI's egress "
                    "CIDRs, or leave it empty for a private-only endpoint"
                )
        return cidrs

    @field_validator("kubernetes_version")
    @classmethod
    def _pinned_autoscaler(cls, version: str) -> str:
        if version not in RELEASES:
            raise ValueError(
                f"must be one of {', '.join(RELEASES)} (a Cluster Autoscaler release is "
                f"pinned for each), got {version!r}"
            )
        return version

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss://")
        return url

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        problems = Problems()
        if self.platform != Platform.EC2 and self.hpa_min_replicas > self.hpa_max_replicas:
            problems.add("hpaMinReplicas", f"must be <= hpaMaxReplicas ({self.hpa_max_replicas})")
        if self.platform == Platform.KUBERNETES:
            for key, value in (
                ("kubeconfig", self.kubeconfig),
                ("clusterIdentifier", self.cluster_identifier),
                ("appImage", self.app_image),
            ):
                if value is None:
                    problems.add(key, "is required on platform kubernetes")
            if (self.redis_url is None) == (self.valkey_image is None):
                problems.add(
                    "redisUrl",
                    "set exactly one of redisUrl (an external Redis) and valkeyImage (an "
                    "in-cluster Valkey) on platform kubernetes",
                )
        if self.platform == Platform.EKS:
            self._check_addon_versions(problems)
        if self.eks_spot_max_size and not self.eks_spot_instance_types:
            problems.add("eksSpotMaxSize", "is set but eksSpotInstanceTypes is empty")
        if self.eks_spot_instance_types and not self.eks_spot_max_size:
            problems.add("eksSpotInstanceTypes", "is set but eksSpotMaxSize is 0")
        problems.check()
        return self

    @property
    def placeholder_images(self) -> dict[str, str]:
        """kubernetes: image keys still holding the example stack's placeholder digest
        (sha256 of all zeros): a preview warns, a deploy is refused, since the pods could
        never pull it. (On eks the deploy workflow passes the commit's image.)"""
        if self.platform != Platform.KUBERNETES:
            return {}
        images = {"appImage": self.app_image, "valkeyImage": self.valkey_image}
        return {
            key: image
            for key, image in images.items()
            if image is not None and image.endswith(PLACEHOLDER_DIGEST)
        }

    def _check_addon_versions(self, problems: Problems) -> None:
        for addon, key in ADDON_VERSION_KEYS.items():
            if self.addon_versions[addon] is None:
                listed = listed_versions(addon, self.kubernetes_version)
                known = f" (known for {self.kubernetes_version}: {', '.join(listed)})"
                problems.add(
                    key,
                    f"is required on platform eks: pin the {addon} add-on's version"
                    f"{known if listed else ''}; see infra/kubernetes/addon_versions.py",
                )
        kube_proxy = self.eks_kube_proxy_version
        if kube_proxy is not None:
            # Kubernetes' version-skew policy: kube-proxy must not be newer than the API
            # server, and at most three minors older than it.
            serves = tuple(int(part) for part in kube_proxy_minor(kube_proxy).split("."))
            cluster = tuple(int(part) for part in self.kubernetes_version.split("."))
            if serves[0] != cluster[0] or not 0 <= cluster[1] - serves[1] <= 3:
                problems.add(
                    "eksKubeProxyVersion",
                    f"{kube_proxy} is kube-proxy for Kubernetes {kube_proxy_minor(kube_proxy)}"
                    f", which cannot serve kubernetesVersion {self.kubernetes_version} "
                    "(kube-proxy must not be newer than the control plane, nor more than "
                    "three minors older)",
                )

    @property
    def addon_versions(self) -> dict[str, str | None]:
        return {
            "vpc-cni": self.eks_vpc_cni_version,
            "eks-pod-identity-agent": self.eks_pod_identity_agent_version,
            "kube-proxy": self.eks_kube_proxy_version,
            "coredns": self.eks_coredns_version,
            "metrics-server": self.eks_metrics_server_version,
        }


# Which keys each platform reads, by area: a key set in the stack that its platform does not
# read is refused (loading.py), so nothing is silently ignored. ec2 reads every area but
# this one; the Kubernetes platforms read this area's keys for them and a few fleet keys.
_WORKLOAD_KEYS = frozenset(
    {"kubernetesVersion", "kubernetesNamespace", "podsPerNode", "hpaMinReplicas",
     "hpaMaxReplicas", "appImage"}
)  # fmt: skip
_EKS_KEYS = frozenset(
    {"eksPublicAccessCidrs", "eksAdminRoleArn", "eksVpcCniVersion", "eksPodIdentityAgentVersion",
     "eksKubeProxyVersion", "eksCorednsVersion", "eksMetricsServerVersion",
     "eksSpotInstanceTypes", "eksSpotMaxSize", "eksDeletionProtection", "eksAllControlPlaneLogs"}
)  # fmt: skip
_EXISTING_CLUSTER_KEYS = frozenset(
    {"kubeconfig", "clusterIdentifier", "redisUrl", "valkeyImage", "serviceType"}
)
# Fleet keys that size the Kubernetes platforms (node group, pod budget, HPA target).
_EKS_FLEET_KEYS = frozenset(
    {"instanceType", "minSize", "desiredCapacity", "maxSize", "cpuTargetPercent",
     "rootVolumeSizeGb"}
)  # fmt: skip
_EXISTING_CLUSTER_FLEET_KEYS = frozenset({"instanceType", "maxSize", "cpuTargetPercent"})


def reads(platform: Platform, area: str, key: str) -> bool:
    """Whether `platform` uses `key` of `area`."""
    if key == "platform":
        return True
    if platform is Platform.EC2:
        return area != "platform"
    if area == "platform":
        extra = _EKS_KEYS if platform is Platform.EKS else _EXISTING_CLUSTER_KEYS
        return key in _WORKLOAD_KEYS | extra
    if area == "fleet":
        keys = _EKS_FLEET_KEYS if platform is Platform.EKS else _EXISTING_CLUSTER_FLEET_KEYS
        return key in keys
    if area == "release":
        return True  # the image carries the same release (appSourceDir, wsgiModule)
    # network, edge, cache, monitoring: AWS pieces eks builds and an existing cluster lacks
    return platform is Platform.EKS


def platform_key_problems(platform: Platform, given: dict[str, str]) -> list[str]:
    """One line per key (name -> area) that the stack sets but `platform` does not read."""
    problems = []
    for key, area in sorted(given.items()):
        if not reads(platform, area, key):
            users = [other.value for other in Platform if reads(other, area, key)]
            problems.append(
                f"pyscale:{key}: is not used on platform {platform.value} (it applies to "
                f"{' and '.join(users)}): remove it from the stack, or set pyscale:platform"
            )
    return problems
