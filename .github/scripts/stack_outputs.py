"""Render a deploy's stack outputs as a Markdown table for the job summary.

pulumi/actions sets one step output per stack output, plus `output` (the command's whole
log); the deploy workflow passes `toJSON(steps.up.outputs)` in STACK_OUTPUTS_JSON. The
action masks secret outputs in logs only, so values that look like secrets are left out.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

# The action's own output, not a stack output.
ACTION_OUTPUTS = frozenset({"output"})
SECRET_HINTS = ("token", "password", "secretvalue", "privatekey")


def render(outputs: Mapping[str, object], stack: str) -> str:
    rows = []
    for key in sorted(outputs):
        if key in ACTION_OUTPUTS:
            continue
        value = outputs[key]
        if any(hint in key.lower().replace("_", "") for hint in SECRET_HINTS):
            value = "(secret, not shown)"
        elif not isinstance(value, str):
            value = json.dumps(value)
        text = str(value).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | `{text}` |")
    heading = f"### Stack outputs: `{stack}`" if stack else "### Stack outputs"
    if not rows:
        return f"{heading}\n\nThe stack exported no outputs.\n"
    return "\n".join([heading, "", "| output | value |", "|---|---|", *rows]) + "\n"


def main() -> int:
    raw = os.environ.get("STACK_OUTPUTS_JSON", "")
    try:
        outputs = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as error:
        print(f"error: STACK_OUTPUTS_JSON is not JSON: {error}", file=sys.stderr)
        return 2
    if not isinstance(outputs, dict):
        print("error: STACK_OUTPUTS_JSON must be a JSON object", file=sys.stderr)
        return 2
    sys.stdout.write(render(outputs, os.environ.get("STACK", "")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
