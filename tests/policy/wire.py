"""Hand-built resources in the wire form the engine (and the offline runner's mocks) record:
camelCase inputs, numbers as floats, launch-template booleans as strings, and outputs
carrying the id/ARN other resources refer to.

`good_stack()` is a small, compliant production-shaped stack; each bad-case test changes one
thing in it, so a violation can only come from that change.
"""

from __future__ import annotations

import copy
from typing import Any

from policy.offline import WireResource

SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
TAGS = {"Project": "pyscale", "Environment": "prod"}


def secret(value: Any) -> dict[str, Any]:
    return {**SECRET_SIG, "value": value}


def resource(type_: str, name: str, inputs: dict[str, Any], **outputs: Any) -> WireResource:
    if "id" not in outputs:
        outputs["id"] = f"{name}-id"
    return WireResource(type=type_, name=name, inputs=inputs, outputs=outputs)


def good_stack() -> dict[str, WireResource]:
    """Resources by name. Deep-copied per call so tests can mutate inputs freely."""
    subnets = {}
    for index, zone in enumerate(("eu-west-1a", "eu-west-1b")):
        for tier, public in (("public", True), ("private", False)):
            name = f"web-{tier}-{index}"
            subnets[name] = resource(
                "aws:ec2/subnet:Subnet",
                name,
                {
                    "vpcId": "web-vpc-id",
                    "availabilityZone": zone,
                    "cidrBlock": f"10.0.{index * 2 + (0 if public else 1)}.0/24",
                    "mapPublicIpOnLaunch": public,
                    "tags": TAGS,
                },
            )
    resources = [
        resource("aws:ec2/vpc:Vpc", "web-vpc", {"cidrBlock": "10.0.0.0/16", "tags": TAGS}),
        *subnets.values(),
        resource(
            "aws:ec2/securityGroup:SecurityGroup",
            "web-alb-sg",
            {"vpcId": "web-vpc-id", "description": "ALB", "tags": TAGS},
        ),
        resource(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "web-alb-https",
            {
                "securityGroupId": "web-alb-sg-id",
                "cidrIpv4": "0.0.0.0/0",
                "fromPort": 443.0,
                "toPort": 443.0,
                "ipProtocol": "tcp",
            },
        ),
        resource(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "web-alb-https-v6",
            {
                "securityGroupId": "web-alb-sg-id",
                "cidrIpv6": "::/0",
                "fromPort": 443.0,
                "toPort": 443.0,
                "ipProtocol": "tcp",
            },
        ),
        resource(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "web-alb-http",
            {
                "securityGroupId": "web-alb-sg-id",
                "cidrIpv4": "0.0.0.0/0",
                "fromPort": 80.0,
                "toPort": 80.0,
                "ipProtocol": "tcp",
            },
        ),
        resource(
            "aws:lb/loadBalancer:LoadBalancer",
            "web-alb",
            {
                "loadBalancerType": "application",
                "securityGroups": ["web-alb-sg-id"],
                "subnets": ["web-public-0-id", "web-public-1-id"],
                "dropInvalidHeaderFields": True,
                "enableDeletionProtection": True,
                "tags": TAGS,
            },
            arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/1",
        ),
        resource(
            "aws:lb/listener:Listener",
            "web-https",
            {
                "loadBalancerArn": (
                    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/1"
                ),
                "port": 443.0,
                "protocol": "HTTPS",
                "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            },
        ),
        resource(
            "aws:lb/listener:Listener",
            "web-http-redirect",
            {
                "loadBalancerArn": (
                    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/1"
                ),
                "port": 80.0,
                "protocol": "HTTP",
            },
        ),
        resource(
            "aws:ec2/securityGroup:SecurityGroup",
            "web-app-sg",
            {"vpcId": "web-vpc-id", "description": "app", "tags": TAGS},
        ),
        resource(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "web-app-from-alb",
            {
                "securityGroupId": "web-app-sg-id",
                "referencedSecurityGroupId": "web-alb-sg-id",
                "fromPort": 8000.0,
                "toPort": 8000.0,
                "ipProtocol": "tcp",
            },
        ),
        resource(
            "aws:ec2/launchTemplate:LaunchTemplate",
            "web-lt",
            {
                "imageId": "ami-0123456789abcdef0",
                "instanceType": "m7g.large",
                "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1.0},
                "blockDeviceMappings": [
                    {
                        "deviceName": "/dev/xvda",
                        "ebs": {"encrypted": "true", "volumeType": "gp3", "volumeSize": 20.0},
                    }
                ],
                "vpcSecurityGroupIds": ["web-app-sg-id"],
                "tags": TAGS,
            },
            latestVersion=1.0,
        ),
        resource(
            "aws:autoscaling/group:Group",
            "web-asg",
            {
                "minSize": 3.0,
                "maxSize": 12.0,
                "desiredCapacity": 3.0,
                "vpcZoneIdentifiers": ["web-private-0-id", "web-private-1-id"],
                "launchTemplate": {"id": "web-lt-id", "version": "1"},
                "tags": [
                    {"key": key, "value": value, "propagateAtLaunch": True}
                    for key, value in TAGS.items()
                ],
            },
        ),
        resource(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "web-cache",
            {
                "description": "cache",
                "engine": "valkey",
                "nodeType": "cache.r7g.large",
                "numNodeGroups": 2.0,
                "replicasPerNodeGroup": 1.0,
                "atRestEncryptionEnabled": True,
                "kmsKeyId": KEY_ARN,
                "transitEncryptionEnabled": True,
                "userGroupIds": ["web-users"],
                "authTokenUpdateStrategy": "DELETE",
                "multiAzEnabled": True,
                "automaticFailoverEnabled": True,
                "snapshotRetentionLimit": 7.0,
                "snapshotWindow": "03:00-05:00",
                "tags": TAGS,
            },
        ),
        *_security_resources(),
    ]
    by_name = {r.name: r for r in resources}
    duplicates = sorted({r.name for r in resources if sum(x.name == r.name for x in resources) > 1})
    assert not duplicates, f"resource names must be unique: {duplicates}"
    return copy.deepcopy(by_name)


KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def _security_resources() -> list[WireResource]:
    """The review's baseline (issue 12): the VPC's default group closed, flow logs, the
    stack key, an encrypted alarm topic, buckets that abort abandoned uploads, WAF logs."""
    whole_bucket_abort = {
        "id": "abort-incomplete-multipart-uploads",
        "status": "Enabled",
        "filter": {"prefix": ""},
        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7.0},
    }
    waf_logs_arn = "arn:aws:logs:eu-west-1:123456789012:log-group:aws-waf-logs-web"
    return [
        # The cache's RBAC: the app's IAM user and the disabled default user, in web-users.
        resource(
            CACHE_USER,
            "web-app-user",
            {
                "userId": "web-app",
                "userName": "web-app",
                "engine": "valkey",
                "accessString": "on ~* +@all -@dangerous",
                "authenticationMode": {"type": "iam"},
            },
            id="web-app",
        ),
        resource(
            CACHE_USER,
            "web-default-user",
            {
                "userId": "web-default",
                "userName": "default",
                "engine": "valkey",
                "accessString": "off ~* -@all",
                "authenticationMode": {"type": "password", "passwords": [secret("x" * 64)]},
            },
            id="web-default",
        ),
        resource(
            "aws:elasticache/userGroup:UserGroup",
            "web-user-group",
            {"userGroupId": "web-users", "engine": "valkey", "userIds": ["web-default", "web-app"]},
            id="web-users",
        ),
        resource(DEFAULT_SG, "web-default-sg", {"vpcId": "web-vpc-id", "tags": TAGS}),
        resource(
            "aws:ec2/flowLog:FlowLog",
            "web-flow-logs",
            {"vpcId": "web-vpc-id", "trafficType": "ALL", "tags": TAGS},
        ),
        resource(
            "aws:kms/key:Key",
            "web-key",
            {"enableKeyRotation": True, "tags": TAGS},
            arn=KEY_ARN,
        ),
        resource("aws:sns/topic:Topic", "web-alarms", {"kmsMasterKeyId": KEY_ARN, "tags": TAGS}),
        resource("aws:s3/bucket:Bucket", "web-release", {"tags": TAGS}),
        resource(
            LIFECYCLE,
            "web-release-lifecycle",
            {"bucket": "web-release-id", "rules": [whole_bucket_abort]},
        ),
        resource(
            SSE,
            "web-release-sse",
            {
                "bucket": "web-release-id",
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": KEY_ARN,
                        }
                    }
                ],
            },
        ),
        resource(
            "aws:wafv2/webAcl:WebAcl",
            "web-waf",
            {"scope": "REGIONAL", "tags": TAGS},
            arn="arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/web/1",
        ),
        resource(
            "aws:cloudwatch/logGroup:LogGroup",
            "web-waf-log-group",
            {"name": "aws-waf-logs-web", "kmsKeyId": KEY_ARN, "tags": TAGS},
            arn=waf_logs_arn,
        ),
        resource(
            "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
            "web-waf-logging",
            {
                "resourceArn": "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/web/1",
                "logDestinationConfigs": [waf_logs_arn],
            },
        ),
    ]


DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
CACHE_USER = "aws:elasticache/user:User"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def replace_inputs(stack: dict[str, WireResource], name: str, **changes: Any) -> None:
    """Set (or, with value None, remove) top-level inputs of one resource."""
    old = stack[name]
    inputs = dict(old.inputs)
    for key, value in changes.items():
        if value is None:
            inputs.pop(key, None)
        else:
            inputs[key] = value
    stack[name] = WireResource(old.type, old.name, inputs, old.outputs, old.parent)


def add(stack: dict[str, WireResource], new: WireResource) -> None:
    stack[new.name] = new
