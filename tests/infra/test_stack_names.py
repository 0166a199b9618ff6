"""The stack name is part of every resource name: names AWS would refuse at `pulumi up`
(too long once auto-named, or with characters ALB/S3/ElastiCache reject) are refused
before any resource is registered, naming the problem."""

from __future__ import annotations

import pytest

from infra.settings import MAX_RESOURCE_NAME_LENGTH
from pyscale import stacks
from pyscale.offline import ProgramError, run_program

PROJECT = "pyscale"
LONGEST_STACK = "s" * (MAX_RESOURCE_NAME_LENGTH - len(PROJECT) - 1)


def run_prod_config_as(stack: str):
    return run_program(PROJECT, stack, stacks.engine_config("prod"))


def test_the_longest_allowed_stack_name_deploys_every_resource():
    # GIVEN the prod configuration under the longest stack name that fits
    # WHEN the program runs under mocks that refuse over-long auto-names like the engine
    run = run_prod_config_as(LONGEST_STACK)

    # THEN the ALB and target group names are within AWS's 32 characters
    names = [
        run.one(token).outputs["name"]
        for token in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup")
    ]
    assert all(len(name) <= 32 for name in names), names


def test_a_stack_name_too_long_for_the_load_balancer_is_a_clean_error_before_any_resource():
    # GIVEN a stack name one character longer than fits
    stack = LONGEST_STACK + "x"

    # WHEN the program runs
    with pytest.raises(ProgramError) as raised:
        run_prod_config_as(stack)

    # THEN a clean configuration error names the stack, the limit and what fits
    assert raised.value.clean
    assert f"stack name {stack!r} is too long" in raised.value.message
    assert "32-character limit" in raised.value.message
    assert f"at most {len(LONGEST_STACK)} characters" in raised.value.message
    assert raised.value.resources == []


@pytest.mark.parametrize("stack", ["prod_eu", "Prod", "prod.eu", "pr--od"])
def test_a_stack_name_with_characters_aws_names_refuse_is_a_clean_error(stack):
    with pytest.raises(ProgramError) as raised:
        run_prod_config_as(stack)

    assert raised.value.clean
    assert f"stack name {stack!r}" in raised.value.message
    assert "lowercase letters, digits and single hyphens" in raised.value.message
    assert raised.value.resources == []
