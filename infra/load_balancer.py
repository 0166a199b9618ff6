"""Load balancer: an internet-facing ALB in the public subnets in front of the app fleet.

HTTPS (supported combinations, ``settings.tls``):
- certificate (``certificateArn``): HTTPS listener with that certificate; HTTP redirects
  to HTTPS;
- domain (``domainName`` + ``hostedZoneId``, no ARN): an ACM certificate is requested and
  DNS-validated in that zone, then used as above;
- either of those + ``domainName``/``hostedZoneId``: an alias record points the domain
  at the ALB;
- none: one HTTP listener forwarding to the fleet (dev; the settings refuse it when
  ``requireHttps`` is set).

The target group checks app.contract.HEALTH_PATH and drains for
app.contract.GRACEFUL_TIMEOUT_SECONDS, gunicorn's graceful timeout, so a scale-in or a
rolling refresh never cuts a request gunicorn would still finish. Rate limiting lives
here, at the edge (optional WAF), not in every app request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from app.contract import DEFAULT_PORT, GRACEFUL_TIMEOUT_SECONDS, HEALTH_PATH, METRICS_PATH
from infra.buckets import abort_incomplete_uploads_rule
from infra.settings import EdgeSettings, TlsMode, WafRule

HTTP_PORT = 80
HTTPS_PORT = 443
ACCESS_LOG_PREFIX = "alb"
# Who writes ALB access logs into the bucket. Regions opened before August 2022: the
# region's Elastic Load Balancing account; newer regions: the log delivery service
# principal. Account ids (commercial partition) from the Elastic Load Balancing user
# guide, "Enable access logs for your Application Load Balancer" (read 2026-11-25).
# A table rather than the aws.elb.get_service_account data source: the provider fails
# that lookup with "Unknown region" for every region it has no account for
# (hashicorp/terraform-provider-aws#29322, #27874), failing the whole deployment there.
ELB_ACCOUNT_BY_REGION: dict[str, str] = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
}
LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"
# Listener rule priorities (1 is evaluated first; 50000 is the highest number ALB allows).
METRICS_RULE_PRIORITY = 1
HOST_RULE_FIRST_PRIORITY = 10
CATCH_ALL_PRIORITY = 50_000
METRICS_PATH_PATTERNS = (METRICS_PATH, f"{METRICS_PATH}/*")
# WAF accepts only log destinations whose name starts with this (WAF API reference,
# LoggingConfiguration); headers whose values must not land in the logs.
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"
WAF_REDACTED_HEADERS = ("authorization", "cookie")


def _served_hosts(edge: EdgeSettings, alb_dns_name: pulumi.Output[str]) -> list[pulumi.Input[str]]:
    """The Host names the ALB forwards: domainName, its own DNS name, then hostNames."""
    hosts: list[pulumi.Input[str]] = [] if edge.domain_name is None else [edge.domain_name]
    hosts.append(alb_dns_name)
    hosts += [host for host in edge.host_names if host != edge.domain_name]
    return hosts


def _not_found() -> aws.lb.ListenerRuleActionArgs:
    return aws.lb.ListenerRuleActionArgs(
        type="fixed-response",
        fixed_response=aws.lb.ListenerRuleActionFixedResponseArgs(
            content_type="text/plain", message_body="not found", status_code="404"
        ),
    )


@dataclass(frozen=True)
class LoadBalancerArgs:
    """Inputs of LoadBalancer.

    settings: the edge keys (TLS mode, deletion protection, access logs, WAF).
    region: the stack's region (who delivers access logs there).
    log_retention_days: how long access logs are kept (the stack's logRetentionDays).
    vpc_id / public_subnet_ids / security_group_id: from Network and SecurityGroups.
    internet_ready: Network.internet_ready, what the internet-facing ALB must be created
        after (the gateway attached, the public subnets routed to it).
    log_key_arn: KMS key of the WAF log group (None: CloudWatch Logs' own encryption).
    app_port: the app's port (app.contract.DEFAULT_PORT).
    target_type: "instance" (the EC2 fleet registers its instances) or "ip" (eks: the AWS
        Load Balancer Controller registers pod IPs through a TargetGroupBinding).
    """

    settings: EdgeSettings
    region: str
    log_retention_days: int
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    internet_ready: Sequence[pulumi.Resource]
    target_type: str
    log_key_arn: pulumi.Input[str] | None
    app_port: int = DEFAULT_PORT


class LoadBalancer(pulumi.ComponentResource):
    alb_arn: pulumi.Output[str]
    alb_arn_suffix: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    url: pulumi.Output[str]
    access_logs_bucket: pulumi.Output[str] | None
    web_acl_arn: pulumi.Output[str] | None
    # The listener that forwards to the target group: only once it exists is the target
    # group associated with the ALB, which ALBRequestCountPerTarget scaling requires.
    forwarding_listener: aws.lb.Listener

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:loadbalancer:LoadBalancer", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        edge = args.settings

        logs_bucket, logs_ready = (
            self._access_logs_bucket(args.region, args.log_retention_days)
            if edge.access_logs
            else (None, [])
        )
        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=list(args.public_subnet_ids),
            security_groups=[args.security_group_id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode="defensive",
            enable_deletion_protection=edge.deletion_protection,
            enable_http2=True,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=logs_bucket.bucket, prefix=ACCESS_LOG_PREFIX, enabled=True
            )
            if logs_bucket is not None
            else None,
            tags={"Name": f"{name}-alb"},
            # AWS checks it can write the logs when logging is turned on, and refuses an
            # internet-facing load balancer until the VPC's gateway is attached.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*logs_ready, *args.internet_ready]
            ),
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-app",
            vpc_id=args.vpc_id,
            port=args.app_port,
            protocol="HTTP",
            target_type=args.target_type,
            deregistration_delay=GRACEFUL_TIMEOUT_SECONDS,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=HEALTH_PATH,
                protocol="HTTP",
                port="traffic-port",
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags={"Name": f"{name}-app"},
            opts=self._child,
        )
        forward = aws.lb.ListenerDefaultActionArgs(
            type="forward", target_group_arn=target_group.arn
        )
        if edge.https:
            certificate_arn = self._certificate(edge)
            self.forwarding_listener = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=alb.arn,
                port=HTTPS_PORT,
                protocol="HTTPS",
                ssl_policy=edge.ssl_policy,
                certificate_arn=certificate_arn,
                default_actions=[forward],
                opts=self._child,
            )
            redirect_listener = aws.lb.Listener(
                f"{name}-http-redirect",
                load_balancer_arn=alb.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[
                    aws.lb.ListenerDefaultActionArgs(
                        type="redirect",
                        redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                            protocol="HTTPS", port=str(HTTPS_PORT), status_code="HTTP_301"
                        ),
                    )
                ],
                opts=self._child,
            )
            redirect = aws.lb.ListenerRuleActionArgs(
                type="redirect",
                redirect=aws.lb.ListenerRuleActionRedirectArgs(
                    protocol="HTTPS", port=str(HTTPS_PORT), status_code="HTTP_301"
                ),
            )
            self._serve_only_known_hosts(redirect_listener, "http-redirect", redirect, edge, alb)
        else:
            self.forwarding_listener = aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=alb.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[forward],
                opts=self._child,
            )
        self._answer_404_for_metrics(self.forwarding_listener)
        forward_rule = aws.lb.ListenerRuleActionArgs(
            type="forward", target_group_arn=target_group.arn
        )
        listener_label = "https" if edge.https else "http"
        self._serve_only_known_hosts(
            self.forwarding_listener, listener_label, forward_rule, edge, alb
        )
        if edge.alias_record:
            aws.route53.Record(
                f"{name}-alias",
                zone_id=edge.hosted_zone_id,
                name=edge.domain_name,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=alb.dns_name, zone_id=alb.zone_id, evaluate_target_health=True
                    )
                ],
                opts=self._child,
            )
        self.web_acl_arn = self._web_acl(alb, args) if edge.waf else None
        # The Host names the listeners forward (the app trusts exactly these).
        self.host_names: list[pulumi.Input[str]] = _served_hosts(edge, alb.dns_name)

        host = pulumi.Output.from_input(edge.domain_name) if edge.domain_name else alb.dns_name
        self.url = pulumi.Output.concat("https://" if edge.https else "http://", host)
        self.alb_arn = alb.arn
        self.alb_arn_suffix = alb.arn_suffix
        self.dns_name = alb.dns_name
        self.target_group_arn = target_group.arn
        self.target_group_arn_suffix = target_group.arn_suffix
        self.access_logs_bucket = logs_bucket.bucket if logs_bucket is not None else None
        self.register_outputs(
            {
                "url": self.url,
                "albArn": self.alb_arn,
                "albArnSuffix": self.alb_arn_suffix,
                "dnsName": self.dns_name,
                "targetGroupArn": self.target_group_arn,
                "targetGroupArnSuffix": self.target_group_arn_suffix,
            }
        )

    # -- what the listeners answer themselves ------------------------------------------
    def _answer_404_for_metrics(self, listener: aws.lb.Listener) -> None:
        """/metrics is for the CloudWatch agent on the instance, never the internet. ALB
        path patterns are case-sensitive and match the path as sent; the proxy in front of
        gunicorn on each instance refuses the other spellings (infra/boot)."""
        aws.lb.ListenerRule(
            f"{self._name}-metrics-not-found",
            listener_arn=listener.arn,
            priority=METRICS_RULE_PRIORITY,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(
                        values=list(METRICS_PATH_PATTERNS)
                    )
                )
            ],
            actions=[_not_found()],
            opts=self._child,
        )

    def _serve_only_known_hosts(
        self,
        listener: aws.lb.Listener,
        label: str,
        action: aws.lb.ListenerRuleActionArgs,
        edge: EdgeSettings,
        alb: aws.lb.LoadBalancer,
    ) -> None:
        """One rule per served Host name applies ``action``; a last rule answers 404 for
        every other Host (the app builds absolute URLs from Host). The listener's default
        action stays as it was and is never reached once the catch-all exists, which is
        created only after the host rules: no request is refused while they are added."""
        host_rules = [
            aws.lb.ListenerRule(
                f"{self._name}-{label}-host-{index}",
                listener_arn=listener.arn,
                priority=HOST_RULE_FIRST_PRIORITY + index,
                conditions=[
                    aws.lb.ListenerRuleConditionArgs(
                        host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=[host])
                    )
                ],
                actions=[action],
                opts=self._child,
            )
            for index, host in enumerate(_served_hosts(edge, alb.dns_name))
        ]
        aws.lb.ListenerRule(
            f"{self._name}-{label}-unknown-host",
            listener_arn=listener.arn,
            priority=CATCH_ALL_PRIORITY,
            conditions=[
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=["*"])
                )
            ],
            actions=[_not_found()],
            opts=pulumi.ResourceOptions(parent=self, depends_on=host_rules),
        )

    # -- HTTPS -----------------------------------------------------------------------
    def _certificate(self, edge: EdgeSettings) -> pulumi.Input[str]:
        if edge.tls is TlsMode.CERTIFICATE:
            assert edge.certificate_arn is not None
            return edge.certificate_arn
        # TlsMode.DOMAIN: the settings guarantee a domain and its zone.
        assert edge.domain_name is not None
        assert edge.hosted_zone_id is not None
        certificate = aws.acm.Certificate(
            f"{self._name}-certificate",
            domain_name=edge.domain_name,
            validation_method="DNS",
            tags={"Name": edge.domain_name},
            # A replacement certificate must exist before the listener lets go of the old one.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )
        # One domain, so exactly one validation option: the record count is known up front.
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{self._name}-certificate-validation",
            zone_id=edge.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=60,
            allow_overwrite=True,
            opts=self._child,
        )
        validation = aws.acm.CertificateValidation(
            f"{self._name}-certificate",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=self._child,
        )
        # The validated ARN: the listener waits until ACM has issued the certificate.
        return validation.certificate_arn

    # -- access logs -----------------------------------------------------------------
    def _access_logs_bucket(
        self, region: str, retention_days: int
    ) -> tuple[aws.s3.Bucket, list[pulumi.Resource]]:
        bucket = aws.s3.Bucket(f"{self._name}-access-logs", force_destroy=False, opts=self._child)
        aws.s3.BucketLifecycleConfiguration(
            f"{self._name}-access-logs",
            bucket=bucket.id,
            rules=[
                # Logs are kept as long as the stack's other logs, not forever.
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(
                        prefix=f"{ACCESS_LOG_PREFIX}/"
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=retention_days
                    ),
                ),
                abort_incomplete_uploads_rule(),
            ],
            opts=self._child,
        )
        blocked = aws.s3.BucketPublicAccessBlock(
            f"{self._name}-access-logs",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child,
        )
        owned = aws.s3.BucketOwnershipControls(
            f"{self._name}-access-logs",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=self._child,
        )
        # ALB access logs support SSE-S3 only (not KMS keys).
        encrypted = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{self._name}-access-logs",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    )
                )
            ],
            opts=self._child,
        )
        account_id = aws.get_caller_identity().account_id
        log_objects = pulumi.Output.concat(
            bucket.arn, f"/{ACCESS_LOG_PREFIX}/AWSLogs/{account_id}/*"
        )
        writers: list[dict[str, Any]] = []
        elb_account = ELB_ACCOUNT_BY_REGION.get(region)
        if elb_account is not None:
            writers.append(
                {
                    "Sid": "ElbAccountWritesLogs",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{elb_account}:root"},
                    "Action": "s3:PutObject",
                    "Resource": log_objects,
                }
            )
        # The service principal: how newer regions deliver; harmless beside the account.
        writers.append(
            {
                "Sid": "LogDeliveryWritesLogs",
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY_PRINCIPAL},
                "Action": "s3:PutObject",
                "Resource": log_objects,
            }
        )
        policy_document = pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    *writers,
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ],
            }
        )
        policy = aws.s3.BucketPolicy(
            f"{self._name}-access-logs",
            bucket=bucket.id,
            policy=policy_document,
            # S3 rejects a bucket policy until the public access block is in place.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[blocked]),
        )
        return bucket, [policy, owned, encrypted]

    # -- WAF -------------------------------------------------------------------------
    def _web_acl(self, alb: aws.lb.LoadBalancer, args: LoadBalancerArgs) -> pulumi.Output[str]:
        """AWS's IP reputation list first, then the rate limit per client IP, AWS's
        known-bad-inputs rules (Log4Shell and similar) and its common rule set. Each rule
        blocks unless wafCountRules lists it; wafCommonRuleOverrides turns single rules of
        the common set to count. Requests are logged to an ``aws-waf-logs-`` log group
        (the prefix WAF requires of a log destination), without credentials."""
        edge, metric = args.settings, self._name.replace("-", "")
        counted = edge.counted_waf_rules

        def visibility(suffix: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
            return aws.wafv2.WebAclRuleVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True,
                metric_name=f"{metric}{suffix}",
                sampled_requests_enabled=True,
            )

        def managed(
            rule: WafRule, priority: int, group: str, suffix: str, overrides: Sequence[str] = ()
        ) -> aws.wafv2.WebAclRuleArgs:
            override = (
                aws.wafv2.WebAclRuleOverrideActionArgs(
                    count=aws.wafv2.WebAclRuleOverrideActionCountArgs()
                )
                if rule in counted
                else aws.wafv2.WebAclRuleOverrideActionArgs(
                    none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()
                )
            )
            return aws.wafv2.WebAclRuleArgs(
                name=rule.value,
                priority=priority,
                override_action=override,
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                        vendor_name="AWS",
                        name=group,
                        rule_action_overrides=[
                            aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs(
                                name=rule_name,
                                action_to_use=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs(
                                    count=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs()
                                ),
                            )
                            for rule_name in overrides
                        ]
                        or None,
                    )
                ),
                visibility_config=visibility(suffix),
            )

        rate_action = (
            aws.wafv2.WebAclRuleActionArgs(count=aws.wafv2.WebAclRuleActionCountArgs())
            if WafRule.RATE_LIMIT in counted
            else aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs())
        )
        acl = aws.wafv2.WebAcl(
            f"{self._name}-waf",
            scope="REGIONAL",
            description=f"pyscale edge rules for {self._name}",
            default_action=aws.wafv2.WebAclDefaultActionArgs(
                allow=aws.wafv2.WebAclDefaultActionAllowArgs()
            ),
            rules=[
                aws.wafv2.WebAclRuleArgs(
                    name=WafRule.RATE_LIMIT.value,
                    priority=0,
                    action=rate_action,
                    statement=aws.wafv2.WebAclRuleStatementArgs(
                        rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                            limit=edge.waf_rate_limit, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("RateLimit"),
                ),
                managed(
                    WafRule.IP_REPUTATION,
                    1,
                    "AWSManagedRulesAmazonIpReputationList",
                    "IpReputation",
                ),
                managed(
                    WafRule.KNOWN_BAD_INPUTS,
                    2,
                    "AWSManagedRulesKnownBadInputsRuleSet",
                    "KnownBadInputs",
                ),
                managed(
                    WafRule.COMMON,
                    3,
                    "AWSManagedRulesCommonRuleSet",
                    "Common",
                    edge.waf_common_rule_overrides,
                ),
            ],
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
            ),
            opts=self._child,
        )
        aws.wafv2.WebAclAssociation(
            f"{self._name}-waf", resource_arn=alb.arn, web_acl_arn=acl.arn, opts=self._child
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-waf-logs",
            name=f"{WAF_LOG_GROUP_PREFIX}{self._name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_key_arn,
            opts=self._child,
        )
        # WAF adds the log group's resource policy itself when logging is turned on.
        aws.wafv2.WebAclLoggingConfiguration(
            f"{self._name}-waf-logs",
            resource_arn=acl.arn,
            log_destination_configs=[log_group.arn],
            redacted_fields=[
                aws.wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                    single_header=aws.wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(
                        name=header
                    )
                )
                for header in WAF_REDACTED_HEADERS
            ],
            opts=self._child,
        )
        return acl.arn
