"""Which zones a stack's network uses, against the zones AWS lists: the offline account
(pyscale.offline.mocks) has opted into the Boston Local Zone, whose name sorts before the
region's own zones, as an account with a Local Zone does."""

from __future__ import annotations

import ipaddress

import pytest

from pyscale.offline import ProgramError, run_stack
from pyscale.offline.mocks import region_zones, zone_offers

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


def _zones(run) -> list[str]:
    """The stack's zones in the program's order: the public subnets by their range (the
    first zone takes the first slot), not by registration order, which varies."""
    public = [s for s in run.of_type(SUBNET) if "-public-" in s.name]
    public.sort(key=lambda s: ipaddress.IPv4Network(s.inputs["cidrBlock"]))
    return [s.inputs["availabilityZone"] for s in public]


def test_a_wide_stack_skips_the_zone_that_does_not_offer_its_instance_type():
    # GIVEN prod (m7g.large) over five zones of us-east-1, one of which (us-east-1e here,
    # zone id use1-az3) offers no current-generation instance type
    run = run_stack("prod", {"availabilityZones": 5})

    # THEN its subnets skip that zone and take the next one
    zones = _zones(run)
    assert zones == ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"]
    by_name = {zone.name: zone for zone in region_zones("us-east-1")}
    assert all(zone_offers(by_name[zone], "m7g.large") for zone in zones)


def test_every_zone_of_a_shipped_stack_offers_its_instance_type(each_stack_run):
    by_name = {zone.name: zone for zone in region_zones("us-east-1")}
    types = each_stack_run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["instanceType"]
    assert all(zone_offers(by_name[zone], types) for zone in _zones(each_stack_run))


def test_a_stack_pins_its_zones_by_name_or_zone_id_in_its_order():
    run = run_stack("dev", {"availabilityZoneNames": ["use1-az4", "us-east-1a"]})
    # use1-az4 is this account's us-east-1c; the order is the stack's
    assert _zones(run) == ["us-east-1c", "us-east-1a"]
    assert run_stack("dev", {"availabilityZoneNames": ["us-east-1c", "us-east-1a"]}).resources


@pytest.mark.parametrize(
    ("pinned", "message"),
    [
        (
            ["us-east-1e", "us-east-1a"],
            "pyscale:availabilityZoneNames: us-east-1e does not offer t4g.small",
        ),
        (
            ["us-east-1-bos-1a", "us-east-1a"],
            "pyscale:availabilityZoneNames: us-east-1-bos-1a is not an available zone of us-east-1",
        ),
        (["use1-az9", "us-east-1a"], "use1-az9 is not an available zone"),
    ],
)
def test_a_pinned_zone_aws_cannot_serve_is_a_clean_error(pinned, message):
    with pytest.raises(ProgramError) as failure:
        run_stack("dev", {"availabilityZoneNames": pinned})
    assert failure.value.clean
    assert message in failure.value.message
    assert not [r for r in failure.value.resources if r.custom]


def test_a_zone_count_that_disagrees_with_the_pinned_zones_is_refused():
    with pytest.raises(ProgramError) as failure:
        run_stack(
            "dev", {"availabilityZones": 3, "availabilityZoneNames": ["use1-az1", "use1-az2"]}
        )
    assert "pyscale:availabilityZones: is 3 but availabilityZoneNames lists 2 zones" in (
        failure.value.message
    )
    assert failure.value.resources == []
