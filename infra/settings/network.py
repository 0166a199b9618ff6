"""Network keys: the VPC pyscale creates, or the one it adopts."""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import Annotated, Self

from pydantic import AfterValidator, BeforeValidator, field_validator, model_validator

from infra.settings.base import (
    AreaSettings,
    Problems,
    empty_is_none,
    in_place,
    matches,
    replacement,
    setting,
)


class NatStrategy(enum.StrEnum):
    """No "none": the instances fetch the app's Python packages from PyPI at boot and call
    Secrets Manager, SSM and CloudWatch, and the new VPC's only endpoint is S3's; without
    a NAT gateway they could not start, and an adopted VPC's egress is its owner's anyway."""

    SINGLE = "single"
    PER_AZ = "perAz"


_WHOLE_STACK_REBUILT = (
    "a new VPC, and with it new subnets, security groups, ALB, cache and instances: "
    "downtime, the cache's data is lost and the ALB's DNS name changes"
)
_SUBNET_ID = r"^subnet-[0-9a-f]{8,17}$"


def _vpc_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise ValueError(f"must be an IPv4 network such as 10.0.0.0/16, got {value!r}") from None
    if not 16 <= network.prefixlen <= 22:
        raise ValueError(f"prefix must be /16 to /22, got /{network.prefixlen}")
    return value


SubnetIds = tuple[str, ...]


class NetworkSettings(AreaSettings):
    availability_zones: int = setting(
        "availabilityZones",
        2,
        ge=2,
        le=6,
        unit=" (an ALB needs at least two AZs)",
        doc="Availability Zones the new VPC's subnets spread over (ignored when adopting).",
        change=in_place(
            "adds or removes the subnets of the last AZs (the others keep their ranges); "
            "removing an AZ fails while the ALB, cache or instances still use its subnets"
        ),
    )
    availability_zone_names: tuple[str, ...] = setting(
        "availabilityZoneNames",
        (),
        allowed="2-6 zone names (us-east-1a) or zone ids (use1-az1), or empty",
        doc=(
            "Pin the new VPC's zones, in order; empty picks the first availabilityZones of "
            "the region's own zones (no Local Zones) that offer every fleet instance type. "
            "Pin them (zone ids are the same physical zone in every account) so that a "
            "Local Zone opted into later, or a zone AWS adds, never re-plans the subnets."
        ),
        change=in_place(
            "a zone added at the end adds its subnets; any other change replaces the "
            "subnets, NAT gateways and route tables of the zones that move (downtime)"
        ),
    )
    vpc_cidr: Annotated[str, AfterValidator(_vpc_cidr)] = setting(
        "vpcCidr",
        "10.0.0.0/16",
        allowed="IPv4 CIDR, /16 to /22",
        doc="IPv4 range of the new VPC; each subnet takes 1/16 of it.",
        change=replacement(_WHOLE_STACK_REBUILT),
    )
    nat: NatStrategy = setting(
        "natGateways",
        NatStrategy.SINGLE,
        doc=(
            "NAT for the new VPC's private subnets: one shared gateway, or one per AZ "
            "(an adopted VPC's egress is its owner's)."
        ),
        change=in_place(
            "adds or removes NAT gateways and repoints the private routes; connections "
            "through a removed gateway drop"
        ),
    )
    existing_vpc_id: Annotated[
        str | None,
        BeforeValidator(empty_is_none),
        matches(r"^vpc-[0-9a-f]{8,17}$", "must look like vpc-0123456789abcdef0"),
    ] = setting(
        "existingVpcId",
        "",
        allowed="vpc-id or empty",
        doc="Adopt this VPC (with the two subnet lists) instead of creating one.",
        change=replacement(
            "switching between an adopted and a created VPC rebuilds the stack: "
            + _WHOLE_STACK_REBUILT.removeprefix("a new VPC, and with it ")
        ),
    )
    existing_public_subnet_ids: SubnetIds = setting(
        "existingPublicSubnetIds",
        (),
        allowed="subnet ids, at least two AZs",
        doc="Public subnets of the adopted VPC: where the ALB runs.",
        change=in_place("the ALB moves to the listed subnets"),
    )
    existing_private_subnet_ids: SubnetIds = setting(
        "existingPrivateSubnetIds",
        (),
        allowed="subnet ids, at least two AZs",
        doc="Private subnets of the adopted VPC: where instances and cache nodes run.",
        change=in_place(
            "instances are rebalanced into the listed subnets; removing a subnet that "
            "holds a cache node fails"
        ),
    )

    flow_logs: bool = setting(
        "flowLogs",
        False,
        doc="VPC flow logs (all traffic) to a CloudWatch log group kept logRetentionDays "
        "(a created VPC only; an adopted VPC's owner keeps its own).",
        change=in_place("the flow log and its log group are created, or deleted with their logs"),
    )

    @field_validator("existing_public_subnet_ids", "existing_private_subnet_ids")
    @classmethod
    def _subnet_ids(cls, subnets: SubnetIds) -> SubnetIds:
        bad = [s for s in subnets if not re.match(_SUBNET_ID, s)]
        if bad:
            raise ValueError(f"must hold subnet ids like subnet-0123abcd, got {bad}")
        return tuple(s.strip() for s in subnets)

    @field_validator("availability_zone_names")
    @classmethod
    def _zone_names(cls, zones: tuple[str, ...]) -> tuple[str, ...]:
        zones = tuple(zone.strip() for zone in zones)
        if zones and not 2 <= len(zones) <= 6:
            raise ValueError(f"must list 2 to 6 zones (an ALB needs two), got {len(zones)}")
        if len(set(zones)) != len(zones):
            raise ValueError(f"lists a zone twice: {list(zones)}")
        return zones

    @model_validator(mode="after")
    def _adopting_or_creating(self) -> Self:
        problems = Problems()
        pinned = self.availability_zone_names
        if (
            pinned
            and "availability_zones" in self.model_fields_set
            and self.availability_zones != len(pinned)
        ):
            problems.add(
                "availabilityZones",
                f"is {self.availability_zones} but availabilityZoneNames lists {len(pinned)} "
                "zones: drop availabilityZones or make them agree",
            )
        public, private = self.existing_public_subnet_ids, self.existing_private_subnet_ids
        if self.existing_vpc_id is None:
            if public or private:
                problems.add(
                    "existingVpcId",
                    "is required when existingPublicSubnetIds/existingPrivateSubnetIds are set",
                )
        else:
            for key, subnets in (
                ("existingPublicSubnetIds", public),
                ("existingPrivateSubnetIds", private),
            ):
                if len(subnets) < 2:
                    problems.add(key, "must list at least two subnets (in different AZs)")
            if set(public) & set(private):
                problems.add(
                    "existingPrivateSubnetIds",
                    "must not repeat a subnet of existingPublicSubnetIds",
                )
        problems.check()
        return self

    @property
    def zone_count(self) -> int:
        """How many zones the new VPC spans: the pinned ones, or availabilityZones."""
        return len(self.availability_zone_names) or self.availability_zones

    @property
    def adopts_existing_vpc(self) -> bool:
        return self.existing_vpc_id is not None

    @property
    def alb_source_range(self) -> str:
        """Where the ALB's addresses come from, for gunicorn's FORWARDED_ALLOW_IPS: the new
        VPC's range, or "*" in an adopted VPC, whose range the settings do not hold (the
        fleet's security group admits only the ALB either way)."""
        return "*" if self.adopts_existing_vpc else self.vpc_cidr
