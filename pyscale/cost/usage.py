"""Optional usage assumptions beside a stack: stacks/Pulumi.<stack>.usage.yaml.

Infracost's usage-file idea: usage-based lines (NAT gateway GB, LCUs, WAF requests, log GB)
show their unit price and "depends on usage" unless the file gives a monthly amount::

    # stacks/Pulumi.prod.usage.yaml
    usage:                  # for every resource with a line of this key
      nat_gateway_gb: 200
      alb_lcu: 2
    resources:              # for one resource, by the name the program registers
      pyscale-prod-app-logs:
        log_ingest_gb: 40

The keys and what their numbers mean are under `usage_keys:` in
pyscale/cost/prices/resource_types.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pyscale.stacks import USAGE_FILE_SUFFIX


class UsageFileError(ValueError):
    """A usage file the estimate cannot use: one line naming the file, the key and the rule."""


@dataclass(frozen=True)
class Usage:
    path: Path | None = None
    defaults: Mapping[str, float] = field(default_factory=dict)
    per_resource: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def amount(self, resource: str, key: str) -> float | None:
        specific = self.per_resource.get(resource, {})
        if key in specific:
            return specific[key]
        return self.defaults.get(key)


def usage_file_of(stacks_dir: Path, stack: str) -> Path:
    return stacks_dir / f"Pulumi.{stack}{USAGE_FILE_SUFFIX}"


def load_usage(path: Path | None, known_keys: Mapping[str, Any]) -> Usage:
    """The usage file at ``path`` (no file: no assumptions)."""
    if path is None or not path.is_file():
        return Usage()
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UsageFileError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(document, Mapping) or set(document) - {"usage", "resources"}:
        raise UsageFileError(f"{path}: expected only the mappings `usage:` and `resources:`")

    def amounts(where: str, values: Any) -> dict[str, float]:
        if not isinstance(values, Mapping):
            raise UsageFileError(f"{path}: {where} must be a mapping of usage keys to numbers")
        checked = {}
        for key, value in values.items():
            if key not in known_keys:
                raise UsageFileError(
                    f"{path}: {where}.{key} is not a usage key; known keys: "
                    + ", ".join(sorted(known_keys))
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UsageFileError(f"{path}: {where}.{key} must be a number >= 0, got {value!r}")
            checked[str(key)] = float(value)
        return checked

    resources = document.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise UsageFileError(f"{path}: resources must map resource names to usage keys")
    return Usage(
        path,
        amounts("usage", document.get("usage") or {}),
        {str(name): amounts(f"resources.{name}", values) for name, values in resources.items()},
    )
