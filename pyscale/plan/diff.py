"""Two plans side by side: the key settings, resource counts and resources that differ.

Resources are matched across stacks by type and by name with the stack's own name taken out
(``pyscale-dev-alb`` and ``pyscale-prod-alb`` are the same resource in two environments),
so the diff shows what changes between environments, not that every name does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pyscale.plan.extract import SCHEMA_VERSION
from pyscale.plan.stateful import REPLACING_SETTINGS, STATEFUL_KINDS

STACK_PLACEHOLDER = "<stack>"


def diff_plans(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The diff of plan ``a`` to plan ``b`` (``kind: "diff"`` in plan.schema.json)."""
    stack_a, stack_b = a["stack"], b["stack"]
    # What runs the app first: across platforms the areas themselves differ.
    settings_a = {"platform": a.get("platform"), **dict(_flatten(a["key_settings"], stack_a))}
    settings_b = {"platform": b.get("platform"), **dict(_flatten(b["key_settings"], stack_b))}

    def differ(value_a: Any, value_b: Any) -> bool:
        return bool(generic_value(value_a, stack_a) != generic_value(value_b, stack_b))

    counts_a, counts_b = a["summary"]["by_type"], b["summary"]["by_type"]
    resources_a, resources_b = _resources(a), _resources(b)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "diff",
        "project": a["project"],
        "stacks": {"a": a["stack"], "b": b["stack"]},
        "stateful": _stateful_changes(resources_a, resources_b, differ),
        "settings": [
            {"setting": key, "a": settings_a.get(key), "b": settings_b.get(key)}
            for key in _union(settings_a, settings_b)
            if differ(settings_a.get(key), settings_b.get(key))
        ],
        "resource_counts": [
            {"type": token, "a": counts_a.get(token, 0), "b": counts_b.get(token, 0)}
            for token in sorted(set(counts_a) | set(counts_b))
            if counts_a.get(token, 0) != counts_b.get(token, 0)
        ],
        "only_in_a": [_identity(resources_a[key]) for key in resources_a if key not in resources_b],
        "only_in_b": [_identity(resources_b[key]) for key in resources_b if key not in resources_a],
        "cost": _cost_difference(a.get("cost"), b.get("cost")),
        "resource_settings": [
            {
                "type": key[0],
                "name": key[1],
                "setting": setting,
                "a": resources_a[key]["settings"].get(setting),
                "b": resources_b[key]["settings"].get(setting),
            }
            for key in resources_a
            if key in resources_b
            for setting in _union(resources_a[key]["settings"], resources_b[key]["settings"])
            if differ(
                resources_a[key]["settings"].get(setting), resources_b[key]["settings"].get(setting)
            )
        ],
    }


def _stateful_changes(
    resources_a: Mapping[tuple[str, str], Mapping[str, Any]],
    resources_b: Mapping[tuple[str, str], Mapping[str, Any]],
    differ: Callable[[Any, Any], bool],
) -> list[dict[str, Any]]:
    """Stateful resources (pyscale.plan.stateful) that going from a to b would delete (only
    in a: a renamed subnet, cache or bucket is a new resource) or replace (a setting AWS
    cannot change in place differs)."""
    changes = []
    for key, resource in resources_a.items():
        kind = key[0]
        if kind not in STATEFUL_KINDS:
            continue
        change: dict[str, Any] = {"type": kind, "name": key[1], "loses": STATEFUL_KINDS[kind]}
        if key not in resources_b:
            changes.append({**change, "change": "deleted", "because": []})
            continue
        settings_a, settings_b = resource["settings"], resources_b[key]["settings"]
        because = [
            setting
            for setting in sorted(REPLACING_SETTINGS.get(kind, ()))
            if differ(settings_a.get(setting), settings_b.get(setting))
        ]
        if because:
            changes.append({**change, "change": "replaced", "because": because})
    return changes


def _cost_difference(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict[str, Any]:
    """Both stacks' cost summaries and how much more ``b`` costs a month (priced lines)."""
    total_a, total_b = (side.get("monthly_usd") if side else None for side in (a, b))
    return {
        "a": a,
        "b": b,
        "monthly_usd_difference": (
            round(total_b - total_a, 2) if total_a is not None and total_b is not None else None
        ),
    }


def generic_name(name: str, stack: str) -> str:
    """``name`` with the stack's name, as a whole word, replaced by ``<stack>``."""
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(stack)}(?![A-Za-z0-9])", STACK_PLACEHOLDER, name)


def generic_value(value: Any, stack: str) -> Any:
    """``value`` with the stack's name taken out of every string in it (for comparing)."""
    if isinstance(value, str):
        return generic_name(value, stack)
    if isinstance(value, list):
        return [generic_value(item, stack) for item in value]
    if isinstance(value, Mapping):
        return {key: generic_value(item, stack) for key, item in value.items()}
    return value


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Keys of both, in first-seen order (a's order, then b's new ones)."""
    return list(dict.fromkeys([*a, *b]))


def _flatten(value: Any, stack: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted paths to leaf values; alarms are keyed by their generic name, not position."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(item, stack, f"{prefix}{key}.")
    elif prefix == "alarms." and isinstance(value, list):
        # One row per alarm (its whole condition), so an alarm only one stack has is one line.
        for alarm in value:
            condition = " ".join(
                str(alarm[key])
                for key in ("namespace", "metric", "statistic", "comparison", "threshold")
                if alarm.get(key) is not None
            )
            yield f"alarms.{generic_name(alarm['name'], stack)}", condition
    else:
        yield prefix.rstrip("."), value


def _resources(plan: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for component in plan["components"]:
        for resource in component["resources"]:
            name = generic_name(resource["name"], plan["stack"])
            key, suffix = (resource["type"], name), 2
            while key in found:  # same type and name under two parents: keep both
                key, suffix = (resource["type"], f"{name}#{suffix}"), suffix + 1
            found[key] = resource
    return found


def _identity(resource: Mapping[str, Any]) -> dict[str, str]:
    return {"type": resource["type"], "name": resource["name"]}
