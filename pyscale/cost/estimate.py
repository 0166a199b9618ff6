"""From a program run to cost lines: what each registered resource costs a month.

Quantities come from the inputs the program registered (wire form, as the plan reads them),
prices from the committed table (pyscale/cost/prices/aws.csv), and how each type is costed
from prices/resource_types.yaml. Types whose quantities need reading several inputs (an
Auto Scaling group's instances, volumes and warm pool; an alarm's metrics; a web ACL's rules)
have an estimator here, named in the YAML.

A line is one of:
- ``priced``: quantity x unit price;
- ``usage``: the unit price and "depends on usage" — or, with a usage file value, priced
  from it (``usage_assumed``, counted in the total as Infracost does);
- ``not_found``: the item costs money but no sourced price is known ("price not found").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyscale.cost.prices import (
    HOURS_PER_MONTH,
    PRICE_NOT_FOUND,
    Classification,
    Classifications,
    Component,
    Price,
    PriceTable,
)
from pyscale.cost.usage import Usage
from pyscale.plan.wire import lookup, plain

PRICED, USAGE, USAGE_ASSUMED, NOT_FOUND = "priced", "usage", "usage_assumed", "not_found"
INSTANCE_PREFIX = "ec2/instance/"
NODE_PREFIX = "elasticache/node/"
BURSTABLE_CREDIT_FAMILIES = {"t3": "t3", "t3a": "t3", "t4g": "t4g"}
# EC2 sends seven metrics per instance with detailed monitoring (Infracost's count; the
# price row cites it).
DETAILED_MONITORING_METRICS = 7
EKS_DEFAULT_INSTANCE_TYPE = "t3.medium"  # EKS API default when instanceTypes is unset
EKS_DEFAULT_DISK_GB = 20  # EKS API default diskSize without a launch template
ANOMALY_OPERATORS = {
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
}


class CostError(ValueError):
    """An estimate the table cannot back: one line naming the item and what the table has."""


class Resource(Protocol):
    """What the estimate reads of a recorded resource (read-only properties)."""

    @property
    def urn(self) -> str: ...
    @property
    def id(self) -> str | None: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def custom(self) -> bool: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...


@dataclass
class Line:
    resource_type: str
    resource: str
    component: str
    status: str
    price: Price | None = None
    quantity: float | None = None  # in the price's unit, per month; None: depends on usage
    usage_key: str | None = None
    note: str = ""
    # How many fleet instances the quantity is for, when it grows with the fleet (instances,
    # their volumes and metrics): the capacity section rescales these to min and max size.
    fleet_instances: int | None = None

    @property
    def monthly_cost(self) -> float | None:
        if self.status in (PRICED, USAGE_ASSUMED) and self.price and self.price.usd is not None:
            return (self.quantity or 0.0) * self.price.usd
        return None


@dataclass
class Context:
    """What estimators may read: the table for the stack's region, usage, all resources."""

    region: str
    table: PriceTable
    classifications: Classifications
    usage: Usage
    resources: Sequence[Resource]
    by_id: dict[str, Resource] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {resource.id: resource for resource in self.resources if resource.id}

    def of_type(self, type_token: str) -> list[Resource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def price(self, price_id: str, engine: str = "") -> Price:
        price = self.table.get(price_id, self.region, engine)
        if price is None:
            raise CostError(
                f"the price table has no row {price_id}{f' ({engine})' if engine else ''} for "
                f"{self.region} ({_relative_table(self.table)})"
            )
        return price

    def instance_price(self, instance_type: str) -> Price:
        price = self.table.get(INSTANCE_PREFIX + instance_type, self.region)
        if price is None:
            raise CostError(
                f"no price for EC2 instance type {instance_type!r} in {self.region}: the price "
                f"table ({_relative_table(self.table)}) has "
                f"{', '.join(self.table.items(INSTANCE_PREFIX, self.region))}; add a sourced row "
                f"{INSTANCE_PREFIX}{instance_type} (or one saying '{PRICE_NOT_FOUND}')"
            )
        return price

    def node_price(self, node_type: str, engine: str) -> Price:
        price = self.table.get(NODE_PREFIX + node_type, self.region, engine)
        if price is None:
            raise CostError(
                f"no price row for ElastiCache node type {node_type!r} ({engine}) in "
                f"{self.region}: the price table ({_relative_table(self.table)}) has "
                f"{', '.join(self.table.items(NODE_PREFIX, self.region, engine))}; add a sourced "
                f"row {NODE_PREFIX}{node_type} (or one saying '{PRICE_NOT_FOUND}')"
            )
        return price

    def line(
        self,
        resource: Resource,
        component: str,
        price: Price,
        quantity: float,
        *,
        note: str = "",
        fleet_instances: int | None = None,
    ) -> Line:
        """A line with a fixed monthly quantity (priced, or "price not found")."""
        return Line(
            resource.type,
            resource.name,
            component,
            PRICED if price.found else NOT_FOUND,
            price,
            quantity,
            note=note or ("" if price.found else price.note),
            fleet_instances=fleet_instances,
        )

    def usage_line(self, resource: Resource, component: str, price: Price, key: str) -> Line:
        """A usage-based line: priced from the usage file when it has ``key``."""
        amount = self.usage.amount(resource.name, key)
        if not price.found:
            return Line(
                resource.type, resource.name, component, NOT_FOUND, price, None, key, price.note
            )
        if amount is None:
            return Line(resource.type, resource.name, component, USAGE, price, None, key)
        factor = self.classifications.usage_keys[key].to_price_unit
        return Line(
            resource.type,
            resource.name,
            component,
            USAGE_ASSUMED,
            price,
            amount * factor,
            key,
            note=f"usage file: {key} = {amount:g}",
        )


def _relative_table(table: PriceTable) -> str:
    parts = table.path.parts
    return "/".join(parts[parts.index("pyscale") :]) if "pyscale" in parts else str(table.path)


# --------------------------------------------------------------------------------------------
# Input helpers
# --------------------------------------------------------------------------------------------
def _value(resource: Resource, path: str) -> Any:
    return plain(lookup(resource.inputs, path))


def _number(resource: Resource, path: str, default: float | None = None) -> float | None:
    value = _value(resource, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _count(resource: Resource, path: str, default: int) -> int:
    value = _number(resource, path)
    return int(value) if value is not None else default


# --------------------------------------------------------------------------------------------
# Data-driven components (resource_types.yaml `components:`)
# --------------------------------------------------------------------------------------------
def component_lines(
    context: Context, resource: Resource, components: Iterable[Component]
) -> list[Line]:
    lines = []
    for component in components:
        price = context.price(component.price)
        if component.usage:
            lines.append(context.usage_line(resource, component.component, price, component.usage))
        else:
            quantity = HOURS_PER_MONTH if component.per == "hour" else 1
            lines.append(context.line(resource, component.component, price, quantity))
    return lines


# --------------------------------------------------------------------------------------------
# Estimators (resource_types.yaml `estimator:`)
# --------------------------------------------------------------------------------------------
def launch_template_of(context: Context, group: Resource) -> Resource | None:
    for path in (
        "launchTemplate.id",
        "mixedInstancesPolicy.launchTemplate.launchTemplateSpecification.launchTemplateId",
    ):
        template_id = _value(group, path)
        if isinstance(template_id, str) and template_id in context.by_id:
            return context.by_id[template_id]
    templates = context.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    return templates[0] if len(templates) == 1 else None


def fleet_instance_type(
    context: Context, group: Resource
) -> tuple[Resource | None, str | None, list[str]]:
    """(launch template, the instance type priced, every type of a mixed instances policy)."""
    template = launch_template_of(context, group)
    overrides = [
        str(t)
        for t in _value(group, "mixedInstancesPolicy.launchTemplate.overrides[*].instanceType")
        or []
    ]
    instance_type = (overrides[0] if overrides else None) or (
        _value(template, "instanceType") if template else None
    )
    return template, instance_type if isinstance(instance_type, str) else None, overrides


def _volume_lines(
    context: Context,
    resource: Resource,
    template: Resource | None,
    count: int,
    component: str,
    *,
    fleet: bool,
) -> list[Line]:
    lines = []
    mappings = _value(template, "blockDeviceMappings") if template else None
    for mapping in mappings or []:
        ebs = mapping.get("ebs") or {} if isinstance(mapping, Mapping) else {}
        size = ebs.get("volumeSize")
        volume_type = str(ebs.get("volumeType") or "gp3")  # the program always sets it
        if not isinstance(size, int | float) or count <= 0:
            continue
        price = context.price(f"ebs/{volume_type}-storage")
        lines.append(
            context.line(
                resource,
                f"{component} ({volume_type}, {size:g} GB x {count})",
                price,
                float(size) * count,
                fleet_instances=count if fleet else None,
            )
        )
    return lines


def fleet(context: Context, group: Resource) -> list[Line]:
    """An Auto Scaling group: its running instances (desired capacity, as Infracost prices
    a group), their root volumes and detailed monitoring, CPU credits of burstable types,
    and a warm pool's stopped instances (billed for their EBS volumes only)."""
    template, instance_type, overrides = fleet_instance_type(context, group)
    desired = _count(group, "desiredCapacity", _count(group, "minSize", 0))
    if instance_type is None:
        return [
            Line(
                group.type,
                group.name,
                "Instances",
                NOT_FOUND,
                note=f"{PRICE_NOT_FOUND}: no instance type registered",
            )
        ]
    price = context.instance_price(instance_type)
    on_demand, spot = _on_demand_split(group, desired)
    notes = (
        [f"mixed types {', '.join(overrides)}: priced as {instance_type}"]
        if len(overrides) > 1
        else []
    )
    lines = [
        context.line(
            group,
            f"Instance usage (Linux, on-demand, {instance_type}) x {on_demand}",
            price,
            HOURS_PER_MONTH * on_demand,
            note="; ".join(notes),
            fleet_instances=on_demand,
        )
    ]
    if spot:
        lines.append(
            Line(
                group.type,
                group.name,
                f"Spot instances ({instance_type}) x {spot}",
                NOT_FOUND,
                note=f"{PRICE_NOT_FOUND}: spot prices vary by the hour and zone",
            )
        )
    lines += _volume_lines(context, group, template, desired, "Root volume", fleet=True)
    if template and _value(template, "monitoring.enabled") in (True, "true"):
        lines.append(
            context.line(
                group,
                f"Detailed monitoring ({DETAILED_MONITORING_METRICS} metrics x {desired})",
                context.price("cloudwatch/detailed-monitoring-metric"),
                DETAILED_MONITORING_METRICS * desired,
                fleet_instances=desired,
            )
        )
    family = instance_type.split(".", 1)[0]
    credits = _value(template, "creditSpecification.cpuCredits") if template else None
    if family in BURSTABLE_CREDIT_FAMILIES and credits != "standard":
        line = context.usage_line(
            group,
            "CPU credits (unlimited mode: sustained CPU above the baseline)",
            context.price(f"ec2/cpu-credits/{BURSTABLE_CREDIT_FAMILIES[family]}"),
            "cpu_credit_vcpu_hours",
        )
        lines.append(line)
    lines += _warm_pool_lines(context, group, template, desired, price)
    if _value(group, "enabledMetrics"):
        metrics = _value(group, "enabledMetrics")
        lines.append(
            context.line(
                group,
                f"Group metrics ({len(metrics)}, 1-minute)",
                context.price("autoscaling/group-metrics"),
                len(metrics),
            )
        )
    return lines


def _on_demand_split(group: Resource, desired: int) -> tuple[int, int]:
    percent = _number(
        group, "mixedInstancesPolicy.instancesDistribution.onDemandPercentageAboveBaseCapacity"
    )
    if percent is None:
        return desired, 0
    base = min(
        desired, _count(group, "mixedInstancesPolicy.instancesDistribution.onDemandBaseCapacity", 0)
    )
    on_demand = base + math.ceil((desired - base) * percent / 100)
    return on_demand, desired - on_demand


def _warm_pool_lines(
    context: Context, group: Resource, template: Resource | None, desired: int, price: Price
) -> list[Line]:
    if not isinstance(_value(group, "warmPool"), Mapping):
        return []
    # AWS: without MaxGroupPreparedCapacity the pool holds the difference between the
    # group's maximum and desired capacity (PutWarmPool API reference), at least MinSize.
    prepared = _number(group, "warmPool.maxGroupPreparedCapacity") or _count(
        group, "maxSize", desired
    )
    size = max(_count(group, "warmPool.minSize", 0), int(prepared) - desired)
    state = str(_value(group, "warmPool.poolState") or "Stopped")
    if size <= 0:
        return []
    if state == "Running":
        return [
            context.line(
                group, f"Warm pool instances (running) x {size}", price, HOURS_PER_MONTH * size
            )
        ]
    # Stopped (and hibernated) instances are not billed for instance usage; their EBS
    # volumes are (EC2 StopInstances API reference).
    return _volume_lines(
        context, group, template, size, f"Warm pool volumes ({state.lower()})", fleet=False
    )


def load_balancer(context: Context, balancer: Resource) -> list[Line]:
    kind = str(_value(balancer, "loadBalancerType") or "application")
    if kind not in ("application", "network"):
        return [
            Line(
                balancer.type,
                balancer.name,
                f"{kind} load balancer",
                NOT_FOUND,
                note=f"{PRICE_NOT_FOUND}: only application and network load balancers are priced",
            )
        ]
    short = "alb" if kind == "application" else "nlb"
    lines = [
        context.line(
            balancer,
            f"{kind.capitalize()} load balancer",
            context.price(f"elb/{short}-hour"),
            HOURS_PER_MONTH,
        ),
        context.usage_line(
            balancer,
            "Load balancer capacity units",
            context.price(f"elb/{short}-lcu-hour"),
            "alb_lcu",
        ),
    ]
    if _value(balancer, "internal") not in (True, "true"):
        zones = len(_value(balancer, "subnets") or _value(balancer, "subnetMappings") or [])
        if zones:
            lines.append(
                context.line(
                    balancer,
                    f"Public IPv4 addresses (at least one per zone) x {zones}",
                    context.price("vpc/public-ipv4-hour"),
                    HOURS_PER_MONTH * zones,
                    note="a minimum: the balancer adds nodes, each with an address, as load grows",
                )
            )
    return lines


def cache_nodes(context: Context, group: Resource) -> list[Line]:
    """ElastiCache: every node billed by the hour (shards x (1 + replicas), or the cache
    clusters), backup storage when snapshots are kept."""
    node_type = str(_value(group, "nodeType"))
    engine = str(_value(group, "engine") or "redis")
    if group.type.endswith("cluster:Cluster"):
        nodes = _count(group, "numCacheNodes", 1)
    elif (
        _number(group, "numNodeGroups") is not None
        or _number(group, "replicasPerNodeGroup") is not None
    ):
        nodes = _count(group, "numNodeGroups", 1) * (1 + _count(group, "replicasPerNodeGroup", 0))
    else:
        nodes = _count(group, "numCacheClusters", 1)
    lines = [
        context.line(
            group,
            f"Cache nodes ({engine}, {node_type}) x {nodes}",
            context.node_price(node_type, engine),
            HOURS_PER_MONTH * nodes,
        )
    ]
    if _count(group, "snapshotRetentionLimit", 0) > 0:
        lines.append(
            context.usage_line(
                group,
                "Backup storage",
                context.price("elasticache/backup-storage"),
                "cache_backup_gb",
            )
        )
    return lines


def waf_web_acl(context: Context, acl: Resource) -> list[Line]:
    rules = _value(acl, "rules") or []
    lines = [context.line(acl, "Web ACL", context.price("waf/web-acl"), 1)]
    if rules:
        lines.append(context.line(acl, "Rules", context.price("waf/rule"), len(rules)))
    lines.append(context.usage_line(acl, "Requests", context.price("waf/requests"), "waf_requests"))
    return lines


def metric_alarm(context: Context, alarm: Resource) -> list[Line]:
    """Charged per metric the alarm reads (a metric-math alarm: each query with a metric),
    high resolution below 60 s periods, anomaly detection 3x (Infracost's rules)."""
    queries = _value(alarm, "metricQueries") or []
    if queries:
        metrics = [query for query in queries if isinstance(query, Mapping) and query.get("metric")]
        periods = [
            query["metric"].get("period")
            for query in metrics
            if isinstance(query["metric"], Mapping)
        ]
        period = next((p for p in periods if isinstance(p, int | float)), 60)
        count = len(metrics)
    else:
        period, count = _number(alarm, "period", 60) or 60, 1
    anomaly = _value(alarm, "comparisonOperator") in ANOMALY_OPERATORS
    resolution = "standard" if period >= 60 else "high-resolution"
    quantity = count * (3 if anomaly else 1)
    label = f"Alarm metrics ({resolution}{', anomaly detection' if anomaly else ''})"
    return [
        context.line(alarm, label, context.price(f"cloudwatch/alarm-metric-{resolution}"), quantity)
    ]


def vpc_endpoint(context: Context, endpoint: Resource) -> list[Line]:
    kind = str(_value(endpoint, "vpcEndpointType") or "Gateway")
    if kind == "Gateway":
        return []  # free (Infracost vpc_endpoint.go: gateway endpoints are NoPrice)
    if kind != "Interface":
        return [
            Line(
                endpoint.type,
                endpoint.name,
                f"{kind} endpoint",
                NOT_FOUND,
                note=f"{PRICE_NOT_FOUND}: only interface endpoints are in the table",
            )
        ]
    subnets = max(len(_value(endpoint, "subnetIds") or []), 1)
    return [
        context.line(
            endpoint,
            f"Interface endpoint x {subnets} subnets",
            context.price("vpc/interface-endpoint-hour"),
            HOURS_PER_MONTH * subnets,
        ),
        context.usage_line(
            endpoint,
            "Data processed",
            context.price("vpc/interface-endpoint-gb"),
            "interface_endpoint_gb",
        ),
    ]


def route53_record(context: Context, record: Resource) -> list[Line]:
    if _value(record, "aliases"):
        return []  # alias records to AWS resources: no query charge
    return [
        context.usage_line(
            record, "Standard queries", context.price("route53/standard-queries"), "dns_queries"
        )
    ]


def acm_certificate(context: Context, certificate: Resource) -> list[Line]:
    if not _value(certificate, "certificateAuthorityArn"):
        return []  # public certificates: no charge (Infracost acm_certificate.go: NoPrice)
    return [
        Line(
            certificate.type,
            certificate.name,
            "Private certificate",
            NOT_FOUND,
            note=f"{PRICE_NOT_FOUND}: AWS Private CA prices are not in the table",
        )
    ]


def sns_subscription(context: Context, subscription: Resource) -> list[Line]:
    protocol = str(_value(subscription, "protocol") or "")
    price_id = {
        "email": "sns/email-notifications",
        "email-json": "sns/email-notifications",
        "http": "sns/https-notifications",
        "https": "sns/https-notifications",
    }.get(protocol)
    if price_id is None:
        return [
            Line(
                subscription.type,
                subscription.name,
                f"{protocol} notifications",
                NOT_FOUND,
                note=f"{PRICE_NOT_FOUND}: {protocol} delivery is not in the table",
            )
        ]
    return [
        context.usage_line(
            subscription, f"{protocol} notifications", context.price(price_id), "sns_notifications"
        )
    ]


def eks_node_group(context: Context, group: Resource) -> list[Line]:
    """A managed node group: its desired nodes at the first instance type's price, their
    disks (the API's default 20 GB gp2 without a launch template). The nodes are the
    stack's instances: their lines scale with the node count in the capacity view."""
    types = _value(group, "instanceTypes") or [EKS_DEFAULT_INSTANCE_TYPE]
    instance_type = str(types[0])
    nodes = _count(group, "scalingConfig.desiredSize", _count(group, "scalingConfig.minSize", 0))
    if _value(group, "capacityType") == "SPOT":
        return [
            Line(
                group.type,
                group.name,
                f"Spot nodes ({instance_type}) x {nodes}",
                NOT_FOUND,
                note=f"{PRICE_NOT_FOUND}: spot prices vary by the hour and zone",
            )
        ]
    note = (
        f"instance types {', '.join(map(str, types))}: priced as {instance_type}"
        if len(types) > 1
        else ""
    )
    lines = [
        context.line(
            group,
            f"Nodes (Linux, on-demand, {instance_type}) x {nodes}",
            context.instance_price(instance_type),
            HOURS_PER_MONTH * nodes,
            note=note,
            fleet_instances=nodes,
        )
    ]
    template_id = _value(group, "launchTemplate.id")
    template = context.by_id.get(template_id) if isinstance(template_id, str) else None
    if template is not None:
        lines += _volume_lines(context, group, template, nodes, "Node volume", fleet=True)
    elif not _value(group, "launchTemplate"):
        disk = _count(group, "diskSize", EKS_DEFAULT_DISK_GB)
        lines.append(
            context.line(
                group,
                f"Node disk (gp2, {disk} GB x {nodes})",
                context.price("ebs/gp2-storage"),
                float(disk * nodes),
                fleet_instances=nodes,
            )
        )
    return lines


def ssm_parameter(context: Context, parameter: Resource) -> list[Line]:
    tier = str(_value(parameter, "tier") or "Standard")
    if tier == "Standard":
        return []  # standard parameters: no charge (Infracost ssm_parameter.go: NoPrice)
    if tier != "Advanced":
        return [
            Line(
                parameter.type,
                parameter.name,
                f"{tier} parameter",
                NOT_FOUND,
                note=f"{PRICE_NOT_FOUND}: AWS picks the tier of an {tier} parameter",
            )
        ]
    return [
        context.line(
            parameter, "Advanced parameter storage", context.price("ssm/advanced-parameter"), 1
        ),
        context.usage_line(
            parameter, "API interactions", context.price("ssm/advanced-api"), "ssm_api_interactions"
        ),
    ]


def kubernetes_service(context: Context, service: Resource) -> list[Line]:
    if _value(service, "spec.type") != "LoadBalancer":
        return []
    return [
        Line(
            service.type,
            service.name,
            "Cloud load balancer (created by the cluster)",
            NOT_FOUND,
            note=(
                f"{PRICE_NOT_FOUND}: a Service of type LoadBalancer makes the cluster create a "
                "load balancer outside the state; which kind depends on its controller"
            ),
        )
    ]


Estimator = Callable[[Context, Resource], list[Line]]
ESTIMATORS: Mapping[str, Estimator] = {
    "fleet": fleet,
    "load_balancer": load_balancer,
    "cache_nodes": cache_nodes,
    "waf_web_acl": waf_web_acl,
    "metric_alarm": metric_alarm,
    "vpc_endpoint": vpc_endpoint,
    "route53_record": route53_record,
    "acm_certificate": acm_certificate,
    "sns_subscription": sns_subscription,
    "eks_node_group": eks_node_group,
    "kubernetes_service": kubernetes_service,
    "ssm_parameter": ssm_parameter,
}


def lines_for(context: Context, resource: Resource, classification: Classification) -> list[Line]:
    if classification.kind == "free":
        return []
    if classification.kind == "not_found":
        return [
            Line(
                resource.type,
                resource.name,
                "(whole resource)",
                NOT_FOUND,
                note=f"{PRICE_NOT_FOUND}: {classification.reason}",
            )
        ]
    if classification.kind == "components":
        return component_lines(context, resource, classification.components)
    return ESTIMATORS[classification.estimator](context, resource)
