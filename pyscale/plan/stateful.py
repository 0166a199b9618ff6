"""Stateful resources: the kinds whose replacement or deletion loses data, addresses or
names that users and DNS depend on. A reviewer must see these before any other change.

One table for both places that flag them: the PR preview's summary (read from
``pulumi preview --json``, .github/scripts/stateful_changes.py) and ``pyscale plan --diff``.
"""

from __future__ import annotations

from collections.abc import Mapping

# Type token -> what is lost when AWS replaces or deletes it.
STATEFUL_KINDS: Mapping[str, str] = {
    "aws:elasticache/replicationGroup:ReplicationGroup": "cache: every cached key is lost",
    "aws:lb/loadBalancer:LoadBalancer": "load balancer: new DNS name, clients and DNS follow",
    "aws:ec2/subnet:Subnet": "subnet: everything in it is replaced with it",
    "aws:ec2/vpc:Vpc": "VPC: the whole network is replaced",
    "aws:ec2/eip:Eip": "public IP address: allow-lists naming it break",
    "aws:s3/bucket:Bucket": "bucket: its objects are deleted with it",
    "aws:s3/bucketV2:BucketV2": "bucket: its objects are deleted with it",
}

# Settings (plan names, pyscale.plan.extract.RESOURCE_SETTINGS) AWS cannot change in place,
# so the provider replaces the resource: its modify API has no such field. Read from
# terraform-provider-aws: elasticache replication_group.go's update sends no port and no
# at-rest encryption (ModifyReplicationGroup has neither); EC2 has no call that moves a
# subnet or changes its or a VPC's primary CIDR; ELBv2 cannot change a load balancer's
# scheme or type.
REPLACING_SETTINGS: Mapping[str, frozenset[str]] = {
    "aws:elasticache/replicationGroup:ReplicationGroup": frozenset({"port", "at_rest_encryption"}),
    "aws:lb/loadBalancer:LoadBalancer": frozenset({"internal", "load_balancer_type"}),
    "aws:ec2/subnet:Subnet": frozenset({"availability_zone", "cidr_block"}),
    "aws:ec2/vpc:Vpc": frozenset({"cidr_block"}),
}

# `pulumi preview --json` step ops that delete or replace the resource (pulumi/pulumi
# pkg/resource/deploy/step.go's StepOp values; the digest shows "replace" by default and the
# create-replacement/delete-replaced pair with --show-replacement-steps).
DESTRUCTIVE_OPS: Mapping[str, str] = {
    "replace": "replaced",
    "create-replacement": "replaced",
    "delete-replaced": "replaced",
    "import-replacement": "replaced",
    "delete": "deleted",
}


def type_of_urn(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<parent types $>...$<type>::<name>`` -> the type."""
    qualified = urn.split("::")[2] if urn.count("::") >= 3 else ""
    return qualified.rsplit("$", 1)[-1]


def name_of_urn(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]
