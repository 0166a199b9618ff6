"""Shared fixtures for the whole-program tests: each shipped stack is run once per session
through the real entry point (pyscale.offline.run_stack) and shared by every spec.

``each_stack_run`` is every stack of the EC2 blueprint (platform ec2), which most specs here
describe; ``each_aws_stack_run`` adds the eks stacks (same network, ALB and cache);
``each_kubernetes_stack_run`` is every eks and kubernetes stack. Every stack of every
platform runs in tests/infra/test_platforms.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyscale import stacks
from pyscale.offline import ProgramRun, run_stack

STACKS = stacks.stack_names()
EC2_STACKS = stacks.stacks_on("ec2")
AWS_STACKS = stacks.stacks_on("ec2", "eks")
KUBERNETES_STACKS = stacks.stacks_on("eks", "kubernetes")


@pytest.fixture(scope="session")
def shipped_run() -> Callable[[str], ProgramRun]:
    """``shipped_run("prod")``: the shipped stack file's run, computed once per session."""
    cache: dict[str, ProgramRun] = {}

    def get(stack: str) -> ProgramRun:
        if stack not in cache:
            cache[stack] = run_stack(stack)
        return cache[stack]

    return get


@pytest.fixture(params=EC2_STACKS)
def each_stack_run(request: pytest.FixtureRequest, shipped_run) -> ProgramRun:
    """Every shipped EC2-blueprint stack, one test per stack file."""
    return shipped_run(request.param)


@pytest.fixture(params=AWS_STACKS)
def each_aws_stack_run(request: pytest.FixtureRequest, shipped_run) -> ProgramRun:
    """Every shipped stack that builds the AWS network, ALB and cache (ec2 and eks)."""
    return shipped_run(request.param)


@pytest.fixture(params=KUBERNETES_STACKS)
def each_kubernetes_stack_run(request: pytest.FixtureRequest, shipped_run) -> ProgramRun:
    """Every shipped eks and kubernetes stack."""
    return shipped_run(request.param)
