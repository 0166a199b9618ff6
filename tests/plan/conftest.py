"""Fixtures for `pyscale plan`: the command driven through typer's CliRunner, in process.

Each shipped stack's `--json` plan is computed once per session (the real program under the
offline runner, as the command runs it) and shared by every spec that only reads it.
"""

from __future__ import annotations

import json
import os
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
def run_cli(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """``run_cli("plan", "--stack", "dev")`` -> click Result (stdout and stderr apart).

    Every invocation runs with no AWS or Pulumi variable and a home without credentials
    files, as on a fork's pull request: a plan must never need them.
    """
    runner = CliRunner()
    env: dict[str, str | None] = {
        key: None for key in os.environ if key.startswith(("AWS_", "PULUMI_"))
    }
    env.update(
        TERMINAL,
        HOME=str(tmp_path_factory.mktemp("home")),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=env)

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
