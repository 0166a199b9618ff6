"""Monitoring on eks: the same ALB, target-group and cache alarms as ec2 (the ip target
group's targets are the app's pods), and the cluster's own: the HPA at its maximum, each
node group's Auto Scaling group at its maximum, pods no node can hold, API server 5xx.
Every alarm reaches the stack's topic; the dashboard is the eks one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.settings import load_settings
from pyscale import stacks
from pyscale.offline import ProgramRun, run_stack

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EKS_STACKS = stacks.stacks_on("eks")


@pytest.fixture(params=EKS_STACKS)
def eks_run(request: pytest.FixtureRequest, shipped_run) -> ProgramRun:
    return shipped_run(request.param)


def alarm(run: ProgramRun, label: str) -> dict[str, Any]:
    [found] = [a.inputs for a in run.of_type(ALARM) if a.name.endswith(f"-{label}")]
    return found


def asg_names(run: ProgramRun) -> dict[str, str]:
    """Node group resource name -> the Auto Scaling group EKS made for it (mock outputs,
    shaped as DescribeNodegroup's resources.autoScalingGroups)."""
    return {
        group.name: group.outputs["resources"][0]["autoscalingGroups"][0]["name"]
        for group in run.of_type(NODE_GROUP)
    }


def test_every_eks_alarm_notifies_the_stacks_topic_on_alarm_and_recovery(eks_run) -> None:
    topic = eks_run.one("aws:sns/topic:Topic").outputs["arn"]
    alarms = eks_run.of_type(ALARM)
    assert alarms
    assert all(a.inputs["alarmActions"] == [topic] for a in alarms)
    assert all(a.inputs["okActions"] == [topic] for a in alarms)
    assert eks_run.stack_outputs["alarmTopicArn"] == topic


def test_target_health_alarms_watch_the_ip_target_group_against_the_hpa_bounds(eks_run) -> None:
    # GIVEN the eks stack's ip target group (its targets are the app's pods)
    settings = load_settings(eks_run.config, eks_run.stack).platform
    [target_group] = eks_run.of_type("aws:lb/targetGroup:TargetGroup")
    assert target_group.inputs["targetType"] == "ip"
    dimensions = {
        "LoadBalancer": eks_run.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"],
        "TargetGroup": target_group.outputs["arnSuffix"],
    }

    # THEN not-ready pods, too few pods and pods at the HPA's maximum watch it
    for label in ("unhealthy-hosts", "too-few-healthy-hosts", "hpa-at-max"):
        assert alarm(eks_run, label)["dimensions"] == dimensions, label
    too_few = alarm(eks_run, "too-few-healthy-hosts")
    assert too_few["threshold"] == max(settings.hpa_min_replicas, 1)
    assert too_few["treatMissingData"] == "breaching"
    at_max = alarm(eks_run, "hpa-at-max")
    assert at_max["metricName"] == "HealthyHostCount"
    assert (at_max["comparisonOperator"], at_max["threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        settings.hpa_max_replicas,
    )
    assert at_max["statistic"] == "Maximum"
    # the shared load-balancer alarms are there too
    for label in ("alb-5xx-rate", "alb-5xx-count", "target-p99-latency"):
        assert alarm(eks_run, label)


def test_each_node_group_alarms_at_its_auto_scaling_groups_own_maximum(eks_run) -> None:
    groups = asg_names(eks_run)
    at_max = [
        a for a in eks_run.of_type(ALARM) if a.name.endswith("-at-max") and "nodes-" in a.name
    ]
    assert len(at_max) == len(groups)
    watched = set()
    for found in at_max:
        queries = {q["id"]: q for q in found.inputs["metricQueries"]}
        metrics = {
            q["metric"]["metricName"]: q["metric"] for q in queries.values() if "metric" in q
        }
        assert set(metrics) == {"GroupInServiceInstances", "GroupMaxSize"}
        [asg] = {m["dimensions"]["AutoScalingGroupName"] for m in metrics.values()}
        watched.add(asg)
        [expression] = [q for q in queries.values() if q.get("returnData")]
        assert expression["expression"] == "IF(inservice >= maxsize, 1, 0)"
    # the name EKS gave each group's ASG, known only after create, reached the alarm
    assert watched == set(groups.values())


def test_spot_capacity_gets_its_own_node_group_alarm() -> None:
    run = run_stack("dev-eks", {"eksSpotInstanceTypes": ["t4g.large"], "eksSpotMaxSize": 3})
    labels = sorted(
        a.name.rsplit("-nodes-", 1)[1] for a in run.of_type(ALARM) if "-nodes-" in a.name
    )
    assert labels == ["on-demand-at-max", "spot-at-max"]
    assert len(set(asg_names(run).values())) == 2


def test_the_control_plane_alarms_read_eks_vended_metrics_by_cluster_name(eks_run) -> None:
    cluster = eks_run.stack_outputs["clusterName"]
    unschedulable = alarm(eks_run, "unschedulable-pods")
    assert (unschedulable["namespace"], unschedulable["metricName"]) == (
        "AWS/EKS",
        "scheduler_pending_pods_UNSCHEDULABLE",
    )
    assert unschedulable["dimensions"] == {"ClusterName": cluster}
    assert unschedulable["treatMissingData"] == "notBreaching"
    api = alarm(eks_run, "api-server-5xx")
    assert (api["namespace"], api["metricName"], api["statistic"]) == (
        "AWS/EKS",
        "apiserver_request_total_5XX",
        "Sum",
    )
    assert api["dimensions"] == {"ClusterName": cluster}
    # EKS publishes these for Kubernetes 1.28 and later only
    version = load_settings(eks_run.config, eks_run.stack).platform.kubernetes_version
    assert tuple(int(part) for part in version.split(".")) >= (1, 28)


def test_eks_has_no_ec2_fleet_or_agent_alarms(eks_run) -> None:
    names = {a.name for a in eks_run.of_type(ALARM)}
    assert not any(name.endswith(("-asg-at-max", "-app-cache-errors")) for name in names)


def test_every_cache_node_is_watched_as_on_ec2(eks_run) -> None:
    cache = load_settings(eks_run.config, eks_run.stack).cache
    group_id = eks_run.one("aws:elasticache/replicationGroup:ReplicationGroup").id
    engine_cpu = [
        a.inputs["dimensions"]["CacheClusterId"]
        for a in eks_run.of_type(ALARM)
        if a.inputs.get("metricName") == "EngineCPUUtilization"
    ]
    assert len(engine_cpu) == cache.node_count
    assert all(node.startswith(f"{group_id}-") for node in engine_cpu)


def test_the_eks_dashboard_shows_pods_node_groups_control_plane_and_cache(eks_run) -> None:
    dashboard = eks_run.one("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    metrics = {m[1] for w in body["widgets"] for m in w["properties"]["metrics"]}
    assert {"RequestCount", "TargetResponseTime", "HealthyHostCount"} <= metrics
    assert {"GroupInServiceInstances", "GroupMaxSize", "CPUUtilization"} <= metrics
    assert {"apiserver_request_total_5XX", "scheduler_pending_pods_UNSCHEDULABLE"} <= metrics
    assert {"CacheHits", "EngineCPUUtilization"} <= metrics
    # nothing the nodes do not publish without an agent
    assert "mem_used_percent" not in metrics
    assert all(name in dashboard.inputs["dashboardBody"] for name in asg_names(eks_run).values())
    settings = load_settings(eks_run.config, eks_run.stack).platform
    [pods] = [w for w in body["widgets"] if "annotations" in w["properties"]]
    assert [line["value"] for line in pods["properties"]["annotations"]["horizontal"]] == [
        settings.hpa_min_replicas,
        settings.hpa_max_replicas,
    ]
    assert all(w["properties"]["region"] == eks_run.config["aws:region"] for w in body["widgets"])
    assert eks_run.stack_outputs["dashboardName"] == dashboard.inputs["dashboardName"]


def test_an_alarm_email_is_subscribed_on_eks_too() -> None:
    run = run_stack("dev-eks", {"alarmEmail": "oncall@example.org"})
    [subscription] = run.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["endpoint"] == "oncall@example.org"
