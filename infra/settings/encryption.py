"""Encryption keys: whether the stack's own KMS key encrypts its data at rest.

Every stack has one customer managed key, rotated every year: the alarm topic needs it in
every stack, since CloudWatch alarms cannot publish to a topic under the AWS managed
``aws/sns`` key (its policy cannot be changed to let CloudWatch use it). With
``customerManagedKey`` the same key also encrypts the log groups, the cache at rest, the
cache's AUTH secret and the release bucket; otherwise those use AWS managed keys. ALB access
logs stay SSE-S3 either way: it is the only encryption ALB log delivery supports (Elastic
Load Balancing user guide, "Enable access logs for your Application Load Balancer", bucket
requirements; read 2026-12-01).
"""

from __future__ import annotations

from infra.settings.base import AreaSettings, replacement, setting


class EncryptionSettings(AreaSettings):
    customer_managed_key: bool = setting(
        "customerManagedKey",
        False,
        doc="Encrypt the log groups, the cache at rest, the cache's AUTH secret and the "
        "release bucket with the stack's own rotated KMS key instead of AWS managed keys.",
        change=replacement(
            "a new replication group (ElastiCache sets the at-rest key only at creation): "
            "the cached data is lost and the fleet rolls to it; log groups, the secret and "
            "the bucket switch in place (data already written keeps its key)"
        ),
    )
