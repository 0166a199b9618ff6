"""The project's stacks as the Pulumi engine sees them, read offline.

``engine_config(stack)`` gives what the engine hands the program: the stack file's
``config:`` merged over Pulumi.yaml's project defaults, every value an engine string
(``"true"``, ``"3"``, lists and objects as compact JSON text). The offline runner, the
one-machine topology and the plan all start from it, so they see exactly what
``pulumi up`` would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILE = REPO_ROOT / "Pulumi.yaml"


class UnknownStackError(LookupError):
    """No stack file for the name; the message lists the known stacks."""

    def __init__(self, stack: str, known: list[str]) -> None:
        super().__init__(
            f"unknown stack {stack!r}: known stacks are {', '.join(known) or '(none)'} "
            f"(files {_relative(stacks_dir())}/Pulumi.<stack>.yaml)"
        )
        self.stack = stack
        self.known = known


class StackFileError(ValueError):
    """A stack file the offline tools cannot read as the engine would."""


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


@cache
def project() -> Mapping[str, Any]:
    """Pulumi.yaml, parsed."""
    document: Mapping[str, Any] = yaml.safe_load(PROJECT_FILE.read_text())
    return document


def project_name() -> str:
    return str(project()["name"])


def main_dir() -> Path:
    """The program directory (`main:` in Pulumi.yaml)."""
    return (REPO_ROOT / str(project().get("main", "."))).resolve()


def stacks_dir() -> Path:
    return REPO_ROOT / str(project().get("stackConfigDir", "."))


def stack_file(stack: str) -> Path:
    path = stacks_dir() / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise UnknownStackError(stack, stack_names())
    return path


USAGE_FILE_SUFFIX = ".usage.yaml"  # stacks/Pulumi.<stack>.usage.yaml: `pyscale cost` input


def stack_names() -> list[str]:
    """Every stack that has a file, sorted (usage files beside them are not stacks)."""
    return sorted(
        path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for path in stacks_dir().glob("Pulumi.*.yaml")
        if not path.name.endswith(USAGE_FILE_SUFFIX)
    )


def platform_of(stack: str) -> str:
    """The stack's ``pyscale:platform`` (ec2, eks or kubernetes; ec2 when not set)."""
    return str(stack_values(stack).get("pyscale:platform", "ec2"))


def stacks_on(*platforms: str) -> list[str]:
    """The shipped stacks whose platform is one of ``platforms``, sorted."""
    return [stack for stack in stack_names() if platform_of(stack) in platforms]


def engine_string(value: Any) -> str:
    """A config value as the engine marshals it for the program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    # Lists and objects travel as JSON text (Go's encoding/json: compact).
    return json.dumps(value, separators=(",", ":"))


def _qualified(key: str) -> str:
    return key if ":" in key else f"{project_name()}:{key}"


def project_defaults() -> dict[str, str]:
    """Pulumi.yaml's config: project keys' defaults and other namespaces' values."""
    defaults: dict[str, str] = {}
    for key, declaration in (project().get("config") or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            defaults[_qualified(key)] = engine_string(declaration["default"])
        elif isinstance(declaration, dict) and "value" in declaration:
            defaults[_qualified(key)] = engine_string(declaration["value"])
        elif not isinstance(declaration, dict):  # short-hand `key: value`
            defaults[_qualified(key)] = engine_string(declaration)
    return defaults


def stack_values(stack: str) -> dict[str, Any]:
    """The stack file's config: as YAML values (not engine strings)."""
    document = yaml.safe_load(stack_file(stack).read_text()) or {}
    values = document.get("config") or {}
    for key, value in values.items():
        if isinstance(value, dict) and "secure" in value:
            raise StackFileError(
                f"{_relative(stack_file(stack))}: {key} is a secret (secure:), which only the "
                "Pulumi CLI can decrypt; offline tools need it passed as an override"
            )
    return {_qualified(key): value for key, value in values.items()}


def engine_config(stack: str) -> dict[str, str]:
    """The stack's config as the engine hands it to the program."""
    config = project_defaults()
    config.update({key: engine_string(value) for key, value in stack_values(stack).items()})
    return config
