"""Network: a VPC with public and private subnets over N AZs, or an adopted one.

Supported combinations (pick one; infra/settings/network.py refuses the others):
- create (default): VPC, one public and one private subnet per AZ, an internet gateway,
  NAT per ``natGateways`` (single | perAz), an S3 gateway endpoint on the private route
  tables (so instances fetch the app artifact and AL2023 packages without NAT traffic),
  and the VPC's default security group taken over and emptied (nothing uses it; a
  resource launched into it by mistake gets no traffic); its flow logs are
  infra/flow_logs.py;
- adopt: ``existingVpcId`` with existing public and private subnets; nothing is created
  (the owner of that VPC owns its routing, endpoints, default group and flow logs).

The default security group is not created but adopted: on create the provider removes
every rule from it, on delete it only forgets it (the group cannot be deleted with its
VPC; pulumi_aws ec2.DefaultSecurityGroup docs).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.settings import NatStrategy, NetworkSettings

# Each subnet takes 1/16 of the VPC range: public subnets from the first eight slots,
# private ones from the last eight, so adding an AZ never renumbers an existing subnet.
_SUBNET_PREFIX_BITS = 4
_PRIVATE_SLOT_OFFSET = 8


@dataclass(frozen=True)
class NetworkArgs:
    """``settings``: the network keys (infra.settings.NetworkSettings).
    ``instance_types``: every EC2 type the fleet launches; only zones offering all of them
    get subnets (ElastiCache has no per-zone node type offering API, so the cache's node
    type cannot be checked the same way)."""

    settings: NetworkSettings
    instance_types: tuple[str, ...]


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    availability_zones: list[str]
    # What an internet-facing resource (ALB, NAT gateway, its address) must wait for: the
    # gateway attached and the public subnets routed to it. Nothing in their inputs says
    # so, and AWS refuses an internet-facing load balancer in a VPC with no internet
    # gateway ("InvalidSubnet: VPC ... has no internet gateway": terraform-provider-aws
    # PRs #3494 and #4587 fixed their tests' flaky creation with this dependency). Empty
    # when adopting: that VPC's routing exists already.
    internet_ready: list[pulumi.Resource]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:network:Network", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        if args.settings.adopts_existing_vpc:
            self._adopt(args.settings)
        else:
            self._create(args.settings, args.instance_types)
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )

    def _adopt(self, settings: NetworkSettings) -> None:
        assert settings.existing_vpc_id is not None
        self.vpc_id = pulumi.Output.from_input(settings.existing_vpc_id)
        self.public_subnet_ids = [
            pulumi.Output.from_input(i) for i in settings.existing_public_subnet_ids
        ]
        self.private_subnet_ids = [
            pulumi.Output.from_input(i) for i in settings.existing_private_subnet_ids
        ]
        self.availability_zones = []
        self.internet_ready = []

    def _create(self, settings: NetworkSettings, instance_types: tuple[str, ...]) -> None:
        self.availability_zones = self._pick_zones(settings, instance_types)
        slots = list(
            ipaddress.IPv4Network(settings.vpc_cidr).subnets(prefixlen_diff=_SUBNET_PREFIX_BITS)
        )
        vpc = aws.ec2.Vpc(
            f"{self._name}-vpc",
            cidr_block=settings.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # ElastiCache endpoints and SSM need DNS names
            tags={"Name": f"{self._name}-vpc"},
            opts=self._child,
        )
        self.vpc_id = vpc.id
        # No ingress or egress blocks: the provider strips every rule the group has.
        aws.ec2.DefaultSecurityGroup(
            f"{self._name}-default-sg",
            vpc_id=vpc.id,
            tags={"Name": f"{self._name}-default-unused"},
            opts=self._child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{self._name}-igw", vpc_id=vpc.id, tags={"Name": f"{self._name}-igw"}, opts=self._child
        )
        public_subnets = [
            self._subnet(vpc, "public", zone, str(slots[index]))
            for index, zone in enumerate(self.availability_zones)
        ]
        private_subnets = [
            self._subnet(vpc, "private", zone, str(slots[_PRIVATE_SLOT_OFFSET + index]))
            for index, zone in enumerate(self.availability_zones)
        ]
        self.public_subnet_ids = [subnet.id for subnet in public_subnets]
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        self.internet_ready = [gateway, *self._public_routing(vpc, gateway, public_subnets)]
        nat_gateway_ids = self._nat_gateways(settings.nat, public_subnets)
        private_tables = self._private_routing(vpc, private_subnets, nat_gateway_ids)
        aws.ec2.VpcEndpoint(
            f"{self._name}-s3-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{aws.get_region().region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in private_tables],
            tags={"Name": f"{self._name}-s3"},
            opts=self._child,
        )

    def _pick_zones(self, settings: NetworkSettings, instance_types: tuple[str, ...]) -> list[str]:
        # Plain invokes (not Outputs): the subnet count must be known at preview time.
        # Only the region's own zones: without the opt-in filter AWS also lists the Local
        # Zones the account opted into, and their names sort first (us-east-1-bos-1a <
        # us-east-1a), so subnets, NAT and the ALB would land in a Local Zone.
        listed = aws.get_availability_zones(
            state="available",
            filters=[
                aws.GetAvailabilityZonesFilterArgs(
                    name="opt-in-status", values=["opt-in-not-required"]
                )
            ],
        )
        names = list(listed.names)
        name_of = {**dict(zip(listed.zone_ids, names, strict=True)), **{n: n for n in names}}
        offering = self._zones_offering(names, instance_types)
        region = aws.get_region().region
        wanted = " and ".join(instance_types)
        if settings.availability_zone_names:
            listing = ", ".join(f"{n} ({i})" for i, n in zip(listed.zone_ids, names, strict=True))
            problems = [
                f"pyscale:availabilityZoneNames: {entry} is not an available zone of {region} "
                f"(its own zones: {listing})"
                if entry not in name_of
                else f"pyscale:availabilityZoneNames: {entry} does not offer {wanted}"
                for entry in settings.availability_zone_names
                if name_of.get(entry) not in offering
            ]
            if problems:
                raise pulumi.RunError("\n".join(problems))
            return [name_of[entry] for entry in settings.availability_zone_names]
        count = settings.availability_zones
        eligible = [zone for zone in names if zone in offering]
        if len(eligible) < count:
            skipped = [zone for zone in names if zone not in offering]
            lacking = f"; {', '.join(skipped)} lack {wanted}" if skipped else ""
            raise pulumi.RunError(
                f"pyscale:availabilityZones is {count} but region {region} has "
                f"{len(eligible)} available zones offering {wanted} ({', '.join(eligible)}"
                f"{lacking}); lower it"
            )
        return eligible[:count]

    @staticmethod
    def _zones_offering(zones: list[str], instance_types: tuple[str, ...]) -> set[str]:
        """The zones where EC2 offers every one of ``instance_types`` (some older zones,
        use1-az3 the known one, offer no current-generation type)."""
        if not instance_types:
            return set(zones)
        offers = aws.ec2.get_instance_type_offerings(
            location_type="availability-zone",
            filters=[
                aws.ec2.GetInstanceTypeOfferingsFilterArgs(
                    name="instance-type", values=list(instance_types)
                )
            ],
        )
        offered = set(zip(offers.instance_types, offers.locations, strict=True))
        return {z for z in zones if all((t, z) in offered for t in instance_types)}

    def _subnet(self, vpc: aws.ec2.Vpc, tier: str, zone: str, cidr: str) -> aws.ec2.Subnet:
        name = f"{self._name}-{tier}-{zone}"
        return aws.ec2.Subnet(
            name,
            vpc_id=vpc.id,
            availability_zone=zone,
            cidr_block=cidr,
            # Nothing launched here gets a public address: the ALB and NAT bring their own.
            map_public_ip_on_launch=False,
            tags={"Name": name, "pyscale:tier": tier},
            opts=self._child,
        )

    def _public_routing(
        self,
        vpc: aws.ec2.Vpc,
        gateway: aws.ec2.InternetGateway,
        subnets: list[aws.ec2.Subnet],
    ) -> list[pulumi.Resource]:
        """The public route table's default route and subnet associations."""
        table = aws.ec2.RouteTable(
            f"{self._name}-public-rt",
            vpc_id=vpc.id,
            tags={"Name": f"{self._name}-public"},
            opts=self._child,
        )
        routed: list[pulumi.Resource] = [
            aws.ec2.Route(
                f"{self._name}-public-default",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=gateway.id,
                opts=self._child,
            )
        ]
        for zone, subnet in zip(self.availability_zones, subnets, strict=True):
            routed.append(
                aws.ec2.RouteTableAssociation(
                    f"{self._name}-public-{zone}",
                    route_table_id=table.id,
                    subnet_id=subnet.id,
                    opts=self._child,
                )
            )
        return routed

    def _nat_gateways(
        self,
        nat: NatStrategy,
        public_subnets: list[aws.ec2.Subnet],
    ) -> list[pulumi.Output[str]]:
        count = {
            NatStrategy.SINGLE: 1,
            NatStrategy.PER_AZ: len(public_subnets),
        }
        ids = []
        for zone, subnet in list(zip(self.availability_zones, public_subnets, strict=True))[
            : count[nat]
        ]:
            # A VPC address needs the gateway attached (CloudFormation's DependsOn docs
            # list Elastic IPs with load balancers among what waits for the attachment).
            internet_facing = pulumi.ResourceOptions(parent=self, depends_on=self.internet_ready)
            address = aws.ec2.Eip(
                f"{self._name}-nat-{zone}",
                domain="vpc",
                tags={"Name": f"{self._name}-nat-{zone}"},
                opts=internet_facing,
            )
            gateway_resource = aws.ec2.NatGateway(
                f"{self._name}-nat-{zone}",
                allocation_id=address.allocation_id,
                subnet_id=subnet.id,
                connectivity_type="public",
                tags={"Name": f"{self._name}-nat-{zone}"},
                # NAT needs the gateway attached and its subnet routed to it.
                opts=internet_facing,
            )
            ids.append(gateway_resource.id)
        return ids

    def _private_routing(
        self,
        vpc: aws.ec2.Vpc,
        subnets: list[aws.ec2.Subnet],
        nat_gateway_ids: list[pulumi.Output[str]],
    ) -> list[aws.ec2.RouteTable]:
        # One table per AZ, so per-AZ NAT keeps each AZ's traffic (and failures) in its AZ.
        tables = []
        for index, (zone, subnet) in enumerate(zip(self.availability_zones, subnets, strict=True)):
            table = aws.ec2.RouteTable(
                f"{self._name}-private-rt-{zone}",
                vpc_id=vpc.id,
                tags={"Name": f"{self._name}-private-{zone}"},
                opts=self._child,
            )
            if nat_gateway_ids:
                aws.ec2.Route(
                    f"{self._name}-private-default-{zone}",
                    route_table_id=table.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat_gateway_ids[min(index, len(nat_gateway_ids) - 1)],
                    opts=self._child,
                )
            aws.ec2.RouteTableAssociation(
                f"{self._name}-private-{zone}",
                route_table_id=table.id,
                subnet_id=subnet.id,
                opts=self._child,
            )
            tables.append(table)
        return tables
