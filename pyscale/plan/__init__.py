"""`pyscale plan`: run a stack's real program offline and show what `pulumi up` would get.

- ``build_plan(run)``: a program run (pyscale.offline) -> the plan document;
- ``diff_plans(a, b)``: two plan documents -> the diff document;
- ``plan.schema.json``: the JSON Schema of both documents (``--json``), versioned by
  ``schema_version``;
- ``render``: the rich tree and tables for terminals, Markdown for CI job summaries.

Importing this package stays cheap (no Pulumi SDK): the CLI loads the runner only when a
plan is asked for.
"""

from pyscale.plan.diff import diff_plans
from pyscale.plan.extract import SCHEMA_VERSION, build_plan
from pyscale.plan.schema import SCHEMA_PATH, load_schema

__all__ = ["SCHEMA_PATH", "SCHEMA_VERSION", "build_plan", "diff_plans", "load_schema"]
