"""Monitoring: CloudWatch alarms to an SNS topic (optionally emailed), and a dashboard, for
the platforms that run on AWS: ec2 (an Auto Scaling group) and eks (a cluster's pods).

Alarms (thresholds in ``AlarmThresholds``, each documented with its default). Shared by
both platforms, as their ALB, target group and cache are the same components:
- ALB 5xx rate: target + load balancer 5xx as a percentage of requests (metric math);
- target p99 latency (TargetResponseTime, p99);
- unhealthy hosts in the target group, sustained (a rolling refresh's brief unhealthy
  instances do not page);
- fewer healthy targets than the compute's minimum (ec2: ``minSize`` instances; eks:
  ``hpaMinReplicas`` pods), missing data breaching, and an absolute count of load-balancer
  5xx: a total outage, which the rate alarm (no requests to divide by) and the
  unhealthy-hosts alarm (0 when the group is empty) both miss;
- per cache node: host CPU, engine CPU, memory use, evictions, and replication lag (only
  when the cache has replicas).

ec2 (``FleetCompute``):
- Auto Scaling group pinned at its maximum (in-service instances >= the group's own
  GroupMaxSize, metric math, so scheduled maximums count): scaling has run out of room,
  raise ``maxSize`` or the instance size;
- the app's own cache errors (its metrics, scraped from /metrics on each instance by the
  CloudWatch agent into ``metrics_namespace``): Redis failing under the app even while
  ElastiCache's node metrics look healthy (a wrong password, a security group, TLS).

eks (``ClusterCompute``), from metrics AWS publishes without an agent or add-on:
- the HPA at its maximum: the ip target group's targets are the app's ready pods, so
  HealthyHostCount at ``hpaMaxReplicas`` for ``pinned_at_max_minutes`` is the HPA out of
  room (raise ``hpaMaxReplicas``, and ``maxSize`` for the nodes they need); pods that are
  not ready are the target group's unhealthy targets (the shared alarms above);
- each managed node group at its maximum, on its Auto Scaling group's own group metrics
  (EKS enables them on the groups it creates; amazon-eks-user-guide
  observability/enable-asg-metrics.adoc). The group's name is known only once EKS has
  made it (``NodeGroup.resources[0].autoscaling_groups[0].name``, read after create by
  terraform-provider-aws's node_group.go): it reaches the alarm as an Output;
- pods the scheduler cannot place (``scheduler_pending_pods_UNSCHEDULABLE``) and API
  server 5xx (``apiserver_request_total_5XX``): the control plane's metrics EKS publishes
  free in ``AWS/EKS`` by ``ClusterName`` for Kubernetes 1.28+ (observability/cloudwatch.adoc).
Per-pod CPU, memory and restarts need Container Insights (the amazon-cloudwatch-observability
add-on), billed per observation: not installed (README "Alarms").

The dashboard shows the ALB, the compute (ec2: the fleet and the app's metrics, its cache
hit ratio and average latency per endpoint; eks: pods against the HPA's bounds, node
groups, node CPU, the control plane), and the cache nodes.

Cache node ids follow ElastiCache's naming for member clusters —
``<group>-<node:03>`` with cluster mode off, ``<group>-<shard:04>-<node:03>`` with it on —
so the number of alarms is decided by the settings, never inside ``apply()``.

The topic is encrypted with the stack's KMS key (infra/encryption.py), whose policy lets
CloudWatch encrypt alarm notifications: under the AWS managed ``aws/sns`` key CloudWatch
could not publish at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.settings import CacheSettings, CacheTopology, FleetSettings, MonitoringSettings

# The dashboard's widget builder: (title, metrics, x, y) -> one metric widget.
Widget = Callable[[str, list[list[Any]], int, int], dict[str, Any]]


@dataclass(frozen=True)
class AlarmThresholds:
    """When each alarm fires.

    alb_5xx_percent (5): 5xx responses as % of requests, 3 of 5 one-minute periods.
    p99_latency_seconds (1.0): target p99 response time, 3 of 5 one-minute periods.
    unhealthy_minutes (5): minutes with >= 1 unhealthy target before alarming.
    too_few_healthy_minutes (3): minutes with fewer healthy targets than the compute's
        minimum (or no data at all: no target registered, or the ALB reports nothing).
    alb_5xx_count (20): load-balancer-generated 5xx per minute, 3 of 5 minutes: fires when
        no target answers at all, when the rate alarm has no requests to divide by.
    pinned_at_max_minutes (15): minutes at max size (a group's, or the HPA's) before alarming.
    cache_cpu_percent (80): host CPU of a cache node, 3 five-minute periods.
    cache_engine_cpu_percent (80): the engine thread's CPU (the real ceiling of Redis/Valkey).
    cache_memory_percent (80): DatabaseMemoryUsagePercentage of a node.
    cache_evictions (1000): evictions per five minutes (allkeys-lru evicts by design; a
        steady stream means the cache is too small for the working set).
    replication_lag_seconds (10): a replica this far behind serves stale reads on failover.
    app_cache_errors (50): Redis errors the app counted in 5 minutes, summed over the fleet
        (each costs a request one short timeout; the circuit breaker then bypasses Redis).
    unschedulable_minutes (10): minutes with a pod the scheduler cannot place (no node has
        room and the Cluster Autoscaler cannot add one: the node group is at its maximum,
        or the instance type cannot hold the pod).
    api_server_5xx (10): API server 5xx responses in a minute, 3 of 5 minutes.
    """

    alb_5xx_percent: float = 5.0
    p99_latency_seconds: float = 1.0
    unhealthy_minutes: int = 5
    too_few_healthy_minutes: int = 3
    alb_5xx_count: float = 20.0
    pinned_at_max_minutes: int = 15
    cache_cpu_percent: float = 80.0
    cache_engine_cpu_percent: float = 80.0
    cache_memory_percent: float = 80.0
    cache_evictions: float = 1000.0
    replication_lag_seconds: float = 10.0
    app_cache_errors: float = 50.0
    unschedulable_minutes: int = 10
    api_server_5xx: float = 10.0


@dataclass(frozen=True)
class FleetCompute:
    """ec2's compute as its alarms see it.

    fleet: the fleet's settings: the minimum "too few healthy hosts" compares with.
    asg_name: the fleet's Auto Scaling group.
    metrics_namespace / metrics_stack: where the app's metrics are and the ``stack``
        dimension they carry (infra.boot.AppMetrics).
    endpoints: the app's route templates, one latency line each on the dashboard.
    """

    fleet: FleetSettings
    asg_name: pulumi.Input[str]
    metrics_namespace: str
    metrics_stack: str
    endpoints: Sequence[str]


@dataclass(frozen=True)
class NodeGroupTarget:
    """One managed node group: its key ("on-demand", "spot": part of its alarm's name) and
    the Auto Scaling group EKS made for it (infra.kubernetes.eks_cluster: asg_name_of)."""

    key: str
    asg_name: pulumi.Input[str]


@dataclass(frozen=True)
class ClusterCompute:
    """eks's compute as its alarms see it.

    cluster_name: the EKS cluster (the ``ClusterName`` of its control-plane metrics).
    node_groups: its managed node groups.
    min_pods / max_pods: the app's HPA bounds (hpaMinReplicas, hpaMaxReplicas).
    """

    cluster_name: pulumi.Input[str]
    node_groups: Sequence[NodeGroupTarget]
    min_pods: int
    max_pods: int


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of Monitoring.

    settings: the monitoring keys (the alarm email, subscribed when set; AWS emails a
        confirmation link first).
    cache: the cache's settings: which cache nodes exist (their ids derive from its
        topology, shards and replicas).
    region: for the dashboard's widgets.
    load_balancer_arn_suffix / target_group_arn_suffix: the ALB metric dimensions.
    cache_replication_group_id: the cache's.
    topic_key_arn: the stack's KMS key (infra.encryption.StackKey.key_arn).
    compute: what runs the app, ec2's fleet or eks's cluster.
    thresholds: see AlarmThresholds.
    """

    settings: MonitoringSettings
    cache: CacheSettings
    region: str
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    cache_replication_group_id: pulumi.Input[str]
    topic_key_arn: pulumi.Input[str]
    compute: FleetCompute | ClusterCompute
    thresholds: AlarmThresholds = AlarmThresholds()
    tags: Mapping[str, str] = field(default_factory=dict)


# The alarms an instance refresh watches (infra/fleet.py: alarm_specification): a release
# that answers 5xx or fails its health check after registering stops its own refresh.
REFRESH_GUARD_ALARMS = ("alb-5xx-rate", "unhealthy-hosts")


def alarm_name(component_name: str, label: str) -> str:
    """An alarm's name: fixed strings, so the fleet can name the refresh's guard alarms
    before Monitoring (which needs the group's name) exists."""
    return f"{component_name}-{label}"


def cache_node_suffixes(cluster_mode: bool, shards: int, replicas_per_shard: int) -> list[str]:
    """Member cluster id suffixes, as ElastiCache names them (see the module docstring)."""
    nodes = range(1, replicas_per_shard + 2)
    if cluster_mode:
        return [f"{shard:04d}-{node:03d}" for shard in range(1, shards + 1) for node in nodes]
    return [f"{node:03d}" for node in nodes]


class Monitoring(pulumi.ComponentResource):
    """Alarms, their SNS topic and a dashboard. Outputs: ``topic_arn``, ``dashboard_name``,
    ``alarm_names``."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(
            f"{name}-alarms",
            kms_master_key_id=args.topic_key_arn,
            tags=dict(args.tags),
            opts=self._child,
        )
        if args.settings.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.settings.alarm_email,
                opts=self._child,
            )
        self._alarms: list[aws.cloudwatch.MetricAlarm] = []
        self._load_balancer_alarms()
        compute = args.compute
        if isinstance(compute, FleetCompute):
            self._fleet_alarms(compute)
        else:
            self._cluster_alarms(compute)
        self._cache_alarms()
        if isinstance(compute, FleetCompute):
            self._app_alarms(compute)
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"{name}-overview",
            dashboard_body=self._dashboard_body(),
            opts=self._child,
        )
        self.topic_arn: pulumi.Output[str] = self.topic.arn
        self.dashboard_name: pulumi.Output[str] = dashboard.dashboard_name
        self.alarm_names: pulumi.Output[list[str]] = pulumi.Output.all(
            *[alarm.name for alarm in self._alarms]
        )
        self.register_outputs(
            {
                "topicArn": self.topic_arn,
                "dashboardName": self.dashboard_name,
                "alarmNames": self.alarm_names,
            }
        )

    def _cache_node_suffixes(self) -> list[str]:
        cache = self._args.cache
        return cache_node_suffixes(
            cache.topology is CacheTopology.CLUSTER, cache.shards, cache.replicas_per_shard
        )

    def _load_balancer_dimensions(self) -> dict[str, pulumi.Input[str]]:
        """The load balancer's metrics (requests, 5xx, response time)."""
        return {"LoadBalancer": self._args.load_balancer_arn_suffix}

    def _target_group_dimensions(self) -> dict[str, pulumi.Input[str]]:
        """The target group's: its instances (ec2) or pod IPs (eks) are its targets. ELBv2
        publishes target health by LoadBalancer and TargetGroup together, for either
        target type."""
        return {
            **self._load_balancer_dimensions(),
            "TargetGroup": self._args.target_group_arn_suffix,
        }

    def _minimum_targets(self) -> tuple[int, str]:
        """(the fewest healthy targets that are normal, what they are)."""
        compute = self._args.compute
        if isinstance(compute, FleetCompute):
            return compute.fleet.min_size, "the fleet's minimum"
        return compute.min_pods, "the HPA's minimum of app pods"

    # -------------------------------------------------------------------------------------
    def _alarm(self, label: str, description: str, **kwargs: Any) -> None:
        kwargs.setdefault("treat_missing_data", "notBreaching")
        self._alarms.append(
            aws.cloudwatch.MetricAlarm(
                f"{self._name}-{label}",
                name=alarm_name(self._name, label),
                alarm_description=description,
                alarm_actions=[self.topic.arn],
                ok_actions=[self.topic.arn],
                tags=dict(self._args.tags),
                opts=self._child,
                **kwargs,
            )
        )

    def _load_balancer_alarms(self) -> None:
        limits = self._args.thresholds
        alb, target_group = self._load_balancer_dimensions(), self._target_group_dimensions()

        def alb_metric(
            metric_id: str, metric_name: str
        ) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=metric_id,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/ApplicationELB",
                    metric_name=metric_name,
                    dimensions=alb,
                    stat="Sum",
                    period=60,
                ),
                return_data=False,
            )

        self._alarm(
            "alb-5xx-rate",
            f"More than {limits.alb_5xx_percent}% of requests answered 5xx (app or ALB)",
            comparison_operator="GreaterThanThreshold",
            threshold=limits.alb_5xx_percent,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            metric_queries=[
                alb_metric("target5xx", "HTTPCode_Target_5XX_Count"),
                alb_metric("alb5xx", "HTTPCode_ELB_5XX_Count"),
                alb_metric("requests", "RequestCount"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    expression="100 * (FILL(target5xx, 0) + FILL(alb5xx, 0)) / requests",
                    label="5xx % of requests",
                    return_data=True,
                ),
            ],
        )
        self._alarm(
            "target-p99-latency",
            f"p99 target response time above {limits.p99_latency_seconds} s",
            namespace="AWS/ApplicationELB",
            metric_name="TargetResponseTime",
            dimensions=alb,
            extended_statistic="p99",
            period=60,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            comparison_operator="GreaterThanThreshold",
            threshold=limits.p99_latency_seconds,
        )
        self._alarm(
            "unhealthy-hosts",
            f"A target failed its health check for {limits.unhealthy_minutes} minutes",
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            dimensions=target_group,
            statistic="Maximum",
            period=60,
            evaluation_periods=limits.unhealthy_minutes,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
        )
        # A total outage: with no healthy target the 5xx rate has no denominator (no data)
        # and UnHealthyHostCount is 0 when the group is empty. HealthyHostCount is reported
        # while health checks are on; Maximum is the best any ALB node sees (AWS's ALB
        # metrics docs: Average, Minimum and Maximum are its useful statistics), so below
        # the minimum means the app really is short. Missing data counts as breaching.
        minimum, what = self._minimum_targets()
        self._alarm(
            "too-few-healthy-hosts",
            f"Fewer healthy targets than {what} of {minimum} for "
            f"{limits.too_few_healthy_minutes} minutes (or none reported): the app is down "
            "or degraded",
            namespace="AWS/ApplicationELB",
            metric_name="HealthyHostCount",
            dimensions=target_group,
            statistic="Maximum",
            period=60,
            evaluation_periods=limits.too_few_healthy_minutes,
            comparison_operator="LessThanThreshold",
            threshold=max(minimum, 1),
            treat_missing_data="breaching",
        )
        # HTTPCode_ELB_5XX_Count is reported only when non-zero; Sum is its useful
        # statistic (Minimum, Maximum and Average all return 1): missing = no 5xx.
        self._alarm(
            "alb-5xx-count",
            f"The load balancer itself answered more than {limits.alb_5xx_count:g} 5xx a "
            "minute (502/503/504: no healthy target, or targets failing)",
            namespace="AWS/ApplicationELB",
            metric_name="HTTPCode_ELB_5XX_Count",
            dimensions=alb,
            statistic="Sum",
            period=60,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            comparison_operator="GreaterThanThreshold",
            threshold=limits.alb_5xx_count,
        )

    def _at_max_alarm(self, label: str, asg_name: pulumi.Input[str], description: str) -> None:
        """An Auto Scaling group pinned at its own GroupMaxSize (a group metric)."""
        group = {"AutoScalingGroupName": asg_name}

        def group_metric(
            metric_id: str, metric_name: str, statistic: str
        ) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=metric_id,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/AutoScaling",
                    metric_name=metric_name,
                    dimensions=group,
                    stat=statistic,
                    period=60,
                ),
                return_data=False,
            )

        self._alarm(
            label,
            description,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            evaluation_periods=self._args.thresholds.pinned_at_max_minutes,
            metric_queries=[
                group_metric("inservice", "GroupInServiceInstances", "Minimum"),
                group_metric("maxsize", "GroupMaxSize", "Maximum"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="atmax",
                    expression="IF(inservice >= maxsize, 1, 0)",
                    label="1 while in-service instances are at the group's maximum",
                    return_data=True,
                ),
            ],
        )

    def _fleet_alarms(self, compute: FleetCompute) -> None:
        # Against the group's own GroupMaxSize (a group metric enabled by the fleet), not
        # the configured maxSize: a scheduled action that raises or lowers the maximum
        # would make a fixed threshold misfire or never fire.
        self._at_max_alarm(
            "asg-at-max",
            compute.asg_name,
            f"The fleet has run at its maximum size for "
            f"{self._args.thresholds.pinned_at_max_minutes} minutes: raise maxSize (or the "
            "scheduled maximum) or the instance size",
        )

    def _cluster_alarms(self, compute: ClusterCompute) -> None:
        limits = self._args.thresholds
        # The ip target group's healthy targets are the app's ready pods: at the HPA's
        # maximum for this long, the HPA has no room left (Maximum: the best any ALB node
        # sees, as for too-few-healthy-hosts). A rollout's surge pods count for minutes only.
        self._alarm(
            "hpa-at-max",
            f"The app has run at the HPA's maximum of {compute.max_pods} ready pods for "
            f"{limits.pinned_at_max_minutes} minutes: raise hpaMaxReplicas (and maxSize for "
            "the nodes they need)",
            namespace="AWS/ApplicationELB",
            metric_name="HealthyHostCount",
            dimensions=self._target_group_dimensions(),
            statistic="Maximum",
            period=60,
            evaluation_periods=limits.pinned_at_max_minutes,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=compute.max_pods,
        )
        # EKS enables group metrics on the Auto Scaling groups of managed node groups.
        for group in compute.node_groups:
            self._at_max_alarm(
                f"nodes-{group.key}-at-max",
                group.asg_name,
                f"The {group.key} node group has run at its maximum size for "
                f"{limits.pinned_at_max_minutes} minutes: the Cluster Autoscaler cannot add "
                "nodes (raise maxSize or the instance size)",
            )
        cluster = {"ClusterName": compute.cluster_name}
        # Reported by the scheduler only while it has pods in that queue: missing = none.
        self._alarm(
            "unschedulable-pods",
            f"A pod has waited {limits.unschedulable_minutes} minutes for a node that can "
            "hold it: node groups at their maximum, or requests no node type can meet",
            namespace="AWS/EKS",
            metric_name="scheduler_pending_pods_UNSCHEDULABLE",
            dimensions=cluster,
            statistic="Maximum",
            period=60,
            evaluation_periods=limits.unschedulable_minutes,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
        )
        self._alarm(
            "api-server-5xx",
            f"The Kubernetes API server answered more than {limits.api_server_5xx:g} 5xx a "
            "minute: deploys, the autoscalers and the load balancer controller fail with it",
            namespace="AWS/EKS",
            metric_name="apiserver_request_total_5XX",
            dimensions=cluster,
            statistic="Sum",
            period=60,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            comparison_operator="GreaterThanThreshold",
            threshold=limits.api_server_5xx,
        )

    def _cache_alarms(self) -> None:
        args, limits = self._args, self._args.thresholds
        checks = [
            ("cpu", "CPUUtilization", "Average", limits.cache_cpu_percent, "host CPU %"),
            (
                "engine-cpu",
                "EngineCPUUtilization",
                "Average",
                limits.cache_engine_cpu_percent,
                "engine CPU %",
            ),
            (
                "memory",
                "DatabaseMemoryUsagePercentage",
                "Average",
                limits.cache_memory_percent,
                "memory use %",
            ),
            ("evictions", "Evictions", "Sum", limits.cache_evictions, "evictions per 5 min"),
        ]
        if args.cache.replicas_per_shard > 0:
            checks.append(
                (
                    "replication-lag",
                    "ReplicationLag",
                    "Maximum",
                    limits.replication_lag_seconds,
                    "replication lag (s)",
                )
            )
        for suffix in self._cache_node_suffixes():
            node_id = pulumi.Output.concat(args.cache_replication_group_id, "-", suffix)
            for label, metric, statistic, threshold, what in checks:
                self._alarm(
                    f"cache-{suffix}-{label}",
                    f"Cache node ...-{suffix}: {what} above {threshold}",
                    namespace="AWS/ElastiCache",
                    metric_name=metric,
                    dimensions={"CacheClusterId": node_id},
                    statistic=statistic,
                    period=300,
                    evaluation_periods=3,
                    comparison_operator="GreaterThanThreshold",
                    threshold=threshold,
                )

    def _app_alarms(self, compute: FleetCompute) -> None:
        limits = self._args.thresholds
        self._alarm(
            "app-cache-errors",
            f"The app counted more than {limits.app_cache_errors:g} Redis errors in 5 minutes "
            "(timeouts, refused connections, authentication): requests compute without the cache",
            namespace=compute.metrics_namespace,
            metric_name="pyscale_cache_errors_total",
            dimensions={"stack": compute.metrics_stack},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=limits.app_cache_errors,
        )

    # -------------------------------------------------------------------------------------
    def _dashboard_body(self) -> pulumi.Output[str]:
        """One body per platform: the ALB and the cache as on every stack, the compute's
        own widgets beside them (same grid, so the views read alike)."""
        args = self._args
        alb = args.load_balancer_arn_suffix
        nodes = [
            pulumi.Output.concat(args.cache_replication_group_id, "-", suffix)
            for suffix in self._cache_node_suffixes()
        ]

        def widget(
            title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum"
        ) -> dict[str, Any]:
            return {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": args.region,
                    "stat": stat,
                    "period": 60,
                    "view": "timeSeries",
                    "metrics": metrics,
                },
            }

        def per_node(metric: str) -> list[list[Any]]:
            return [["AWS/ElastiCache", metric, "CacheClusterId", node] for node in nodes]

        target_group = [value for pair in self._target_group_dimensions().items() for value in pair]
        compute = args.compute
        if isinstance(compute, FleetCompute):
            targets = "Targets healthy / unhealthy"
            beside, below, last_row = self._fleet_widgets(compute, widget)
        else:
            targets = "App pods ready / not ready (target group)"
            beside, below, last_row = self._cluster_widgets(compute, widget)
        health = widget(
            targets,
            [
                ["AWS/ApplicationELB", metric, *target_group]
                for metric in ("HealthyHostCount", "UnHealthyHostCount")
            ],
            0,
            6,
            stat="Maximum",
        )
        if isinstance(compute, ClusterCompute):
            health["properties"]["annotations"] = {
                "horizontal": [
                    {"label": "HPA minimum", "value": compute.min_pods},
                    {"label": "HPA maximum", "value": compute.max_pods},
                ]
            }
        widgets = [
            widget(
                "Requests and errors (ALB)",
                [
                    ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", alb],
                    ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", alb],
                    ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", alb],
                ],
                0,
                0,
            ),
            widget(
                "Target response time p50 / p99 (s)",
                [
                    ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", alb, {"stat": s}]
                    for s in ("p50", "p99")
                ],
                12,
                0,
                stat="p99",
            ),
            health,
            beside,
            below,
            widget(
                "Cache hits / misses",
                per_node("CacheHits") + per_node("CacheMisses"),
                12,
                12,
            ),
            widget("Cache engine CPU %", per_node("EngineCPUUtilization"), 0, 18, "Average"),
            widget(
                "Cache memory % and evictions",
                per_node("DatabaseMemoryUsagePercentage") + per_node("Evictions"),
                12,
                18,
                stat="Maximum",
            ),
            *last_row,
        ]
        return pulumi.Output.json_dumps({"widgets": widgets})

    def _fleet_widgets(
        self, compute: FleetCompute, widget: Widget
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """(beside the target health, below it, the last row): the fleet and the app."""
        asg = compute.asg_name
        size = widget(
            "Fleet size",
            [
                ["AWS/AutoScaling", m, "AutoScalingGroupName", asg]
                for m in ("GroupInServiceInstances", "GroupDesiredCapacity", "GroupMaxSize")
            ],
            12,
            6,
        )
        size["properties"]["stat"] = "Maximum"
        usage = widget(
            "Fleet CPU % and memory %",
            [
                ["AWS/EC2", "CPUUtilization", "AutoScalingGroupName", asg],
                [compute.metrics_namespace, "mem_used_percent", "AutoScalingGroupName", asg],
            ],
            0,
            12,
        )
        usage["properties"]["stat"] = "Average"
        return size, usage, self._app_widgets(compute, widget, y=24)

    def _cluster_widgets(
        self, compute: ClusterCompute, widget: Widget
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """(beside the pods, below them, the last row): node groups, their CPU, the control
        plane. Node memory needs an agent on the nodes (Container Insights): not shown."""
        groups = [group.asg_name for group in compute.node_groups]
        size = widget(
            "Node groups: nodes in service / maximum",
            [
                ["AWS/AutoScaling", metric, "AutoScalingGroupName", asg]
                for asg in groups
                for metric in ("GroupInServiceInstances", "GroupMaxSize")
            ],
            12,
            6,
        )
        size["properties"]["stat"] = "Maximum"
        usage = widget(
            "Node CPU %",
            [["AWS/EC2", "CPUUtilization", "AutoScalingGroupName", asg] for asg in groups],
            0,
            12,
        )
        usage["properties"]["stat"] = "Average"
        cluster = ["ClusterName", compute.cluster_name]
        api = widget(
            "Kubernetes API requests and 5xx",
            [
                ["AWS/EKS", metric, *cluster]
                for metric in ("apiserver_request_total", "apiserver_request_total_5XX")
            ],
            0,
            24,
        )
        pending = widget(
            "Pods waiting for a node (unschedulable)",
            [["AWS/EKS", "scheduler_pending_pods_UNSCHEDULABLE", *cluster]],
            12,
            24,
        )
        pending["properties"]["stat"] = "Maximum"
        return size, usage, [api, pending]

    def _app_widgets(self, compute: FleetCompute, widget: Widget, y: int) -> list[dict[str, Any]]:
        """The app's own view: hit ratio over every lookup (near cache and Redis), and the
        average time per request of each endpoint (the summary's sum over its count)."""
        ns, stack = compute.metrics_namespace, compute.metrics_stack

        def app_metric(metric_id: str, name: str, *dimensions: str) -> list[Any]:
            return [ns, name, "stack", stack, *dimensions, {"id": metric_id, "visible": False}]

        hit_ratio = [
            app_metric("hits", "pyscale_cache_hits_total"),
            app_metric("misses", "pyscale_cache_misses_total"),
            [{"expression": "100 * hits / (hits + misses)", "label": "hit ratio %", "id": "ratio"}],
        ]
        latency: list[list[Any]] = []
        for index, endpoint in enumerate(compute.endpoints):
            latency += [
                app_metric(f"sum{index}", "pyscale_http_request_seconds_sum", "endpoint", endpoint),
                app_metric(f"n{index}", "pyscale_http_request_seconds_count", "endpoint", endpoint),
                [{"expression": f"sum{index} / n{index}", "label": endpoint, "id": f"avg{index}"}],
            ]
        return [
            widget("App cache hit ratio %", hit_ratio, 0, y),
            widget("App latency by endpoint, average (s)", latency, 12, y),
        ]
