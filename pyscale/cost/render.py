"""Showing a cost document: an Infracost-style table for terminals, Markdown for job
summaries and the README. Both read only the document (cost.schema.json).

Resources of one type with one identical line each (24 alarms) are shown as one row with
their count, so the table stays readable; the JSON keeps every line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from pyscale.cost.capacity import SCENARIO_TITLES as SCENARIO_TITLE
from pyscale.cost.prices import PRICE_NOT_FOUND
from pyscale.plan.render import markdown_table

PLURAL_UNITS = {"hour": "hours", "month": "months"}
COLLAPSE_AT = 3  # this many resources of a type with one identical line become one row


def money(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.2f}"


def unit_price(value: float | None) -> str:
    """A unit price in full (0.045, not 0.04): these are the table's figures."""
    return "—" if value is None else f"${value:g}"


def quantity_text(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def unit_text(unit: str | None) -> str:
    return PLURAL_UNITS.get(unit or "", unit or "")


@dataclass(frozen=True)
class Row:
    resource: str
    component: str
    quantity: str
    unit: str
    cost: str
    marker: str  # "*" usage-based, "!" price not found, "" priced


def rows(document: Mapping[str, Any]) -> list[Row]:
    """The table's rows: resources by monthly cost (highest first), each with its lines."""
    by_resource: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for line in document["lines"]:
        by_resource.setdefault((line["resource_type"], line["resource"]), []).append(line)
    groups = _collapse(by_resource)
    groups.sort(key=lambda group: (-group[2], group[0]))
    result = []
    for label, lines, _cost in groups:
        for index, line in enumerate(lines):
            result.append(_row(label if index == 0 else "", line))
    return result


def _collapse(
    by_resource: Mapping[tuple[str, str], list[Mapping[str, Any]]],
) -> list[tuple[str, list[Mapping[str, Any]], float]]:
    same: dict[tuple[str, str, str | None], list[tuple[str, Mapping[str, Any]]]] = {}
    groups: list[tuple[str, list[Mapping[str, Any]], float]] = []
    for (token, name), lines in by_resource.items():
        if len(lines) == 1:
            line = lines[0]
            same.setdefault((token, line["component"], line["status"]), []).append((name, line))
        else:
            groups.append((name, lines, _cost_of(lines)))
    for (token, _component, _status), members in same.items():
        if len(members) < COLLAPSE_AT:
            groups += [(name, [line], _cost_of([line])) for name, line in members]
            continue
        first = members[0][1]
        merged = dict(first)
        for key in ("monthly_quantity", "monthly_usd"):
            values = [line[key] for _, line in members]
            merged[key] = None if any(v is None for v in values) else sum(values)
        prefix = _common_prefix([name for name, _ in members])
        label = f"{len(members)} x {token.rsplit(':', 1)[-1]} ({prefix}…)"
        groups.append((label, [merged], _cost_of([merged])))
    return groups


def _common_prefix(names: Sequence[str]) -> str:
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix.rstrip("-")


def _cost_of(lines: Iterable[Mapping[str, Any]]) -> float:
    return sum(line["monthly_usd"] or 0.0 for line in lines)


def _row(label: str, line: Mapping[str, Any]) -> Row:
    status = line["status"]
    unit = unit_text(line["unit"])
    if status == "usage":
        return Row(
            label,
            line["component"],
            "",
            "",
            f"depends on usage: {unit_price(line['unit_price_usd'])} per {line['unit']}",
            "*",
        )
    if status == "not_found":
        return Row(
            label,
            line["component"],
            quantity_text(line["monthly_quantity"]),
            unit,
            PRICE_NOT_FOUND,
            "!",
        )
    marker = "*" if status == "usage_assumed" else ""
    return Row(
        label,
        line["component"],
        quantity_text(line["monthly_quantity"]),
        unit,
        money(line["monthly_usd"]),
        marker,
    )


def totals_text(document: Mapping[str, Any]) -> list[str]:
    totals = document["totals"]
    text = [
        f"Monthly total: {money(totals['monthly_usd'])} "
        f"(baseline {money(totals['baseline_monthly_usd'])}, "
        f"usage assumed {money(totals['usage_monthly_usd'])})",
    ]
    if totals["usage_lines_without_assumption"]:
        text.append(
            f"{totals['usage_lines_without_assumption']} usage-based lines (*) are not in the "
            "total: "
            f"give monthly amounts in stacks/Pulumi.{document['stack']}.usage.yaml"
        )
    if not totals["complete"]:
        text.append(
            f"Not in the total, {PRICE_NOT_FOUND} (!): " + "; ".join(totals["price_not_found"])
        )
    return text


def capacity_rows(capacity: Mapping[str, Any]) -> list[list[str]]:
    table = []
    for entry in capacity["scenarios"]:
        table.append(
            [
                entry["title"],
                _rps(entry["per_core_rps"]),
                _rps(entry["per_instance_rps_at_cpu_target"]),
                _rps(entry["per_instance_rps_served"])
                + (" (request target)" if entry["binding_target"] == "requests_per_target" else ""),
                f"{_rps(entry['fleet_rps_at_min'])} to {_rps(entry['fleet_rps_at_max'])}",
                _rps(entry["fleet_rps_at_max_cpu_target_only"]),
                f"{money(entry['usd_per_million_requests_at_min'])} to "
                f"{money(entry['usd_per_million_requests_at_max'])}",
            ]
        )
    return table


CAPACITY_HEADER = (
    "path",
    "req/s per vCPU (measured)",
    "per instance, CPU target",
    "per instance, both targets",
    "fleet, both targets (min to max)",
    "fleet at max, CPU target only",
    "$ per million requests, priced lines (min to max)",
)


def capacity_lead(capacity: Mapping[str, Any]) -> str:
    fleet, bench = capacity["fleet"], capacity["benchmark"]
    request_target = (
        f", request-count target {fleet['requests_per_target_per_minute']:g} per instance a minute "
        f"(= {fleet['request_target_rps_per_instance']:g} req/s)"
        if fleet["requests_per_target_per_minute"]
        else ""
    )
    source = (
        f"Capacity from {bench['path']} ({bench['date']}, {bench['cores']} vCPUs {bench['cpu']}, "
        f"{bench['architecture']}): "
    )
    if fleet.get("unit") == "pod":
        return source + (
            f"app pods requesting {_number(fleet['vcpus'])} vCPU, {fleet['min_size']}-"
            f"{fleet['max_size']} pods (HPA) on {fleet['nodes_at_min']}-{fleet['nodes_at_max']} "
            f"{fleet['instance_type']} nodes ({fleet['architecture'] or '?'}), HPA CPU target "
            f"{_number(fleet['cpu_target_percent'])}% of the request. Cost at min to max pods: "
            f"{money(capacity['monthly_usd_at_min'])} to {money(capacity['monthly_usd_at_max'])} "
            "a month (priced lines only)."
        )
    return source + (
        f"{fleet['instance_type']} with {fleet['vcpus'] or '?'} vCPUs "
        f"({fleet['architecture'] or '?'}), {fleet['min_size']}-{fleet['max_size']} instances, CPU "
        f"target {_number(fleet['cpu_target_percent'])}%{request_target}. Cost at min to max size: "
        f"{money(capacity['monthly_usd_at_min'])} to {money(capacity['monthly_usd_at_max'])} "
        "a month "
        "(priced lines only)."
    )


def _rps(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


# --------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------
def cost_renderable(document: Mapping[str, Any]) -> RenderableType:
    parts: list[RenderableType] = [
        Text.assemble(
            ("Cost estimate for stack ", "bold"),
            (document["stack"], "bold cyan"),
            f" ({document['region']}; {document['convention']}) — computed offline",
        )
    ]
    table = Table(title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("resource", "left"),
        ("component", "left"),
        ("monthly qty", "right"),
        ("unit", "left"),
        ("monthly cost", "right"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold")
    for row in rows(document):
        style = "yellow" if row.marker == "!" else ("dim" if row.marker == "*" else "")
        table.add_row(
            Text(row.resource, style="bold"),
            Text(row.component),
            Text(row.quantity),
            Text(row.unit),
            Text(f"{row.cost} {row.marker}".rstrip(), style=style),
        )
    parts.append(table)
    parts += [Text(line) for line in totals_text(document)]
    capacity = document.get("capacity")
    if capacity:
        parts.append(Text(capacity_lead(capacity)))
        cap = Table(title="Capacity at the stack's scaling targets", title_justify="left")
        for column in CAPACITY_HEADER:
            cap.add_column(column, overflow="fold")
        for values in capacity_rows(capacity):
            cap.add_row(*(Text(value) for value in values))
        parts.append(cap)
        parts += [
            Text(f"extrapolation: {note}", style="yellow") for note in capacity["extrapolations"]
        ]
    parts.append(
        Text(
            f"Prices: {len(document['prices'])} rows of pyscale/cost/prices/aws.csv, each with "
            "its source and date (--json lists them).",
            style="dim",
        )
    )
    return Group(*parts)


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
def cost_markdown(document: Mapping[str, Any]) -> str:
    lines = [
        f"### Cost: stack `{document['stack']}` ({document['region']})",
        "",
        f"Computed offline by `pyscale cost` from the resources the program registers and "
        f"sourced, dated prices ({document['convention']}).",
        "",
    ]
    lines += markdown_table(
        ("resource", "component", "monthly qty", "unit", "monthly cost"),
        (
            (r.resource, r.component, r.quantity, r.unit, f"{r.cost} {r.marker}".rstrip())
            for r in rows(document)
        ),
    )
    lines += [
        f"**{text}**" if index == 0 else text for index, text in enumerate(totals_text(document))
    ]
    lines.append("")
    capacity = document.get("capacity")
    if capacity:
        lines += ["#### Capacity", "", capacity_lead(capacity), ""]
        lines += markdown_table(CAPACITY_HEADER, capacity_rows(capacity))
        lines += [f"- Extrapolation: {note}" for note in capacity["extrapolations"]]
        lines.append("")
    lines += ["<details><summary>Where each price comes from</summary>", ""]
    lines += markdown_table(
        ("price", "USD", "unit", "source", "read on"),
        (
            (
                f"`{price_id}`" + (f" ({price['engine']})" if price["engine"] else ""),
                PRICE_NOT_FOUND if price["usd"] is None else f"{price['usd']:g}",
                price["unit"],
                f"{price['source']} {price['source_ref']}".strip() or price["note"],
                price["read_on"],
            )
            for price_id, price in document["prices"].items()
        ),
    )
    lines += ["</details>", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The plan's summary (plan and --diff)
# --------------------------------------------------------------------------------------------
def summary_lines(summary: Mapping[str, Any] | None, stack: str) -> list[str]:
    """The plan's cost section: the total, what it leaves out, the capacity range."""
    if not summary:
        return []
    if "error" in summary:
        return [f"Cost not estimated: {summary['error']}"]
    text = [
        f"Monthly cost: {money(summary['monthly_usd'])} "
        f"(`pyscale cost --stack {stack}` for every line and its source)"
    ]
    if not summary["complete"]:
        text.append(f"Not in it, {PRICE_NOT_FOUND}: " + "; ".join(summary["price_not_found"]))
    if summary["usage_lines_without_assumption"]:
        text.append(
            f"Not in it, {summary['usage_lines_without_assumption']} usage-based lines "
            "(no usage file values)"
        )
    capacity = summary.get("capacity")
    if capacity:
        ranges = ", ".join(
            f"{SCENARIO_TITLE.get(key, key)} "
            f"{_rps(entry['fleet_rps_at_min'])} to {_rps(entry['fleet_rps_at_max'])} req/s"
            for key, entry in capacity["scenarios"].items()
        )
        text.append(
            f"Capacity at the scaling targets (min to max fleet, from {capacity['benchmark']}): "
            + ranges
        )
    return text


def summary_rows(cost: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, a, b) rows comparing two stacks' cost summaries."""

    def total(side: Mapping[str, Any] | None) -> str:
        if not side:
            return "—"
        if "error" in side:
            return f"not estimated ({side['error']})"
        return money(side["monthly_usd"]) + ("" if side["complete"] else f" + {PRICE_NOT_FOUND}")

    def scenario(side: Mapping[str, Any] | None, key: str) -> str:
        entry = ((side or {}).get("capacity") or {}).get("scenarios", {}).get(key)
        if not entry:
            return "—"
        return f"{_rps(entry['fleet_rps_at_min'])}-{_rps(entry['fleet_rps_at_max'])} req/s"

    a, b = cost.get("a"), cost.get("b")
    rows_: list[tuple[str, str, str]] = [("monthly cost (priced lines)", total(a), total(b))]
    keys = list(((a or {}).get("capacity") or {}).get("scenarios", {})) or list(
        ((b or {}).get("capacity") or {}).get("scenarios", {})
    )
    rows_ += [
        (
            f"capacity, {SCENARIO_TITLE.get(key, key)} (min-max fleet)",
            scenario(a, key),
            scenario(b, key),
        )
        for key in keys
    ]
    difference = cost.get("monthly_usd_difference")
    if difference is not None:
        rows_.append(
            (
                "difference a month (b - a)",
                "",
                f"{'+' if difference >= 0 else '-'}{money(abs(difference))}",
            )
        )
    return rows_
