"""Fixtures for `pyscale plan`: the command driven through typer's CliRunner, in process.

Each shipped stack's `--json` plan is computed once per session (the real program under the
offline runner, as the command runs it) and shared by every spec that only reads it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from pyscale.cli import app
from pyscale.plan import load_schema

# Wide enough that rich wraps no setting in the middle of a value the specs look for.
TERMINAL = {"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., Any]:
    """``run_cli("plan", "--stack", "dev")`` -> click Result (stdout and stderr apart)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=TERMINAL)

    return invoke


@pytest.fixture(scope="session")
def plan_json(run_cli) -> Callable[[str], dict[str, Any]]:
    """``plan_json("prod")``: the parsed output of `pyscale plan --stack prod --json`."""
    cache: dict[str, dict[str, Any]] = {}

    def get(stack: str) -> dict[str, Any]:
        if stack not in cache:
            result = run_cli("plan", "--stack", stack, "--json")
            assert result.exit_code == 0, result.stderr
            cache[stack] = json.loads(result.stdout)
        return cache[stack]

    return get


@pytest.fixture(scope="session")
def schema_validator() -> jsonschema.protocols.Validator:
    schema = load_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)
