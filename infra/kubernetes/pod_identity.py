"""An IAM role for one Kubernetes service account, through EKS Pod Identity.

The role trusts ``pods.eks.amazonaws.com`` (sts:AssumeRole + sts:TagSession), the same
trust for every cluster, and a PodIdentityAssociation binds it to exactly one namespace
and service account. No OIDC provider and no per-cluster ``sub``/``aud`` conditions, the
usual cause of IRSA's AccessDenied. The Pod Identity agent add-on must run on the nodes;
the launch template's IMDS hop limit of 1 keeps pods from falling back to the node role.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_aws as aws

POD_IDENTITY_PRINCIPAL: Final = "pods.eks.amazonaws.com"
TRUST_POLICY: Final = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)


@dataclass(frozen=True)
class PodIdentityRoleArgs:
    """Inputs of PodIdentityRole.

    cluster_name / namespace / service_account: who may assume the role.
    statements: the role's inline policy statements (Outputs allowed inside).
    tags: tags for the role and the association.
    """

    cluster_name: pulumi.Input[str]
    namespace: str
    service_account: str
    statements: Sequence[Mapping[str, Any]]
    tags: Mapping[str, str] = field(default_factory=dict)


class PodIdentityRole(pulumi.ComponentResource):
    """The role, its inline policy and the association. Attribute: ``role``."""

    def __init__(
        self, name: str, args: PodIdentityRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:kubernetes:PodIdentityRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.role = aws.iam.Role(
            f"{name}-role", assume_role_policy=TRUST_POLICY, tags=tags, opts=child
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=pulumi.Output.json_dumps(
                {"Version": "2012-10-17", "Statement": list(args.statements)}
            ),
            opts=child,
        )
        self.association = aws.eks.PodIdentityAssociation(
            f"{name}-association",
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=args.service_account,
            role_arn=self.role.arn,
            tags=tags,
            # Pods started after the association get credentials; the policy must be
            # there by then.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.register_outputs({"role_arn": self.role.arn})
