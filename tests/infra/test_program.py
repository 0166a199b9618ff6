"""Specifications of what each stack builds, read from the real program run under mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.contract import DEFAULT_PORT, GRACEFUL_TIMEOUT_SECONDS, HEALTH_PATH
from infra.settings import CACHE_PORT, KEYS_BY_NAME
from pyscale.offline import ProgramError, ProgramRun, is_secret, run_stack
from pyscale.stacks import engine_config, stack_names, stacks_on

STACKS = stack_names()
# Stacks whose cache is ElastiCache (kubernetes runs Valkey in the cluster).
AWS_STACKS = stacks_on("ec2", "eks")

SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
PARAMETER_GROUP = "aws:elasticache/parameterGroup:ParameterGroup"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def _subnet_tiers(run: ProgramRun) -> dict[str, str]:
    return {subnet.id: subnet.inputs["tags"]["pyscale:tier"] for subnet in run.of_type(SUBNET)}


def _group_role(run: ProgramRun) -> dict[str, str]:
    """security group id -> its role (alb, fleet, cache), from the logical name's suffix."""
    return {group.id: group.name.rsplit("-", 1)[1] for group in run.of_type(SECURITY_GROUP)}


def _walk(value: Any, path: str = ""):
    """Every (path, value) in a wire-form tree; a secret is yielded whole, not opened."""
    yield path, value
    if is_secret(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


# -- every stack ------------------------------------------------------------------------
def test_alb_is_in_public_subnets_and_cache_in_private_ones(each_stack_run):
    tiers = _subnet_tiers(each_stack_run)
    alb = each_stack_run.one(ALB)
    cache_subnets = each_stack_run.one(CACHE_SUBNET_GROUP).inputs["subnetIds"]

    assert {tiers[subnet] for subnet in alb.inputs["subnets"]} == {"public"}
    assert {tiers[subnet] for subnet in cache_subnets} == {"private"}
    assert len(alb.inputs["subnets"]) >= 2  # an ALB needs two AZs


def test_only_alb_listener_ports_are_open_to_the_internet(each_stack_run):
    roles = _group_role(each_stack_run)
    listener_ports = {int(x.inputs["port"]) for x in each_stack_run.of_type(LISTENER)}
    world_rules = [
        rule
        for rule in each_stack_run.of_type(INGRESS)
        if rule.inputs.get("cidrIpv4") == "0.0.0.0/0" or rule.inputs.get("cidrIpv6") == "::/0"
    ]

    assert world_rules, "the shipped stacks admit clients from anywhere to the ALB"
    for rule in world_rules:
        assert roles[rule.inputs["securityGroupId"]] == "alb"
        assert rule.inputs["fromPort"] == rule.inputs["toPort"]
        assert int(rule.inputs["fromPort"]) in listener_ports
    for group in each_stack_run.of_type(SECURITY_GROUP):
        assert "ingress" not in group.inputs, "rules are separate resources, never inline"


def test_security_groups_chain_alb_to_fleet_to_cache_and_nothing_else(each_stack_run):
    roles = _group_role(each_stack_run)
    sourced = {
        (
            roles[rule.inputs["referencedSecurityGroupId"]],
            roles[rule.inputs["securityGroupId"]],
            int(rule.inputs["fromPort"]),
        )
        for rule in each_stack_run.of_type(INGRESS)
        if "referencedSecurityGroupId" in rule.inputs
    }
    assert sourced == {("alb", "fleet", DEFAULT_PORT), ("fleet", "cache", CACHE_PORT)}
    assert not [
        rule
        for rule in each_stack_run.of_type(INGRESS)
        if roles[rule.inputs["securityGroupId"]] in ("fleet", "cache")
        and "referencedSecurityGroupId" not in rule.inputs
    ], "fleet and cache admit no CIDR, only the group in front of them"


def test_target_group_follows_the_app_contract(each_stack_run):
    target_group = each_stack_run.one(TARGET_GROUP)

    assert target_group.inputs["healthCheck"]["path"] == HEALTH_PATH
    assert int(target_group.inputs["port"]) == DEFAULT_PORT
    assert int(target_group.inputs["deregistrationDelay"]) == GRACEFUL_TIMEOUT_SECONDS


def test_alb_drops_invalid_headers(each_stack_run):
    assert each_stack_run.one(ALB).inputs["dropInvalidHeaderFields"] is True


def test_no_input_holds_the_string_none(each_stack_run):
    for resource in each_stack_run.resources:
        for path, value in _walk(resource.inputs):
            assert value != "None", f"{resource.type} {resource.name}{path} is 'None'"
            assert not (isinstance(value, str) and "None" in value.split("/")), (
                f"{resource.type} {resource.name}{path} = {value!r} embeds None"
            )


def _secret_uses(run, password: str) -> int:
    """How many inputs carry ``password`` as a secret; fails if one carries it in plain."""
    secret_values = []
    for resource in run.resources:
        for path, value in _walk(resource.inputs):
            if is_secret(value):
                secret_values.append(value["value"])
            elif isinstance(value, str):
                assert password not in value, f"password in plain input {resource.name}{path}"
        for _, value in _walk(resource.registered_outputs):
            assert not (isinstance(value, str) and password in value)
    assert password not in repr(run.stack_outputs)
    return sum(password in repr(value) for value in secret_values)


@pytest.fixture(params=AWS_STACKS)
def auth_token_run(request):
    return run_stack(request.param, {"cacheAuth": "auth-token"})


def test_auth_token_is_secret_in_every_input_and_in_no_output(auth_token_run):
    token = auth_token_run.one(RANDOM_PASSWORD).outputs["result"]
    # ElastiCache's authToken and the secret version
    assert _secret_uses(auth_token_run, token) == 2


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_with_iam_auth_the_only_password_is_the_disabled_default_users_and_secret(stack):
    run = run_stack(stack, {"cacheAuth": "iam"})
    (password,) = run.of_type(RANDOM_PASSWORD)

    assert password.name.endswith("-default-user")
    assert _secret_uses(run, password.outputs["result"]) == 1


def test_cache_secret_arn_is_what_the_stack_exports(auth_token_run):
    secret = auth_token_run.one("aws:secretsmanager/secret:Secret")
    assert auth_token_run.stack_outputs["cacheAuthSecretArn"] == secret.id


def test_stack_outputs_name_the_entry_points(each_stack_run):
    outputs = each_stack_run.stack_outputs
    alb = each_stack_run.one(ALB)

    assert outputs["albDnsName"] == alb.outputs["dnsName"]
    assert outputs["region"] == each_stack_run.config["aws:region"]
    assert outputs["url"].startswith(("http://", "https://"))
    assert outputs["cacheMode"] in ("cluster", "single-shard")
    assert outputs["cacheEndpoint"].endswith(".cache.amazonaws.com")


def test_cache_evicts_least_recently_used_keys_and_logs_slow_commands(each_stack_run):
    group = each_stack_run.one(REPLICATION_GROUP)
    parameters = {
        p["name"]: p["value"] for p in each_stack_run.one(PARAMETER_GROUP).inputs["parameters"]
    }

    assert parameters["maxmemory-policy"] == "allkeys-lru"
    assert [c["logType"] for c in group.inputs["logDeliveryConfigurations"]] == ["slow-log"]


def test_every_resource_belongs_to_a_pyscale_component(each_stack_run):
    components = {r.urn: r.type for r in each_stack_run.resources if not r.custom}
    assert all(kind.startswith("pyscale:") for kind in components.values())
    for resource in each_stack_run.resources:
        if resource.custom:
            assert resource.parent in components, f"{resource.type} {resource.name} is loose"


# -- per stack --------------------------------------------------------------------------
def test_prod_cache_is_encrypted_multi_az_with_failover_in_cluster_mode(shipped_run):
    group = shipped_run("prod").one(REPLICATION_GROUP).inputs
    parameters = {
        p["name"]: p["value"] for p in shipped_run("prod").one(PARAMETER_GROUP).inputs["parameters"]
    }

    assert group["atRestEncryptionEnabled"] is True
    assert group["transitEncryptionEnabled"] is True
    assert group["multiAzEnabled"] is True
    assert group["automaticFailoverEnabled"] is True
    assert group["clusterMode"] == "enabled"
    assert (group["numNodeGroups"], group["replicasPerNodeGroup"]) == (2, 1)
    assert parameters["cluster-enabled"] == "yes"
    assert group["snapshotRetentionLimit"] > 0
    assert shipped_run("prod").stack_outputs["cacheMode"] == "cluster"


def test_prod_serves_https_with_tls13_and_redirects_http(shipped_run):
    listeners = {int(x.inputs["port"]): x.inputs for x in shipped_run("prod").of_type(LISTENER)}

    assert set(listeners) == {80, 443}
    assert listeners[443]["protocol"] == "HTTPS"
    assert listeners[443]["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
    assert listeners[443]["certificateArn"].startswith("arn:aws:acm:us-east-1:")
    (redirect,) = listeners[80]["defaultActions"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}
    assert shipped_run("prod").stack_outputs["url"] == "https://app.example.com"


def test_prod_requests_and_dns_validates_its_certificate(shipped_run):
    run = shipped_run("prod")
    certificate = run.one("aws:acm/certificate:Certificate")
    validation = run.one("aws:acm/certificateValidation:CertificateValidation")
    records = {r.name: r.inputs for r in run.of_type("aws:route53/record:Record")}
    https = next(x for x in run.of_type(LISTENER) if x.inputs["port"] == 443)

    assert certificate.inputs["validationMethod"] == "DNS"
    option = certificate.outputs["domainValidationOptions"][0]
    assert records["pyscale-prod-certificate-validation"]["name"] == option["resourceRecordName"]
    assert validation.inputs["certificateArn"] == certificate.id
    assert https.inputs["certificateArn"] == certificate.id
    assert records["pyscale-prod-alias"]["aliases"][0]["name"] == run.one(ALB).outputs["dnsName"]


def test_prod_warns_while_its_tls_values_are_the_shipped_examples(shipped_run):
    assert any("EXAMPLE" in warning for warning in shipped_run("prod").warnings)
    assert not shipped_run("dev").warnings


def test_a_deploy_with_the_shipped_example_domain_is_refused_before_any_resource():
    # WHEN prod as shipped runs as `pulumi up` runs it (not a preview)
    with pytest.raises(ProgramError) as failure:
        run_stack("prod", preview=False)

    # THEN nothing is built (not the VPC, NAT and cache that used to precede the Route 53
    # failure) and each example key is named, one line each
    assert failure.value.clean
    assert failure.value.resources == []
    lines = failure.value.message.splitlines()
    for key, value in (("domainName", "app.example.com"), ("hostedZoneId", "Z0123456789EXAMPLE")):
        assert any(
            line.strip().startswith(f"- pyscale:{key}: holds the shipped EXAMPLE value {value!r}")
            for line in lines
        ), lines
    # while a preview of it, and a deploy with real values, go ahead
    assert run_stack("prod", preview=True).resources
    real = {"domainName": "shop.acme.io", "hostedZoneId": "Z04471723VTMQN6OX5JN"}
    assert run_stack("prod", real, preview=False).of_type("aws:route53/record:Record")


def test_a_deploy_with_a_shipped_placeholder_image_digest_is_refused_before_any_resource():
    # GIVEN dev-k8s's images by the all-zeros digest no registry serves
    stack, keys = "dev-k8s", ["appImage", "valkeyImage"]
    with pytest.raises(ProgramError) as failure:
        run_stack(stack, preview=False)
    # THEN `pulumi up` stops before any resource, naming each key; a preview only warns
    assert failure.value.clean
    assert failure.value.resources == []
    for key in keys:
        assert f"- pyscale:{key}: holds the shipped EXAMPLE value" in failure.value.message
    warnings = run_stack(stack).warnings
    assert all(any(f"pyscale:{key} holds" in w for w in warnings) for key in keys), warnings
    real = {key: configured_digest(stack, key) for key in keys}
    assert run_stack(stack, real, preview=False).resources


def configured_digest(stack: str, key: str) -> str:
    """The stack's image for ``key`` with a (made-up) non-placeholder digest."""
    image = str(engine_config(stack)[f"pyscale:{key}"])
    return image.rsplit("@sha256:", 1)[0] + "@sha256:" + "ab" * 32


def test_prod_alb_is_protected_logged_and_behind_waf(shipped_run):
    run = shipped_run("prod")
    alb = run.one(ALB)
    acl = run.one("aws:wafv2/webAcl:WebAcl").inputs
    association = run.one("aws:wafv2/webAclAssociation:WebAclAssociation").inputs
    statements = {rule["name"]: rule["statement"] for rule in acl["rules"]}
    logs = {r.type: r.inputs for r in run.resources if r.name == "pyscale-prod-access-logs"}
    encryption = logs[
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ]
    public_access = logs["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"]

    assert alb.inputs["enableDeletionProtection"] is True
    assert alb.inputs["accessLogs"]["enabled"] is True
    assert association["resourceArn"] == alb.id
    assert statements["aws-common-rule-set"]["managedRuleGroupStatement"]["name"] == (
        "AWSManagedRulesCommonRuleSet"
    )
    rate = statements["rate-limit-per-ip"]["rateBasedStatement"]
    assert (rate["aggregateKeyType"], rate["limit"]) == (
        "IP",
        KEYS_BY_NAME["wafRateLimit"].default,
    )
    rule = encryption["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "AES256"
    assert all(public_access[key] is True for key in ("blockPublicAcls", "blockPublicPolicy"))


def test_nat_strategy_per_stack(shipped_run):
    assert len(shipped_run("dev").of_type(NAT_GATEWAY)) == 1
    assert len(shipped_run("staging").of_type(NAT_GATEWAY)) == 1
    assert len(shipped_run("prod").of_type(NAT_GATEWAY)) == 3
    assert len(shipped_run("prod").of_type(SUBNET)) == 6  # public + private over three AZs


def test_dev_serves_plain_http_to_a_single_node_cache(shipped_run):
    run = shipped_run("dev")
    (listener,) = run.of_type(LISTENER)
    group = run.one(REPLICATION_GROUP).inputs

    assert (listener.inputs["protocol"], listener.inputs["port"]) == ("HTTP", 80)
    assert listener.inputs["defaultActions"][0]["type"] == "forward"
    assert (group["clusterMode"], group["numCacheClusters"]) == ("disabled", 1)
    assert group["multiAzEnabled"] is False
    assert run.stack_outputs["cacheMode"] == "single-shard"


def test_staging_cache_has_one_replica_with_multi_az_failover(shipped_run):
    group = shipped_run("staging").one(REPLICATION_GROUP).inputs
    assert group["numCacheClusters"] == 2
    assert group["multiAzEnabled"] is True
    assert group["automaticFailoverEnabled"] is True


# -- variations through config overrides -------------------------------------------------
def test_a_given_certificate_is_used_as_is_without_requesting_one():
    arn = "arn:aws:acm:us-east-1:111122223333:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
    run = run_stack("dev", {"certificateArn": arn})

    https = next(x for x in run.of_type(LISTENER) if x.inputs["port"] == 443)
    assert https.inputs["certificateArn"] == arn
    assert not run.of_type("aws:acm/certificate:Certificate")
    assert run.stack_outputs["url"].startswith("https://")


def test_adopting_an_existing_vpc_creates_no_network():
    public = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
    private = ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"]
    run = run_stack(
        "dev",
        {
            "existingVpcId": "vpc-0123456789abcdef0",
            "existingPublicSubnetIds": public,
            "existingPrivateSubnetIds": private,
        },
    )

    assert not run.of_type("aws:ec2/vpc:Vpc")
    assert not run.of_type(SUBNET)
    assert run.one(ALB).inputs["subnets"] == public
    assert run.one(CACHE_SUBNET_GROUP).inputs["subnetIds"] == private
    assert {g.inputs["vpcId"] for g in run.of_type(SECURITY_GROUP)} == {"vpc-0123456789abcdef0"}


def test_redis_engine_without_auth_or_tls_is_possible_on_request():
    run = run_stack(
        "dev",
        {"cacheEngine": "redis", "cacheAuth": "none", "cacheTransitEncryption": False},
    )
    group = run.one(REPLICATION_GROUP).inputs

    assert (group["engine"], group["engineVersion"]) == ("redis", "7.1")
    assert "authToken" not in group
    assert not run.of_type(RANDOM_PASSWORD)
    assert "cacheAuthSecretArn" not in run.stack_outputs


def test_more_zones_than_the_region_has_is_a_clean_error():
    with pytest.raises(ProgramError) as failure:
        run_stack("dev", {"aws:region": "eu-west-1", "availabilityZones": 4})

    assert failure.value.clean
    assert "has 3 available zones" in failure.value.message
    assert not [r for r in failure.value.resources if r.custom]


def test_prod_access_logs_expire_with_the_stacks_log_retention(shipped_run):
    """GIVEN prod's access logs WHEN they age THEN they expire after logRetentionDays, as
    the CloudWatch log groups do, instead of growing forever."""
    run = shipped_run("prod")
    lifecycle = next(
        r
        for r in run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        if r.name == "pyscale-prod-access-logs"
    )
    rule = next(r for r in lifecycle.inputs["rules"] if r["id"] == "expire-access-logs")
    access_log_bucket = next(r for r in run.of_type("aws:s3/bucket:Bucket") if "access" in r.name)

    assert lifecycle.inputs["bucket"] == access_log_bucket.id
    assert rule["status"] == "Enabled"
    assert rule["filter"]["prefix"] == "alb/"
    assert rule["expiration"]["days"] == int(engine_config("prod")["pyscale:logRetentionDays"])


def _access_log_writers(run) -> dict[str, object]:
    policy = next(
        r
        for r in run.of_type("aws:s3/bucketPolicy:BucketPolicy")
        if r.name.endswith("-access-logs")
    )
    statements = json.loads(policy.inputs["policy"])["Statement"]
    return {s["Sid"]: s["Principal"] for s in statements if s["Action"] == "s3:PutObject"}


def test_access_logs_in_an_older_region_are_written_by_its_elb_account(shipped_run):
    # GIVEN prod in us-east-1, a region from before August 2022
    writers = _access_log_writers(shipped_run("prod"))

    # THEN the region's Elastic Load Balancing account may write the logs
    assert writers["ElbAccountWritesLogs"] == {"AWS": "arn:aws:iam::127311923021:root"}


def test_access_logs_in_a_newer_region_use_the_log_delivery_service_without_an_elb_account():
    # GIVEN a stack with access logs in a region opened after August 2022, for which the
    # provider's ELB service account lookup fails with 'Unknown region'
    run = run_stack("dev", {"aws:region": "ap-southeast-4", "albAccessLogs": True})

    # THEN the program does not look the account up, and the log delivery service writes
    writers = _access_log_writers(run)
    assert writers == {
        "LogDeliveryWritesLogs": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    }
    assert not any("getServiceAccount" in token for token, _ in run.data_source_calls)


@pytest.mark.parametrize(
    ("engine", "version", "mode"),
    [("valkey", "8.0", "required"), ("redis", "7.1", "required"), ("redis", "6.2", None)],
)
def test_tls_mode_is_stated_required_where_the_engine_has_the_setting(engine, version, mode):
    """GIVEN TLS on WHEN the engine has the transit-encryption-mode setting THEN it says
    "required"; on Redis 6.x it is left to the default of a TLS-created group."""
    # Redis 6 has no IAM authentication: an AUTH token, as before.
    auth = {"cacheAuth": "auth-token"} if version.startswith("6.") else {}
    group = run_stack("dev", {"cacheEngine": engine, "cacheEngineVersion": version, **auth}).one(
        REPLICATION_GROUP
    )

    assert group.inputs["transitEncryptionEnabled"] is True
    assert group.inputs.get("transitEncryptionMode") == mode
