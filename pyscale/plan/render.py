"""Showing plan and diff documents: a rich tree/tables for terminals, Markdown for job summaries.

Both renderers read only the documents (plan.schema.json), so what a person sees and what
`--json` gives a machine are the same facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from pyscale.plan.extract import STACK_GROUP


def _cost_text(plan: Mapping[str, Any]) -> list[str]:
    # Imported here: pyscale.cost reads the plan's wire helpers (and renders with rich too).
    from pyscale.cost.render import summary_lines

    return summary_lines(plan.get("cost"), plan["stack"])


def _cost_rows(diff: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    from pyscale.cost.render import summary_rows

    return summary_rows(diff["cost"]) if diff.get("cost") else []


ABSENT = "—"


def text_of(value: Any) -> str:
    """One value as a person reads it: lists joined, mappings as k=v, absent as a dash."""
    if value is None:
        return ABSENT
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={text_of(item)}" for key, item in value.items()) or "{}"
    if isinstance(value, list):
        return ", ".join(text_of(item) for item in value) or "[]"
    return str(value)


def _cell_text(value: Any) -> Text:
    # Text, not a str: rich would read "[secret]" as markup and ":secret:" as an emoji.
    return Text(text_of(value))


def _settings_text(settings: Mapping[str, Any]) -> str:
    return "  ".join(f"{key}={text_of(value)}" for key, value in settings.items())


def _component_title(component: Mapping[str, Any]) -> str:
    if component["type"] == STACK_GROUP:
        return "resources outside any component"
    return f"{component['type']}  {component['name']}"


# --------------------------------------------------------------------------------------------
# Terminal (rich)
# --------------------------------------------------------------------------------------------
def plan_renderable(plan: Mapping[str, Any]) -> RenderableType:
    summary = plan["summary"]
    parts: list[RenderableType] = [
        Text.assemble(
            ("Plan for stack ", "bold"),
            (plan["stack"], "bold cyan"),
            f" (project {plan['project']}, platform {plan['platform']}): "
            f"{summary['resources']} resources in "
            f"{summary['components']} components — computed offline, no cloud credentials used",
        )
    ]
    parts += [Text(f"warning: {warning}", style="yellow") for warning in plan["warnings"]]
    parts.append(_key_settings_table(plan["key_settings"]))
    cost = _cost_text(plan)
    if cost:
        parts.append(Text("Cost and capacity", style="bold"))
        parts += [Text(f"  {line}") for line in cost]
    if plan["key_settings"]["alarms"]:
        parts.append(_alarms_table(plan["key_settings"]["alarms"]))
    parts.append(_resource_tree(plan))
    outputs = Table(title="Stack outputs", title_justify="left")
    outputs.add_column("output", style="cyan")
    outputs.add_column("value", overflow="fold")
    for name, value in plan["outputs"].items():
        outputs.add_row(Text(name), _cell_text(value))
    parts.append(outputs)
    return Group(*parts)


def _key_settings_table(settings: Mapping[str, Any]) -> Table:
    table = Table(title="Key settings", title_justify="left")
    table.add_column("area", style="bold")
    table.add_column("setting")
    table.add_column("value", style="green", overflow="fold")
    for area, values in settings.items():
        if area == "alarms":
            continue
        first = True
        for name, value in values.items():
            table.add_row(area if first else "", Text(name), _cell_text(value))
            first = False
        table.add_section()
    return table


def _alarms_table(alarms: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="Alarms", title_justify="left")
    for column in ("alarm", "namespace", "metric", "statistic", "condition"):
        table.add_column(column, overflow="fold")
    for alarm in alarms:
        table.add_row(
            Text(alarm["name"]),
            _cell_text(alarm["namespace"]),
            _cell_text(alarm["metric"]),
            _cell_text(alarm["statistic"]),
            Text(f"{text_of(alarm['comparison'])} {text_of(alarm['threshold'])}"),
        )
    return table


def _resource_tree(plan: Mapping[str, Any]) -> Tree:
    root = Tree(Text("Resources by component", style="bold"))
    for component in plan["components"]:
        count = sum(1 for resource in component["resources"] if resource["custom"])
        branch = root.add(
            Text.assemble(
                (_component_title(component), "bold magenta"), (f" ({count} resources)", "dim")
            )
        )
        nodes: dict[str | None, Tree] = {component["urn"]: branch}
        for resource in component["resources"]:
            label = Text.assemble(
                (resource["type"], "blue" if resource["custom"] else "magenta"),
                "  ",
                (resource["name"], "bold"),
            )
            if resource["settings"]:
                label.append("  " + _settings_text(resource["settings"]), style="dim")
            # Parents are registered before their children, so the parent's node exists.
            parent_node = nodes.get(resource["parent"], branch)
            nodes[resource["urn"]] = parent_node.add(label)
    return root


def diff_renderable(diff: Mapping[str, Any]) -> RenderableType:
    a, b = diff["stacks"]["a"], diff["stacks"]["b"]
    parts: list[RenderableType] = [
        Text.assemble(
            ("Differences between stacks ", "bold"), (a, "bold cyan"), " and ", (b, "bold cyan")
        )
    ]
    if diff["stateful"]:
        stateful = Table(
            title=f"Stateful resources {a} -> {b} deletes or replaces: check each",
            title_justify="left",
            title_style="bold red",
        )
        for column in ("change", "resource", "what is lost", "because"):
            stateful.add_column(column, overflow="fold")
        for change in diff["stateful"]:
            stateful.add_row(
                Text(change["change"], style="bold red"),
                Text(f"{change['type']}  {change['name']}"),
                Text(change["loses"]),
                Text(_stateful_reason(change)),
            )
        parts.append(stateful)
    settings = Table(title="Key settings", title_justify="left")
    for column, style in (("setting", "bold"), (a, "red"), (b, "green")):
        settings.add_column(column, style=style, overflow="fold")
    for row in diff["settings"]:
        settings.add_row(Text(row["setting"]), _cell_text(row["a"]), _cell_text(row["b"]))
    parts.append(settings)

    cost_rows = _cost_rows(diff)
    if cost_rows:
        cost = Table(title="Cost and capacity", title_justify="left")
        for column, style in (("figure", "bold"), (a, "red"), (b, "green")):
            cost.add_column(column, style=style, overflow="fold")
        for row in cost_rows:
            cost.add_row(*(Text(value) for value in row))
        parts.append(cost)

    counts = Table(title="Resource counts", title_justify="left")
    for column in ("type", a, b):
        counts.add_column(column)
    for row in diff["resource_counts"]:
        counts.add_row(Text(row["type"]), _cell_text(row["a"]), _cell_text(row["b"]))
    parts.append(counts)

    for side, stack in (("only_in_a", a), ("only_in_b", b)):
        if diff[side]:
            only = Table(title=f"Only in {stack}", title_justify="left")
            only.add_column("type")
            only.add_column("name")
            for resource in diff[side]:
                only.add_row(Text(resource["type"]), Text(resource["name"]))
            parts.append(only)

    changed = Table(title="Resource settings that differ", title_justify="left")
    for column, style in (("resource / setting", ""), (a, "red"), (b, "green")):
        changed.add_column(column, style=style, overflow="fold")
    current = None
    for row in diff["resource_settings"]:
        if (row["type"], row["name"]) != current:
            current = (row["type"], row["name"])
            changed.add_row(Text.assemble((row["type"], "blue"), "  ", (row["name"], "bold")))
        changed.add_row(Text(f"  {row['setting']}"), _cell_text(row["a"]), _cell_text(row["b"]))
    parts.append(changed)
    return Group(*parts)


# --------------------------------------------------------------------------------------------
# Markdown (GitHub job summaries)
# --------------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    text = text_of(value) if not isinstance(value, str) else value
    # GitHub renders Markdown with inline HTML: `pyscale-<stack>-alb` would lose "<stack>".
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    """A GitHub Markdown table (cells escaped), then a blank line."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return [*lines, ""]


def plan_markdown(plan: Mapping[str, Any]) -> str:
    summary = plan["summary"]
    lines = [
        f"### Offline plan: stack `{plan['stack']}` (project {plan['project']}, "
        f"platform {plan['platform']})",
        "",
        f"{summary['resources']} resources in {summary['components']} components, computed "
        "by running the program offline (`pyscale plan`) — no cloud credentials were used, so "
        "this shows what the program registers, not the live difference against AWS.",
        "",
    ]
    lines += [f"> **warning:** {warning}" for warning in plan["warnings"]]
    if plan["warnings"]:
        lines.append("")
    lines += ["#### Key settings", ""]
    rows = [
        (area, name, value)
        for area, values in plan["key_settings"].items()
        if area != "alarms"
        for name, value in values.items()
    ]
    lines += markdown_table(("area", "setting", "value"), rows)
    cost = _cost_text(plan)
    if cost:
        lines += ["#### Cost and capacity", ""] + [f"- {line}" for line in cost] + [""]
    alarms = plan["key_settings"]["alarms"]
    if alarms:
        lines += ["#### Alarms", ""]
        lines += markdown_table(
            ("alarm", "metric", "statistic", "condition"),
            (
                (
                    alarm["name"],
                    " ".join(str(alarm[key]) for key in ("namespace", "metric") if alarm[key]),
                    alarm["statistic"],
                    f"{text_of(alarm['comparison'])} {text_of(alarm['threshold'])}",
                )
                for alarm in alarms
            ),
        )
    lines += ["#### Resources", ""]
    for component in plan["components"]:
        count = sum(1 for resource in component["resources"] if resource["custom"])
        title = (
            _component_title(component)
            if component["type"] == STACK_GROUP
            else f"<code>{component['type']}</code> {component['name']}"
        )
        lines += [f"<details><summary>{title} ({count} resources)</summary>", ""]
        lines += markdown_table(
            ("type", "name", "settings"),
            (
                (f"`{r['type']}`", r["name"], _settings_text(r["settings"]))
                for r in component["resources"]
            ),
        )
        lines += ["</details>", ""]
    lines += ["#### Stack outputs", ""]
    lines += markdown_table(("output", "value"), plan["outputs"].items())
    return "\n".join(lines)


def _stateful_reason(change: Mapping[str, Any]) -> str:
    return ", ".join(change["because"]) if change["because"] else "not in the other stack"


def diff_markdown(diff: Mapping[str, Any]) -> str:
    a, b = diff["stacks"]["a"], diff["stacks"]["b"]
    lines = [f"### Offline plan: `{a}` vs `{b}`", ""]
    if diff["stateful"]:
        lines += [
            f"#### Stateful resources `{a}` → `{b}` deletes or replaces",
            "",
            f"**{len(diff['stateful'])} stateful resource(s): check each before merging.**",
            "",
        ]
        lines += markdown_table(
            ("change", "resource", "what is lost", "because"),
            (
                (c["change"], f"{c['type']} {c['name']}", c["loses"], _stateful_reason(c))
                for c in diff["stateful"]
            ),
        )
    lines += ["#### Key settings", ""]
    lines += markdown_table(
        ("setting", a, b), ((r["setting"], r["a"], r["b"]) for r in diff["settings"])
    )
    cost_rows = _cost_rows(diff)
    if cost_rows:
        lines += ["#### Cost and capacity", ""]
        lines += markdown_table(("figure", a, b), cost_rows)
    lines += ["#### Resource counts", ""]
    lines += markdown_table(
        ("type", a, b), ((r["type"], r["a"], r["b"]) for r in diff["resource_counts"])
    )
    for side, stack in (("only_in_a", a), ("only_in_b", b)):
        if diff[side]:
            lines += [f"#### Only in {stack}", ""]
            lines += markdown_table(("type", "name"), ((r["type"], r["name"]) for r in diff[side]))
    lines += ["#### Resource settings that differ", ""]
    lines += markdown_table(
        ("resource", "setting", a, b),
        (
            (f"{r['type']} {r['name']}", r["setting"], r["a"], r["b"])
            for r in diff["resource_settings"]
        ),
    )
    return "\n".join(lines)
