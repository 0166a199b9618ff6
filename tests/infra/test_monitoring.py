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

    [rate] = [a for a in alarms["metric-math"] if a["name"].endswith("-alb-5xx-rate")]
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


def _at_max_alarm(run: ProgramRun) -> dict:
    [alarm] = [a.inputs for a in run.of_type(ALARM) if a.name.endswith("-asg-at-max")]
    return alarm


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_at_max_alarm_follows_the_groups_own_maximum_under_scheduled_scaling(stack):
    # GIVEN a stack whose maximum a schedule raises at night (10) and lowers by day (3)
    schedules = [
        {
            "name": "night",
            "recurrence": "0 20 * * *",
            "minSize": 1,
            "maxSize": 10,
            "desiredCapacity": 1,
        },
        {
            "name": "day",
            "recurrence": "0 8 * * *",
            "minSize": 1,
            "maxSize": 3,
            "desiredCapacity": 1,
        },
    ]
    run = run_stack(stack, {"scheduledScaling": schedules})
    group = run.one("aws:autoscaling/group:Group")
    alarm = _at_max_alarm(run)

    # THEN the alarm compares in-service instances with the group's GroupMaxSize metric
    # (metric math), not with a fixed maxSize that the schedules make wrong half the day
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    metrics = {q["metric"]["metricName"]: q["metric"] for q in queries.values() if "metric" in q}
    assert set(metrics) == {"GroupInServiceInstances", "GroupMaxSize"}
    assert all(
        m["dimensions"] == {"AutoScalingGroupName": group.outputs["name"]} for m in metrics.values()
    )
    [expression] = [q for q in queries.values() if q.get("returnData")]
    assert expression["expression"] == "IF(inservice >= maxsize, 1, 0)"
    assert (alarm["comparisonOperator"], alarm["threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1.0,
    )
    assert "metricName" not in alarm
    # and the group publishes GroupMaxSize
    assert "GroupMaxSize" in group.inputs["enabledMetrics"]


def test_a_total_outage_raises_an_alarm_even_without_requests_or_hosts(each_stack_run):
    # GIVEN the stack's minimum fleet size and its ALB target group
    settings = load_settings(each_stack_run.config, each_stack_run.stack)
    alb = each_stack_run.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    target_group = each_stack_run.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    alarms = alarms_by_metric(each_stack_run)

    # THEN fewer healthy targets than minSize alarms, and so does no data at all (an empty
    # group reports no HealthyHostCount), with the statistic AWS documents for it
    [healthy] = alarms["HealthyHostCount"]
    assert healthy["dimensions"] == {"LoadBalancer": alb, "TargetGroup": target_group}
    assert healthy["statistic"] == "Maximum"
    assert healthy["comparisonOperator"] == "LessThanThreshold"
    assert healthy["threshold"] == max(settings.fleet.min_size, 1)
    assert healthy["treatMissingData"] == "breaching"

    # AND load-balancer 5xx alarm as a count (Sum, the statistic AWS documents; absent
    # data is no 5xx), so it fires when the rate alarm has no requests to divide by
    [absolute] = alarms["HTTPCode_ELB_5XX_Count"]
    assert absolute["dimensions"] == {"LoadBalancer": alb}
    assert absolute["statistic"] == "Sum"
    assert absolute["comparisonOperator"] == "GreaterThanThreshold"
    assert absolute["treatMissingData"] == "notBreaching"


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
    # Each entry is [namespace, metric, dims...] or [{"expression": ...}] (metric math).
    metrics = {m[1] for w in body["widgets"] for m in w["properties"]["metrics"] if len(m) > 1}
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
