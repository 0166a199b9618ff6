"""The cost document (``kind: "cost"`` in cost.schema.json): lines, totals, capacity.

``build_cost(run)`` reads a program run (pyscale.offline) the same way the plan does; the
plan, its diff, the CLI and the README table all start from this document.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pyscale.cost import capacity as capacity_module
from pyscale.cost.estimate import (
    NOT_FOUND,
    PRICED,
    USAGE,
    USAGE_ASSUMED,
    Context,
    CostError,
    Line,
    Resource,
    fleet_instance_type,
    lines_for,
)
from pyscale.cost.prices import (
    CONVENTION,
    HOURS_PER_MONTH,
    PRICE_NOT_FOUND,
    Classifications,
    PriceTable,
    classifications,
    price_table,
    unclassified_message,
)
from pyscale.cost.usage import Usage
from pyscale.plan.wire import lookup, plain

SCHEMA_VERSION = 1
REGION_KEY = "aws:region"
GROUP_TYPE = "aws:autoscaling/group:Group"
POLICY_TYPE = "aws:autoscaling/policy:Policy"
CPU_METRIC = "ASGAverageCPUUtilization"
REQUESTS_METRIC = "ALBRequestCountPerTarget"


@runtime_checkable  # the plan prices a run only if it carries its engine config
class Run(Protocol):
    """What the estimate reads of a program run (read-only: a plan's run satisfies it too)."""

    @property
    def project(self) -> str: ...
    @property
    def stack(self) -> str: ...
    @property
    def config(self) -> Mapping[str, str]: ...
    @property
    def resources(self) -> Sequence[Resource]: ...


def build_cost(
    run: Run,
    *,
    usage: Usage | None = None,
    benchmark: capacity_module.Benchmark | None = None,
    table: PriceTable | None = None,
    types: Classifications | None = None,
) -> dict[str, Any]:
    """The cost document of one program run. Raises CostError (region without prices, an
    instance or node type the table has no row for) and BenchmarkError."""
    table = table or price_table()
    types = types or classifications()
    usage = usage or Usage()
    region = str(run.config.get(REGION_KEY) or "")
    if region not in table.regions():
        raise CostError(
            f"no prices for region {region!r}: the price table covers "
            f"{', '.join(table.regions())} (pyscale/cost/prices/aws.csv); add sourced rows "
            "for the region to estimate it"
        )
    context = Context(region, table, types, usage, [r for r in run.resources if r.custom])
    lines: list[Line] = []
    free: Counter[str] = Counter()
    free_reasons: dict[str, str] = {}
    for resource in sorted(context.resources, key=lambda r: (r.type, r.name)):
        classification = types.of(resource.type)
        if classification is None:
            lines.append(
                Line(
                    resource.type,
                    resource.name,
                    "(unclassified type)",
                    NOT_FOUND,
                    note=f"{PRICE_NOT_FOUND}: {unclassified_message(resource.type, [run.stack])}",
                )
            )
            continue
        produced = lines_for(context, resource, classification)
        if produced:
            lines += produced
        else:
            free[resource.type] += 1
            free_reasons[resource.type] = (
                classification.reason or "no billed component for its settings"
            )

    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "cost",
        "project": run.project,
        "stack": run.stack,
        "region": region,
        "currency": "USD",
        "convention": CONVENTION,
        "usage_file": _relative(usage.path) if usage.path else None,
        "lines": [_line_entry(line) for line in lines],
        "free": [
            {"type": token, "count": count, "reason": free_reasons[token]}
            for token, count in sorted(free.items())
        ],
        "prices": _prices_used(lines),
        "totals": _totals(lines),
    }
    fleet, nodes_for = fleet_of(context), None
    if fleet is None:
        fleet, nodes_for = pod_fleet_of(context) or (None, None)
    if fleet is None:
        document["capacity"] = None
    else:
        benchmark = benchmark or capacity_module.load_benchmark()
        fixed, per_instance = _fleet_split(lines)
        # ec2: the fleet's unit is the instance. eks: it is the pod, and the instances
        # (nodes) are those its pods keep running.
        instances_for = nodes_for or (lambda count: count)

        def monthly_cost_at(count: int) -> float:
            return round(fixed + per_instance * instances_for(count), 2)

        document["capacity"] = capacity_module.capacity(fleet, benchmark, monthly_cost_at)
        document["capacity"]["monthly_usd_at_min"] = monthly_cost_at(fleet.min_size)
        document["capacity"]["monthly_usd_at_max"] = monthly_cost_at(fleet.max_size)
    return document


def _line_entry(line: Line) -> dict[str, Any]:
    price = line.price
    cost = line.monthly_cost
    return {
        "resource_type": line.resource_type,
        "resource": line.resource,
        "component": line.component,
        "status": line.status,
        "monthly_quantity": round(line.quantity, 4)
        if line.quantity is not None and line.status != USAGE
        else None,
        "unit": price.unit if price else None,
        "unit_price_usd": price.usd if price else None,
        "monthly_usd": round(cost, 4) if cost is not None else None,
        "price_id": price.price_id if price else None,
        "usage_key": line.usage_key,
        "scales_with_fleet": line.fleet_instances is not None,
        "note": line.note,
    }


def _prices_used(lines: Sequence[Line]) -> dict[str, Any]:
    used: dict[str, Any] = {}
    for line in lines:
        price = line.price
        if price is None or price.price_id in used:
            continue
        used[price.price_id] = {
            "item": price.item,
            "engine": price.engine or None,
            "unit": price.unit,
            "usd": price.usd,
            **price.citation(),
            "note": price.note,
        }
    return dict(sorted(used.items()))


def _totals(lines: Sequence[Line]) -> dict[str, Any]:
    priced = sum(line.monthly_cost or 0.0 for line in lines if line.status == PRICED)
    assumed = sum(line.monthly_cost or 0.0 for line in lines if line.status == USAGE_ASSUMED)
    not_found = [line for line in lines if line.status == NOT_FOUND]
    return {
        "monthly_usd": round(priced + assumed, 2),
        "baseline_monthly_usd": round(priced, 2),
        "usage_monthly_usd": round(assumed, 2),
        "usage_lines_without_assumption": sum(1 for line in lines if line.status == USAGE),
        "price_not_found_lines": len(not_found),
        "price_not_found": sorted({f"{line.resource_type} {line.component}" for line in not_found}),
        "complete": not not_found,
        "hours_per_month": HOURS_PER_MONTH,
    }


def _fleet_split(lines: Sequence[Line]) -> tuple[float, float]:
    """(monthly cost that does not change with the fleet's size, cost per instance)."""
    per_instance = 0.0
    fixed = 0.0
    for line in lines:
        cost = line.monthly_cost
        if cost is None or (line.status != PRICED and line.status != USAGE_ASSUMED):
            continue
        if line.fleet_instances:
            per_instance += cost / line.fleet_instances
        else:
            fixed += cost
    return fixed, per_instance


def fleet_of(context: Context) -> capacity_module.Fleet | None:
    """The stack's EC2 fleet as capacity needs it (None: the stack has no Auto Scaling group)."""
    groups = context.of_type(GROUP_TYPE)
    if len(groups) != 1:
        return None
    group = groups[0]
    _, instance_type, _ = fleet_instance_type(context, group)
    if instance_type is None:
        return None
    from infra import instance_types  # botocore's EC2 model: the one source of vCPUs

    try:
        described = instance_types.lookup(instance_type)
        vcpus, architecture = described.vcpus, described.architecture
    except instance_types.UnknownInstanceTypeError:
        vcpus, architecture = None, None
    targets: dict[str, float] = {}
    for policy in context.of_type(POLICY_TYPE):
        metric = plain(
            lookup(
                policy.inputs,
                "targetTrackingConfiguration.predefinedMetricSpecification.predefinedMetricType",
            )
        )
        value = plain(lookup(policy.inputs, "targetTrackingConfiguration.targetValue"))
        if isinstance(metric, str) and isinstance(value, int | float):
            targets[metric] = float(value)

    def size(path: str, default: int) -> int:
        value = plain(lookup(group.inputs, path))
        return (
            int(value)
            if isinstance(value, int | float) and not isinstance(value, bool)
            else default
        )

    min_size = size("minSize", 0)
    return capacity_module.Fleet(
        instance_type=instance_type,
        vcpus=vcpus,
        architecture=str(architecture) if architecture else None,
        min_size=min_size,
        desired=size("desiredCapacity", min_size),
        max_size=size("maxSize", min_size),
        cpu_target_percent=targets.get(CPU_METRIC),
        requests_per_target_per_minute=targets.get(REQUESTS_METRIC),
    )


NODE_GROUP_TYPE = "aws:eks/nodeGroup:NodeGroup"
_CPU_UNITS = {"m": 0.001, "": 1.0}
_MEMORY_MIB = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, "K": 1e3 / 2**20, "M": 1e6 / 2**20}


def _quantity(value: Any, units: Mapping[str, float]) -> float | None:
    """A Kubernetes quantity ("800m", "1434Mi") in the units' base, None if not one of them.
    Hand-written: the suffixes the program writes are these few, and the cost view must not
    need the kubernetes client."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * units.get("", 1.0) if "" in units else None
    if not isinstance(value, str):
        return None
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        number = value[: len(value) - len(suffix)] if suffix else value
        if value.endswith(suffix):
            try:
                return float(number) * factor
            except ValueError:
                continue
    return None


def pod_fleet_of(
    context: Context,
) -> tuple[capacity_module.Fleet, Callable[[int], int]] | None:
    """The eks app's pods as capacity needs them, and the nodes a number of them keeps
    running (None: no HPA-scaled Deployment on an on-demand node group)."""
    from infra.kubernetes import capacity as pod_budget  # the vendored node tables
    from pyscale.plan.kubernetes import app_deployment, hpa_cpu_target

    hpa, deployment = app_deployment(context.of_type)
    groups = [
        group
        for group in context.of_type(NODE_GROUP_TYPE)
        if plain(lookup(group.inputs, "capacityType")) in (None, "ON_DEMAND")
    ]
    if hpa is None or deployment is None or not groups:
        return None
    group = groups[0]
    types = plain(lookup(group.inputs, "instanceTypes")) or []
    container = lookup(deployment.inputs, "spec.template.spec.containers[0]") or {}
    cpu = _quantity(plain(lookup(container, "resources.requests.cpu")), _CPU_UNITS)
    memory = _quantity(plain(lookup(container, "resources.requests.memory")), _MEMORY_MIB)

    def whole(inputs: Mapping[str, Any], path: str, default: int) -> int:
        value = plain(lookup(inputs, path))
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    min_pods = whole(hpa.inputs, "spec.minReplicas", 1)
    max_pods = whole(hpa.inputs, "spec.maxReplicas", min_pods)
    min_nodes = whole(group.inputs, "scalingConfig.minSize", 0)
    max_nodes = whole(group.inputs, "scalingConfig.maxSize", min_nodes)
    target = hpa_cpu_target(hpa)
    instance_type = str(types[0]) if types else None
    if instance_type is None or not cpu or not memory:
        return None
    try:
        node = pod_budget.node_shape(instance_type)
    except pod_budget.UnknownNodeTypeError:
        return None
    daemons = [pod for pod in pod_budget.EKS_SYSTEM_PODS if pod.per_node]
    free_cpu = node.allocatable_cpu_millicores - sum(pod.cpu_millicores for pod in daemons)
    free_memory = node.allocatable_memory_mib - sum(pod.memory_mib for pod in daemons)
    per_node = max(
        1,
        min(
            int(free_cpu // (cpu * 1000)),
            int(free_memory // memory),
            node.max_pods - len(daemons),
        ),
    )

    def nodes_for(pods: int) -> int:
        return min(max_nodes, max(min_nodes, math.ceil(pods / per_node)))

    ami = str(plain(lookup(group.inputs, "amiType")) or "")
    fleet = capacity_module.Fleet(
        instance_type=instance_type,
        vcpus=round(cpu, 3),
        architecture="arm64" if "ARM_64" in ami else "x86_64" if "x86_64" in ami else None,
        min_size=min_pods,
        desired=min_pods,
        max_size=max_pods,
        cpu_target_percent=float(target) if isinstance(target, int | float) else None,
        requests_per_target_per_minute=None,
        unit=capacity_module.POD,
        nodes_at_min=nodes_for(min_pods),
        nodes_at_max=nodes_for(max_pods),
    )
    return fleet, nodes_for


def summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the plan shows of the cost: the total and the capacity range per scenario."""
    totals = document["totals"]
    result: dict[str, Any] = {
        "monthly_usd": totals["monthly_usd"],
        "complete": totals["complete"],
        "price_not_found": totals["price_not_found"],
        "usage_lines_without_assumption": totals["usage_lines_without_assumption"],
        "capacity": None,
    }
    capacity = document.get("capacity")
    if capacity:
        result["capacity"] = {
            "benchmark": capacity["benchmark"]["path"],
            "scenarios": {
                entry["scenario"]: {
                    "fleet_rps_at_min": entry["fleet_rps_at_min"],
                    "fleet_rps_at_max": entry["fleet_rps_at_max"],
                    "binding_target": entry["binding_target"],
                    "usd_per_million_requests_at_max": entry["usd_per_million_requests_at_max"],
                }
                for entry in capacity["scenarios"]
            },
        }
    return result


def plan_summary(run: Run) -> dict[str, Any]:
    """The cost summary the offline plan carries: ``summary`` of the run's cost document
    with the stack's usage file, or ``{"error": ...}`` — a plan never fails on its cost."""
    from pyscale import stacks
    from pyscale.cost.prices import PriceTableError
    from pyscale.cost.usage import UsageFileError, load_usage, usage_file_of

    try:
        usage = load_usage(
            usage_file_of(stacks.stacks_dir(), run.stack), classifications().usage_keys
        )
        return summary(build_cost(run, usage=usage))
    except (CostError, capacity_module.BenchmarkError, PriceTableError, UsageFileError) as error:
        return {"error": str(error)}


def _relative(path: Path) -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
