"""What every S3 bucket of the stack shares.

An upload that never completes leaves parts that are stored and billed but appear in no
listing; S3 removes them only through a lifecycle rule. Each bucket gets one that covers
the whole bucket (an empty prefix), whatever its other rules filter on.
"""

from __future__ import annotations

import pulumi_aws as aws

ABORT_INCOMPLETE_UPLOADS_RULE_ID = "abort-incomplete-multipart-uploads"
ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 7


def abort_incomplete_uploads_rule(
    days: int = ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS,
) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """Bucket-wide: parts of uploads started ``days`` ago and never completed."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=ABORT_INCOMPLETE_UPLOADS_RULE_ID,
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=days
        ),
    )
