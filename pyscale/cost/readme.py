"""The README's stack table, generated from the tool: what each shipped stack runs, costs and
serves. It is a region of pyscale/docs.py, so `make docs` rewrites it and
tests/infra/test_generated_docs.py fails when it is stale: nothing in it is typed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pyscale.cost.render import money
from pyscale.plan.render import markdown_table

SCENARIO = "redis_hit"  # the row the table quotes: a cache hit served from Redis


def stack_row(plan: Mapping[str, Any], cost: Mapping[str, Any]) -> list[str]:
    settings = plan["key_settings"]
    cache, network, edge = (settings["cache"], settings["network"], settings["load_balancer"])
    capacity = cost.get("capacity") or {}
    fleet_text = _compute_text(settings, capacity.get("fleet") or {})
    if cache.get("cluster_mode"):
        shape = f"cluster mode, {cache['shards']} shards x {cache['replicas_per_shard']} replica"
    elif cache.get("replicas_per_shard"):
        shape = f"primary + {cache['replicas_per_shard']} replica"
    else:
        shape = "one node"
    nodes = f" ({_count(cache['nodes'], 'node')})" if cache["nodes"] > 1 else ""
    cache_parts = [f"`{cache['node_type']}`, {shape}{nodes}"]
    cache_parts += [name for name, on in (("multi-AZ", cache.get("multi_az")),) if on]
    if cache.get("snapshot_retention_days"):
        cache_parts.append(f"snapshots kept {_count(cache['snapshot_retention_days'], 'day')}")
    nats = network["nat_gateways"]
    zones = len(network["availability_zones"])
    edge_parts = [
        f"{zones} AZs",
        "NAT per AZ" if nats == zones and nats > 1 else ("one NAT" if nats == 1 else f"{nats} NAT"),
        "HTTPS only" if edge["http_redirects_to_https"] else ("HTTPS" if edge["https"] else "HTTP"),
    ]
    edge_parts += [
        label
        for label, on in (
            ("WAF", edge["waf"]),
            ("deletion protection", edge["deletion_protection"]),
            ("access logs", edge["access_logs"]),
        )
        if on
    ]
    totals = cost["totals"]
    cost_text = money(totals["monthly_usd"])
    if not totals["complete"]:
        cost_text += " + not priced: " + ", ".join(
            _short(item) for item in totals["price_not_found"]
        )
    serves, per_million = "-", "-"
    scenario = next((s for s in capacity.get("scenarios", []) if s["scenario"] == SCENARIO), None)
    if scenario:
        binding = (
            " (request-count target)" if scenario["binding_target"] == "requests_per_target" else ""
        )
        serves = (
            f"{scenario['fleet_rps_at_min']:,.0f} to {scenario['fleet_rps_at_max']:,.0f} req/s"
            + binding
        )
        per_million = (
            f"{money(scenario['usd_per_million_requests_at_min'])} to "
            f"{money(scenario['usd_per_million_requests_at_max'])}"
        )
    return [
        f"`{plan['stack']}`",
        fleet_text,
        ", ".join(cache_parts),
        ", ".join(edge_parts),
        cost_text,
        serves,
        per_million,
    ]


def _compute_text(settings: Mapping[str, Any], capacity_fleet: Mapping[str, Any]) -> str:
    """ec2: the instances; eks: the node groups' nodes and the HPA's pods."""
    if "fleet" in settings:
        fleet = settings["fleet"]
        return (
            f"`{fleet['instance_type']}` ({capacity_fleet.get('vcpus', '?')} vCPUs, "
            f"{fleet['architecture']}), {fleet['min_size']} to {fleet['max_size']} instances"
        )
    workload = settings["workload"]
    groups = [
        f"`{', '.join(group['instance_types'])}` {group['min_size']} to {group['max_size']} "
        f"{kind.replace('_', '-')} nodes"
        for kind, group in settings.get("node_groups", {}).items()
    ]
    return (
        "; ".join(groups)
        + f"; {workload['hpa_min_replicas']} to {workload['hpa_max_replicas']} pods "
        f"({workload['cpu_request']} CPU each)"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _short(item: str) -> str:
    """``aws:elasticache/replicationGroup:ReplicationGroup Cache nodes (...)`` -> the component;
    a whole resource by its type's name (``aws:ecr/repository:Repository`` -> ``Repository``)."""
    token, _, component = item.partition(" ")
    if not component or component.startswith("(whole resource"):
        return token.rsplit(":", 1)[-1]
    return component


HEADER = (
    "stack",
    "compute",
    "cache",
    "network and edge",
    "a month (priced lines)",
    "Redis hits served at the scaling targets (min to max fleet)",
    "$ per million requests (min to max)",
)


def generated_table(documents: Callable[[str], tuple[Mapping[str, Any], Mapping[str, Any]]]) -> str:
    """The table and its note. ``documents(stack)`` -> (plan, cost)."""
    from pyscale import stacks

    # Cheapest first. The table's columns (compute, cache shape, hits served at the scaling
    # targets) describe the stacks that run on AWS: an existing cluster's cost is not ours.
    names = sorted(
        stacks.stacks_on("ec2", "eks"),
        key=lambda s: (documents(s)[1]["totals"]["monthly_usd"], s),
    )
    rows = [stack_row(*documents(stack)) for stack in names]
    first_cost = documents(names[0])[1]
    bench = (first_cost.get("capacity") or {}).get("benchmark", {})
    lines = markdown_table(HEADER, rows)
    lines += [
        "Costs: `pyscale cost --stack <stack>` from pyscale/cost/prices/aws.csv "
        f"({first_cost['convention']}); "
        "every line names its source and the date it was read, usage-based lines (NAT and "
        "LCU traffic, logs, requests) are not in these totals. Serving figures: "
        f"`{bench.get('path', '?')}` ({bench.get('date', '?')}, {bench.get('cpu', '?')} "
        f"{bench.get('architecture', '?')}), extrapolated to the stack's instances as "
        "[Cost and capacity](#cost-and-capacity) explains.",
    ]
    return "\n".join(lines)


def shipped_documents(stack: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan and cost of a shipped stack file, as `pyscale plan`/`cost` compute them."""
    from pyscale.cost.command import cost_of_run
    from pyscale.plan.command import run_of
    from pyscale.plan.extract import build_plan

    run = run_of(stack, {})
    return build_plan(run), cost_of_run(run)


def render() -> str:
    """The table for the shipped stack files (each stack run once)."""
    cache: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def documents(stack: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if stack not in cache:
            cache[stack] = shipped_documents(stack)
        return cache[stack]

    return generated_table(documents)
