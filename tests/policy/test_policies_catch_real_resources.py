"""Every policy, against the resources the real program registers: flip the one property a
policy guards on a real stack's recorded inputs, and that policy — and only it — reports the
resource.

The hand-built cases in test_rules.py prove the rules' logic; these prove the rules read the
fields the program actually sends (camelCase wire keys, launch-template booleans as strings).
A rule reading a misspelt key gets None, skips its check and passes every stack silently —
here it would fail, because each case first asserts the program registers the field with its
compliant value, then flips exactly that field.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from policy.offline import (
    Violation,
    WireResource,
    config_path,
    evaluate,
    load_policy_config,
    provider_from_config,
    run_offline_stack,
)
from pyscale.stacks import stack_names, stacks_on

STACKS = stack_names()
# The flips below guard the EC2 fleet's resources (eks and workloads: test_kubernetes_rules.py).
EC2_STACKS = stacks_on("ec2")
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
AUTOSCALING_GROUP = "aws:autoscaling/group:Group"
SUBNET = "aws:ec2/subnet:Subnet"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC = "aws:ec2/vpc:Vpc"
TOPIC = "aws:sns/topic:Topic"
KMS_KEY = "aws:kms/key:Key"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
REMOVE = object()  # the flip deletes the key


@functools.cache
def real_run(stack: str) -> tuple[list[WireResource], Mapping[str, str]]:
    resources, engine_config = run_offline_stack(stack)
    return resources, engine_config


def judge(stack: str, resources: list[WireResource], engine_config=None) -> list[Violation]:
    _, real_config = real_run(stack)
    config = real_config if engine_config is None else engine_config
    settings = load_policy_config(config_path(stack))
    return evaluate(resources, settings, stack=stack, provider=provider_from_config(config))


def the_one(stack: str, type_: str, where: Callable[[WireResource], bool] = lambda r: True):
    resources, _ = real_run(stack)
    found = [i for i, r in enumerate(resources) if r.type == type_ and where(r)]
    assert len(found) == 1, f"{stack}: expected one {type_}, found {len(found)}"
    return found[0]


def flip(
    stack: str, index: int, path: tuple[str | int, ...], compliant: Any, flipped: Any
) -> list[Violation]:
    """The stack's violations once input `path` of resource `index` goes from `compliant`
    (asserted: the program really registers it) to `flipped` (REMOVE deletes it)."""
    resources, _ = real_run(stack)
    original = resources[index]
    inputs = copy.deepcopy(dict(original.inputs))
    holder: Any = inputs
    for step in path[:-1]:
        holder = holder[step]
    registered = holder[path[-1]]
    assert registered == compliant, (
        f"{original.name}: the program registers {'.'.join(map(str, path))}={registered!r}, "
        f"expected {compliant!r}"
    )
    if flipped is REMOVE:
        del holder[path[-1]]
    else:
        holder[path[-1]] = flipped
    changed = list(resources)
    changed[index] = WireResource(
        original.type, original.name, inputs, original.outputs, original.parent, original.urn
    )
    return judge(stack, changed)


def reported(violations: list[Violation]) -> list[tuple[str, str | None]]:
    return [(v.policy, v.resource) for v in violations]


def name_of(stack: str, index: int) -> str:
    return real_run(stack)[0][index].name


@pytest.mark.parametrize("stack", STACKS)
def test_the_real_stack_passes_every_policy_of_its_config(stack):
    assert reported(judge(stack, real_run(stack)[0])) == []


# ---------------------------------------------------------------------------------------------
# Mandatory, every stack
# ---------------------------------------------------------------------------------------------
def cases(*flips: tuple[Any, ...]) -> list[Any]:
    """Each flip as a test case named policy:input.path."""
    return [pytest.param(*f, id=f"{f[0]}:{'.'.join(map(str, f[2]))}") for f in flips]


MANDATORY_FLIPS = cases(
    # (policy, resource type, input path, compliant value, flipped value, words in the message)
    (
        "ebs-encrypted",
        LAUNCH_TEMPLATE,
        ("blockDeviceMappings", 0, "ebs", "encrypted"),
        "true",
        "false",
        "ebs.encrypted",
    ),
    (
        "cache-encrypted-at-rest",
        REPLICATION_GROUP,
        ("atRestEncryptionEnabled",),
        True,
        False,
        "at_rest_encryption_enabled",
    ),
    (
        "cache-tls-and-auth",
        REPLICATION_GROUP,
        ("transitEncryptionEnabled",),
        True,
        False,
        "transit_encryption_enabled",
    ),
    ("alarm-topics-encrypted", TOPIC, ("kmsMasterKeyId",), ..., "alias/aws/sns", "aws/sns"),
    ("kms-keys-rotated", KMS_KEY, ("enableKeyRotation",), True, False, "enable_key_rotation"),
    (
        "imdsv2-required",
        LAUNCH_TEMPLATE,
        ("metadataOptions", "httpTokens"),
        "required",
        "optional",
        "http_tokens",
    ),
    (
        "no-public-ip-on-app-instances",
        LAUNCH_TEMPLATE,
        ("networkInterfaces", 0, "associatePublicIpAddress"),
        "false",
        "true",
        "associate_public_ip_address",
    ),
    (
        "alb-drops-invalid-headers",
        LOAD_BALANCER,
        ("dropInvalidHeaderFields",),
        True,
        False,
        "drop_invalid_header_fields",
    ),
    (
        "instance-type-allowed",
        LAUNCH_TEMPLATE,
        ("instanceType",),
        ...,
        "x2iedn.32xlarge",
        "allowedInstanceTypes",
    ),
)


@pytest.mark.parametrize("stack", EC2_STACKS)
@pytest.mark.parametrize(
    ("policy", "type_", "path", "compliant", "flipped", "words"),
    MANDATORY_FLIPS,
)
def test_flipping_the_guarded_input_of_a_real_resource_trips_its_policy(
    stack, policy, type_, path, compliant, flipped, words
):
    index = the_one(stack, type_)
    if compliant is ...:  # any registered value is compliant; only the flip matters
        holder: Any = real_run(stack)[0][index].inputs
        for step in path:
            holder = holder[step]
        compliant = holder
    violations = flip(stack, index, path, compliant, flipped)
    assert reported(violations) == [(policy, name_of(stack, index))]
    assert words in violations[0].message


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_a_real_alb_rule_opened_on_a_port_it_does_not_listen_on_is_rejected(stack):
    index = the_one(stack, INGRESS_RULE, lambda r: r.inputs.get("fromPort") == 80.0)
    violations = flip(stack, index, ("fromPort",), 80.0, 22.0)
    assert reported(violations) == [("no-open-ingress-except-alb-listeners", name_of(stack, index))]
    assert "ports 22-80" in violations[0].message


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_the_real_fleet_rule_opened_to_the_world_is_rejected(stack):
    index = the_one(stack, INGRESS_RULE, lambda r: r.name.endswith("-alb-to-fleet-in"))
    fleet_sg = real_run(stack)[0][index].inputs["referencedSecurityGroupId"]
    violations = flip(stack, index, ("referencedSecurityGroupId",), fleet_sg, REMOVE)
    assert violations == []  # no source at all opens nothing
    resources, _ = real_run(stack)
    inputs = {**resources[index].inputs, "cidrIpv4": "0.0.0.0/0"}
    inputs.pop("referencedSecurityGroupId")
    changed = list(resources)
    original = resources[index]
    changed[index] = WireResource(
        original.type, original.name, inputs, original.outputs, original.parent, original.urn
    )
    violations = judge(stack, changed)
    assert reported(violations) == [("no-open-ingress-except-alb-listeners", original.name)]
    assert "not the security group of a load balancer" in violations[0].message


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_the_fleet_launched_into_a_real_subnet_that_maps_public_ips_is_rejected(stack):
    resources, _ = real_run(stack)
    group = resources[the_one(stack, AUTOSCALING_GROUP)]
    first_subnet_id = group.inputs["vpcZoneIdentifiers"][0]
    index = the_one(stack, SUBNET, lambda r: r.outputs.get("id") == first_subnet_id)
    violations = flip(stack, index, ("mapPublicIpOnLaunch",), False, True)
    assert reported(violations) == [("no-public-ip-on-app-instances", group.name)]
    assert name_of(stack, index) in violations[0].message


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_a_real_fleet_without_the_environment_tag_is_advised(stack):
    index = the_one(stack, AUTOSCALING_GROUP)
    tags = real_run(stack)[0][index].inputs["tags"]
    assert "Environment" in {tag["key"] for tag in tags}
    kept = [tag for tag in tags if tag["key"] != "Environment"]
    violations = flip(stack, index, ("tags",), tags, kept)
    assert reported(violations) == [("required-tags", name_of(stack, index))]
    assert "Environment" in violations[0].message


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_without_the_providers_default_tags_the_real_vpc_lacks_its_tags(stack):
    resources, engine_config = real_run(stack)
    assert "aws:defaultTags" in engine_config
    without = {k: v for k, v in engine_config.items() if k != "aws:defaultTags"}
    violations = judge(stack, resources, engine_config=without)
    vpc = resources[the_one(stack, VPC)].name
    assert ("required-tags", vpc) in reported(violations)
    assert {v.policy for v in violations} == {"required-tags"}


# ---------------------------------------------------------------------------------------------
# Production, the prod stack (its policy config turns them on)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "type_", "path", "compliant", "flipped", "words"),
    cases(
        (
            "prod-alb-deletion-protection",
            LOAD_BALANCER,
            ("enableDeletionProtection",),
            True,
            False,
            "enable_deletion_protection",
        ),
        (
            "prod-cache-multi-az-failover",
            REPLICATION_GROUP,
            ("multiAzEnabled",),
            True,
            False,
            "multi_az_enabled",
        ),
        (
            "prod-cache-multi-az-failover",
            REPLICATION_GROUP,
            ("automaticFailoverEnabled",),
            True,
            False,
            "automatic_failover_enabled",
        ),
        (
            "prod-cache-multi-az-failover",
            REPLICATION_GROUP,
            ("replicasPerNodeGroup",),
            1.0,
            0.0,
            "a replica",
        ),
        (
            "prod-cache-snapshots",
            REPLICATION_GROUP,
            ("snapshotRetentionLimit",),
            7.0,
            1.0,
            "snapshot_retention_limit",
        ),
        ("prod-fleet-spans-zones", AUTOSCALING_GROUP, ("minSize",), 3.0, 1.0, "min_size 1"),
        (
            "cache-tls-and-auth",
            REPLICATION_GROUP,
            ("transitEncryptionMode",),
            "required",
            "preferred",
            "transit_encryption_mode",
        ),
    ),
)
def test_flipping_a_production_setting_of_the_real_prod_stack_trips_its_policy(
    policy, type_, path, compliant, flipped, words
):
    index = the_one("prod", type_)
    violations = flip("prod", index, path, compliant, flipped)
    assert reported(violations) == [(policy, name_of("prod", index))]
    assert words in violations[0].message


def test_the_real_prod_fleet_in_one_zone_is_rejected():
    index = the_one("prod", AUTOSCALING_GROUP)
    subnets = real_run("prod")[0][index].inputs["vpcZoneIdentifiers"]
    assert len(subnets) >= 2
    violations = flip("prod", index, ("vpcZoneIdentifiers",), subnets, subnets[:1])
    assert reported(violations) == [("prod-fleet-spans-zones", name_of("prod", index))]
    assert "spans 1 zones" in violations[0].message


# ---------------------------------------------------------------------------------------------
# The security review's stack-wide rules, on the real program's resources
# ---------------------------------------------------------------------------------------------
def without(stack: str, type_: str, where: Callable[[WireResource], bool] = lambda r: True):
    resources, _ = real_run(stack)
    return [r for r in resources if not (r.type == type_ and where(r))]


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_a_vpc_whose_default_group_the_program_stopped_managing_is_reported(stack):
    violations = judge(stack, without(stack, DEFAULT_SG))
    vpc = real_run(stack)[0][the_one(stack, VPC)].name
    assert reported(violations) == [("default-security-group-closed", vpc)]


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_the_real_default_group_given_a_rule_is_reported(stack):
    index = the_one(stack, DEFAULT_SG)
    resources, _ = real_run(stack)
    original = resources[index]
    inputs = {**original.inputs, "ingress": [{"protocol": "-1", "self": True}]}
    changed = list(resources)
    changed[index] = WireResource(
        original.type, original.name, inputs, original.outputs, original.parent, original.urn
    )
    assert reported(judge(stack, changed)) == [("default-security-group-closed", original.name)]


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_a_bucket_whose_abort_rule_is_gone_is_reported(stack):
    resources, _ = real_run(stack)
    changed = []
    for resource in resources:
        if resource.type == LIFECYCLE and "release" in resource.name:
            rules = [
                r for r in resource.inputs["rules"] if "abortIncompleteMultipartUpload" not in r
            ]
            resource = WireResource(
                resource.type, resource.name, {**resource.inputs, "rules": rules},
                resource.outputs, resource.parent, resource.urn,
            )  # fmt: skip
        changed.append(resource)
    bucket = next(
        r.name for r in resources if r.type == "aws:s3/bucket:Bucket" and "release" in r.name
    )
    assert reported(judge(stack, changed)) == [("buckets-abort-incomplete-uploads", bucket)]


def test_the_prod_web_acl_without_its_logging_is_reported():
    violations = judge("prod", without("prod", WAF_LOGGING))
    acl = real_run("prod")[0][the_one("prod", "aws:wafv2/webAcl:WebAcl")].name
    assert reported(violations) == [("waf-logs-requests", acl)]


def test_prod_without_flow_logs_is_reported():
    violations = judge("prod", without("prod", FLOW_LOG))
    vpc = real_run("prod")[0][the_one("prod", VPC)].name
    assert reported(violations) == [("prod-vpc-flow-logs", vpc)]


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_a_real_cache_stripped_of_its_authentication_is_reported(stack):
    # auth-token stacks send the token, cacheAuth: iam stacks (prod) their user group.
    index = the_one(stack, REPLICATION_GROUP)
    inputs = real_run(stack)[0][index].inputs
    key = "authToken" if "authToken" in inputs else "userGroupIds"
    group = name_of(stack, index)
    violations = flip(stack, index, (key,), inputs[key], REMOVE)
    expected = [("cache-tls-and-auth", group)]
    if stack == "prod":  # no RBAC is no IAM authentication either
        expected.append(("prod-cache-iam-auth", group))
    assert sorted(reported(violations)) == sorted(expected)
    assert "auth_token" in violations[0].message


def test_a_prod_cache_user_authenticating_with_a_password_is_reported():
    index = the_one(
        "prod", "aws:elasticache/user:User", lambda r: r.inputs.get("userName") != "default"
    )
    violations = flip(
        "prod", index, ("authenticationMode",), {"type": "iam"},
        {"type": "password", "passwords": ["p" * 32]},
    )  # fmt: skip
    group = name_of("prod", the_one("prod", REPLICATION_GROUP))
    assert reported(violations) == [("prod-cache-iam-auth", group)]
    assert f"{name_of('prod', index)} authenticate with a password" in violations[0].message


def test_a_prod_log_group_under_an_aws_managed_key_is_reported():
    index = the_one("prod", LOG_GROUP, lambda r: r.inputs.get("name", "").endswith("/app"))
    resources, _ = real_run("prod")
    key_arn = resources[index].inputs["kmsKeyId"]
    violations = flip("prod", index, ("kmsKeyId",), key_arn, REMOVE)
    assert reported(violations) == [("prod-customer-managed-key", name_of("prod", index))]


def test_the_prod_access_log_bucket_stays_sse_s3_without_a_violation():
    resources, _ = real_run("prod")
    sse = [r for r in resources if r.type.endswith("BucketServerSideEncryptionConfiguration")]
    algorithms = {
        r.name: r.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        for r in sse
    }
    assert sorted(algorithms.values()) == ["AES256", "aws:kms"]
    assert reported(judge("prod", resources)) == []
