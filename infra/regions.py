"""AWS region names, offline, from botocore's endpoint data (no hand-typed list)."""

from __future__ import annotations

import functools


@functools.cache
def known_regions() -> tuple[str, ...]:
    """Every region of every AWS partition botocore knows, sorted."""
    import botocore.session  # local: only the first lookup pays for loading endpoint data

    session = botocore.session.get_session()
    return tuple(
        sorted(
            region
            for partition in session.get_available_partitions()
            for region in session.get_available_regions("ec2", partition_name=partition)
        )
    )


def partition_of(region: str) -> str:
    """The ARN partition of a region (managed policy ARNs differ in China and GovCloud)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
