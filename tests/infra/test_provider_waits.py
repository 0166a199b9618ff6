"""What `pulumi up` waits for, as the provider implements it (terraform-provider-aws), and
the settings that keep those waits from hanging or silently deferring a change."""

from __future__ import annotations

ASG = "aws:autoscaling/group:Group"


def test_the_group_never_waits_for_a_capacity_a_scaled_group_cannot_match(each_stack_run):
    # The provider's update waits for exactly max(minSize, desiredCapacity) healthy
    # instances, desiredCapacity being the stale configured value: a scaled-out group never
    # matches it (group.go, #5241). "0" turns the wait off; `pyscale deploy wait` checks.
    assert each_stack_run.one(ASG).inputs["waitForCapacityTimeout"] == "0"
