"""The one check branch protection requires of the preview workflow: it passes when every
job it needs succeeded or was skipped (a pull request that changes nothing a preview covers
skips them), and fails when one failed or was cancelled.

Why one aggregate check: a job skipped by its `if:` never expands its matrix, so checks
named per stack ("preview dev") would never report on such pull requests (and on
Dependabot's, which skip the cloud preview) and required checks would block them forever.
This job runs `if: always()`, so its check reports on every pull request.

Reads NEEDS_JSON (the workflow passes `toJSON(needs)`); standard library only, so the job
needs no venv.
"""

from __future__ import annotations

import json
import os
import sys

PASSING = frozenset({"success", "skipped"})


def verdict(needs: dict[str, dict]) -> tuple[bool, list[str]]:
    lines = [f"{job}: {info.get('result', 'unknown')}" for job, info in sorted(needs.items())]
    ok = bool(needs) and all(info.get("result") in PASSING for info in needs.values())
    return ok, lines


def main() -> int:
    try:
        needs = json.loads(os.environ.get("NEEDS_JSON", ""))
    except json.JSONDecodeError as error:
        print(f"error: NEEDS_JSON is not JSON: {error}", file=sys.stderr)
        return 2
    if not isinstance(needs, dict):
        print("error: NEEDS_JSON must be a JSON object (toJSON(needs))", file=sys.stderr)
        return 2
    ok, lines = verdict(needs)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
