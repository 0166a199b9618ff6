"""Monitoring: alarms on the ALB, the fleet and every cache node reach one SNS topic; a
dashboard shows the same signals."""

from __future__ import annotations

import json

import pytest

from infra.monitoring import cache_node_suffixes
from infra.settings import load_settings
from pyscale.offline import ProgramRun, run_stack

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"


def alarms_by_metric(run: ProgramRun) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for alarm in run.of_type(ALARM):
        metric = alarm.inputs.get("metricName") or "metric-math"
        found.setdefault(metric, []).append(alarm.inputs)
    return found


def test_every_alarm_notifies_the_topic_on_alarm_and_recovery(each_stack_run):
    topic = each_stack_run.one(TOPIC).outputs["arn"]
    alarms = each_stack_run.of_type(ALARM)

    assert alarms
    assert all(a.inputs["alarmActions"] == [topic] for a in alarms)
    assert all(a.inputs["okActions"] == [topic] for a in alarms)


def test_alb_alarms_watch_5xx_rate_p99_latency_and_unhealthy_hosts(each_stack_run):
    alb = each_stack_run.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    target_group = each_stack_run.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    alarms = alarms_by_metric(each_stack_run)

    [rate] = alarms["metric-math"]
    queries = {q["id"]: q for q in rate["metricQueries"]}
    assert {q["metric"]["metricName"] for q in queries.values() if "metric" in q} == {
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
        "RequestCount",
    }
    assert all(
        q["metric"]["dimensions"] == {"LoadBalancer": alb}
        for q in queries.values()
        if "metric" in q
    )
    assert [q["id"] for q in queries.values() if q.get("returnData")] == ["rate"]
    [latency] = alarms["TargetResponseTime"]
    assert latency["extendedStatistic"] == "p99"
    assert latency["dimensions"] == {"LoadBalancer": alb}
    [unhealthy] = alarms["UnHealthyHostCount"]
    assert unhealthy["dimensions"] == {"LoadBalancer": alb, "TargetGroup": target_group}


def test_an_alarm_fires_when_the_group_is_pinned_at_its_maximum(each_stack_run):
    settings = load_settings(each_stack_run.config, each_stack_run.stack)
    [pinned] = alarms_by_metric(each_stack_run)["GroupInServiceInstances"]

    assert pinned["dimensions"] == {
        "AutoScalingGroupName": each_stack_run.one("aws:autoscaling/group:Group").outputs["name"]
    }
    assert pinned["threshold"] == settings.fleet.max_size
    assert pinned["comparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_cache_node_has_cpu_engine_cpu_memory_and_eviction_alarms(each_stack_run):
    cache = load_settings(each_stack_run.config, each_stack_run.stack).cache
    group_id = each_stack_run.one("aws:elasticache/replicationGroup:ReplicationGroup").id
    alarms = alarms_by_metric(each_stack_run)
    expected_nodes = {
        f"{group_id}-{suffix}"
        for suffix in cache_node_suffixes(
            cache.cluster_mode, cache.shards, cache.replicas_per_shard
        )
    }

    assert len(expected_nodes) == cache.node_count
    for metric in (
        "CPUUtilization",
        "EngineCPUUtilization",
        "DatabaseMemoryUsagePercentage",
        "Evictions",
    ):
        nodes = {a["dimensions"]["CacheClusterId"] for a in alarms[metric]}
        assert nodes == expected_nodes, metric
    lag = {a["dimensions"]["CacheClusterId"] for a in alarms.get("ReplicationLag", [])}
    assert lag == (expected_nodes if cache.replicas_per_shard else set())


@pytest.mark.parametrize(
    ("cluster_mode", "shards", "replicas", "expected"),
    [
        (False, 1, 0, ["001"]),
        (False, 1, 2, ["001", "002", "003"]),
        (True, 2, 1, ["0001-001", "0001-002", "0002-001", "0002-002"]),
    ],
)
def test_cache_node_ids_follow_elasticache_member_cluster_naming(
    cluster_mode, shards, replicas, expected
):
    assert cache_node_suffixes(cluster_mode, shards, replicas) == expected


def test_the_dashboard_shows_the_alb_fleet_and_cache(each_stack_run):
    dashboard = each_stack_run.one("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    metrics = {m[1] for w in body["widgets"] for m in w["properties"]["metrics"]}
    group_name = each_stack_run.one("aws:autoscaling/group:Group").outputs["name"]

    assert {"RequestCount", "TargetResponseTime", "GroupInServiceInstances"} <= metrics
    assert {"CPUUtilization", "mem_used_percent", "CacheHits", "EngineCPUUtilization"} <= metrics
    assert group_name in dashboard.inputs["dashboardBody"]
    assert all(
        w["properties"]["region"] == each_stack_run.config["aws:region"] for w in body["widgets"]
    )
    assert each_stack_run.stack_outputs["dashboardName"] == dashboard.inputs["dashboardName"]


def test_the_topic_has_an_email_subscription_only_when_one_is_configured(each_stack_run):
    email = load_settings(each_stack_run.config, each_stack_run.stack).monitoring.alarm_email
    subscriptions = each_stack_run.of_type("aws:sns/topicSubscription:TopicSubscription")

    assert [s.inputs["endpoint"] for s in subscriptions] == ([email] if email else [])


def test_an_alarm_email_is_subscribed_to_the_topic():
    run = run_stack("dev", {"alarmEmail": "oncall@example.org"})
    [subscription] = run.of_type("aws:sns/topicSubscription:TopicSubscription")

    assert subscription.inputs["protocol"] == "email"
    assert subscription.inputs["endpoint"] == "oncall@example.org"
    assert subscription.inputs["topic"] == run.one(TOPIC).outputs["arn"]
