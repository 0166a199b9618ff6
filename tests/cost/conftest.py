"""Fixtures for `pyscale cost`: the command driven in process, each shipped stack's cost
computed once per session and shared by the specs that only read it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from pyscale.cost import load_schema

# The plan's credential-free CLI runner and its per-session `--json` plans.
from tests.plan.conftest import plan_json, run_cli  # noqa: F401

EXIT_COST_FAILED = 2


@pytest.fixture(scope="session")
def cost_json(run_cli) -> Callable[..., dict[str, Any]]:  # noqa: F811
    """``cost_json("prod")`` or ``cost_json("dev", "-c", "k=v")``: the parsed `--json`."""
    cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def get(stack: str, *extra: str) -> dict[str, Any]:
        key = (stack, *extra)
        if key not in cache:
            result = run_cli("cost", "--stack", stack, "--json", *extra)
            assert result.exit_code == 0, result.stderr
            cache[key] = json.loads(result.stdout)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def cost_validator() -> jsonschema.protocols.Validator:
    schema = load_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def assert_one_line_failure(result, *fragments: str) -> None:
    """Exit 2, nothing on stdout, no traceback, every fragment in the message."""
    assert result.exit_code == EXIT_COST_FAILED, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in message, (fragment, message)
