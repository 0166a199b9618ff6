"""`pyscale cost`: what each stack costs a month and what it can serve, offline.

- ``build_cost(run)``: a program run (pyscale.offline) -> the cost document
  (``cost.schema.json``, versioned by ``schema_version``);
- ``prices/aws.csv``: the committed price table, every row sourced and dated;
- ``prices/resource_types.yaml``: how each resource type is costed (free, priced, usage-based,
  "price not found");
- ``capacity``: requests/s from the committed benchmark results (bench/results/<date>/).

Importing this package stays cheap (no Pulumi SDK).
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

from pyscale.cost.document import SCHEMA_VERSION, build_cost, plan_summary, summary
from pyscale.cost.estimate import CostError

SCHEMA_PATH = Path(__file__).resolve().parent / "cost.schema.json"


@cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "CostError",
    "build_cost",
    "load_schema",
    "plan_summary",
    "summary",
]
