"""Encryption: the stack's own KMS key, rotated yearly, and the policy that lets its users in.

Every stack has the key: the alarm topic is encrypted with it everywhere, because CloudWatch
alarms can publish to an encrypted SNS topic only under a customer managed key whose policy
grants ``cloudwatch.amazonaws.com`` ``kms:GenerateDataKey*`` and ``kms:Decrypt`` (Amazon
SNS developer guide, "Key management", enable compatibility between event sources from AWS
services and encrypted topics); the AWS managed ``aws/sns`` key's policy cannot be changed
(AWS KMS developer guide, "Change a key policy"). With ``customerManagedKey``
(infra/settings/encryption.py) the log groups (the EKS control plane's included), the cache
at rest, its AUTH secret and the release bucket use it too.

The key policy:
- the account (root) may administer and use it, so IAM policies decide who else may
  (the deploying role for ElastiCache, Secrets Manager and S3, the instance role to decrypt
  the secret and the release) — AWS's default key policy, without which the key could
  become unmanageable;
- CloudWatch Logs of this region may use it for this stack's log groups only (the
  ``kms:EncryptionContext:aws:logs:arn`` condition AWS documents for log group keys): the
  service checks the policy when a log group is associated with the key;
- CloudWatch may encrypt alarm notifications for the topic. No source condition: whether
  CloudWatch's KMS calls carry ``aws:SourceArn`` is not documented for this case, and a
  condition they fail would drop every alarm silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.kubernetes.eks_cluster import control_plane_log_group_name
from infra.regions import partition_of
from infra.settings import EncryptionSettings

# KMS waits this long before deleting a key scheduled for deletion (7-30 days).
DELETION_WINDOW_DAYS = 30


def log_group_patterns(name: str) -> list[str]:
    """Names of the stack's log groups (what the Logs grant covers): everything the
    components create is named from the stack's name, and the EKS cluster (platform eks)
    is named after the stack and logs to its control-plane group."""
    return [
        f"/pyscale/{name}/*",
        f"{name}-*",
        f"aws-waf-logs-{name}*",
        control_plane_log_group_name(name),
    ]


@dataclass(frozen=True)
class StackKeyArgs:
    """settings: whether the key encrypts more than the alarm topic. region/account_id:
    where the key lives (the Logs service principal and the log group ARNs)."""

    settings: EncryptionSettings
    region: str
    account_id: str


class StackKey(pulumi.ComponentResource):
    """The key and its alias ``alias/<name>``. Outputs: ``key_arn`` (always, for the alarm
    topic); ``data_key_arn``: the key ARN when customerManagedKey is on, else None (users
    fall back to AWS managed keys)."""

    key_arn: pulumi.Output[str]
    data_key_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: StackKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:encryption:StackKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        uses = "alarm topic"
        if args.settings.customer_managed_key:
            uses += ", log groups, cache, cache secret, release bucket"
        key = aws.kms.Key(
            f"{name}-key",
            description=f"pyscale {name}: {uses}",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=json.dumps(self._policy(name, args)),
            opts=child,
        )
        aws.kms.Alias(f"{name}-key", name=f"alias/{name}", target_key_id=key.key_id, opts=child)
        self.key_arn = key.arn
        self.data_key_arn = key.arn if args.settings.customer_managed_key else None
        self.register_outputs({"keyArn": self.key_arn})

    @staticmethod
    def _policy(name: str, args: StackKeyArgs) -> dict[str, Any]:
        arn = f"arn:{partition_of(args.region)}"
        log_groups = [
            f"{arn}:logs:{args.region}:{args.account_id}:log-group:{pattern}"
            for pattern in log_group_patterns(name)
        ]
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersAndDelegatesToIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"{arn}:iam::{args.account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogsEncryptsThisStacksLogGroups",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
                },
                {
                    "Sid": "CloudWatchAlarmsPublishToTheEncryptedTopic",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                },
            ],
        }
