"""Fleet: the app's EC2 instances — launch template, Auto Scaling group, scaling policies and
the instance role.

- Launch template: the AL2023 AMI for the instance type's architecture (read from AWS's
  public SSM parameter at deploy time and written into the template as an AMI id: an
  instance refresh can only roll back a template that names an AMI id), IMDSv2 only with
  hop limit 1, an encrypted gp3 root volume, no SSH key, no public IP, the fleet's security
  group, and user data rendered by infra/boot (base64, < 16 KB, no secret).
- Instance role, least privilege: what SSM Session Manager needs (the only way in) and no
  more; CloudWatch agent writes to the app's two log groups and its metric namespace only;
  read access to exactly the release object and the cache AUTH secret (decrypting them with
  the stack key when customerManagedKey is on); ``elasticache:Connect`` as exactly the
  app's cache user to exactly its replication group (cacheAuth: iam). No AWS managed
  policy: AmazonSSMManagedInstanceCore alone would let the app read every SSM parameter of
  the account.
- Auto Scaling group in the private subnets: ELB health checks with a grace period; the
  launch template pinned to its latest *version number* (never ``$Latest``), so a new
  instance type, AMI or release is a new version and starts a rolling instance refresh
  that keeps ``refresh_min_healthy_percent`` in service and launches before it
  terminates; the 5xx and unhealthy-host alarms fail the refresh. A launch lifecycle hook
  keeps each new instance out of service until its boot script reports /healthz answering.
  `pulumi up` does not wait for the refresh: ``pyscale deploy wait`` does, verifies, and
  rolls back to the previous version (AWS's own rollback is off: see the group below).
- Scaling: target tracking on average CPU and on ALB requests per target; optional
  scheduled actions; optional maximum instance lifetime. Scaling owns the running
  capacity after the first deploy: ``desired_capacity`` drift is ignored.

Supported combinations (``settings.purchase``): on-demand, one type (default) | mixed:
types and/or spot (``mixedInstanceTypes``, ``onDemandPercentAboveBase < 100``) with
capacity rebalancing | warm pool (one type, on-demand only). infra/settings/fleet.py
rejects the others before this component is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from app.contract import DEFAULT_PORT
from infra import boot
from infra.cache import CacheConnection
from infra.monitoring import REFRESH_GUARD_ALARMS, alarm_name
from infra.regions import partition_of
from infra.release import ReleaseObject
from infra.settings import FleetPurchase, FleetSettings

# AWS's public parameters naming the latest AL2023 AMI, per architecture.
AL2023_AMI_PARAMETERS: Mapping[str, str] = {
    "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
    "x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
}
ROOT_DEVICE_NAME = "/dev/xvda"  # AL2023's root device
# Group metrics published every minute: the "pinned at max" alarm and the dashboard use them.
GROUP_METRICS = (
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupMaxSize",
    "GroupMinSize",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
)
SECONDS_PER_DAY = 86_400
# How long a launching instance may take to boot before the group abandons it: dnf, the S3
# download, the install (a few seconds from the release's wheelhouse: bench/bench_boot.py)
# and gunicorn's start, with a wide margin for a slow dnf mirror (AWS allows 30-7200).
LAUNCH_HOOK_TIMEOUT_SECONDS = 600
# What Session Manager needs on the instance and nothing more: the agent registers and
# reports (ssm:UpdateInstanceInformation), opens the session channels (ssmmessages), and
# exchanges messages with Systems Manager (ec2messages). AWS's own minimal Session Manager
# policy (AWS managed policy AWSCloud9SSMInstanceProfile) is the first two; the ec2messages
# actions are those the SSM docs list for the agent ("Reference: ec2messages, ssmmessages,
# and other API operations"). None of them supports resource-level permissions.
SESSION_MANAGER_STATEMENT = {
    "Sid": "SessionManagerOnly",
    "Effect": "Allow",
    "Action": [
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
    ],
    "Resource": "*",
}


@dataclass(frozen=True)
class FleetArgs:
    """Inputs of Fleet.

    settings: sizes, scaling targets and purchase mode (infra.settings.FleetSettings).
    region: the stack's region (the boot script's AWS calls, KMS service conditions).
    log_retention_days: retention of the app's log group (the stack's logRetentionDays).
    private_subnet_ids: where instances run; they never get a public IP.
    security_group_id: the fleet's group (infra.security_groups): the ALB is its only
        source, and it is the cache's only source.
    target_group_arn / target_group_arn_suffix / load_balancer_arn_suffix: the ALB target
        group the group registers into, and the two suffixes that make the
        requests-per-target resource label.
    release, cache: what the boot script installs and connects to (AppRelease.installable,
        Cache.connection).
    forwarded_allow_ips: addresses whose X-Forwarded-* the instance's proxy keeps (the VPC
        CIDR; gunicorn trusts the proxy only).
    trusted_hosts: the names clients reach the app by (TRUSTED_HOSTS on the instances: any
        other Host gets a 400); the ALB forwards exactly these (LoadBalancer.host_names).
    metrics_namespace: the CloudWatch namespace of the app's metrics (the agent's only one).
    key_arn: the stack's KMS key when customerManagedKey is on (log groups; the role may
        decrypt the secret and the release with it); None: AWS managed keys.
    app_port: the app's port (app.contract.DEFAULT_PORT).
    tags: tags for every resource, propagated to instances and volumes.
    target_group_listeners: the listener(s) forwarding to the target group. AWS refuses an
        ALBRequestCountPerTarget policy whose target group is not yet associated with the
        load balancer; in prod the HTTPS listener waits for ACM to issue the certificate,
        so without this ordering the policy would race it and fail.
    """

    settings: FleetSettings
    region: str
    log_retention_days: int
    private_subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    load_balancer_arn_suffix: pulumi.Input[str]
    release: ReleaseObject
    cache: CacheConnection
    forwarded_allow_ips: str
    trusted_hosts: Sequence[pulumi.Input[str]]
    metrics_namespace: str
    key_arn: pulumi.Input[str] | None
    app_port: int = DEFAULT_PORT
    tags: Mapping[str, str] = field(default_factory=dict)
    target_group_listeners: Sequence[pulumi.Resource] = ()


def refresh_max_healthy_percent(min_healthy: int) -> int:
    """Launch before terminating (> 100) within AWS's rule: max - min <= 100, max <= 200."""
    return min(200, min_healthy + 100)


class Fleet(pulumi.ComponentResource):
    """The Auto Scaling group of app instances and everything it launches from.

    Outputs: ``asg_name``, ``asg_arn``, ``launch_template_id``, ``launch_template_version``,
    ``image_id``, ``role_arn``, ``log_group_name``; plain ``instance_type``,
    ``architecture``, ``max_size``.
    """

    def __init__(self, name: str, args: FleetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pyscale:fleet:Fleet", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._args = args
        self._tags = {**args.tags, "Name": f"{name}-app"}
        fleet = args.settings
        self.instance_type: str = fleet.instance_type
        self.architecture: str = fleet.architecture
        self.max_size: int = fleet.max_size

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-app-logs",
            name=f"/pyscale/{name}/app",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=self._child,
        )
        # What the CloudWatch agent makes of each scrape of /metrics (embedded metric
        # format): CloudWatch turns these events into the app's metrics.
        self.metrics_log_group = aws.cloudwatch.LogGroup(
            f"{name}-app-metrics",
            name=f"/pyscale/{name}/metrics",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=self._child,
        )
        role, profile = self._instance_role()
        # The AMI id is public: `insecure_value`, because the provider marks `value` secret
        # whatever the parameter holds (pulumi-aws get_parameter docs), and a secret image
        # id shows as [secret] in every preview, so an AMI roll would pass review unseen.
        # A stack pins one with amiId.
        self.image_id: pulumi.Output[str] = (
            pulumi.Output.from_input(fleet.ami_id)
            if fleet.ami_id is not None
            # The direct invoke: the output form makes its whole result secret when any
            # field is, insecure_value included.
            else pulumi.Output.from_input(
                aws.ssm.get_parameter(
                    name=AL2023_AMI_PARAMETERS[fleet.architecture],
                    opts=pulumi.InvokeOptions(parent=self),
                ).insecure_value
            )
        )
        template = self._launch_template(profile)
        group = self._auto_scaling_group(template)
        self._scaling_policies(group)

        self.asg_name: pulumi.Output[str] = group.name
        self.asg_arn: pulumi.Output[str] = group.arn
        self.role_arn: pulumi.Output[str] = role.arn
        self.launch_template_id: pulumi.Output[str] = template.id
        self.launch_template_version: pulumi.Output[str] = template.latest_version.apply(str)
        self.log_group_name: pulumi.Output[str] = self.log_group.name
        self.register_outputs(
            {
                "asgName": self.asg_name,
                "launchTemplateId": self.launch_template_id,
                "launchTemplateVersion": self.launch_template_version,
                "imageId": self.image_id,
                "instanceType": self.instance_type,
                "architecture": self.architecture,
                "roleArn": self.role_arn,
            }
        )

    # -------------------------------------------------------------------------------------
    # Instance role: SSM, CloudWatch agent, exactly one object and one secret
    # -------------------------------------------------------------------------------------
    def _instance_role(self) -> tuple[aws.iam.Role, aws.iam.InstanceProfile]:
        name, args = self._name, self._args
        role = aws.iam.Role(
            f"{name}-instance-role",
            description=f"App instances of {name}",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=dict(args.tags),
            opts=self._child,
        )
        policies = {
            "session-manager": [SESSION_MANAGER_STATEMENT],
            "cloudwatch-agent-writes": self._cloudwatch_agent_statements(),
            "app-access": self._app_access_statements(),
        }
        self._role_policies = [
            aws.iam.RolePolicy(
                f"{name}-{label}",
                role=role.id,
                policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
                opts=self._child,
            )
            for label, statements in policies.items()
        ]
        profile = aws.iam.InstanceProfile(
            f"{name}-instance-profile", role=role.name, tags=dict(args.tags), opts=self._child
        )
        return role, profile

    def _cloudwatch_agent_statements(self) -> list[dict[str, Any]]:
        args = self._args
        # A group's ARN and everything under it (":*": its streams), the forms IAM matches
        # log stream actions against.
        log_groups = [
            arn
            for group in (self.log_group, self.metrics_log_group)
            for arn in (group.arn, pulumi.Output.concat(group.arn, ":*"))
        ]
        return [
            {
                "Sid": "AgentMetricsInTheAppNamespaceOnly",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",  # PutMetricData has no resource; the namespace is the scope
                "Condition": {"StringEquals": {"cloudwatch:namespace": args.metrics_namespace}},
            },
            {
                # The agent resolves ${aws:AutoScalingGroupName} from the instance's tags.
                "Sid": "AgentReadsItsInstanceTags",
                "Effect": "Allow",
                "Action": "ec2:DescribeTags",
                "Resource": "*",  # a list operation: no resource-level permission
            },
            {
                # No logs:CreateLogGroup: the groups exist, encrypted and with retention; the
                # agent may not make others.
                "Sid": "AgentWritesTheAppLogGroups",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                "Resource": log_groups,
            },
        ]

    def _app_access_statements(self) -> list[dict[str, Any]]:
        name, args, partition = self._name, self._args, partition_of(self._args.region)
        statements: list[dict[str, Any]] = [
            {
                "Sid": "ReadTheRelease",
                "Effect": "Allow",
                # GetObjectVersion: the boot script fetches the exact version it was built for.
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": args.release.releases_arn,
            }
        ]
        statements += [
            {
                # The boot script completes its own launch lifecycle action (infra/boot).
                "Sid": "CompleteTheLaunch",
                "Effect": "Allow",
                "Action": "autoscaling:CompleteLifecycleAction",
                # Pulumi autonames the group "<name>-asg-<hex>"; its ARN carries a UUID.
                "Resource": (
                    f"arn:{partition}:autoscaling:{args.region}:*:autoScalingGroup:*:"
                    f"autoScalingGroupName/{name}-asg-*"
                ),
            },
            {
                # Which group the instance is in (no resource-level permissions exist).
                "Sid": "FindTheGroup",
                "Effect": "Allow",
                "Action": "autoscaling:DescribeAutoScalingInstances",
                "Resource": "*",
            },
        ]
        if args.cache.auth_secret_arn is not None:
            statements.append(
                {
                    "Sid": "ReadTheCacheAuthToken",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": args.cache.auth_secret_arn,
                }
            )
        if args.cache.iam_user is not None:
            statements.append(args.cache.iam_user.connect_statement())
        if args.key_arn is not None:
            # The release object (and the AUTH secret, where there is one) are encrypted with
            # the stack key: reading them decrypts, through those services only.
            via = [f"s3.{args.region}.amazonaws.com"]
            if args.cache.auth_secret_arn is not None:
                via.append(f"secretsmanager.{args.region}.amazonaws.com")
            statements.append(
                {
                    "Sid": "DecryptTheReleaseAndSecretWithTheStackKey",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": args.key_arn,
                    "Condition": {"StringEquals": {"kms:ViaService": via}},
                }
            )
        return statements

    # -------------------------------------------------------------------------------------
    # Launch template
    # -------------------------------------------------------------------------------------
    def _user_data(self) -> pulumi.Output[str]:
        args, fleet = self._args, self._args.settings
        release, cache = args.release, args.cache

        iam_user = cache.iam_user

        def render(values: list[Any]) -> str:
            bucket, version_id, endpoint, secret_arn, log_group, metrics_group = values[:6]
            iam_user_id, iam_group_id, *trusted_hosts = values[6:]
            spec = boot.BootSpec(
                region=args.region,
                architecture=fleet.architecture,
                release_bucket=bucket,
                release_key=release.object_key,
                release_version_id=version_id,
                release_sha256=release.sha256,
                app_version=release.app_version,
                wsgi_module=release.wsgi_module,
                cache=boot.CacheConnection(
                    endpoint=endpoint,
                    port=cache.port,
                    tls=cache.tls,
                    cluster=cache.cluster_mode,
                    auth_secret_arn=secret_arn,
                    iam_user=iam_user_id,
                    iam_replication_group=iam_group_id,
                ),
                cache_ttl_seconds=cache.ttl_seconds,
                forwarded_allow_ips=args.forwarded_allow_ips,
                log_group_name=log_group,
                metrics=boot.AppMetrics(
                    log_group_name=metrics_group,
                    namespace=args.metrics_namespace,
                    stack=self._name,
                ),
                web_concurrency=fleet.web_concurrency,
                app_port=args.app_port,
                trusted_hosts=tuple(trusted_hosts),
            )
            return boot.encode_user_data(boot.render_user_data(spec))

        # Rendering is pure string work over resolved values: no resource is created here.
        return pulumi.Output.all(
            release.bucket_name,
            release.version_id,
            cache.endpoint,
            cache.auth_secret_arn,
            self.log_group.name,
            self.metrics_log_group.name,
            iam_user.user_id if iam_user is not None else None,
            iam_user.replication_group_id if iam_user is not None else None,
            *args.trusted_hosts,
        ).apply(render)

    def _launch_template(self, profile: aws.iam.InstanceProfile) -> aws.ec2.LaunchTemplate:
        name, args, fleet = self._name, self._args, self._args.settings
        volume_tags = {**self._tags, "Name": f"{name}-app-root"}
        return aws.ec2.LaunchTemplate(
            f"{name}-launch-template",
            description=f"{name} app instances ({fleet.instance_type}, {fleet.architecture})",
            image_id=self.image_id,
            instance_type=fleet.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE_NAME,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_type="gp3",
                        volume_size=fleet.root_volume_size_gb,
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            network_interfaces=[
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0,
                    associate_public_ip_address="false",
                    delete_on_termination="true",
                    security_groups=[args.security_group_id],
                )
            ],
            # 1-minute EC2 metrics: target tracking reacts in minutes, not in a quarter hour.
            monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=True),
            user_data=self._user_data(),
            update_default_version=True,
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type="instance", tags=self._tags
                ),
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type="volume", tags=volume_tags
                ),
            ],
            tags=dict(args.tags),
            # An instance launched from this template reads the release and the cache token
            # (or signs IAM tokens for the cache) with its role at boot: the token's value and
            # the role's policies exist first (IAM may take seconds more to apply a new
            # policy; nothing here waits for that).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    *self._role_policies,
                    *([args.cache.auth_secret_value] if args.cache.auth_secret_value else []),
                ],
            ),
        )

    # -------------------------------------------------------------------------------------
    # Auto Scaling group
    # -------------------------------------------------------------------------------------
    def _auto_scaling_group(self, template: aws.ec2.LaunchTemplate) -> aws.autoscaling.Group:
        name, args, fleet = self._name, self._args, self._args.settings
        # The version number, as a string: "$Latest" would never start an instance refresh.
        version = template.latest_version.apply(str)
        placement: dict[str, Any] = {}
        if fleet.purchase is FleetPurchase.MIXED:
            placement["mixed_instances_policy"] = aws.autoscaling.GroupMixedInstancesPolicyArgs(
                launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                    launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                        launch_template_id=template.id, version=version
                    ),
                    overrides=[
                        aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(
                            instance_type=instance_type
                        )
                        for instance_type in (fleet.instance_type, *fleet.mixed_instance_types)
                    ],
                ),
                instances_distribution=aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                    on_demand_base_capacity=fleet.on_demand_base_capacity,
                    on_demand_percentage_above_base_capacity=fleet.on_demand_percent_above_base,
                    spot_allocation_strategy=fleet.spot_allocation_strategy.value,
                ),
            )
        else:
            placement["launch_template"] = aws.autoscaling.GroupLaunchTemplateArgs(
                id=template.id, version=version
            )
        if fleet.purchase is FleetPurchase.WARM_POOL:
            placement["warm_pool"] = aws.autoscaling.GroupWarmPoolArgs(
                pool_state="Stopped",
                min_size=fleet.warm_pool_min_size,
                instance_reuse_policy=aws.autoscaling.GroupWarmPoolInstanceReusePolicyArgs(
                    reuse_on_scale_in=True
                ),
            )
        min_healthy = fleet.refresh_min_healthy_percent
        return aws.autoscaling.Group(
            f"{name}-asg",
            vpc_zone_identifiers=list(args.private_subnet_ids),
            min_size=fleet.min_size,
            max_size=fleet.max_size,
            desired_capacity=fleet.desired_capacity,
            health_check_type="ELB",
            health_check_grace_period=fleet.health_check_grace_seconds,
            default_instance_warmup=fleet.instance_warmup_seconds,
            # The one place the target group is attached (the ALB component does not).
            target_group_arns=[args.target_group_arn],
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=min_healthy,
                    max_healthy_percentage=refresh_max_healthy_percent(min_healthy),
                    instance_warmup=str(fleet.instance_warmup_seconds),
                    # Off on purpose: the provider points the group at the new launch template
                    # version before it starts the refresh, so AWS's rollback would return to
                    # that same version (terraform-provider-aws#34189). `pyscale deploy wait`
                    # rolls back to the previous version instead.
                    auto_rollback=False,
                    # A release that answers 5xx or fails its health check once registered
                    # fails its own refresh (then deploy wait rolls it back). Alarm names are
                    # fixed strings, so no dependency on the Monitoring component.
                    alarm_specification=aws.autoscaling.GroupInstanceRefreshPreferencesAlarmSpecificationArgs(
                        alarms=[alarm_name(name, label) for label in REFRESH_GUARD_ALARMS]
                    ),
                ),
            ),
            # In place before the first instance (the provider creates the group at size 0,
            # adds the hook, then sets the sizes; a separate LifecycleHook resource would come
            # after the first instances and the warm pool's first fill). The boot script
            # completes it: CONTINUE once /healthz answers, ABANDON on failure; ABANDON too
            # if it never answers. Changing a hook replaces the group (ForceNew).
            initial_lifecycle_hooks=[
                aws.autoscaling.GroupInitialLifecycleHookArgs(
                    name=boot.LAUNCH_HOOK_NAME,
                    lifecycle_transition="autoscaling:EC2_INSTANCE_LAUNCHING",
                    default_result="ABANDON",
                    heartbeat_timeout=LAUNCH_HOOK_TIMEOUT_SECONDS,
                )
            ],
            # Spot: replace an instance when AWS signals it is at risk, before it is taken.
            capacity_rebalance=fleet.uses_spot,
            max_instance_lifetime=(
                fleet.max_instance_lifetime_days * SECONDS_PER_DAY
                if fleet.max_instance_lifetime_days
                else None
            ),
            enabled_metrics=[aws.autoscaling.Metric(metric) for metric in GROUP_METRICS],
            metrics_granularity="1Minute",
            tags=[
                aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                for key, value in sorted(self._tags.items())
            ],
            # No capacity wait in `pulumi up`. On a min_size or desired_capacity change the
            # provider waits for *exactly* max(min_size, desired_capacity) healthy instances
            # (terraform-provider-aws autoscaling/group.go, resourceGroupUpdate's
            # waitGroupCapacitySatisfied), with desired_capacity the stale configured value
            # (ignore_changes below): a group scaled out to 8 never equals 4, so the update
            # hangs for the default 10 minutes and fails (hashicorp/terraform-provider-aws
            # #5241); a failed scaling activity fails it too. "0" skips the wait on create
            # and update; `pyscale deploy wait` verifies the fleet's health after the up.
            wait_for_capacity_timeout="0",
            opts=pulumi.ResourceOptions(
                parent=self,
                # Target tracking and schedules own the running capacity once deployed; a
                # re-deploy must not reset it to the configured starting size.
                ignore_changes=["desiredCapacity"],
            ),
            **placement,
        )

    def _scaling_policies(self, group: aws.autoscaling.Group) -> None:
        name, args, fleet = self._name, self._args, self._args.settings
        aws.autoscaling.Policy(
            f"{name}-cpu-target",
            autoscaling_group_name=group.name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                predefined_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ASGAverageCPUUtilization"
                ),
                target_value=float(fleet.cpu_target_percent),
            ),
            opts=self._child,
        )
        aws.autoscaling.Policy(
            f"{name}-requests-target",
            autoscaling_group_name=group.name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                predefined_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ALBRequestCountPerTarget",
                    resource_label=pulumi.Output.concat(
                        args.load_balancer_arn_suffix, "/", args.target_group_arn_suffix
                    ),
                ),
                target_value=float(fleet.requests_per_target),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.target_group_listeners)),
        )
        for action in fleet.scheduled_actions:
            aws.autoscaling.Schedule(
                f"{name}-schedule-{action.name}",
                autoscaling_group_name=group.name,
                scheduled_action_name=action.name,
                recurrence=action.recurrence,
                time_zone=action.time_zone,
                min_size=action.min_size,
                max_size=action.max_size,
                desired_capacity=action.desired_capacity,
                opts=self._child,
            )
