"""How resource types no shipped stack registers yet are costed (the Kubernetes platform,
customer-managed keys, flow logs, interface endpoints, spot), on small hand-built runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pyscale.cost import build_cost
from pyscale.cost.prices import HOURS_PER_MONTH, PRICE_NOT_FOUND, price_table
from pyscale.cost.usage import Usage

REGION = "us-east-1"


@dataclass
class Recorded:
    """Shaped like pyscale.offline.RecordedResource."""

    type: str
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    custom: bool = True
    urn: str = ""


@dataclass
class Run:
    """Shaped like pyscale.offline.ProgramRun (what the cost reads of it)."""

    resources: list[Recorded]
    project: str = "pyscale"
    stack: str = "test"
    config: dict[str, str] = field(default_factory=lambda: {"aws:region": REGION})


def usd(price_id: str) -> float:
    price = price_table().get(price_id, REGION)
    assert price is not None
    assert price.usd is not None
    return price.usd


def cost(*resources: Recorded, usage: Usage | None = None) -> dict[str, Any]:
    return build_cost(Run(list(resources)), usage=usage)


def components(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["component"]: line for line in document["lines"]}


def test_an_eks_cluster_bills_its_control_plane_every_hour() -> None:
    [line] = cost(Recorded("aws:eks/cluster:Cluster", "platform"))["lines"]
    assert line["monthly_usd"] == pytest.approx(HOURS_PER_MONTH * usd("eks/cluster"))


def test_a_node_group_is_priced_as_its_instances_with_the_eks_api_defaults() -> None:
    group = Recorded(
        "aws:eks/nodeGroup:NodeGroup", "nodes", {"scalingConfig": {"desiredSize": 3.0}}
    )
    lines = components(cost(group))
    nodes = lines["Nodes (Linux, on-demand, t3.medium) x 3"]  # instanceTypes unset: t3.medium
    assert nodes["monthly_usd"] == pytest.approx(
        3 * HOURS_PER_MONTH * usd("ec2/instance/t3.medium")
    )
    disk = lines["Node disk (gp2, 20 GB x 3)"]  # diskSize unset: 20 GB
    assert disk["monthly_usd"] == pytest.approx(60 * usd("ebs/gp2-storage"))


def test_a_node_group_with_a_launch_template_takes_its_volumes_from_it() -> None:
    template = Recorded(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "lt",
        {"blockDeviceMappings": [{"ebs": {"volumeSize": 40.0, "volumeType": "gp3"}}]},
        id="lt-1",
    )
    group = Recorded(
        "aws:eks/nodeGroup:NodeGroup",
        "nodes",
        {
            "instanceTypes": ["m7g.large", "m7g.xlarge"],
            "scalingConfig": {"desiredSize": 2.0},
            "launchTemplate": {"id": "lt-1", "version": "1"},
        },
    )
    lines = components(cost(template, group))
    nodes = lines["Nodes (Linux, on-demand, m7g.large) x 2"]
    assert "priced as m7g.large" in nodes["note"]
    assert lines["Node volume (gp3, 40 GB x 2)"]["monthly_quantity"] == 80


def test_spot_capacity_is_price_not_found_never_a_guess() -> None:
    spot = Recorded(
        "aws:eks/nodeGroup:NodeGroup",
        "spot",
        {
            "capacityType": "SPOT",
            "instanceTypes": ["m7g.large"],
            "scalingConfig": {"desiredSize": 2.0},
        },
    )
    [line] = cost(spot)["lines"]
    assert line["status"] == "not_found"
    assert line["note"].startswith(PRICE_NOT_FOUND)


def test_a_mixed_instances_group_prices_its_on_demand_share_and_not_its_spot() -> None:
    template = Recorded(
        "aws:ec2/launchTemplate:LaunchTemplate", "lt", {"instanceType": "m7g.large"}, id="lt-1"
    )
    group = Recorded(
        "aws:autoscaling/group:Group",
        "asg",
        {
            "minSize": 1.0,
            "desiredCapacity": 4.0,
            "maxSize": 8.0,
            "mixedInstancesPolicy": {
                "launchTemplate": {
                    "launchTemplateSpecification": {"launchTemplateId": "lt-1"},
                    "overrides": [{"instanceType": "m7g.large"}, {"instanceType": "m7g.xlarge"}],
                },
                "instancesDistribution": {
                    "onDemandBaseCapacity": 1.0,
                    "onDemandPercentageAboveBaseCapacity": 0.0,
                },
            },
        },
    )
    lines = components(build_cost(Run([template, group]), benchmark=None))
    on_demand = lines["Instance usage (Linux, on-demand, m7g.large) x 1"]
    assert on_demand["monthly_usd"] == pytest.approx(
        HOURS_PER_MONTH * usd("ec2/instance/m7g.large")
    )
    assert lines["Spot instances (m7g.large) x 3"]["status"] == "not_found"


def test_a_customer_managed_key_bills_monthly_and_its_requests_by_usage() -> None:
    key = Recorded("aws:kms/key:Key", "stack-key")
    lines = components(cost(key, usage=Usage(defaults={"kms_requests": 20_000})))
    assert lines["Customer managed key"]["monthly_usd"] == usd("kms/key")
    requests = lines["Requests"]
    assert requests["status"] == "usage_assumed"
    assert requests["monthly_usd"] == pytest.approx(2 * usd("kms/requests"))  # 2 x 10k


def test_flow_logs_and_their_delivery_say_price_not_found() -> None:
    [line] = cost(Recorded("aws:ec2/flowLog:FlowLog", "vpc-flow-logs"))["lines"]
    assert line["status"] == "not_found"
    assert line["usage_key"] == "flow_log_gb"


def test_an_interface_endpoint_bills_per_subnet_and_a_gateway_endpoint_nothing() -> None:
    interface = Recorded(
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "ssm",
        {"vpcEndpointType": "Interface", "subnetIds": ["a", "b", "c"]},
    )
    gateway = Recorded("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"})
    document = cost(interface, gateway)
    hours = components(document)["Interface endpoint x 3 subnets"]
    assert hours["monthly_usd"] == pytest.approx(
        3 * HOURS_PER_MONTH * usd("vpc/interface-endpoint-hour")
    )
    assert document["free"] == [
        {
            "type": "aws:ec2/vpcEndpoint:VpcEndpoint",
            "count": 1,
            "reason": "no billed component for its settings",
        }
    ]


def test_kubernetes_objects_are_free_but_a_load_balancer_service_is_price_not_found() -> None:
    document = cost(
        Recorded("kubernetes:apps/v1:Deployment", "app"),
        Recorded("kubernetes:core/v1:Service", "internal", {"spec": {"type": "ClusterIP"}}),
        Recorded("kubernetes:core/v1:Service", "public", {"spec": {"type": "LoadBalancer"}}),
    )
    [line] = document["lines"]
    assert line["resource"] == "public"
    assert line["status"] == "not_found"
    assert {entry["type"] for entry in document["free"]} == {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:core/v1:Service",
    }


def test_a_type_nobody_classified_says_how_to_classify_it() -> None:
    [line] = cost(Recorded("aws:opensearch/domain:Domain", "search"))["lines"]
    assert line["status"] == "not_found"
    assert "pyscale/cost/prices/resource_types.yaml" in line["note"]
    assert "`free:`" in line["note"]
    assert "`not_found:`" in line["note"]


def test_an_alarm_over_metric_math_is_charged_per_metric_it_reads() -> None:
    alarm = Recorded(
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "error-rate",
        {
            "comparisonOperator": "GreaterThanThreshold",
            "metricQueries": [
                {"id": "errors", "metric": {"metricName": "5xx", "period": 60.0}},
                {"id": "requests", "metric": {"metricName": "Requests", "period": 60.0}},
                {"id": "rate", "expression": "errors / requests"},
            ],
        },
    )
    high_resolution = Recorded("aws:cloudwatch/metricAlarm:MetricAlarm", "fast", {"period": 10.0})
    lines = components(cost(alarm, high_resolution))
    assert lines["Alarm metrics (standard)"]["monthly_quantity"] == 2
    assert lines["Alarm metrics (high-resolution)"]["unit_price_usd"] == usd(
        "cloudwatch/alarm-metric-high-resolution"
    )


def test_a_standard_ssm_parameter_is_free_and_an_advanced_one_bills_monthly() -> None:
    document = cost(
        Recorded("aws:ssm/parameter:Parameter", "agent-config"),
        Recorded("aws:ssm/parameter:Parameter", "big", {"tier": "Advanced"}),
    )
    lines = components(document)
    assert lines["Advanced parameter storage"]["monthly_usd"] == usd("ssm/advanced-parameter")
    assert lines["API interactions"]["status"] == "usage"
    assert {line["resource"] for line in document["lines"]} == {"big"}
