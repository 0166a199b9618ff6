"""Specifications of the policy pack's rules, against hand-built wire-form resources.

Each bad case changes one thing in a compliant stack and expects exactly one policy to
report it, with a message that names the resource and the setting to change.
"""

from __future__ import annotations

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyProviderResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policy import rules
from policy.offline import PolicySetting, Violation, evaluate
from tests.policy.wire import TAGS, add, good_stack, replace_inputs, resource, secret

MANDATORY = EnforcementLevel.MANDATORY

# Production: every policy on, the production ones mandatory, an allow-list configured.
PROD_SETTINGS = {
    policy.name: PolicySetting(
        MANDATORY
        if policy.enforcement_level == EnforcementLevel.DISABLED
        else policy.enforcement_level,
        {},
    )
    for policy in rules.POLICIES
} | {
    "instance-type-allowed": PolicySetting(
        EnforcementLevel.ADVISORY, {"allowedInstanceTypes": ["m7g.*", "c7g.*"]}
    ),
    "prod-cache-snapshots": PolicySetting(MANDATORY, {"minRetentionDays": 7}),
    "prod-fleet-spans-zones": PolicySetting(MANDATORY, {"minInstances": 2, "minZones": 2}),
}


def run(stack, settings=None, provider=None) -> list[Violation]:
    return evaluate(
        list(stack.values()), settings or PROD_SETTINGS, stack="prod", provider=provider
    )


def only(violations: list[Violation], policy: str) -> Violation:
    """The single violation, which must come from `policy`."""
    assert [v.policy for v in violations] == [policy], violations
    return violations[0]


def test_the_compliant_stack_passes_every_policy():
    assert run(good_stack()) == []


def test_every_policy_has_a_unique_name_and_a_description():
    names = rules.policy_names()
    assert len(names) == len(set(names))
    assert all(policy.description for policy in rules.POLICIES)


def test_production_policies_ship_disabled_so_only_a_stack_config_enables_them():
    production = [p for p in rules.POLICIES if p.name.startswith("prod-")]
    assert {p.name for p in production} == {
        "prod-alb-deletion-protection",
        "prod-cache-multi-az-failover",
        "prod-fleet-spans-zones",
        "prod-cache-snapshots",
        "prod-eks-all-control-plane-logs",
        "prod-vpc-flow-logs",
        "prod-customer-managed-key",
        "prod-cache-iam-auth",
    }
    assert all(p.enforcement_level == EnforcementLevel.DISABLED for p in production)


# ---------------------------------------------------------------------------------------------
# Mandatory
# ---------------------------------------------------------------------------------------------
def test_unencrypted_launch_template_volume_is_rejected():
    stack = good_stack()
    replace_inputs(
        stack,
        "web-lt",
        blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}],
    )
    violation = only(run(stack), "ebs-encrypted")
    assert violation.level == MANDATORY
    assert violation.resource == "web-lt"
    assert "/dev/xvda" in violation.message
    assert 'ebs.encrypted to the string "true"' in violation.message


def test_launch_template_without_a_declared_root_volume_is_rejected():
    stack = good_stack()
    replace_inputs(stack, "web-lt", blockDeviceMappings=None)
    assert "declares no EBS block device" in only(run(stack), "ebs-encrypted").message


def test_unencrypted_standalone_volume_and_instance_root_are_rejected():
    stack = good_stack()
    add(stack, resource("aws:ebs/volume:Volume", "scratch", {"size": 10.0, "tags": TAGS}))
    violation = only(run(stack), "ebs-encrypted")
    assert "scratch" in violation.message
    assert "encrypted=True" in violation.message


def test_cache_without_encryption_at_rest_is_rejected():
    stack = good_stack()
    replace_inputs(stack, "web-cache", atRestEncryptionEnabled=False)
    assert "at_rest_encryption_enabled=True" in only(run(stack), "cache-encrypted-at-rest").message


def test_standalone_cache_cluster_is_rejected_in_favour_of_a_replication_group():
    stack = good_stack()
    add(
        stack,
        resource(
            "aws:elasticache/cluster:Cluster",
            "side-cache",
            {"engine": "redis", "nodeType": "cache.t4g.micro", "numCacheNodes": 1.0, "tags": TAGS},
        ),
    )
    assert "ReplicationGroup" in only(run(stack), "cache-encrypted-at-rest").message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"transitEncryptionEnabled": False}, "transit_encryption_enabled=True"),
        ({"transitEncryptionMode": "preferred"}, 'transit_encryption_mode="required"'),
        ({"userGroupIds": None}, "auth_token"),
    ],
    ids=["no-tls", "tls-preferred", "no-auth"],
)
def test_cache_must_require_tls_and_auth(changes, expected):
    stack = good_stack()
    replace_inputs(stack, "web-cache", **changes)
    violations = run(stack)
    if "userGroupIds" in changes:  # no RBAC is no IAM authentication either (production)
        assert (
            "no enabled IAM-authenticated user"
            in only(
                [v for v in violations if v.policy != "cache-tls-and-auth"], "prod-cache-iam-auth"
            ).message
        )
        violations = [v for v in violations if v.policy == "cache-tls-and-auth"]
    assert expected in only(violations, "cache-tls-and-auth").message


@pytest.mark.parametrize("tokens", ["optional", None])
def test_launch_template_must_require_imdsv2(tokens):
    stack = good_stack()
    options = {"httpPutResponseHopLimit": 1.0} | ({"httpTokens": tokens} if tokens else {})
    replace_inputs(stack, "web-lt", metadataOptions=options)
    violation = only(run(stack), "imdsv2-required")
    assert 'http_tokens: "required"' in violation.message
    assert "web-lt" in violation.message


def test_metadata_service_switched_off_needs_no_tokens():
    stack = good_stack()
    replace_inputs(stack, "web-lt", metadataOptions={"httpEndpoint": "disabled"})
    assert run(stack) == []


def test_instance_must_require_imdsv2():
    stack = good_stack()
    add(
        stack,
        resource(
            "aws:ec2/instance:Instance",
            "bastion",
            {
                "instanceType": "m7g.large",
                "rootBlockDevice": {"encrypted": True},
                "metadataOptions": {"httpTokens": "optional"},
                "tags": TAGS,
            },
        ),
    )
    assert "Instance 'bastion'" in only(run(stack), "imdsv2-required").message


def test_alb_must_drop_invalid_header_fields():
    stack = good_stack()
    replace_inputs(stack, "web-alb", dropInvalidHeaderFields=None)
    violation = only(run(stack), "alb-drops-invalid-headers")
    assert "drop_invalid_header_fields=True" in violation.message
    assert "not set" in violation.message


def test_network_load_balancers_are_not_asked_about_http_headers():
    stack = good_stack()
    replace_inputs(stack, "web-alb", loadBalancerType="network", dropInvalidHeaderFields=None)
    assert run(stack) == []


def test_ssh_open_to_the_world_on_the_app_security_group_is_rejected():
    stack = good_stack()
    add(
        stack,
        resource(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "web-app-ssh",
            {
                "securityGroupId": "web-app-sg-id",
                "cidrIpv4": "0.0.0.0/0",
                "fromPort": 22.0,
                "toPort": 22.0,
                "ipProtocol": "tcp",
            },
        ),
    )
    violation = only(run(stack), "no-open-ingress-except-alb-listeners")
    assert violation.resource == "web-app-ssh"
    assert "tcp port 22 to 0.0.0.0/0" in violation.message
    assert "not the security group of a load balancer" in violation.message


def test_alb_security_group_may_not_open_ports_it_does_not_listen_on():
    stack = good_stack()
    add(
        stack,
        resource(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "web-alb-admin",
            {
                "securityGroupId": "web-alb-sg-id",
                "cidrIpv6": "::/0",
                "fromPort": 8080.0,
                "toPort": 8080.0,
                "ipProtocol": "tcp",
            },
        ),
    )
    violation = only(run(stack), "no-open-ingress-except-alb-listeners")
    assert "to ::/0" in violation.message
    assert "listens on [80, 443]" in violation.message


def test_inline_all_traffic_ingress_from_the_world_is_rejected():
    stack = good_stack()
    replace_inputs(
        stack,
        "web-app-sg",
        ingress=[{"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": ["0.0.0.0/0"]}],
    )
    violation = only(run(stack), "no-open-ingress-except-alb-listeners")
    assert "all ports" in violation.message


def test_legacy_security_group_rule_opening_a_range_is_rejected():
    stack = good_stack()
    add(
        stack,
        resource(
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "web-alb-range",
            {
                "type": "ingress",
                "securityGroupId": "web-alb-sg-id",
                "protocol": "tcp",
                "fromPort": 80.0,
                "toPort": 443.0,
                "cidrBlocks": ["0.0.0.0/0"],
            },
        ),
    )
    assert "ports 80-443" in only(run(stack), "no-open-ingress-except-alb-listeners").message


def test_launch_template_with_public_ip_is_rejected():
    stack = good_stack()
    replace_inputs(
        stack,
        "web-lt",
        networkInterfaces=[{"deviceIndex": 0.0, "associatePublicIpAddress": "true"}],
    )
    violation = only(run(stack), "no-public-ip-on-app-instances")
    assert violation.resource == "web-lt"
    assert "private subnets" in violation.message


def test_fleet_in_public_subnets_is_rejected():
    stack = good_stack()
    replace_inputs(stack, "web-asg", vpcZoneIdentifiers=["web-public-0-id", "web-private-1-id"])
    violation = only(run(stack), "no-public-ip-on-app-instances")
    assert "'web-public-0'" in violation.message
    assert "maps a public IP on launch" in violation.message


# ---------------------------------------------------------------------------------------------
# Production
# ---------------------------------------------------------------------------------------------
def test_prod_alb_needs_deletion_protection():
    stack = good_stack()
    replace_inputs(stack, "web-alb", enableDeletionProtection=False)
    message = only(run(stack), "prod-alb-deletion-protection").message
    assert "enable_deletion_protection=True" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"multiAzEnabled": False}, "multi_az_enabled=True"),
        ({"automaticFailoverEnabled": None}, "automatic_failover_enabled=True"),
        (
            {"numNodeGroups": None, "replicasPerNodeGroup": None, "numCacheClusters": 1.0},
            "a replica",
        ),
    ],
    ids=["single-az", "no-failover", "no-replica"],
)
def test_prod_cache_must_be_multi_az_with_failover(changes, expected):
    stack = good_stack()
    replace_inputs(stack, "web-cache", **changes)
    assert expected in only(run(stack), "prod-cache-multi-az-failover").message


def test_prod_cache_keeps_the_configured_days_of_snapshots():
    stack = good_stack()
    replace_inputs(stack, "web-cache", snapshotRetentionLimit=1.0)
    message = only(run(stack), "prod-cache-snapshots").message
    assert "keeps 1 day(s)" in message
    assert "snapshot_retention_limit >= 7" in message


def test_prod_fleet_needs_two_instances():
    stack = good_stack()
    replace_inputs(stack, "web-asg", minSize=1.0)
    violation = only(run(stack), "prod-fleet-spans-zones")
    assert violation.resource == "web-asg"
    assert "min_size 1" in violation.message


def test_prod_fleet_needs_two_zones():
    stack = good_stack()
    replace_inputs(stack, "web-asg", vpcZoneIdentifiers=["web-private-0-id"])
    message = only(run(stack), "prod-fleet-spans-zones").message
    assert "spans 1 zones (from its subnets)" in message


def test_production_policies_are_silent_unless_enabled():
    stack = good_stack()
    replace_inputs(stack, "web-alb", enableDeletionProtection=False)
    replace_inputs(stack, "web-asg", minSize=1.0)
    dev_settings = {
        name: setting for name, setting in PROD_SETTINGS.items() if not name.startswith("prod-")
    }
    assert run(stack, dev_settings) == []


# ---------------------------------------------------------------------------------------------
# Advisory
# ---------------------------------------------------------------------------------------------
def test_instance_type_outside_the_allow_list_is_advised_against():
    stack = good_stack()
    replace_inputs(stack, "web-lt", instanceType="x2iedn.32xlarge")
    violation = only(run(stack), "instance-type-allowed")
    assert violation.level == EnforcementLevel.ADVISORY
    assert "x2iedn.32xlarge" in violation.message
    assert "policy/config/<stack>.json" in violation.message


def test_mixed_instances_overrides_are_checked_against_the_allow_list():
    stack = good_stack()
    replace_inputs(
        stack,
        "web-asg",
        mixedInstancesPolicy={
            "launchTemplate": {
                "overrides": [{"instanceType": "m7g.large"}, {"instanceType": "p5.48xlarge"}]
            }
        },
    )
    assert "p5.48xlarge" in only(run(stack), "instance-type-allowed").message


def test_missing_required_tag_is_advised():
    stack = good_stack()
    replace_inputs(stack, "web-alb", tags={"Project": "pyscale"})
    violation = only(run(stack), "required-tags")
    assert violation.level == EnforcementLevel.ADVISORY
    assert "['Environment']" in violation.message


def test_provider_default_tags_count_as_tags():
    stack = good_stack()
    replace_inputs(stack, "web-alb", tags=None)
    provider = PolicyProviderResource(
        "pulumi:providers:aws",
        unknown_checking_proxy({"defaultTags": '{"tags": {"Project": "p", "Environment": "e"}}'}),
        "urn:provider",
        "default",
    )
    assert run(stack, provider=provider) == []


# ---------------------------------------------------------------------------------------------
# How the engine calls the pack
# ---------------------------------------------------------------------------------------------
def test_a_value_unknown_during_preview_surfaces_as_the_engines_unknown_error():
    """During preview the engine proxies inputs; reading an unknown one raises, and the engine
    reports "can't run policy during preview" instead of a false violation."""
    policy = next(
        p for p in rules.iter_policies(ResourceValidationPolicy) if p.name == "imdsv2-required"
    )
    props = unknown_checking_proxy({"metadataOptions": {"httpTokens": UNKNOWN_STRING_VALUE}})
    args = ResourceValidationArgs(rules.LAUNCH_TEMPLATE, props, "urn", "lt", None, None)
    reported = []
    with pytest.raises(UnknownValueError):
        policy.validate(args, lambda message, urn=None: reported.append(message))
    assert reported == []


# ---------------------------------------------------------------------------------------------
# The security review's rules (issue 12)
# ---------------------------------------------------------------------------------------------
def test_an_unmanaged_default_security_group_is_rejected():
    stack = good_stack()
    del stack["web-default-sg"]
    assert "ec2.DefaultSecurityGroup" in only(run(stack), "default-security-group-closed").message


def test_a_default_security_group_with_rules_is_rejected():
    stack = good_stack()
    replace_inputs(
        stack, "web-default-sg", egress=[{"protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}]
    )
    assert "has 1 rule(s)" in only(run(stack), "default-security-group-closed").message


@pytest.mark.parametrize("key", [None, "alias/aws/sns"])
def test_an_alarm_topic_without_a_customer_key_is_rejected(key):
    stack = good_stack()
    replace_inputs(stack, "web-alarms", kmsMasterKeyId=key)
    assert "cloudwatch.amazonaws.com" in only(run(stack), "alarm-topics-encrypted").message


def test_a_key_without_rotation_is_rejected_but_an_asymmetric_one_is_not_asked():
    stack = good_stack()
    replace_inputs(stack, "web-key", enableKeyRotation=False)
    assert "enable_key_rotation" in only(run(stack), "kms-keys-rotated").message
    replace_inputs(stack, "web-key", customerMasterKeySpec="RSA_2048")
    assert run(stack) == []


def test_an_aws_managed_policy_on_a_role_is_rejected():
    stack = good_stack()
    add(
        stack,
        resource(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "web-ssm",
            {
                "role": "web-role",
                "policyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
            },
        ),
    )
    message = only(run(stack), "no-aws-managed-policies-on-roles").message
    assert "AmazonSSMManagedInstanceCore" in message


def test_an_abort_rule_for_one_prefix_only_does_not_cover_the_bucket():
    stack = good_stack()
    prefixed = {
        "id": "old-releases",
        "status": "Enabled",
        "filter": {"prefix": "releases/"},
        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1.0},
    }
    replace_inputs(stack, "web-release-lifecycle", rules=[prefixed])
    assert "empty prefix" in only(run(stack), "buckets-abort-incomplete-uploads").message


def test_a_bucket_without_any_lifecycle_is_rejected():
    stack = good_stack()
    del stack["web-release-lifecycle"]
    violation = only(run(stack), "buckets-abort-incomplete-uploads")
    assert violation.resource == "web-release"


def test_waf_logging_to_a_destination_without_the_prefix_is_rejected():
    stack = good_stack()
    group = stack["web-waf-log-group"]
    stack[group.name] = resource(
        group.type, group.name, {**group.inputs, "name": "web-waf"}, **dict(group.outputs)
    )
    assert "aws-waf-logs-" in only(run(stack), "waf-logs-requests").message


def test_a_web_acl_without_logging_is_rejected():
    stack = good_stack()
    del stack["web-waf-logging"]
    assert only(run(stack), "waf-logs-requests").resource == "web-waf"


def test_a_production_cache_with_a_long_lived_password_is_rejected():
    stack = good_stack()
    replace_inputs(
        stack, "web-cache", userGroupIds=None, authToken=secret("t" * 64),
        authTokenUpdateStrategy="ROTATE",
    )  # fmt: skip
    assert "AUTH token" in only(run(stack), "prod-cache-iam-auth").message
    stack = good_stack()
    replace_inputs(
        stack, "web-app-user", authenticationMode={"type": "password", "passwords": ["p" * 32]}
    )
    assert (
        "web-app-user authenticate with a password"
        in only(run(stack), "prod-cache-iam-auth").message
    )
    stack = good_stack()
    replace_inputs(stack, "web-default-user", accessString="off ~* +@all on")
    assert "web-default-user" in only(run(stack), "prod-cache-iam-auth").message
    stack = good_stack()
    replace_inputs(stack, "web-user-group", userIds=["web-default"])
    assert "no enabled IAM-authenticated user" in only(run(stack), "prod-cache-iam-auth").message


def test_a_production_eks_control_plane_log_group_under_an_aws_managed_key_is_rejected():
    stack = good_stack()
    add(
        stack,
        resource(
            "aws:cloudwatch/logGroup:LogGroup",
            "web-eks-control-plane-logs",
            {"name": "/aws/eks/web/cluster", "retentionInDays": 90.0, "tags": TAGS},
        ),
    )
    violation = only(run(stack), "prod-customer-managed-key")
    assert violation.resource == "web-eks-control-plane-logs"


def test_production_wants_flow_logs_the_stack_key_and_iam_cache_auth():
    stack = good_stack()
    del stack["web-flow-logs"]
    assert only(run(stack), "prod-vpc-flow-logs").resource == "web-vpc"
    stack = good_stack()
    replace_inputs(stack, "web-waf-log-group", kmsKeyId=None)
    assert only(run(stack), "prod-customer-managed-key").resource == "web-waf-log-group"
    stack = good_stack()
    replace_inputs(
        stack,
        "web-release-sse",
        rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
    )
    assert only(run(stack), "prod-customer-managed-key").resource == "web-release-sse"
