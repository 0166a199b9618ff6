"""Stand-ins for AWS and the providers, answering the way the real ones would.

Resources: the mock echoes the inputs and adds what the provider computes (ids in AWS's
formats, ARNs, ``arnSuffix``, ``dnsName``, endpoints, autonamed ``name``s), derived
deterministically from the type and logical name, so two runs of the same program agree
and a diff between runs shows only what changed.

Data sources: every ``call()`` token the program makes must have an answer in
``DATA_SOURCES``; an unknown token raises, so a new lookup can never silently get ``{}``.
Add an answer here (a function of the call's args) when the program starts calling one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"  # the AWS documentation's example account
PARTITION = "aws"

# Availability zones per region, as AWS names them. Regions not listed get a, b, c.
_AZ_LETTERS = {"us-east-1": "abcdef", "us-west-2": "abcd", "ap-northeast-1": "acd"}
# Zone names map to zone ids per account; in this account's us-east-1 map use1-az3 (the
# zone that offers no current-generation instance type) is us-east-1e, so a stack of five
# zones or more meets it (the shipped stacks' first zones keep the names they had).
_ZONE_IDS = {
    "us-east-1": {
        "a": "use1-az1",
        "b": "use1-az2",
        "c": "use1-az4",
        "d": "use1-az6",
        "e": "use1-az3",
        "f": "use1-az5",
    },
}
# use1-az3: an older us-east-1 zone that offers only previous-generation x86 types.
CONSTRAINED_ZONE_IDS = frozenset({"use1-az3"})
CONSTRAINED_ZONE_MAX_GENERATION = 5


@dataclass(frozen=True)
class Zone:
    """One entry of EC2 DescribeAvailabilityZones."""

    name: str
    zone_id: str
    zone_type: str  # availability-zone | local-zone
    opt_in_status: str  # opt-in-not-required | opted-in | not-opted-in
    group_name: str
    state: str = "available"


# Local Zones: Boston is opted in for this account, Miami is not. A Local Zone's name sorts
# before the region's own zones ("us-east-1-bos-1a" < "us-east-1a").
_LOCAL_ZONES = {
    "us-east-1": (
        Zone("us-east-1-bos-1a", "use1-bos1-az1", "local-zone", "opted-in", "us-east-1-bos-1"),
        Zone("us-east-1-mia-1a", "use1-mia1-az1", "local-zone", "not-opted-in", "us-east-1-mia-1"),
    ),
}
# What a Local Zone offers: a handful of families (AWS lists them per zone).
LOCAL_ZONE_FAMILIES = frozenset({"t3", "c5", "m5", "r5"})


def region_zones(region: str) -> list[Zone]:
    """Every zone of ``region`` this account could see (AllAvailabilityZones=true)."""
    short = "".join(word[0] for word in region.split("-")[:-1]) + region.split("-")[-1]
    ids = _ZONE_IDS.get(region, {})
    zones = [
        Zone(
            f"{region}{letter}",
            ids.get(letter, f"{short}-az{index + 1}"),
            "availability-zone",
            "opt-in-not-required",
            region,
        )
        for index, letter in enumerate(_AZ_LETTERS.get(region, "abc"))
    ]
    return zones + list(_LOCAL_ZONES.get(region, ()))


def zone_offers(zone: Zone, instance_type: str) -> bool:
    """Whether EC2 offers ``instance_type`` in ``zone`` (the offline model of offerings)."""
    from infra import instance_types

    found = instance_types.lookup(instance_type)
    if zone.zone_type == "local-zone":
        return found.family in LOCAL_ZONE_FAMILIES
    if zone.zone_id in CONSTRAINED_ZONE_IDS:
        generation = re.match(r"^[a-z]+(\d+)", found.family)
        return (
            found.architecture == "x86_64"
            and generation is not None
            and int(generation[1]) <= CONSTRAINED_ZONE_MAX_GENERATION
        )
    return True


_ZONE_FILTER_FIELDS = {
    "zone-name": "name",
    "zone-id": "zone_id",
    "zone-type": "zone_type",
    "opt-in-status": "opt_in_status",
    "group-name": "group_name",
    "state": "state",
}


class InvalidFilterError(ValueError):
    """What EC2 answers for a filter name it does not know (InvalidParameterValue)."""


def _matches(filters: list[dict[str, Any]], fields: dict[str, str], item: Any) -> bool:
    for entry in filters:
        field_name = fields.get(entry["name"])
        if field_name is None:
            raise InvalidFilterError(
                f"InvalidParameterValue: The filter '{entry['name']}' is invalid"
            )
        value = getattr(item, field_name) if not isinstance(item, dict) else item[field_name]
        if not any(fnmatch.fnmatchcase(value, pattern) for pattern in entry["values"]):
            return False
    return True


# Region -> AWS's Route 53 hosted zone id for its ALBs (needed for alias records).
_ALB_ZONE_IDS = {
    "us-east-1": "Z35SXDOTRQ7X7K",
    "us-east-2": "Z3AADJGX6KTTL2",
    "us-west-2": "Z1H1FL5HABSF5",
    "eu-west-1": "Z32O12XQLNTSW2",
    "eu-central-1": "Z215JYRZR1TBD5",
}


def _hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


class UnknownDataSourceError(LookupError):
    pass


def secret(value: Any) -> dict[str, Any]:
    """A value in the wire form of a Pulumi secret, as a provider returns a sensitive field."""
    from pulumi.runtime import rpc

    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


@dataclass
class CallContext:
    region: str
    account_id: str
    project: str
    stack: str
    # EKS clusters created so far: name -> Kubernetes version (add-ons are checked against it)
    eks_clusters: dict[str, str] = field(default_factory=dict)

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:{PARTITION}:{service}:{where}:{self.account_id}:{resource}"


# ---------------------------------------------------------------------------------------
# Data sources
# ---------------------------------------------------------------------------------------
def _availability_zones(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """DescribeAvailabilityZones as the provider calls it, sorted by name as the provider
    sorts it. Without ``allAvailabilityZones`` AWS lists the region's zones plus the Local
    Zones the account opted into, and those names sort first."""
    region = args.get("region") or ctx.region
    zones = region_zones(region)
    if not args.get("allAvailabilityZones"):
        zones = [zone for zone in zones if zone.opt_in_status != "not-opted-in"]
    filters = list(args.get("filters") or [])
    if args.get("state"):
        filters.append({"name": "state", "values": [args["state"]]})
    zones = [zone for zone in zones if _matches(filters, _ZONE_FILTER_FIELDS, zone)]
    excluded_names = set(args.get("excludeNames") or [])
    excluded_ids = set(args.get("excludeZoneIds") or [])
    zones = sorted(
        (z for z in zones if z.name not in excluded_names and z.zone_id not in excluded_ids),
        key=lambda zone: zone.name,
    )
    return {
        "id": region,
        "names": [zone.name for zone in zones],
        "zoneIds": [zone.zone_id for zone in zones],
        "groupNames": sorted({zone.group_name for zone in zones}),
        "region": region,
        "state": args.get("state"),
        "filters": args.get("filters"),
    }


_OFFERING_LOCATION = {"availability-zone": "name", "availability-zone-id": "zone_id"}


def _instance_type_offerings(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """DescribeInstanceTypeOfferings: parallel lists of (instance type, location, location
    type), as the provider flattens them. ``locationType`` defaults to the region."""
    from infra import instance_types

    region = args.get("region") or ctx.region
    location_type = args.get("locationType") or "region"
    type_patterns: list[str] = []
    location_filters: list[dict[str, Any]] = []
    for entry in args.get("filters") or []:
        if entry["name"] == "instance-type":
            type_patterns += entry["values"]
        elif entry["name"] == "location":
            location_filters.append({"name": "location", "values": entry["values"]})
        else:
            raise InvalidFilterError(
                f"InvalidParameterValue: The filter '{entry['name']}' is invalid"
            )
    names = [
        name
        for name in instance_types.all_names()
        if not type_patterns or any(fnmatch.fnmatchcase(name, p) for p in type_patterns)
    ]
    zones = region_zones(region)
    offered: list[tuple[str, str]] = []
    for name in names:
        offering_zones = [
            z for z in zones if z.opt_in_status != "not-opted-in" and zone_offers(z, name)
        ]
        if location_type == "region":
            locations = [region] if offering_zones else []
        elif location_type in _OFFERING_LOCATION:
            locations = [getattr(z, _OFFERING_LOCATION[location_type]) for z in offering_zones]
        else:
            raise InvalidFilterError(f"InvalidParameterValue: locationType {location_type!r}")
        offered += [
            (name, location)
            for location in locations
            if _matches(location_filters, {"location": "location"}, {"location": location})
        ]
    return {
        "id": region,
        "instanceTypes": [name for name, _ in offered],
        "locations": [location for _, location in offered],
        "locationTypes": [location_type] * len(offered),
        "locationType": args.get("locationType"),
        "filters": args.get("filters"),
        "region": region,
    }


def _region(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    region = args.get("region") or args.get("name") or ctx.region
    return {
        "id": region,
        "region": region,
        "name": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
        "description": region,
    }


def _caller_identity(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return {
        "id": ctx.account_id,
        "accountId": ctx.account_id,
        "arn": f"arn:{PARTITION}:iam::{ctx.account_id}:user/pyscale-deployer",
        "userId": "AIDA" + _hex("user", length=16).upper(),
    }


def _partition(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return {
        "id": PARTITION,
        "partition": PARTITION,
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    }


# Regions whose ELB account the provider's aws.elb.get_service_account knows; for any other
# (those opened since 2022) the real provider fails with 'Unknown region'.
_ELB_ACCOUNT_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "af-south-1",
        "ap-east-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-south-1",
        "eu-north-1",
        "me-south-1",
        "sa-east-1",
        "us-gov-west-1",
        "us-gov-east-1",
        "cn-north-1",
        "cn-northwest-1",
    }
)


class UnknownRegionError(LookupError):
    pass


def _elb_service_account(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    region = args.get("region") or ctx.region
    if region not in _ELB_ACCOUNT_REGIONS:
        raise UnknownRegionError(f'Unknown region ("{region}")')
    account = "127311923021" if region == "us-east-1" else _hex(region, length=12)
    account = "".join(str(int(c, 16) % 10) for c in account)
    return {"id": account, "arn": f"arn:{PARTITION}:iam::{account}:root", "region": region}


def _policy_document(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Render the statements as IAM JSON, like the provider does (keys in its order)."""
    statements = []
    for statement in args.get("statements") or []:
        rendered: dict[str, Any] = {}
        if "sid" in statement:
            rendered["Sid"] = statement["sid"]
        rendered["Effect"] = statement.get("effect", "Allow")
        for source, target in (("actions", "Action"), ("notActions", "NotAction")):
            if statement.get(source):
                values = sorted(statement[source])
                rendered[target] = values[0] if len(values) == 1 else values
        for source, target in (("resources", "Resource"), ("notResources", "NotResource")):
            if statement.get(source):
                values = sorted(statement[source])
                rendered[target] = values[0] if len(values) == 1 else values
        if statement.get("principals"):
            principal: dict[str, Any] = {}
            for entry in statement["principals"]:
                ids = sorted(entry["identifiers"])
                principal[entry["type"]] = ids[0] if len(ids) == 1 else ids
            rendered["Principal"] = principal
        if statement.get("conditions"):
            condition: dict[str, dict[str, Any]] = {}
            for entry in statement["conditions"]:
                values = entry["values"]
                condition.setdefault(entry["test"], {})[entry["variable"]] = (
                    values[0] if len(values) == 1 else values
                )
            rendered["Condition"] = condition
        statements.append(rendered)
    document = {"Version": args.get("version", "2012-10-17"), "Statement": statements}
    text = json.dumps(document, indent=2)
    return {
        "id": _hex(text, length=10),
        "json": text,
        "minifiedJson": json.dumps(document, separators=(",", ":")),
        "statements": args.get("statements") or [],
    }


_PUBLIC_AMI_PARAMETER_PREFIX = "/aws/service/ami-amazon-linux-latest/"


def _ssm_parameter(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    name = args["name"]
    if not name.startswith(_PUBLIC_AMI_PARAMETER_PREFIX):
        raise UnknownDataSourceError(
            f"the offline mocks know only the public AMI parameters "
            f"({_PUBLIC_AMI_PARAMETER_PREFIX}*), not {name!r}"
        )
    value = "ami-" + _hex(ctx.region, name)
    return {
        "id": name,
        "name": name,
        "arn": f"arn:{PARTITION}:ssm:{ctx.region}::parameter{name}",
        "type": "String",
        # The provider marks `value` sensitive: a secret output, whatever the parameter
        # holds (pulumi-aws get_parameter); `insecureValue` is the same value in clear.
        "value": secret(value),
        "insecureValue": value,
        "version": 1.0,
        "withDecryption": args.get("withDecryption", True),
    }


def _instance_type(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    from infra import instance_types  # the same offline facts the program validates with

    found = instance_types.lookup(args["instanceType"])
    return {
        "id": found.name,
        "instanceType": found.name,
        "supportedArchitectures": [found.architecture],
        "defaultVcpus": float(found.vcpus) if found.vcpus else 2.0,
        "burstablePerformanceSupported": found.burstable,
    }


# ---------------------------------------------------------------------------------------
# EKS, KMS, ECR: what the provider reads back after create (formats as AWS returns them)
# ---------------------------------------------------------------------------------------
def _eks_cluster(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(args.name, 100)
    token = _hex("eks", name, length=32).upper()
    vpc_config = dict(args.inputs.get("vpcConfig") or {})
    vpc_config["clusterSecurityGroupId"] = f"sg-{_hex('eks-cluster-sg', name)}"
    vpc_config.setdefault("vpcId", f"vpc-{_hex('eks-vpc', name)}")
    # Without a version EKS creates the cluster at its default; the program always pins one.
    ctx.eks_clusters[name] = str(args.inputs.get("version") or "")
    return {
        "id": name,
        "name": name,
        "arn": ctx.arn("eks", f"cluster/{name}"),
        "endpoint": f"https://{token}.gr7.{ctx.region}.eks.amazonaws.com",
        # base64 of a PEM header: shaped like the CA bundle, not a usable certificate.
        "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
        "identities": [
            {"oidcs": [{"issuer": f"https://oidc.eks.{ctx.region}.amazonaws.com/id/{token}"}]}
        ],
        "vpcConfig": vpc_config,
        "status": "ACTIVE",
        "platformVersion": "eks.1",
    }


def _eks_node_group(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    cluster = args.inputs.get("clusterName", "")
    name = args.inputs.get("nodeGroupName") or _autoname(args.name, 63)
    suffix = _uuid("nodegroup", cluster, name)
    return {
        "id": f"{cluster}:{name}",
        "nodeGroupName": name,
        "arn": ctx.arn("eks", f"nodegroup/{cluster}/{name}/{suffix}"),
        "status": "ACTIVE",
        # EKS names the group's Auto Scaling group eks-<nodegroup>-<uuid>.
        "resources": [{"autoscalingGroups": [{"name": f"eks-{name}-{suffix}"}]}],
    }


class UnsupportedAddonVersionError(ValueError):
    """What CreateAddon answers for a version DescribeAddonVersions does not list for the
    cluster's Kubernetes version (InvalidParameterException, HTTP 400)."""


def _eks_addon(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    """CreateAddon: EKS accepts only an add-on it offers for the cluster's version, at a
    version DescribeAddonVersions lists (infra/kubernetes/addon_versions.py is this
    account's catalogue), and fails the create otherwise, as the provider reports it."""
    from infra.kubernetes.addon_versions import listed_versions

    cluster = args.inputs.get("clusterName", "")
    addon = args.inputs.get("addonName", "")
    version = args.inputs.get("addonVersion")
    outputs: Outputs = {
        "id": f"{cluster}:{addon}",
        "arn": ctx.arn("eks", f"addon/{cluster}/{addon}/{_uuid('addon', cluster, addon)}"),
    }
    kubernetes_version = ctx.eks_clusters.get(cluster)
    if kubernetes_version is None:  # a cluster this run did not create: nothing to check
        return outputs
    listed = listed_versions(addon, kubernetes_version)
    failed = (
        f"creating EKS Add-On ({cluster}:{addon}): operation error EKS: CreateAddon, https "
        "response error StatusCode: 400, InvalidParameterException:"
    )
    if not listed:
        raise UnknownAddonError(
            f"{failed} Addon {addon} specified is not supported in {kubernetes_version} "
            "kubernetes version"
        )
    if version is None:  # EKS installs its default; the newest listed stands in for it
        outputs["addonVersion"] = listed[-1]
    elif version not in listed:
        raise UnsupportedAddonVersionError(
            f"{failed} Addon version specified is not supported ({addon} {version}; listed "
            f"for Kubernetes {kubernetes_version}: {', '.join(listed)})"
        )
    return outputs


def _eks_access_entry(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    cluster = args.inputs.get("clusterName", "")
    principal = args.inputs.get("principalArn", "")
    role = principal.rsplit("/", 1)[-1]
    entry = f"{cluster}/role/{ctx.account_id}/{role}/{_uuid('entry', cluster, principal)}"
    return {
        "id": f"{cluster}:{principal}",
        "accessEntryArn": ctx.arn("eks", f"access-entry/{entry}"),
    }


def _eks_pod_identity(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    cluster = args.inputs.get("clusterName", "")
    association = "a-" + _hex("pod-identity", cluster, args.name, length=17)
    return {
        "id": f"{cluster},{association}",
        "associationId": association,
        "associationArn": ctx.arn("eks", f"podidentityassociation/{cluster}/{association}"),
    }


def _ecr_repository(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(args.name, 256).lower()
    return {
        "id": name,
        "name": name,
        "arn": ctx.arn("ecr", f"repository/{name}"),
        "registryId": ctx.account_id,
        "repositoryUrl": f"{ctx.account_id}.dkr.ecr.{ctx.region}.amazonaws.com/{name}",
    }


class UnknownAddonError(LookupError):
    """What EKS answers for an add-on name it does not offer (for this Kubernetes version)."""


def _addon_version(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """eks.getAddonVersion (DescribeAddonVersions): from the catalogue the add-on creates are
    checked against; the catalogue marks no default, so the newest listed stands in."""
    from infra.kubernetes.addon_versions import listed_versions

    name, version = args["addonName"], args["kubernetesVersion"]
    listed = listed_versions(name, version)
    if not listed:
        raise UnknownAddonError(
            f"reading EKS Add-On version ({name}): no version listed for Kubernetes {version}"
        )
    return {
        "id": name,
        "addonName": name,
        "kubernetesVersion": version,
        "version": listed[-1],
        "mostRecent": bool(args.get("mostRecent")),
    }


def _session_context(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """iam.getSessionContext: an assumed-role ARN's role (its path dropped, as AWS does not
    keep it in the session ARN); any other ARN is its own issuer."""
    arn = args["arn"]
    issuer = arn
    if ":assumed-role/" in arn:
        account = arn.split(":")[4]
        role, session = arn.split(":assumed-role/", 1)[1].split("/", 1)
        issuer = f"arn:{PARTITION}:iam::{account}:role/{role}"
        return {
            "id": arn,
            "arn": arn,
            "issuerArn": issuer,
            "issuerName": role,
            "sessionName": session,
            "issuerId": "AROA" + _hex(role, length=17).upper(),
        }
    return {
        "id": arn,
        "arn": arn,
        "issuerArn": issuer,
        "issuerName": "",
        "sessionName": "",
        "issuerId": "",
    }


DATA_SOURCES: dict[str, Callable[[dict[str, Any], CallContext], dict[str, Any]]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws:index/getRegion:getRegion": _region,
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getPartition:getPartition": _partition,
    "aws:elb/getServiceAccount:getServiceAccount": _elb_service_account,
    "aws:iam/getPolicyDocument:getPolicyDocument": _policy_document,
    "aws:ssm/getParameter:getParameter": _ssm_parameter,
    "aws:ec2/getInstanceType:getInstanceType": _instance_type,
    "aws:iam/getSessionContext:getSessionContext": _session_context,
    "aws:eks/getAddonVersion:getAddonVersion": _addon_version,
    "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": _instance_type_offerings,
}


# ---------------------------------------------------------------------------------------
# Resources: what each provider computes on create
# ---------------------------------------------------------------------------------------
class AutonameTooLongError(ValueError):
    """What the engine reports when a logical name leaves no room for the random suffix."""


def _autoname(name: str, limit: int = 63) -> str:
    """Pulumi's auto-naming: the logical name plus a dash and seven random hex digits.

    Like the provider (the bridge's NewUniqueHex), a name that would exceed the resource's
    maximum length is an error, never silently truncated: truncating here would hide a
    ``pulumi up`` that fails for a long stack name."""
    prefix = f"{name}-"
    if len(prefix) + 7 > limit:
        raise AutonameTooLongError(
            f"name '{prefix}' plus 7 random chars is longer than maximum length {limit}"
        )
    return f"{prefix}{_hex('autoname', name, length=7)}"


Outputs = dict[str, Any]
# What RESOURCE_OUTPUTS holds per type: the outputs AWS computes for a resource.
ResourceAnswer = Callable[[pulumi.runtime.MockResourceArgs, CallContext], Outputs]
_EC2_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:ec2/flowLog:FlowLog": "fl",
}


def _ec2(args: pulumi.runtime.MockResourceArgs, ctx: CallContext, prefix: str) -> Outputs:
    resource_id = f"{prefix}-{_hex(args.typ, args.name)}"
    kind = {
        "eipalloc": "elastic-ip",
        "sg": "security-group",
        "lt": "launch-template",
        "fl": "vpc-flow-log",
    }.get(prefix, args.typ.rsplit(":", 1)[-1].lower())
    outputs: Outputs = {"id": resource_id, "arn": ctx.arn("ec2", f"{kind}/{resource_id}")}
    if prefix == "vpc":
        outputs["defaultSecurityGroupId"] = f"sg-{_hex('default', resource_id)}"
        outputs["mainRouteTableId"] = f"rtb-{_hex('main', resource_id)}"
    elif prefix == "eipalloc":
        digits = [int(c, 16) for c in _hex(args.name, length=2)]
        outputs["allocationId"] = resource_id
        outputs["publicIp"] = f"198.51.100.{digits[0] * 16 + digits[1]}"
    elif prefix == "sg":
        outputs.setdefault("name", args.inputs.get("name") or _autoname(args.name, 255))
        outputs["ownerId"] = ctx.account_id
    elif prefix == "sgr":
        outputs["securityGroupRuleId"] = resource_id
    elif prefix == "lt":
        outputs["latestVersion"] = 1.0
        outputs["defaultVersion"] = 1.0
        outputs.setdefault("name", args.inputs.get("name") or _autoname(args.name, 128))
    return outputs


def _default_security_group(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    """Not a new group: the provider adopts the VPC's own default group (the id the VPC
    reports as defaultSecurityGroupId), named "default", and strips its rules."""
    vpc_id = str(args.inputs.get("vpcId", ""))
    group_id = f"sg-{_hex('default', vpc_id)}"
    return {
        "id": group_id,
        "arn": ctx.arn("ec2", f"security-group/{group_id}"),
        "name": "default",
        "description": "default VPC security group",
        "ownerId": ctx.account_id,
    }


def _uuid(*parts: str) -> str:
    digits = _hex(*parts, length=32)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _kms_key(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    key_id = _uuid("kms", args.name)
    return {"id": key_id, "keyId": key_id, "arn": ctx.arn("kms", f"key/{key_id}")}


def _kms_alias(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(f"alias/{args.name}", 256)
    return {
        "id": name,
        "name": name,
        "arn": ctx.arn("kms", name),
        "targetKeyArn": ctx.arn("kms", f"key/{args.inputs.get('targetKeyId', '')}"),
    }


def _listener_rule(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    listener_arn = str(args.inputs.get("listenerArn", ""))
    listener_path = listener_arn.split(":listener/", 1)[-1]
    arn = ctx.arn(
        "elasticloadbalancing", f"listener-rule/{listener_path}/{_hex('rule', args.name)}"
    )
    return {"id": arn, "arn": arn}


class ElastiCacheRefusedError(ValueError):
    """What ElastiCache (or the provider's plan-time checks) answers to a request it refuses."""


def _cache_user(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    user_id = str(args.inputs.get("userId", ""))
    mode = (args.inputs.get("authenticationMode") or {}).get("type")
    # ElastiCache user guide, "Authenticating with IAM", limitations.
    if mode == "iam" and args.inputs.get("userName") != user_id:
        raise ElastiCacheRefusedError(
            f"InvalidParameterValue: user {user_id!r}: for IAM authentication the user name "
            f"({args.inputs.get('userName')!r}) must equal the user id"
        )
    return {"id": user_id, "arn": ctx.arn("elasticache", f"user:{user_id}")}


def _refuse_bad_cache_authentication(inputs: dict[str, Any]) -> None:
    """The replication group's authentication as the provider plans it and ElastiCache takes
    it (terraform-provider-aws replication_group.go: auth_token ConflictsWith user_group_ids,
    authTokenUpdateStrategyValidate; AUTH tokens and user groups need TLS)."""
    token, groups = inputs.get("authToken"), list(inputs.get("userGroupIds") or [])
    strategy = inputs.get("authTokenUpdateStrategy")
    if token is not None and groups:
        raise ElastiCacheRefusedError('"auth_token": conflicts with user_group_ids')
    if strategy == "DELETE" and token is not None:
        raise ElastiCacheRefusedError(
            '"auth_token" must not be specified when "auth_token_update_strategy" is "DELETE"'
        )
    if strategy is not None and strategy != "DELETE" and token is None:
        raise ElastiCacheRefusedError(
            '"auth_token_update_strategy": "auth_token" must be specified'
        )
    if len(groups) > 1:
        raise ElastiCacheRefusedError(
            "InvalidParameterValue: at most one user group per replication group"
        )
    if (token is not None or groups) and not inputs.get("transitEncryptionEnabled"):
        raise ElastiCacheRefusedError(
            "InvalidParameterCombination: AUTH tokens and user groups need transit encryption"
        )


def _cache_user_group(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    group_id = str(args.inputs.get("userGroupId", ""))
    return {"id": group_id, "arn": ctx.arn("elasticache", f"usergroup:{group_id}")}


def _waf_logging(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    # The provider's id for a logging configuration is the web ACL's ARN.
    return {"id": str(args.inputs.get("resourceArn", ""))}


def _load_balancer(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(args.name, 32)
    suffix = f"app/{name}/{_hex(args.name, length=16)}"
    digits = str(int(_hex("dns", args.name, length=8), 16))[:10]
    return {
        "name": name,
        "id": ctx.arn("elasticloadbalancing", f"loadbalancer/{suffix}"),
        "arn": ctx.arn("elasticloadbalancing", f"loadbalancer/{suffix}"),
        "arnSuffix": suffix,
        "dnsName": f"{name}-{digits}.{ctx.region}.elb.amazonaws.com",
        "zoneId": _ALB_ZONE_IDS.get(ctx.region, "Z" + _hex("zone", ctx.region).upper()[:13]),
        "vpcId": args.inputs.get("vpcId"),
    }


def _target_group(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(args.name, 32)
    suffix = f"targetgroup/{name}/{_hex(args.name, length=16)}"
    arn = ctx.arn("elasticloadbalancing", suffix)
    return {"name": name, "id": arn, "arn": arn, "arnSuffix": suffix}


def _listener(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    arn = ctx.arn("elasticloadbalancing", f"listener/app/{args.name}/{_hex(args.name)}")
    return {"id": arn, "arn": arn}


def _bucket(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    bucket = args.inputs.get("bucket") or _autoname(args.name, 63).lower()
    return {
        "id": bucket,
        "bucket": bucket,
        "arn": f"arn:{PARTITION}:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{ctx.region}.amazonaws.com",
        "region": ctx.region,
    }


def _certificate(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    domain = args.inputs.get("domainName", "")
    names = [domain, *(args.inputs.get("subjectAlternativeNames") or [])]
    arn = ctx.arn("acm", f"certificate/{_hex(args.name, length=32)}")
    return {
        "id": arn,
        "arn": arn,
        "status": "PENDING_VALIDATION",
        "domainValidationOptions": [
            {
                "domainName": name,
                "resourceRecordName": f"_{_hex('name', name, length=32)}.{name}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{_hex('value', name, length=32)}.acm-validations.aws.",
            }
            for name in names
        ],
    }


def _record(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = str(args.inputs.get("name", "")).rstrip(".")
    zone = args.inputs.get("zoneId", "")
    return {"id": f"{zone}_{name}_{args.inputs.get('type', '')}", "fqdn": name}


def _replication_group(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    _refuse_bad_cache_authentication(dict(args.inputs))
    group_id = args.inputs.get("replicationGroupId") or _autoname(args.name, 40).lower()
    host = f"{group_id}.{_hex('cache', args.name, length=6)}.{ctx.region}.cache.amazonaws.com"
    outputs: Outputs = {
        "id": group_id,
        "replicationGroupId": group_id,
        "arn": ctx.arn("elasticache", f"replicationgroup:{group_id}"),
        "port": args.inputs.get("port", 6379.0),
    }
    shards = int(args.inputs.get("numNodeGroups") or 1)
    replicas = int(args.inputs.get("replicasPerNodeGroup") or 0)
    if args.inputs.get("clusterMode") == "enabled" or args.inputs.get("numNodeGroups"):
        outputs["configurationEndpointAddress"] = f"clustercfg.{host}"
    else:
        outputs["primaryEndpointAddress"] = f"master.{host}"
        outputs["readerEndpointAddress"] = f"replica.{host}"
        nodes = int(args.inputs.get("numCacheClusters") or 1)
        outputs["memberClusters"] = [f"{group_id}-{index + 1:03d}" for index in range(nodes)]
        return outputs
    # Cluster mode: ElastiCache names each node <group>-<shard 0001..>-<node 001..>.
    outputs["memberClusters"] = [
        f"{group_id}-{shard:04d}-{node:03d}"
        for shard in range(1, shards + 1)
        for node in range(1, replicas + 2)
    ]
    return outputs


def _named(
    service: str, kind: str, separator: str = ":", limit: int = 255, *, regional: bool = True
) -> ResourceAnswer:
    def outputs(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
        name = args.inputs.get("name") or _autoname(args.name, limit)
        arn = ctx.arn(service, f"{kind}{separator}{name}", region=regional)
        return {"id": name, "name": name, "arn": arn}

    return outputs


def _secret(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(args.name, 512)
    arn = ctx.arn("secretsmanager", f"secret:{name}-{_hex('secret', name, length=6)}")
    return {"id": arn, "arn": arn, "name": name}


def _secret_version(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    version = _hex("version", args.name, length=32)
    return {"id": f"{args.inputs.get('secretId')}|{version}", "versionId": version}


def _log_group(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(args.name, 512)
    return {"id": name, "name": name, "arn": ctx.arn("logs", f"log-group:{name}")}


def _web_acl(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(args.name, 128)
    uuid = _hex("acl", args.name, length=32)
    uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
    arn = ctx.arn("wafv2", f"regional/webacl/{name}/{uuid}")
    return {"id": uuid, "name": name, "arn": arn, "capacity": 750.0}


def _random_password(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    length = int(args.inputs.get("length", 16))
    value = (_hex("password", ctx.stack, args.name, length=64) * 4)[:length]
    return {"id": "none", "result": value, "bcryptHash": "$2a$10$" + _hex("bcrypt", value)}


def _autoscaling_group(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    name = args.inputs.get("name") or _autoname(args.name, 255)
    arn = ctx.arn(
        "autoscaling",
        f"autoScalingGroup:{_hex('asg', name, length=8)}-0000-0000-0000-000000000000"
        f":autoScalingGroupName/{name}",
    )
    return {"id": name, "name": name, "arn": arn}


def _s3_object(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    key = args.inputs.get("key", args.name)
    return {
        "id": key,
        "etag": _hex("etag", json.dumps(args.inputs, sort_keys=True, default=str), length=32),
        "versionId": _hex("version", key, length=32),
        "arn": f"arn:{PARTITION}:s3:::{args.inputs.get('bucket')}/{key}",
    }


def _role_policy(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    # An inline policy has no ARN; its id is "<role>:<policy name>".
    name = args.inputs.get("name") or _autoname(args.name, 128)
    return {"id": f"{args.inputs.get('role')}:{name}", "name": name}


def _role_policy_attachment(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    # An attachment has no ARN either; the provider's id is "<role>-<random>".
    return {"id": f"{args.inputs.get('role')}-{_hex('attachment', args.name, length=26)}"}


RESOURCE_OUTPUTS: dict[str, ResourceAnswer] = {
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _eks_node_group,
    "aws:eks/addon:Addon": _eks_addon,
    "aws:eks/accessEntry:AccessEntry": _eks_access_entry,
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": _eks_pod_identity,
    "aws:ecr/repository:Repository": _ecr_repository,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:lb/listener:Listener": _listener,
    "aws:lb/listenerRule:ListenerRule": _listener_rule,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _default_security_group,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:elasticache/user:User": _cache_user,
    "aws:elasticache/userGroup:UserGroup": _cache_user_group,
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": _waf_logging,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketV2:BucketV2": _bucket,
    "aws:s3/bucketObjectv2:BucketObjectv2": _s3_object,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:route53/record:Record": _record,
    "aws:elasticache/replicationGroup:ReplicationGroup": _replication_group,
    "aws:elasticache/subnetGroup:SubnetGroup": _named("elasticache", "subnetgroup"),
    "aws:elasticache/parameterGroup:ParameterGroup": _named("elasticache", "parametergroup"),
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretVersion:SecretVersion": _secret_version,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    # IAM is global: its ARNs have an empty region field (arn:aws:iam::<account>:role/x).
    "aws:iam/role:Role": _named("iam", "role", "/", 64, regional=False),
    "aws:iam/instanceProfile:InstanceProfile": _named(
        "iam", "instance-profile", "/", 128, regional=False
    ),
    "aws:iam/policy:Policy": _named("iam", "policy", "/", 128, regional=False),
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _role_policy_attachment,
    "aws:sns/topic:Topic": _named("sns", "", "", 256),
    "aws:autoscaling/group:Group": _autoscaling_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named("cloudwatch", "alarm"),
    "random:index/randomPassword:RandomPassword": _random_password,
}


def _kubernetes_object(args: pulumi.runtime.MockResourceArgs, ctx: CallContext) -> Outputs:
    """What the Kubernetes provider answers: the object as applied, with a server-set uid,
    autonamed ``<logical name>-<8 hex>`` when the program gave no metadata.name (as the
    provider autonames), and the id ``namespace/name`` (just ``name`` for cluster objects)."""
    metadata = dict(args.inputs.get("metadata") or {})
    metadata.setdefault("name", f"{args.name}-{_hex('k8s', args.name, length=8)}")
    metadata["uid"] = _uuid("uid", args.typ, args.name)
    namespace = metadata.get("namespace")
    object_id = f"{namespace}/{metadata['name']}" if namespace else metadata["name"]
    return {"id": object_id, "metadata": metadata}


class AwsMocks(pulumi.runtime.Mocks):
    """The offline AWS. ``calls`` records every data source call (token, args)."""

    def __init__(self, region: str, account_id: str, project: str, stack: str) -> None:
        self.context = CallContext(region, account_id, project, stack)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        answer = DATA_SOURCES.get(args.token)
        if answer is None:
            raise UnknownDataSourceError(
                f"the offline mocks have no answer for data source {args.token!r}: add one to "
                "DATA_SOURCES in pyscale/offline/mocks.py"
            )
        return answer(dict(args.args), self.context), []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, Outputs]:
        outputs: Outputs = dict(args.inputs)
        if args.typ.startswith("kubernetes:") and args.custom:
            computed = _kubernetes_object(args, self.context)
        elif args.typ in _EC2_PREFIXES:
            computed = _ec2(args, self.context, _EC2_PREFIXES[args.typ])
        elif args.typ in RESOURCE_OUTPUTS:
            computed = RESOURCE_OUTPUTS[args.typ](args, self.context)
        else:
            computed = self._generic(args)
        outputs.update(computed)
        return str(outputs.pop("id")), outputs

    def _generic(self, args: pulumi.runtime.MockResourceArgs) -> Outputs:
        # "aws:cloudwatch/dashboard:Dashboard" -> service "cloudwatch", kind "dashboard"
        package, module_path, _kind = args.typ.split(":")
        module = module_path.split("/")[0]
        if package != "aws" or not args.custom:
            return {"id": f"{args.name}-{_hex(args.typ, args.name, length=8)}"}
        name = args.inputs.get("name") or _autoname(args.name)
        kind = module_path.split("/")[-1].lower()
        return {
            "id": f"{name}-{_hex(args.typ, args.name, length=8)}",
            "name": name,
            "arn": self.context.arn(module, f"{kind}/{name}"),
        }
