"""Specifications of the security review's AWS findings (issue 12), read from the real
program run under mocks: flow logs, the default security group, WAF logging and rule sets,
/metrics and Host at the edge, the stack's KMS key, bucket lifecycles, IAM cache auth and
the instance role's least privilege."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.contract import CACHE_USER_ACCESS_STRING, METRICS_PATH, Env
from infra.boot import PUBLISHED_METRICS
from pyscale.offline import ProgramRun, is_secret, run_stack

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
LISTENER = "aws:lb/listener:Listener"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
ALB = "aws:lb/loadBalancer:LoadBalancer"
KMS_KEY = "aws:kms/key:Key"
TOPIC = "aws:sns/topic:Topic"
BUCKET = "aws:s3/bucket:Bucket"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
SECRET = "aws:secretsmanager/secret:Secret"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_USER = "aws:elasticache/user:User"
USER_GROUP = "aws:elasticache/userGroup:UserGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"


def policy(resource) -> dict[str, Any]:
    return json.loads(resource.inputs["policy"])


def statements_of(run: ProgramRun, name_suffix: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in run.of_type(ROLE_POLICY)
        if resource.name.endswith(name_suffix)
        for statement in policy(resource)["Statement"]
    ]


def instance_role_statements(run: ProgramRun) -> list[dict[str, Any]]:
    role = next(r for r in run.of_type(ROLE) if r.name.endswith("-instance-role"))
    return [
        statement
        for resource in run.of_type(ROLE_POLICY)
        if resource.inputs["role"] == role.id
        for statement in policy(resource)["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


def user_data(run: ProgramRun) -> str:
    return base64.b64decode(run.one(LAUNCH_TEMPLATE).inputs["userData"]).decode()


def app_env(run: ProgramRun) -> dict[str, str]:
    lines = user_data(run).split("<<'PYSCALE_ENV'\n", 1)[1].split("\nPYSCALE_ENV", 1)[0]
    return dict(line.split("=", 1) for line in lines.splitlines())


def heredoc(run: ProgramRun, marker: str) -> dict[str, Any]:
    text = user_data(run).split(f"<<'{marker}'\n", 1)[1].split(f"\n{marker}", 1)[0]
    return json.loads(text)


def stack_key(run: ProgramRun):
    return run.one(KMS_KEY)


IAM = {"cacheAuth": "iam"}


@pytest.fixture
def prod_iam(shipped_run) -> ProgramRun:
    """prod as shipped: IAM cache authentication (stacks/Pulumi.prod.yaml)."""
    run = shipped_run("prod")
    assert run.config["pyscale:cacheAuth"] == "iam"
    return run


@pytest.fixture(scope="module")
def prod_auth_token() -> ProgramRun:
    """prod with an AUTH token instead (engines without IAM authentication)."""
    return run_stack("prod", {"cacheAuth": "auth-token"})


# -- network ------------------------------------------------------------------------------
def test_prod_flow_logs_record_all_vpc_traffic_into_an_encrypted_group_kept_the_stacks_days(
    shipped_run,
):
    run = shipped_run("prod")
    flow_log, vpc = run.one(FLOW_LOG), run.one(VPC)
    group = next(
        g for g in run.of_type(LOG_GROUP) if g.outputs["arn"] == flow_log.inputs["logDestination"]
    )

    assert flow_log.inputs["vpcId"] == vpc.id
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert group.inputs["retentionInDays"] == float(run.config["pyscale:logRetentionDays"])
    assert group.inputs["kmsKeyId"] == stack_key(run).outputs["arn"]


def test_the_flow_log_role_is_for_this_accounts_flow_logs_and_writes_only_their_group(
    shipped_run,
):
    run = shipped_run("prod")
    flow_log = run.one(FLOW_LOG)
    role = next(r for r in run.of_type(ROLE) if r.outputs["arn"] == flow_log.inputs["iamRoleArn"])
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    write = statements_of(run, "-flow-logs")[0]

    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":vpc-flow-log/*")
    assert {r.removesuffix(":*") for r in write["Resource"]} == {flow_log.inputs["logDestination"]}
    # The flow log starts only once its role may write: no failed first deliveries.
    policy_resource = next(p for p in run.of_type(ROLE_POLICY) if p.name.endswith("-flow-logs"))
    assert run.is_created_after(flow_log, policy_resource)


def test_flow_logs_are_off_unless_the_stack_turns_them_on(shipped_run):
    assert shipped_run("dev").of_type(FLOW_LOG) == []
    assert len(run_stack("dev", {"flowLogs": True}).of_type(FLOW_LOG)) == 1


def test_the_default_security_group_of_every_created_vpc_is_managed_with_no_rules(
    each_stack_run,
):
    vpc = each_stack_run.one(VPC)
    group = each_stack_run.one(DEFAULT_SG)

    assert group.inputs["vpcId"] == vpc.id
    assert group.id == vpc.outputs["defaultSecurityGroupId"]  # adopted, not created
    assert "ingress" not in group.inputs or group.inputs["ingress"] == []
    assert "egress" not in group.inputs or group.inputs["egress"] == []


def test_an_adopted_vpc_keeps_its_owners_default_group_and_flow_logs():
    run = run_stack(
        "prod",
        {
            "existingVpcId": "vpc-0123456789abcdef0",
            "existingPublicSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
            "existingPrivateSubnetIds": ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"],
        },
    )

    assert run.of_type(DEFAULT_SG) == []
    assert run.of_type(FLOW_LOG) == []


# -- WAF ----------------------------------------------------------------------------------
def waf_rules(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {rule["name"]: rule for rule in run.one(WEB_ACL).inputs["rules"]}


def test_prod_waf_runs_ip_reputation_known_bad_inputs_and_common_rules_beside_the_rate_limit(
    shipped_run,
):
    rules = waf_rules(shipped_run("prod"))
    groups = {
        name: rule["statement"]["managedRuleGroupStatement"]["name"]
        for name, rule in rules.items()
        if "managedRuleGroupStatement" in rule["statement"]
    }

    assert groups == {
        "aws-ip-reputation": "AWSManagedRulesAmazonIpReputationList",
        "aws-known-bad-inputs": "AWSManagedRulesKnownBadInputsRuleSet",
        "aws-common-rule-set": "AWSManagedRulesCommonRuleSet",
    }
    assert "rateBasedStatement" in rules["rate-limit-per-ip"]["statement"]
    assert len({rule["priority"] for rule in rules.values()}) == len(rules)
    # As shipped every rule blocks.
    assert all(
        rule.get("overrideAction") == {"none": {}} for n, rule in rules.items() if n in groups
    )
    assert rules["rate-limit-per-ip"]["action"] == {"block": {}}


def test_which_waf_rules_count_instead_of_block_is_a_setting():
    rules = waf_rules(
        run_stack(
            "prod",
            {
                "wafCountRules": ["aws-known-bad-inputs", "rate-limit-per-ip"],
                "wafCommonRuleOverrides": ["SizeRestrictions_BODY", "NoUserAgent_HEADER"],
            },
        )
    )
    common = rules["aws-common-rule-set"]

    assert rules["aws-known-bad-inputs"]["overrideAction"] == {"count": {}}
    assert rules["rate-limit-per-ip"]["action"] == {"count": {}}
    assert rules["aws-ip-reputation"]["overrideAction"] == {"none": {}}
    assert common["overrideAction"] == {"none": {}}
    overrides = common["statement"]["managedRuleGroupStatement"]["ruleActionOverrides"]
    assert {o["name"]: o["actionToUse"] for o in overrides} == {
        "SizeRestrictions_BODY": {"count": {}},
        "NoUserAgent_HEADER": {"count": {}},
    }


def test_waf_logs_every_request_without_credentials_to_an_aws_waf_logs_group(shipped_run):
    run = shipped_run("prod")
    logging = run.one(WAF_LOGGING)
    (destination,) = logging.inputs["logDestinationConfigs"]
    group = next(g for g in run.of_type(LOG_GROUP) if g.outputs["arn"] == destination)
    redacted = {f["singleHeader"]["name"] for f in logging.inputs["redactedFields"]}

    assert logging.inputs["resourceArn"] == run.one(WEB_ACL).outputs["arn"]
    assert group.outputs["name"].startswith("aws-waf-logs-")
    assert group.inputs["retentionInDays"] == float(run.config["pyscale:logRetentionDays"])
    assert group.inputs["kmsKeyId"] == stack_key(run).outputs["arn"]
    assert {"authorization", "cookie"} <= redacted
    assert "loggingFilter" not in logging.inputs  # every request, not a sample


# -- the edge: /metrics and Host ------------------------------------------------------------
def rules_of(run: ProgramRun, listener) -> list:
    return sorted(
        (
            r
            for r in run.of_type(LISTENER_RULE)
            if r.inputs["listenerArn"] == listener.outputs["arn"]
        ),
        key=lambda r: r.inputs["priority"],
    )


def forwarding_listener(run: ProgramRun):
    return next(
        listener
        for listener in run.of_type(LISTENER)
        if listener.inputs["defaultActions"][0]["type"] == "forward"
    )


def test_metrics_answers_404_at_the_alb_before_any_rule_that_forwards(each_stack_run):
    rules = rules_of(each_stack_run, forwarding_listener(each_stack_run))
    first = rules[0]

    assert first.inputs["conditions"] == [
        {"pathPattern": {"values": [METRICS_PATH, f"{METRICS_PATH}/*"]}}
    ]
    assert first.inputs["actions"][0]["type"] == "fixed-response"
    assert first.inputs["actions"][0]["fixedResponse"]["statusCode"] == "404"


def test_only_the_stacks_host_names_reach_the_app_every_other_host_gets_404(shipped_run):
    run = shipped_run("prod")
    alb = run.one(ALB)
    rules = rules_of(run, forwarding_listener(run))
    forwarded = [
        r.inputs["conditions"][0]["hostHeader"]["values"]
        for r in rules
        if r.inputs["actions"][0]["type"] == "forward"
    ]
    last = rules[-1]

    assert forwarded == [[run.config["pyscale:domainName"]], [alb.outputs["dnsName"]]]
    assert last.inputs["conditions"] == [{"pathPattern": {"values": ["*"]}}]
    assert last.inputs["actions"][0]["fixedResponse"]["statusCode"] == "404"
    # The catch-all exists only once every host rule does: no request refused meanwhile.
    for rule in rules[1:-1]:
        assert run.is_created_after(last, rule)


def test_the_http_redirect_listener_redirects_only_the_stacks_host_names(shipped_run):
    run = shipped_run("prod")
    redirect = next(x for x in run.of_type(LISTENER) if x.inputs["port"] == 80.0)
    rules = rules_of(run, redirect)

    assert [r.inputs["actions"][0]["type"] for r in rules] == [
        "redirect",
        "redirect",
        "fixed-response",
    ]


def test_extra_host_names_are_served_too():
    run = run_stack("dev", {"hostNames": ["www.example.org"]})
    rules = rules_of(run, forwarding_listener(run))
    hosts = [
        r.inputs["conditions"][0]["hostHeader"]["values"][0]
        for r in rules
        if "hostHeader" in r.inputs["conditions"][0]
    ]

    assert hosts == [run.one(ALB).outputs["dnsName"], "www.example.org"]


# -- encryption -----------------------------------------------------------------------------
def key_statement(run: ProgramRun, sid: str) -> dict[str, Any]:
    return next(s for s in policy(stack_key(run))["Statement"] if s["Sid"] == sid)


def test_every_stack_has_a_rotated_key_and_the_alarm_topic_is_encrypted_with_it(each_stack_run):
    key = stack_key(each_stack_run)
    cloudwatch = key_statement(each_stack_run, "CloudWatchAlarmsPublishToTheEncryptedTopic")

    assert key.inputs["enableKeyRotation"] is True
    assert each_stack_run.one(TOPIC).inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_the_key_lets_cloudwatch_logs_of_the_region_use_it_for_this_stacks_groups_only(
    shipped_run,
):
    run = shipped_run("prod")
    logs = key_statement(run, "CloudWatchLogsEncryptsThisStacksLogGroups")
    patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]

    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    for group in run.of_type(LOG_GROUP):
        arn = group.outputs["arn"]
        assert any(_arn_like(pattern, arn) for pattern in patterns), arn
    assert not any(
        _arn_like(p, "arn:aws:logs:us-east-1:123456789012:log-group:other") for p in patterns
    )


def _arn_like(pattern: str, arn: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(arn, pattern)


def test_prod_encrypts_log_groups_cache_secret_and_release_with_the_stack_key(shipped_run):
    run = shipped_run("prod")
    key_arn = stack_key(run).outputs["arn"]
    release_sse = next(s for s in run.of_type(SSE) if "release" in s.name)
    rule = release_sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]

    assert {g.outputs["name"]: g.inputs.get("kmsKeyId") for g in run.of_type(LOG_GROUP)} == {
        g.outputs["name"]: key_arn for g in run.of_type(LOG_GROUP)
    }
    assert run.one(REPLICATION_GROUP).inputs["kmsKeyId"] == key_arn
    assert rule == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}
    assert run.one(OBJECT).inputs["kmsKeyId"] == key_arn


def test_alb_access_logs_stay_sse_s3_the_only_encryption_alb_log_delivery_supports(shipped_run):
    run = shipped_run("prod")
    access_logs = next(s for s in run.of_type(SSE) if "access-logs" in s.name)

    assert access_logs.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"
    }


def test_without_the_customer_managed_key_data_stays_under_aws_managed_keys(shipped_run):
    run = shipped_run("dev")

    assert all("kmsKeyId" not in g.inputs for g in run.of_type(LOG_GROUP))
    assert "kmsKeyId" not in run.one(REPLICATION_GROUP).inputs
    assert run.one(TOPIC).inputs["kmsMasterKeyId"] == stack_key(run).outputs["arn"]


def test_the_auth_secret_uses_the_stack_key_in_auth_token_mode(prod_auth_token):
    run = prod_auth_token

    assert run.one(SECRET).inputs["kmsKeyId"] == stack_key(run).outputs["arn"]


def test_every_bucket_aborts_abandoned_multipart_uploads_bucket_wide(shipped_run):
    run = shipped_run("prod")
    buckets = {b.id for b in run.of_type(BUCKET)}
    covered = {
        lifecycle.inputs["bucket"]
        for lifecycle in run.of_type(LIFECYCLE)
        for rule in lifecycle.inputs["rules"]
        if rule.get("abortIncompleteMultipartUpload") and rule.get("filter") == {"prefix": ""}
    }

    assert len(buckets) == 2  # release and ALB access logs
    assert covered == buckets


# -- cache authentication -------------------------------------------------------------------
def test_prod_cache_authenticates_with_iam_through_a_user_group_of_its_own(prod_iam):
    run = prod_iam
    group = run.one(REPLICATION_GROUP)
    user_group = run.one(USER_GROUP)
    users = {u.inputs["userName"]: u for u in run.of_type(CACHE_USER)}
    app_user = users["pyscale-prod-app"]

    assert group.inputs["userGroupIds"] == [user_group.inputs["userGroupId"]]
    assert "authToken" not in group.inputs
    assert group.inputs["authTokenUpdateStrategy"] == "DELETE"  # the move from AUTH to RBAC
    assert group.inputs["transitEncryptionEnabled"] is True
    assert app_user.inputs["userId"] == app_user.inputs["userName"]
    assert app_user.inputs["authenticationMode"] == {"type": "iam"}
    assert app_user.inputs["accessString"] == CACHE_USER_ACCESS_STRING
    assert users["default"].inputs["accessString"].startswith("off ")
    assert sorted(user_group.inputs["userIds"]) == sorted(
        u.inputs["userId"] for u in users.values()
    )
    assert run.of_type(SECRET) == []
    assert "cacheAuthSecretArn" not in run.stack_outputs


def test_users_exist_before_their_group_and_the_group_before_the_replication_group(prod_iam):
    run = prod_iam
    user_group, group = run.one(USER_GROUP), run.one(REPLICATION_GROUP)

    for user in run.of_type(CACHE_USER):
        assert run.is_created_after(user_group, user)
    assert run.is_created_after(group, user_group)


def test_the_instance_role_may_connect_as_exactly_the_app_user_to_exactly_its_group(prod_iam):
    run = prod_iam
    connect = [s for s in instance_role_statements(run) if "elasticache:Connect" in actions(s)]
    app_user = next(u for u in run.of_type(CACHE_USER) if u.inputs["userName"] != "default")

    assert len(connect) == 1
    assert sorted(connect[0]["Resource"]) == sorted(
        [run.one(REPLICATION_GROUP).outputs["arn"], app_user.outputs["arn"]]
    )


def test_the_boot_script_names_the_iam_user_and_group_the_app_signs_for(prod_iam):
    run = prod_iam
    env = app_env(run)
    group = run.one(REPLICATION_GROUP)

    assert env[Env.REDIS_IAM_USER] == "pyscale-prod-app"
    assert env[Env.REDIS_IAM_REPLICATION_GROUP] == group.outputs["replicationGroupId"]
    assert env[Env.REDIS_URL].startswith("rediss://")
    assert Env.REDIS_AUTH_SECRET_ARN not in env


def test_auth_token_mode_keeps_the_secret_and_no_rbac(prod_auth_token):
    run = prod_auth_token
    group = run.one(REPLICATION_GROUP)

    assert is_secret(group.inputs["authToken"])
    assert group.inputs["authTokenUpdateStrategy"] == "ROTATE"
    assert "userGroupIds" not in group.inputs
    assert run.of_type(CACHE_USER) == []
    assert not [s for s in instance_role_statements(run) if "elasticache:Connect" in actions(s)]
    assert Env.REDIS_AUTH_SECRET_ARN in app_env(run)


# -- the eks platform: the same grants through the pods' role -----------------------------
EKS_CLUSTER = "aws:eks/cluster:Cluster"


@pytest.fixture(scope="module")
def eks_iam_with_key() -> ProgramRun:
    """dev-eks with IAM cache authentication and the stack key on."""
    return run_stack("dev-eks", {**IAM, "customerManagedKey": True})


def app_pod_statements(run: ProgramRun) -> list[dict[str, Any]]:
    return [
        statement
        for resource in run.of_type(ROLE_POLICY)
        if "-app-identity-" in resource.name
        for statement in policy(resource)["Statement"]
    ]


def app_container_env(run: ProgramRun) -> dict[str, Any]:
    from pyscale.offline.kubernetes import kubernetes_objects

    deployment = next(
        o for o in kubernetes_objects(run) if o.kind == "Deployment" and o.name == "web"
    )
    (container,) = deployment.manifest["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value") for item in container["env"]}


def test_eks_pods_connect_as_exactly_the_app_user_to_exactly_its_group(eks_iam_with_key):
    run = eks_iam_with_key
    group = run.one(REPLICATION_GROUP)
    app_user = next(u for u in run.of_type(CACHE_USER) if u.inputs["userName"] != "default")
    env = app_container_env(run)

    assert app_pod_statements(run) == [
        {
            "Sid": "ConnectToTheCacheAsTheAppUser",
            "Effect": "Allow",
            "Action": "elasticache:Connect",
            "Resource": [group.outputs["arn"], app_user.outputs["arn"]],
        }
    ]
    assert env[Env.REDIS_IAM_USER] == app_user.inputs["userId"]
    assert env[Env.REDIS_IAM_REPLICATION_GROUP] == group.outputs["replicationGroupId"]
    assert Env.REDIS_AUTH_SECRET_ARN not in env
    assert run.of_type(SECRET) == []


def test_eks_pods_decrypt_the_cache_secret_with_the_stack_key_through_secrets_manager_only():
    run = run_stack("dev-eks", {"cacheAuth": "auth-token", "customerManagedKey": True})
    key = next(k for k in run.of_type(KMS_KEY) if k.name == "pyscale-dev-eks-key")
    read, decrypt = app_pod_statements(run)

    assert read["Resource"] == run.one(SECRET).outputs["arn"]
    assert run.one(SECRET).inputs["kmsKeyId"] == key.outputs["arn"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == key.outputs["arn"]
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    }


def test_eks_control_plane_logs_go_to_a_group_under_the_stack_key_logs_may_use(eks_iam_with_key):
    run = eks_iam_with_key
    key = next(k for k in run.of_type(KMS_KEY) if k.name == "pyscale-dev-eks-key")
    control_plane = next(
        g
        for g in run.of_type(LOG_GROUP)
        if g.inputs.get("name") == "/aws/eks/pyscale-dev-eks/cluster"
    )
    logs = next(
        s
        for s in policy(key)["Statement"]
        if s["Sid"] == "CloudWatchLogsEncryptsThisStacksLogGroups"
    )
    patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]

    assert control_plane.inputs["kmsKeyId"] == key.outputs["arn"]
    assert any(_arn_like(p, control_plane.outputs["arn"]) for p in patterns)
    assert not any(
        _arn_like(p, "arn:aws:logs:us-east-1:123456789012:log-group:/aws/eks/other/cluster")
        for p in patterns
    )
    # The cluster starts writing only once the group (and so the key) exists.
    assert run.is_created_after(run.one(EKS_CLUSTER), control_plane)
    assert run.is_created_after(control_plane, key)


def test_eks_without_the_key_keeps_control_plane_logs_under_the_logs_services_encryption(
    shipped_run,
):
    run = shipped_run("dev-eks")
    control_plane = next(
        g
        for g in run.of_type(LOG_GROUP)
        if g.inputs.get("name") == "/aws/eks/pyscale-dev-eks/cluster"
    )

    assert "kmsKeyId" not in control_plane.inputs


# -- the instance role ----------------------------------------------------------------------
def test_the_instance_role_has_no_aws_managed_policy(each_stack_run):
    assert each_stack_run.of_type(ATTACHMENT) == []


def test_session_manager_gets_its_channel_and_registration_actions_and_nothing_else(
    each_stack_run,
):
    (statement,) = statements_of(each_stack_run, "-session-manager")

    assert set(actions(statement)) == {
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
    }
    every_action = {a for s in instance_role_statements(each_stack_run) for a in actions(s)}
    assert not any(a.startswith("ssm:Get") or a.endswith(":*") or a == "*" for a in every_action)


def test_the_cloudwatch_agent_writes_only_the_app_log_groups_and_the_app_namespace(shipped_run):
    run = shipped_run("prod")
    statements = statements_of(run, "-cloudwatch-agent-writes")
    by_action = {a: s for s in statements for a in actions(s)}
    app_groups = {
        g.outputs["arn"]
        for g in run.of_type(LOG_GROUP)
        if g.outputs["name"] in ("/pyscale/pyscale-prod/app", "/pyscale/pyscale-prod/metrics")
    }

    assert by_action["cloudwatch:PutMetricData"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "pyscale/pyscale-prod"}
    }
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        resources = by_action[action]["Resource"]
        assert {r.removesuffix(":*") for r in resources} == app_groups
    assert "logs:CreateLogGroup" not in by_action


def test_prod_role_decrypts_with_the_stack_key_through_s3_and_secrets_manager_only(
    prod_iam, prod_auth_token
):
    def decrypt_via(run: ProgramRun) -> set[str]:
        (decrypt,) = [s for s in instance_role_statements(run) if "kms:Decrypt" in actions(s)]
        assert decrypt["Resource"] == stack_key(run).outputs["arn"]
        return set(decrypt["Condition"]["StringEquals"]["kms:ViaService"])

    # The release object always; Secrets Manager only where there is a secret to read.
    assert decrypt_via(prod_iam) == {"s3.us-east-1.amazonaws.com"}
    assert decrypt_via(prod_auth_token) == {
        "s3.us-east-1.amazonaws.com",
        "secretsmanager.us-east-1.amazonaws.com",
    }


# -- app metrics inside the VPC -------------------------------------------------------------
def test_the_agent_scrapes_metrics_on_the_instance_into_the_app_namespace(shipped_run):
    run = shipped_run("prod")
    agent = heredoc(run, "PYSCALE_CWAGENT")
    scrape = heredoc(run, "PYSCALE_PROMETHEUS")
    prometheus = agent["logs"]["metrics_collected"]["prometheus"]
    metrics_group = next(
        g for g in run.of_type(LOG_GROUP) if g.outputs["name"].endswith("/metrics")
    )
    (job,) = scrape["scrape_configs"]

    assert job["metrics_path"] == METRICS_PATH
    assert job["static_configs"][0]["targets"] == [f"127.0.0.1:{app_env(run)[Env.PORT]}"]
    assert prometheus["log_group_name"] == metrics_group.outputs["name"]
    assert prometheus["emf_processor"]["metric_namespace"] == "pyscale/pyscale-prod"
    assert agent["metrics"]["namespace"] == "pyscale/pyscale-prod"


def test_the_dashboard_shows_app_hit_ratio_and_latency_and_an_alarm_uses_app_metrics(shipped_run):
    run = shipped_run("prod")
    body = json.loads(run.one(DASHBOARD).inputs["dashboardBody"])
    titles = {w["properties"]["title"]: w for w in body["widgets"]}
    latency = titles["App latency by endpoint, average (s)"]["properties"]["metrics"]
    alarm = next(a for a in run.of_type(ALARM) if a.name.endswith("-app-cache-errors"))
    published = {name for names, _ in PUBLISHED_METRICS for name in names}

    assert "App cache hit ratio %" in titles
    assert any(m[-1].get("label") == "/api/report/<text:raw_n>" for m in latency)
    assert alarm.inputs["namespace"] == "pyscale/pyscale-prod"
    assert alarm.inputs["metricName"] in published
    assert alarm.inputs["dimensions"] == {"stack": "pyscale-prod"}


def test_stack_outputs_name_the_replication_group_for_rotate_auth(prod_iam, prod_auth_token):
    outputs = prod_auth_token.stack_outputs

    assert outputs["cacheReplicationGroupId"].startswith("pyscale-prod-redis-")
    assert outputs["cacheAuth"] == "auth-token"
    assert prod_iam.stack_outputs["cacheAuth"] == "iam"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({**IAM, "cacheEngine": "redis", "cacheEngineVersion": "6.2"}, "cacheAuth"),
        ({**IAM, "cacheTransitEncryption": False}, "cacheAuth"),
        ({"wafCountRules": ["aws-common"]}, "wafCountRules"),
        ({"wafCommonRuleOverrides": ["SizeRestriction_BODY"]}, "wafCommonRuleOverrides"),
        ({"hostNames": ["not a host"]}, "hostNames"),
    ],
)
def test_bad_security_settings_name_the_key_and_register_nothing(overrides, key):
    from pyscale.offline import ProgramError

    with pytest.raises(ProgramError) as caught:
        run_stack("dev", overrides)

    assert f"pyscale:{key}:" in str(caught.value)
    assert caught.value.resources == []
