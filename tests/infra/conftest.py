"""Shared fixtures for the whole-program tests: each shipped stack is run once per session
through the real entry point (pyscale.offline.run_stack) and shared by every spec."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyscale import stacks
from pyscale.offline import ProgramRun, run_stack

STACKS = stacks.stack_names()


@pytest.fixture(scope="session")
def shipped_run() -> Callable[[str], ProgramRun]:
    """``shipped_run("prod")``: the shipped stack file's run, computed once per session."""
    cache: dict[str, ProgramRun] = {}

    def get(stack: str) -> ProgramRun:
        if stack not in cache:
            cache[stack] = run_stack(stack)
        return cache[stack]

    return get


@pytest.fixture(params=STACKS)
def each_stack_run(request: pytest.FixtureRequest, shipped_run) -> ProgramRun:
    """Every shipped stack, one test per stack file."""
    return shipped_run(request.param)
