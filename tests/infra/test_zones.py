"""Which zones a stack's network uses, against the zones AWS lists: the offline account
(pyscale.offline.mocks) has opted into the Boston Local Zone, whose name sorts before the
region's own zones, as an account with a Local Zone does."""

from __future__ import annotations

from pyscale.offline.mocks import region_zones

SUBNET = "aws:ec2/subnet:Subnet"


def test_no_subnet_is_in_a_local_zone(each_stack_run):
    # GIVEN the zones of the stack's region, as AWS lists them to this account
    region = each_stack_run.stack_outputs["region"]
    kind = {zone.name: zone.opt_in_status for zone in region_zones(region)}

    # THEN every subnet is in one of the region's own zones (opt-in-not-required), none in
    # a Local Zone (an ALB, NAT gateway or cache node there fails or misbehaves)
    zones = {subnet.inputs["availabilityZone"] for subnet in each_stack_run.of_type(SUBNET)}
    assert zones
    assert {kind[zone] for zone in zones} == {"opt-in-not-required"}, zones
