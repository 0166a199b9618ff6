"""The top of a pull request's preview summary: stateful resources the preview replaces or
deletes (cache, load balancer, subnets, VPC, public IPs, buckets), read from
`pulumi preview --json`, so a reviewer sees data loss before reading the diff.

Usage: stateful_changes.py PREVIEW_JSON [PREVIEW_EXIT_CODE]  (Markdown on stdout)
The document is the engine's preview digest (pulumi/pulumi pkg/backend/display/json.go):
``steps[]`` with ``op``, ``urn`` and, for replacements, ``replaceReasons``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from pyscale.plan.stateful import DESTRUCTIVE_OPS, STATEFUL_KINDS, name_of_urn, type_of_urn


class PreviewDocumentError(ValueError):
    """The file is not a preview digest."""


def stateful_changes(digest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per stateful resource replaced or deleted, in the preview's order."""
    steps = digest.get("steps")
    if not isinstance(steps, list):
        raise PreviewDocumentError("no 'steps' list: not the output of `pulumi preview --json`")
    found: dict[str, dict[str, Any]] = {}
    for step in steps:
        if not isinstance(step, dict):
            raise PreviewDocumentError(f"a step is not an object: {step!r:.60}")
        urn, op = str(step.get("urn", "")), str(step.get("op", ""))
        kind = type_of_urn(urn)
        if kind not in STATEFUL_KINDS or op not in DESTRUCTIVE_OPS:
            continue
        entry = found.setdefault(
            urn,
            {
                "change": DESTRUCTIVE_OPS[op],
                "type": kind,
                "name": name_of_urn(urn),
                "loses": STATEFUL_KINDS[kind],
                "because": [],
            },
        )
        for reason in step.get("replaceReasons") or []:
            if reason not in entry["because"]:
                entry["because"].append(reason)
    return list(found.values())


def render(changes: list[dict[str, Any]], stack: str, preview_failed: bool = False) -> str:
    heading = (
        f"### Stateful resources replaced or deleted: `{stack}`"
        if stack
        else ("### Stateful resources replaced or deleted")
    )
    if preview_failed:
        return f"{heading}\n\nThe preview failed, so nothing can be said here: see its log below.\n"
    if not changes:
        kinds = sorted({label.split(":")[0] for label in STATEFUL_KINDS.values()})
        return f"{heading}\n\nNone: no {', '.join(kinds)} is replaced or deleted.\n"
    rows = [
        f"| **{c['change']}** | `{c['name']}` | {c['loses']} | "
        f"{', '.join(f'`{r}`' for r in c['because']) or '—'} |"
        for c in changes
    ]
    return (
        "\n".join(
            [
                heading,
                "",
                f"**{len(changes)} stateful resource(s) would be replaced or deleted.** "
                "Check each before merging:",
                "",
                "| change | resource | what is lost | replaced because of |",
                "|---|---|---|---|",
                *rows,
            ]
        )
        + "\n"
    )


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: stateful_changes.py PREVIEW_JSON [PREVIEW_EXIT_CODE]", file=sys.stderr)
        return 2
    stack = os.environ.get("STACK", "")
    if len(argv) == 3 and argv[2] != "0":
        sys.stdout.write(render([], stack, preview_failed=True))
        return 0
    try:
        with open(argv[1], encoding="utf-8") as handle:
            digest = json.load(handle)
        if not isinstance(digest, dict):
            raise PreviewDocumentError("not a JSON object")
        changes = stateful_changes(digest)
    except (OSError, json.JSONDecodeError, PreviewDocumentError) as error:
        print(f"error: {argv[1]}: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render(changes, stack))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
