"""Stack policies as the engine runs them: unlike resource policies (which see inputs),
AnalyzeStack gets each resource's *outputs* — pulumi/pulumi's step generator: "AnalyzeStack is
called on the final outputs of each resource". In the preview of a new stack, outputs the
provider computes are unknown, and reading one makes the engine report "can't run policy
during preview" instead of judging. So a stack policy must judge from what is known then
(inputs echoed into outputs, property dependencies) before any computed output."""

from __future__ import annotations

from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.offline import evaluate
from tests.policy.test_rules import PROD_SETTINGS
from tests.policy.wire import good_stack, replace_inputs


def test_fleet_zone_count_is_judged_in_preview_while_the_groups_computed_zones_are_unknown():
    """GIVEN a new production fleet in one subnet, whose computed availabilityZones output is
    still unknown in preview WHEN the stack policies run THEN the one-zone fleet is reported
    from its subnets, not skipped as "can't run during preview"."""
    stack = good_stack()
    replace_inputs(
        stack,
        "web-asg",
        vpcZoneIdentifiers=["web-private-0-id"],
        availabilityZones=UNKNOWN_STRING_VALUE,
    )
    violations = evaluate(list(stack.values()), PROD_SETTINGS, stack="prod")
    assert [(v.policy, v.resource) for v in violations] == [("prod-fleet-spans-zones", "web-asg")]
    assert "spans 1 zones (from its subnets)" in violations[0].message


def test_a_compliant_fleet_passes_in_preview_while_its_computed_zones_are_unknown():
    stack = good_stack()
    replace_inputs(stack, "web-asg", availabilityZones=UNKNOWN_STRING_VALUE)
    assert evaluate(list(stack.values()), PROD_SETTINGS, stack="prod") == []
