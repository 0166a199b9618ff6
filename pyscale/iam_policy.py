"""`pyscale iam-policy --stack prod`: the IAM policy the deploy role needs for what the
stack's program registers, as a document to attach (``aws iam create-policy
--policy-document file://deploy-policy.json``).

The stack's program is run offline (pyscale.offline, as `pyscale plan` does); every
resource type and data source it registers must have an entry in RESOURCE_ACTIONS /
DATA_SOURCE_ACTIONS, so a new resource type cannot ship without its permissions (the
command, and tests/deploy/test_iam_policy.py, refuse an unknown one by name).

The actions per type are the create/read/update/delete calls of terraform-provider-aws's
resource for it (internal/service/<service>/<resource>.go), which pulumi-aws runs. Reads
are granted per service as ``Describe*``/``Get*``/``List*``: the provider's Read of a
resource calls several of them and reading is harmless. Writes are named one by one.
Where AWS names what the stack creates predictably (Pulumi's autonames start with the
component name, ``<project>-<stack>-``), the statement is scoped to those names: S3
buckets, IAM roles and instance profiles, secrets, the AL2023 AMI parameters.

Not covered here, because they are the backend's and not the stack's: the state bucket and
the secrets provider's KMS key (README, CI/CD one-time setup).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

# Resource types of providers that call no AWS API.
NON_AWS_PREFIXES: Final = ("random:", "pulumi:", "kubernetes:")

RESOURCE_ACTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    # -- network ------------------------------------------------------------------------
    "aws:ec2/vpc:Vpc": ("ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute"),
    "aws:ec2/subnet:Subnet": ("ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:ModifySubnetAttribute"),
    "aws:ec2/internetGateway:InternetGateway": (
        "ec2:CreateInternetGateway",
        "ec2:DeleteInternetGateway",
        "ec2:AttachInternetGateway",
        "ec2:DetachInternetGateway",
    ),
    "aws:ec2/eip:Eip": ("ec2:AllocateAddress", "ec2:ReleaseAddress", "ec2:DisassociateAddress"),
    "aws:ec2/natGateway:NatGateway": ("ec2:CreateNatGateway", "ec2:DeleteNatGateway"),
    "aws:ec2/routeTable:RouteTable": ("ec2:CreateRouteTable", "ec2:DeleteRouteTable"),
    "aws:ec2/route:Route": ("ec2:CreateRoute", "ec2:DeleteRoute", "ec2:ReplaceRoute"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (
        "ec2:AssociateRouteTable",
        "ec2:DisassociateRouteTable",
        "ec2:ReplaceRouteTableAssociation",
    ),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (
        "ec2:CreateVpcEndpoint",
        "ec2:DeleteVpcEndpoints",
        "ec2:ModifyVpcEndpoint",
    ),
    "aws:ec2/flowLog:FlowLog": ("ec2:*FlowLogs",),  # Create, Delete (Describe: read)
    # The provider revokes a new group's default egress rule and manages rules by
    # authorize/revoke.
    "aws:ec2/securityGroup:SecurityGroup": (
        "ec2:CreateSecurityGroup",
        "ec2:DeleteSecurityGroup",
        "ec2:AuthorizeSecurityGroup*",
        "ec2:AuthorizeSecurityGroup*",
        "ec2:RevokeSecurityGroup*",
        "ec2:RevokeSecurityGroup*",
    ),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": (
        "ec2:AuthorizeSecurityGroup*",
        "ec2:AuthorizeSecurityGroup*",
        "ec2:RevokeSecurityGroup*",
        "ec2:RevokeSecurityGroup*",
    ),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "ec2:AuthorizeSecurityGroup*",
        "ec2:RevokeSecurityGroup*",
        "ec2:ModifySecurityGroupRules",
    ),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        "ec2:AuthorizeSecurityGroup*",
        "ec2:RevokeSecurityGroup*",
        "ec2:ModifySecurityGroupRules",
    ),
    # -- fleet --------------------------------------------------------------------------
    "aws:ec2/launchTemplate:LaunchTemplate": (
        "ec2:CreateLaunchTemplate",
        "ec2:CreateLaunchTemplateVersion",
        "ec2:ModifyLaunchTemplate",
        "ec2:DeleteLaunchTemplate",
        "ec2:DeleteLaunchTemplateVersions",
        "ec2:GetLaunchTemplateData",
    ),
    # Create with its initial lifecycle hook (two phases), warm pool, metrics; updates start
    # the instance refresh; delete drains. PassRole: the launch template's instance
    # profile is passed when the group is created or pointed at a new version.
    "aws:autoscaling/group:Group": (
        "autoscaling:CreateAutoScalingGroup",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:DeleteAutoScalingGroup",
        "autoscaling:PutLifecycleHook",
        "autoscaling:PutWarmPool",
        "autoscaling:DeleteWarmPool",
        "autoscaling:StartInstanceRefresh",
        "autoscaling:EnableMetricsCollection",
        "autoscaling:DisableMetricsCollection",
        "autoscaling:SetInstanceProtection",
        "autoscaling:AttachLoadBalancerTargetGroups",
        "autoscaling:DetachLoadBalancerTargetGroups",
        "autoscaling:SuspendProcesses",
        "autoscaling:ResumeProcesses",
        "autoscaling:CreateOrUpdateTags",
        "autoscaling:DeleteTags",
        "ec2:RunInstances",
        "ec2:CreateTags",
    ),
    "aws:autoscaling/policy:Policy": ("autoscaling:PutScalingPolicy", "autoscaling:DeletePolicy"),
    "aws:autoscaling/schedule:Schedule": (
        "autoscaling:PutScheduledUpdateGroupAction",
        "autoscaling:DeleteScheduledAction",
    ),
    "aws:autoscaling/lifecycleHook:LifecycleHook": (
        "autoscaling:PutLifecycleHook",
        "autoscaling:DeleteLifecycleHook",
    ),
    # -- load balancer ------------------------------------------------------------------
    "aws:lb/loadBalancer:LoadBalancer": (
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:SetSecurityGroups",
        "elasticloadbalancing:SetSubnets",
        "elasticloadbalancing:SetIpAddressType",
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:RemoveTags",
    ),
    "aws:lb/targetGroup:TargetGroup": (
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:RemoveTags",
    ),
    "aws:lb/listener:Listener": (
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:ModifyListenerAttributes",
        "elasticloadbalancing:AddListenerCertificates",
        "elasticloadbalancing:RemoveListenerCertificates",
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:RemoveTags",
    ),
    "aws:lb/listenerRule:ListenerRule": (
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:DeleteRule",
        "elasticloadbalancing:ModifyRule",
        "elasticloadbalancing:SetRulePriorities",
        "elasticloadbalancing:AddTags",
        "elasticloadbalancing:RemoveTags",
    ),
    "aws:acm/certificate:Certificate": (
        "acm:RequestCertificate",
        "acm:DeleteCertificate",
        "acm:AddTagsToCertificate",
        "acm:RemoveTagsFromCertificate",
    ),
    "aws:acm/certificateValidation:CertificateValidation": ("acm:DescribeCertificate",),
    "aws:route53/record:Record": ("route53:ChangeResourceRecordSets", "route53:GetChange"),
    "aws:wafv2/webAcl:WebAcl": (
        "wafv2:CreateWebACL",
        "wafv2:UpdateWebACL",
        "wafv2:DeleteWebACL",
        "wafv2:TagResource",
        "wafv2:UntagResource",
    ),
    # Associating a web ACL with an ALB is also the load balancer's action.
    "aws:wafv2/webAclAssociation:WebAclAssociation": (
        "wafv2:AssociateWebACL",
        "wafv2:DisassociateWebACL",
        "elasticloadbalancing:SetWebACL",
    ),
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": (
        "wafv2:*LoggingConfiguration",
        "wafv2:*LoggingConfiguration",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:PutResourcePolicy",
    ),
    # -- cache --------------------------------------------------------------------------
    # Slow-log delivery to CloudWatch Logs: ElastiCache creates the log delivery with the
    # caller's permissions (and its service-linked role on first use, below).
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "elasticache:CreateReplicationGroup",
        "elasticache:ModifyReplicationGroup",
        "elasticache:DeleteReplicationGroup",
        "elasticache:ModifyReplicationGroupShardConfiguration",
        "elasticache:IncreaseReplicaCount",
        "elasticache:DecreaseReplicaCount",
        "elasticache:AddTagsToResource",
        "elasticache:RemoveTagsFromResource",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": (
        "elasticache:CreateCacheSubnetGroup",
        "elasticache:ModifyCacheSubnetGroup",
        "elasticache:DeleteCacheSubnetGroup",
        "elasticache:AddTagsToResource",
        "elasticache:RemoveTagsFromResource",
    ),
    "aws:elasticache/parameterGroup:ParameterGroup": (
        "elasticache:CreateCacheParameterGroup",
        "elasticache:ModifyCacheParameterGroup",
        "elasticache:ResetCacheParameterGroup",
        "elasticache:DeleteCacheParameterGroup",
        "elasticache:AddTagsToResource",
        "elasticache:RemoveTagsFromResource",
    ),
    "aws:elasticache/user:User": (
        "elasticache:*User",  # Create, Modify, Delete
        "elasticache:AddTagsToResource",
        "elasticache:RemoveTagsFromResource",
    ),
    "aws:elasticache/userGroup:UserGroup": (
        "elasticache:*UserGroup",  # Create, Modify, Delete
        "elasticache:AddTagsToResource",
        "elasticache:RemoveTagsFromResource",
    ),
    "aws:secretsmanager/secret:Secret": (
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:UpdateSecret",
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:DeleteResourcePolicy",
        "secretsmanager:TagResource",
        "secretsmanager:UntagResource",
    ),
    "aws:secretsmanager/secretVersion:SecretVersion": (
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ),
    # -- eks (platform eks): terraform-provider-aws internal/service/eks, ecr -------------
    "aws:eks/cluster:Cluster": (
        "eks:CreateCluster",
        "eks:DeleteCluster",
        "eks:UpdateClusterConfig",
        "eks:UpdateClusterVersion",
        "eks:AssociateEncryptionConfig",
        "eks:TagResource",
        "eks:UntagResource",
    ),
    "aws:eks/nodeGroup:NodeGroup": (
        "eks:CreateNodegroup",
        "eks:DeleteNodegroup",
        "eks:UpdateNodegroupConfig",
        "eks:UpdateNodegroupVersion",
        "eks:TagResource",
        "eks:UntagResource",
    ),
    "aws:eks/addon:Addon": (
        "eks:CreateAddon",
        "eks:DeleteAddon",
        "eks:UpdateAddon",
        "eks:TagResource",
        "eks:UntagResource",
    ),
    "aws:eks/accessEntry:AccessEntry": (
        "eks:CreateAccessEntry",
        "eks:DeleteAccessEntry",
        "eks:UpdateAccessEntry",
        "eks:TagResource",
    ),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": (
        "eks:AssociateAccessPolicy",
        "eks:DisassociateAccessPolicy",
    ),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
        "eks:CreatePodIdentityAssociation",
        "eks:DeletePodIdentityAssociation",
        "eks:UpdatePodIdentityAssociation",
        "eks:TagResource",
    ),
    "aws:ecr/repository:Repository": (
        "ecr:CreateRepository",
        "ecr:DeleteRepository",
        "ecr:PutImageTagMutability",
        "ecr:PutImageScanningConfiguration",
        "ecr:TagResource",
        "ecr:UntagResource",
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": (
        "ecr:PutLifecyclePolicy",
        "ecr:DeleteLifecyclePolicy",
    ),
    "aws:kms/key:Key": (
        "kms:CreateKey",
        "kms:PutKeyPolicy",
        # Enable/DisableKeyRotation, Tag/UntagResource: wildcards keep the one document for
        # every stack under IAM's 10,240-character inline limit.
        "kms:*KeyRotation",
        "kms:ScheduleKeyDeletion",
        "kms:UpdateKeyDescription",
        "kms:*TagResource",
    ),
    "aws:kms/alias:Alias": ("kms:*Alias",),  # Create, Delete, Update
    # -- release ------------------------------------------------------------------------
    # force_destroy empties the bucket (every version) before deleting it.
    "aws:s3/bucket:Bucket": (
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:PutBucketTagging",
        "s3:ListBucketVersions",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    ),
    "aws:s3/bucketV2:BucketV2": (
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:PutBucketTagging",
        "s3:ListBucketVersions",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    ),
    "aws:s3/bucketVersioning:BucketVersioning": ("s3:PutBucketVersioning",),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ("s3:PutBucketOwnershipControls",),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "s3:PutEncryptionConfiguration",
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "s3:PutLifecycleConfiguration",
    ),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy"),
    "aws:s3/bucketObjectv2:BucketObjectv2": (
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    ),
    # -- identity -----------------------------------------------------------------------
    "aws:iam/role:Role": (
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:UpdateRole",
        "iam:UpdateRoleDescription",
        "iam:UpdateAssumeRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
    ),
    "aws:iam/rolePolicy:RolePolicy": ("iam:PutRolePolicy", "iam:DeleteRolePolicy"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
    ),
    "aws:iam/instanceProfile:InstanceProfile": (
        "iam:CreateInstanceProfile",
        "iam:DeleteInstanceProfile",
        "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:TagInstanceProfile",
        "iam:UntagInstanceProfile",
    ),
    "aws:iam/policy:Policy": (
        "iam:CreatePolicy",
        "iam:DeletePolicy",
        "iam:CreatePolicyVersion",
        "iam:DeletePolicyVersion",
        "iam:TagPolicy",
        "iam:UntagPolicy",
    ),
    # -- monitoring ---------------------------------------------------------------------
    "aws:cloudwatch/logGroup:LogGroup": (
        "logs:CreateLogGroup",
        "logs:DeleteLogGroup",
        "logs:PutRetentionPolicy",
        "logs:DeleteRetentionPolicy",
        "logs:TagResource",
        "logs:UntagResource",
        "logs:TagLogGroup",
        "logs:UntagLogGroup",
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DeleteAlarms",
        "cloudwatch:TagResource",
        "cloudwatch:UntagResource",
    ),
    "aws:cloudwatch/dashboard:Dashboard": (
        "cloudwatch:PutDashboard",
        "cloudwatch:DeleteDashboards",
    ),
    "aws:sns/topic:Topic": (
        "sns:CreateTopic",
        "sns:DeleteTopic",
        "sns:SetTopicAttributes",
        "sns:TagResource",
        "sns:UntagResource",
    ),
    "aws:sns/topicSubscription:TopicSubscription": (
        "sns:Subscribe",
        "sns:Unsubscribe",
        "sns:SetSubscriptionAttributes",
    ),
}

DATA_SOURCE_ACTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": ("ec2:DescribeAvailabilityZones",),
    "aws:ec2/getInstanceType:getInstanceType": ("ec2:DescribeInstanceTypes",),
    "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": (
        "ec2:DescribeInstanceTypeOfferings",
    ),
    "aws:ssm/getParameter:getParameter": ("ssm:GetParameter",),
    # Answered from the caller's own credentials or static tables: no permission needed.
    "aws:index/getCallerIdentity:getCallerIdentity": (),
    "aws:index/getRegion:getRegion": (),
    "aws:index/getPartition:getPartition": (),
    "aws:elb/getServiceAccount:getServiceAccount": (),
    "aws:iam/getPolicyDocument:getPolicyDocument": (),
    # Parses the caller's ARN: no API call.
    "aws:iam/getSessionContext:getSessionContext": (),
    "aws:eks/getAddonVersion:getAddonVersion": ("eks:DescribeAddonVersions",),
}

# Every resource's Read, per service (the provider's reads; harmless to grant).
SERVICE_READS: Final[Mapping[str, tuple[str, ...]]] = {
    "acm": ("acm:DescribeCertificate", "acm:ListTagsForCertificate"),
    "autoscaling": ("autoscaling:Describe*",),
    "cloudwatch": ("cloudwatch:Describe*", "cloudwatch:GetDashboard", "cloudwatch:List*"),
    "ec2": ("ec2:Describe*",),
    # BatchGetImage reads a manifest (the image step reads the manifest list back).
    "ecr": ("ecr:Describe*", "ecr:Get*", "ecr:List*", "ecr:BatchGetImage"),
    "eks": ("eks:Describe*", "eks:List*"),
    "elasticache": ("elasticache:Describe*", "elasticache:List*"),
    "elasticloadbalancing": ("elasticloadbalancing:Describe*",),
    "iam": ("iam:Get*", "iam:List*"),
    "kms": ("kms:Describe*", "kms:Get*", "kms:List*"),
    "logs": ("logs:Describe*", "logs:List*"),
    "route53": ("route53:GetHostedZone", "route53:ListResourceRecordSets"),
    "s3": ("s3:Get*", "s3:ListBucket"),
    "secretsmanager": ("secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"),
    "sns": ("sns:Get*", "sns:List*"),
    "ssm": (),
    "wafv2": ("wafv2:Get*", "wafv2:List*"),
}

# What `pyscale deploy wait` calls (the deploy workflow runs it with the same role).
DEPLOY_WAIT_ACTIONS: Final = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeInstanceRefreshes",
    "autoscaling:CancelInstanceRefresh",
    "autoscaling:UpdateAutoScalingGroup",
    "autoscaling:StartInstanceRefresh",
    "elasticloadbalancing:DescribeTargetHealth",
)


# What the deploy job's image step does in the stack's ECR repository (pyscale/image_publish.py):
# the push calls of AWS's "IAM permissions for pushing an image" (ECR user guide,
# image-push-iam; its BatchGetImage, and GetDownloadUrlForLayer, which `docker buildx
# imagetools create` needs to read each image's config for its platform, are among the
# reads). Granted with the repository (the program creates it); the login token call takes
# no resource, so it has a statement of its own.
IMAGE_PUSH_ACTIONS: Final = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
IMAGE_REPOSITORY_TYPE: Final = "aws:ecr/repository:Repository"


class UnknownTypeError(LookupError):
    """A registered type or data source has no entry: its permissions are not known."""


@dataclass(frozen=True)
class StackNames:
    """How AWS names what the stacks create (Pulumi autonames: ``<prefix><logical>-<hex>``)."""

    partition: str
    prefixes: tuple[str, ...]  # "<project>-<stack>-", one per stack
    # The ECR repositories the stacks register, by name (empty: any under the prefixes).
    image_repositories: tuple[str, ...] = ()

    @property
    def covering_prefixes(self) -> tuple[str, ...]:
        """The prefixes no other prefix already covers: every grant is ``<prefix>*``, so
        ``pyscale-dev-*`` grants all of ``pyscale-dev-eks-*`` and listing both would only
        spend the role's policy quota."""
        return tuple(
            x
            for x in sorted(set(self.prefixes))
            if not any(x != other and x.startswith(other) for other in self.prefixes)
        )


def actions_for(types: Iterable[str], data_sources: Iterable[str]) -> dict[str, set[str]]:
    """service -> actions, for these registrations; UnknownTypeError names what has none."""
    wanted: dict[str, set[str]] = {}
    unknown = []
    for token in sorted(set(types)):
        if token.startswith(NON_AWS_PREFIXES):
            continue
        if token not in RESOURCE_ACTIONS:
            unknown.append(token)
            continue
        for action in RESOURCE_ACTIONS[token]:
            wanted.setdefault(action.split(":")[0], set()).add(action)
    for token in sorted(set(data_sources)):
        if token not in DATA_SOURCE_ACTIONS:
            unknown.append(token)
            continue
        for action in DATA_SOURCE_ACTIONS[token]:
            wanted.setdefault(action.split(":")[0], set()).add(action)
    if unknown:
        raise UnknownTypeError(
            f"no IAM actions known for {', '.join(unknown)}: add them to "
            "pyscale/iam_policy.py (RESOURCE_ACTIONS or DATA_SOURCE_ACTIONS)"
        )
    for service in list(wanted):
        wanted[service] |= set(SERVICE_READS.get(service, ()))
    return wanted


def _scoped(service: str, names: StackNames) -> list[str]:
    p = names.partition
    if service == "s3":
        return [
            arn
            for x in names.covering_prefixes
            for arn in (f"arn:{p}:s3:::{x}*", f"arn:{p}:s3:::{x}*/*")
        ]
    if service == "secretsmanager":
        return [f"arn:{p}:secretsmanager:*:*:secret:{x}*" for x in names.covering_prefixes]
    if service == "ssm":
        return [f"arn:{p}:ssm:*::parameter/aws/service/ami-amazon-linux-latest/*"]
    if service == "ecr":  # the eks stacks' image repositories (<project>-<stack>-app)
        repositories = names.image_repositories or tuple(f"{x}*" for x in names.covering_prefixes)
        return [f"arn:{p}:ecr:*:*:repository/{name}" for name in repositories]
    return ["*"]


def policy_document(
    types: Iterable[str], data_sources: Iterable[str], names: StackNames
) -> dict[str, Any]:
    """The deploy role's policy for these registrations."""
    types = list(types)
    wanted = actions_for(types, data_sources)
    # eks also hands roles to EKS (the cluster's and the nodes') and to Pod Identity.
    uses_eks = any(kind.startswith("aws:eks/") for kind in types)
    passed_to: str | list[str] = (
        ["ec2.amazonaws.com", "eks.amazonaws.com", "pods.eks.amazonaws.com"]
        if uses_eks
        else "ec2.amazonaws.com"
    )
    for action in DEPLOY_WAIT_ACTIONS:
        wanted.setdefault(action.split(":")[0], set()).add(action)
    pushes_images = IMAGE_REPOSITORY_TYPE in types
    if pushes_images:
        wanted.setdefault("ecr", set()).update(IMAGE_PUSH_ACTIONS)
    p = names.partition
    statements: list[dict[str, Any]] = []
    iam = wanted.pop("iam", set())
    for service in sorted(wanted):
        statements.append(
            {
                "Sid": service.replace("elasticloadbalancing", "elb").capitalize(),
                "Effect": "Allow",
                "Action": sorted(wanted[service]),
                "Resource": _scoped(service, names),
            }
        )
    if iam:
        statements.append(
            {
                "Sid": "StackRolesAndProfiles",
                "Effect": "Allow",
                "Action": sorted(iam),
                "Resource": [
                    f"arn:{p}:iam::*:{kind}/{x}*"
                    for x in names.covering_prefixes
                    for kind in ("role", "instance-profile", "policy")
                ],
            }
        )
        statements.append(
            {
                # The launch template's instance profile, handed to EC2 by the group.
                "Sid": "PassTheInstanceRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": [f"arn:{p}:iam::*:role/{x}*" for x in names.covering_prefixes],
                "Condition": {"StringEquals": {"iam:PassedToService": passed_to}},
            }
        )
        # AWS managed policies the instance role attaches are read, not written.
        statements.append(
            {
                "Sid": "ReadManagedPolicies",
                "Effect": "Allow",
                "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
                "Resource": f"arn:{p}:iam::aws:policy/*",
            }
        )
    if pushes_images:
        statements.append(
            {
                # docker login to the registry (the deploy's image push); no resource-level form.
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            }
        )
    statements.append(
        {
            # First use in an account: the services create their service-linked roles.
            "Sid": "ServiceLinkedRolesOnFirstUse",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "iam:AWSServiceName": [
                        "autoscaling.amazonaws.com",
                        "elasticache.amazonaws.com",
                        "elasticloadbalancing.amazonaws.com",
                        "eks.amazonaws.com",
                        "eks-nodegroup.amazonaws.com",
                    ]
                }
            },
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def size_without_whitespace(document: dict[str, Any]) -> int:
    """The length IAM counts against its quotas (whitespace excluded)."""
    return len(json.dumps(document, separators=(",", ":")))


# IAM's limit for all inline policies of one role together (whitespace not counted); a
# managed policy may hold only 6,144 (AWS knowledge center "iam-increase-policy-size").
INLINE_ROLE_POLICY_LIMIT: Final = 10_240


def stack_policy(stacks: Iterable[str]) -> dict[str, Any]:
    """The deploy role's policy for these stacks, from their offline program runs."""
    from pyscale import stacks as stack_files
    from pyscale.offline import run_stack

    types: set[str] = set()
    data_sources: set[str] = set()
    prefixes = []
    repositories: list[str] = []
    partitions = set()
    for stack in stacks:
        run = run_stack(stack)
        types |= {r.type for r in run.resources if r.custom}
        repositories += [str(r.inputs["name"]) for r in run.of_type(IMAGE_REPOSITORY_TYPE)]
        data_sources |= {token for token, _ in run.data_source_calls}
        prefixes.append(f"{stack_files.project_name()}-{stack}-")
        region = run.config.get("aws:region", "")
        partitions.add(
            "aws-cn"
            if region.startswith("cn-")
            else "aws-us-gov"
            if region.startswith("us-gov-")
            else "aws"
        )
    if len(partitions) != 1:
        raise UnknownTypeError("the stacks span several AWS partitions: one policy per partition")
    names = StackNames(partitions.pop(), tuple(prefixes), tuple(sorted(repositories)))
    return policy_document(types, data_sources, names)
