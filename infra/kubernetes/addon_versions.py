"""The EKS add-on versions this project has a public source for, per Kubernetes minor.

EKS accepts only an ``addonVersion`` that DescribeAddonVersions lists for the add-on and the
cluster's version (boto3 EKS create_addon: "The version must match one of the versions
returned by DescribeAddonVersions"); anything else fails CreateAddon/UpdateAddon with
``InvalidParameterException: Addon version specified is not supported``
(hashicorp/terraform-provider-aws#32238, #33385). No machine here reaches EKS, so this table
is what the offline mocks answer DescribeAddonVersions with, and where each stack's pins
come from: every entry says where its version was read, and which are unverified.

To pin a newer version: read it from ``aws eks describe-addon-versions --addon-name <name>
--kubernetes-version <minor>``, add it here with that as its source, and set it in the stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The add-ons every eks cluster runs: those the nodes need before they can become Ready
# (networking, Service routing, pod credentials) and those that need a node to run on.
ADDONS_BEFORE_NODES: Final = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
ADDONS_AFTER_NODES: Final = ("coredns", "metrics-server")
ADDONS: Final = (*ADDONS_BEFORE_NODES, *ADDONS_AFTER_NODES)

_ALL: Final = ("1.31", "1.32", "1.33")
_NEWER: Final = ("1.34", "1.35", "1.36")
# AWS's EKS User Guide tables "latest version of the Amazon EKS add-on type for each
# Kubernetes version", as read here (the copies are undated; the newest minor each lists
# dates it).
_GUIDE_2024_12: Final = (
    "awsdocs/amazon-eks-user-guide @4d52b4d (2024-12-18), latest/ug/networking/"
    "eks-networking-add-ons.adoc, version table"
)
_KUBE_PROXY_PAGE: Final = (
    "docs.aws.amazon.com/eks/latest/userguide/managing-kube-proxy.html (and its "
    "docs.amazonaws.cn copy), kube-proxy versions table, copy listing 1.34 as newest"
)
_COREDNS_PAGE: Final = (
    "docs.aws.amazon.com/eks/latest/userguide/managing-coredns.html, CoreDNS versions "
    "table, copy listing 1.34 as newest"
)
_VPC_CNI_PAGE: Final = (
    "docs.aws.amazon.com/{ja_jp,ko_kr}/eks/latest/userguide/managing-vpc-cni.html, VPC CNI "
    "versions table, copies listing 1.33 as newest"
)
_KUBE_PROXY_PAGE_1_36: Final = (
    "docs.aws.amazon.com/ja_jp/eks/latest/userguide/managing-kube-proxy.md, kube-proxy "
    "versions table, copy listing 1.36 as newest"
)
_COREDNS_PAGE_1_36: Final = (
    "docs.aws.amazon.com/ja_jp/eks/latest/userguide/managing-coredns.md, CoreDNS versions "
    "table, copy listing 1.36 as newest"
)
_VPC_CNI_UNVERIFIED: Final = (
    "NOT VERIFIED for 1.34-1.36: AWS's VPC CNI table lists this version for 1.27-1.33 (copies "
    "listing 1.33 as newest); no copy read here lists 1.34 or newer. Check it with "
    "describe-addon-versions before relying on it"
)
_UNVERIFIED: Final = (
    "NOT VERIFIED: no AWS source read here lists this add-on's versions; the version is one "
    "seen pinned for Kubernetes 1.33 in public Terraform code (1.34-1.36: not even that). "
    "Check it with "
    "describe-addon-versions before relying on it"
)


@dataclass(frozen=True)
class KnownAddonVersion:
    """One add-on version and the Kubernetes minors it is listed for, with its source."""

    addon: str
    version: str
    kubernetes_versions: tuple[str, ...]
    source: str


KNOWN_VERSIONS: Final = (
    KnownAddonVersion("vpc-cni", "v1.19.0-eksbuild.1", ("1.31",), _GUIDE_2024_12),
    KnownAddonVersion("vpc-cni", "v1.20.1-eksbuild.3", _ALL, _VPC_CNI_PAGE),
    KnownAddonVersion("vpc-cni", "v1.20.1-eksbuild.3", _NEWER, _VPC_CNI_UNVERIFIED),
    KnownAddonVersion("kube-proxy", "v1.31.2-eksbuild.3", ("1.31",), _GUIDE_2024_12),
    KnownAddonVersion("kube-proxy", "v1.31.13-eksbuild.2", ("1.31",), _KUBE_PROXY_PAGE),
    KnownAddonVersion("kube-proxy", "v1.32.9-eksbuild.2", ("1.32",), _KUBE_PROXY_PAGE),
    KnownAddonVersion("kube-proxy", "v1.33.5-eksbuild.2", ("1.33",), _KUBE_PROXY_PAGE),
    KnownAddonVersion("kube-proxy", "v1.34.6-eksbuild.13", ("1.34",), _KUBE_PROXY_PAGE_1_36),
    KnownAddonVersion("kube-proxy", "v1.35.3-eksbuild.13", ("1.35",), _KUBE_PROXY_PAGE_1_36),
    KnownAddonVersion("kube-proxy", "v1.36.0-eksbuild.14", ("1.36",), _KUBE_PROXY_PAGE_1_36),
    KnownAddonVersion("coredns", "v1.11.3-eksbuild.2", ("1.31",), _GUIDE_2024_12),
    KnownAddonVersion("coredns", "v1.11.4-eksbuild.24", ("1.31", "1.32"), _COREDNS_PAGE),
    KnownAddonVersion("coredns", "v1.12.4-eksbuild.1", ("1.33",), _COREDNS_PAGE),
    KnownAddonVersion("coredns", "v1.13.2-eksbuild.11", ("1.34",), _COREDNS_PAGE_1_36),
    KnownAddonVersion("coredns", "v1.14.3-eksbuild.3", ("1.35", "1.36"), _COREDNS_PAGE_1_36),
    KnownAddonVersion("eks-pod-identity-agent", "v1.3.8-eksbuild.2", (*_ALL, *_NEWER), _UNVERIFIED),
    KnownAddonVersion("metrics-server", "v0.8.0-eksbuild.1", (*_ALL, *_NEWER), _UNVERIFIED),
)


def listed_versions(addon: str, kubernetes_version: str) -> list[str]:
    """The versions of ``addon`` known for this cluster minor, oldest first (as listed)."""
    return [
        known.version
        for known in KNOWN_VERSIONS
        if known.addon == addon and kubernetes_version in known.kubernetes_versions
    ]


def kube_proxy_minor(version: str) -> str:
    """kube-proxy add-on versions carry the Kubernetes minor they serve: v1.33.5-... -> 1.33."""
    return ".".join(version.removeprefix("v").split(".")[:2])
