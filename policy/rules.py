"""pyscale's CrossGuard guardrails: the validators behind the policy pack in policy/.

Constructing a ``PolicyPack`` starts a gRPC server and blocks (see policy/__main__.py), so
every policy lives here, importable by tests and by the offline checker (policy/offline.py).

What the engine hands a validator, and what these rules therefore expect:
- ``args.props`` are the resource's *inputs* in wire form: camelCase keys, numbers as
  floats, absent keys omitted, secrets already unwrapped. Nested objects and lists arrive as
  read-only ``Mapping``/``Sequence`` proxies (not dict/list) that raise ``UnknownValueError``
  when a value is unknown during preview; the engine then reports "can't run during preview"
  as an advisory note, so rules read only the keys they need.
- pulumi_aws 7 types some launch-template fields as strings: ``ebs.encrypted`` and
  ``networkInterfaces[].associatePublicIpAddress`` are ``"true"``/``"false"``.

Levels:
- mandatory — always on: EBS and cache encryption, cache TLS + AUTH, IMDSv2, no world-open
  ingress except the ALB's listener ports, no public IP on app instances, ALB drops invalid
  header fields, every VPC's default security group managed and empty, alarm topics under
  a customer managed KMS key, KMS keys rotated, no AWS managed policy on a role, every
  bucket aborting abandoned multipart uploads bucket-wide, every web ACL logging requests.
- production — shipped *disabled*; a stack's policy config (policy/config/prod.json) turns
  them on as mandatory: ALB deletion protection, multi-AZ cache with failover, fleet of
  >= 2 instances over >= 2 zones, cache snapshots, VPC flow logs, data at rest under a
  customer managed key (log groups, cache, secrets, buckets but ALB access logs).
- advisory — instance types from a per-environment allow-list; required tags.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PACK_NAME = "pyscale-guardrails"

# --------------------------------------------------------------------------------------------
# Resource type tokens (pulumi_aws 7). aws:alb/* are the legacy aliases of aws:lb/*.
# --------------------------------------------------------------------------------------------
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
AUTOSCALING_GROUP = "aws:autoscaling/group:Group"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
VPC = "aws:ec2/vpc:Vpc"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
TOPIC = "aws:sns/topic:Topic"
KMS_KEY = "aws:kms/key:Key"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_LIFECYCLES = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
BUCKET_ENCRYPTIONS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 (a type token)
CACHE_USER = "aws:elasticache/user:User"
CACHE_USER_GROUP = "aws:elasticache/userGroup:UserGroup"
AWS_MANAGED_SNS_KEY = "alias/aws/sns"
EKS_REQUIRED_MANAGED_POLICIES = (
    "AmazonEKSClusterPolicy",
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
WAF_LOG_PREFIX = "aws-waf-logs-"
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
# Kubernetes workloads whose pod template the pack checks (pulumi_kubernetes tokens).
POD_TEMPLATE_KINDS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
)

WORLD_CIDRS = ("0.0.0.0/0", "::/0")
# The control-plane logs every EKS cluster sends; production sends all five (CIS / checkov
# CKV_AWS_37).
EKS_REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")
EKS_ALL_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


# --------------------------------------------------------------------------------------------
# Helpers for wire-form values
# --------------------------------------------------------------------------------------------
def is_true(value: Any) -> bool:
    """True for a boolean True and for the engine string "true" (any case)."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def as_list(value: Any) -> list[Any]:
    """A list/tuple/proxy sequence as a list; None as []; a lone string as [string]."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_number(value: Any) -> float | None:
    """Wire numbers are floats; stack config may leave them as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, Mapping) else {}


def _show(value: Any) -> str:
    return "not set" if value is None else repr(value)


def _is_application_lb(props: Mapping[str, Any]) -> bool:
    # loadBalancerType defaults to "application" when omitted.
    return props.get("loadBalancerType") in (None, "application")


def _config(args: ResourceValidationArgs | StackValidationArgs) -> Mapping[str, Any]:
    return args.get_config() or {}


# --------------------------------------------------------------------------------------------
# Mandatory: encryption, TLS, AUTH, IMDSv2, ALB header hygiene
# --------------------------------------------------------------------------------------------
def validate_ebs_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == LAUNCH_TEMPLATE:
        mappings = as_list(props.get("blockDeviceMappings"))
        ebs_mappings = [as_mapping(m) for m in mappings if as_mapping(m).get("ebs") is not None]
        if not ebs_mappings:
            report(
                f"Launch template '{args.name}' declares no EBS block device, so its root volume's "
                "encryption depends on the AMI and the account default. Declare the root device: "
                'block_device_mappings=[{device_name: "/dev/xvda", ebs: {encrypted: "true", '
                'volume_type: "gp3"}}].',
                None,
            )
        for mapping in ebs_mappings:
            encrypted = as_mapping(mapping["ebs"]).get("encrypted")
            if not is_true(encrypted):
                device = mapping.get("deviceName", "?")
                report(
                    f"Launch template '{args.name}': block device {device} has ebs.encrypted="
                    f'{_show(encrypted)}. Set ebs.encrypted to the string "true" '
                    "(a string in pulumi_aws 7 launch templates).",
                    None,
                )
    elif args.resource_type == INSTANCE:
        root = as_mapping(props.get("rootBlockDevice"))
        if not is_true(root.get("encrypted")):
            report(
                f"Instance '{args.name}': root_block_device.encrypted is "
                f"{_show(root.get('encrypted'))}. Set root_block_device={{encrypted: True}}.",
                None,
            )
        for device in as_list(props.get("ebsBlockDevices")):
            device = as_mapping(device)
            if not is_true(device.get("encrypted")):
                report(
                    f"Instance '{args.name}': EBS device {device.get('deviceName', '?')} is not "
                    "encrypted. Set encrypted=True on every ebs_block_devices entry.",
                    None,
                )
    elif args.resource_type == VOLUME and not is_true(props.get("encrypted")):
        report(f"EBS volume '{args.name}' is not encrypted. Set encrypted=True.", None)


def validate_cache_encrypted_at_rest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == REPLICATION_GROUP:
        if not is_true(props.get("atRestEncryptionEnabled")):
            report(
                f"Cache replication group '{args.name}': at_rest_encryption_enabled is "
                f"{_show(props.get('atRestEncryptionEnabled'))}. Set "
                "at_rest_encryption_enabled=True (it can only be chosen at creation).",
                None,
            )
    elif args.resource_type == CACHE_CLUSTER and not props.get("replicationGroupId"):
        report(
            f"Cache cluster '{args.name}' is a standalone cluster, which cannot be encrypted at "
            "rest. Create an aws.elasticache.ReplicationGroup (num_cache_clusters=1 for a "
            "single node) with at_rest_encryption_enabled=True instead.",
            None,
        )


def validate_cache_tls_and_auth(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPLICATION_GROUP:
        return
    props = args.props
    if not is_true(props.get("transitEncryptionEnabled")):
        report(
            f"Cache replication group '{args.name}': transit_encryption_enabled is "
            f"{_show(props.get('transitEncryptionEnabled'))}. Set transit_encryption_enabled=True "
            "so clients must use TLS.",
            None,
        )
    mode = props.get("transitEncryptionMode")
    if mode is not None and mode != "required":
        report(
            f"Cache replication group '{args.name}': transit_encryption_mode is {mode!r}, which "
            'still accepts plaintext clients. Set transit_encryption_mode="required" (or leave it '
            "unset).",
            None,
        )
    has_auth = bool(
        props.get("authToken") or props.get("authTokenWo") or as_list(props.get("userGroupIds"))
    )
    if not has_auth:
        report(
            f"Cache replication group '{args.name}' accepts clients without AUTH. Set auth_token "
            "(with transit encryption and auth_token_update_strategy) or user_group_ids (RBAC).",
            None,
        )


def _check_imdsv2(kind: str, name: str, props: Mapping[str, Any], report: ReportViolation) -> None:
    options = as_mapping(props.get("metadataOptions"))
    if options.get("httpEndpoint") == "disabled":
        return  # no metadata service at all: nothing for IMDSv1 to leak
    tokens = options.get("httpTokens")
    if tokens != "required":
        report(
            f"{kind} '{name}': metadata_options.http_tokens is {_show(tokens)}, so IMDSv1 "
            'answers unauthenticated requests. Set metadata_options={http_tokens: "required", '
            "http_put_response_hop_limit: 1}.",
            None,
        )


def validate_imdsv2_required(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == LAUNCH_TEMPLATE:
        _check_imdsv2("Launch template", args.name, args.props, report)
    elif args.resource_type == INSTANCE:
        _check_imdsv2("Instance", args.name, args.props, report)


def validate_alb_drops_invalid_headers(
    args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type not in LOAD_BALANCERS or not _is_application_lb(args.props):
        return
    value = args.props.get("dropInvalidHeaderFields")
    if not is_true(value):
        report(
            f"Load balancer '{args.name}': drop_invalid_header_fields is {_show(value)}, so "
            "malformed header fields reach the app (request smuggling surface). Set "
            "drop_invalid_header_fields=True.",
            None,
        )


# --------------------------------------------------------------------------------------------
# Mandatory, stack-wide: world-open ingress and public IPs need to see several resources
# --------------------------------------------------------------------------------------------
def _dependencies(resource: PolicyResource, key: str) -> list[PolicyResource]:
    """The resources whose outputs flowed into input `key` (the engine records these)."""
    return list((resource.property_dependencies or {}).get(key, []))


def _ingress_openings(resource: PolicyResource) -> Iterator[tuple[str, float, float, str]]:
    """(protocol, from_port, to_port, cidr) for every world-open ingress the resource declares."""
    props = resource.props
    if resource.resource_type == SECURITY_GROUP:
        for rule in as_list(props.get("ingress")):
            rule = as_mapping(rule)
            cidrs = as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks"))
            for cidr in cidrs:
                if cidr in WORLD_CIDRS:
                    yield _openings(rule.get("protocol"), rule, cidr)
    elif resource.resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        for cidr in as_list(props.get("cidrBlocks")) + as_list(props.get("ipv6CidrBlocks")):
            if cidr in WORLD_CIDRS:
                yield _openings(props.get("protocol"), props, cidr)
    elif resource.resource_type == INGRESS_RULE:
        for cidr in (props.get("cidrIpv4"), props.get("cidrIpv6")):
            if cidr in WORLD_CIDRS:
                yield _openings(props.get("ipProtocol"), props, cidr)


def _openings(protocol: Any, rule: Mapping[str, Any], cidr: str) -> tuple[str, float, float, str]:
    protocol = str(protocol if protocol is not None else "-1").lower()
    if protocol in ("-1", "all"):
        return protocol, 0.0, 65535.0, cidr
    low = as_number(rule.get("fromPort"))
    high = as_number(rule.get("toPort"))
    return protocol, low if low is not None else 0.0, high if high is not None else 65535.0, cidr


def _owning_security_groups(resource: PolicyResource) -> list[PolicyResource]:
    if resource.resource_type == SECURITY_GROUP:
        return [resource]
    return [
        dep
        for dep in _dependencies(resource, "securityGroupId")
        if dep.resource_type == SECURITY_GROUP
    ]


def _alb_listener_ports(resources: Sequence[PolicyResource]) -> dict[str, set[float]]:
    """URN of each security group attached to a load balancer -> that balancer's listener ports."""
    ports_by_lb: dict[str, set[float]] = {}
    for listener in resources:
        if listener.resource_type not in LISTENERS:
            continue
        port = as_number(listener.props.get("port"))
        for lb in _dependencies(listener, "loadBalancerArn"):
            if port is not None:
                ports_by_lb.setdefault(lb.urn, set()).add(port)
    allowed: dict[str, set[float]] = {}
    for lb in resources:
        if lb.resource_type not in LOAD_BALANCERS:
            continue
        for group in _dependencies(lb, "securityGroups"):
            allowed.setdefault(group.urn, set()).update(ports_by_lb.get(lb.urn, set()))
    return allowed


def validate_no_open_ingress(args: StackValidationArgs, report: ReportViolation) -> None:
    listener_ports = _alb_listener_ports(args.resources)
    for resource in args.resources:
        openings = list(_ingress_openings(resource))
        if not openings:
            continue
        groups = _owning_security_groups(resource)
        ports: set[float] = set()
        for group in groups:
            ports |= listener_ports.get(group.urn, set())
        for protocol, low, high, cidr in openings:
            if protocol == "tcp" and low == high and low in ports:
                continue
            span = "all ports" if (low, high) == (0.0, 65535.0) else _port_span(low, high)
            where = (
                f"its load balancer listens on {sorted(int(p) for p in ports)}"
                if ports
                else "it is not the security group of a load balancer with listeners"
            )
            report(
                f"'{resource.name}' opens {protocol} {span} to {cidr}, but {where}. Only an ALB's "
                "security group may admit the world, and only on its listener ports; reach "
                "instances through the ALB or SSM Session Manager, and narrow the source to the "
                "ALB's security group or a known CIDR.",
                resource.urn,
            )


def _port_span(low: float, high: float) -> str:
    return f"port {int(low)}" if low == high else f"ports {int(low)}-{int(high)}"


def validate_no_public_ip(args: StackValidationArgs, report: ReportViolation) -> None:
    for resource in args.resources:
        props = resource.props
        if resource.resource_type == LAUNCH_TEMPLATE:
            for interface in as_list(props.get("networkInterfaces")):
                if is_true(as_mapping(interface).get("associatePublicIpAddress")):
                    report(
                        f"Launch template '{resource.name}' gives instances a public IP "
                        "(network_interfaces[].associate_public_ip_address). App instances sit "
                        'in private subnets behind the ALB: set it to "false" or drop it.',
                        resource.urn,
                    )
        elif resource.resource_type == INSTANCE and is_true(props.get("associatePublicIpAddress")):
            report(
                f"Instance '{resource.name}' has associate_public_ip_address=True. Put it in a "
                "private subnet and reach it through the ALB or SSM Session Manager.",
                resource.urn,
            )
        elif resource.resource_type == AUTOSCALING_GROUP:
            for subnet in _dependencies(resource, "vpcZoneIdentifiers"):
                if subnet.resource_type == SUBNET and is_true(
                    subnet.props.get("mapPublicIpOnLaunch")
                ):
                    report(
                        f"Auto Scaling group '{resource.name}' launches into subnet "
                        f"'{subnet.name}', which maps a public IP on launch. Use the private "
                        "subnets for vpc_zone_identifiers.",
                        resource.urn,
                    )


# --------------------------------------------------------------------------------------------
# Production: disabled unless a stack's policy config enables them
# --------------------------------------------------------------------------------------------
def validate_alb_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in LOAD_BALANCERS:
        return
    value = args.props.get("enableDeletionProtection")
    if not is_true(value):
        report(
            f"Load balancer '{args.name}': enable_deletion_protection is {_show(value)}. In "
            "production set enable_deletion_protection=True (the stack's "
            "deletion-protection setting).",
            None,
        )


def _replica_count(props: Mapping[str, Any]) -> float:
    """Replicas per shard the replication group declares (0 when it has none)."""
    declared = [
        as_number(as_mapping(group).get("replicaCount"))
        for group in as_list(props.get("nodeGroupConfigurations"))
    ]
    counts = [c for c in declared if c is not None]
    if counts:
        return min(counts)
    if props.get("replicasPerNodeGroup") is not None:
        return as_number(props.get("replicasPerNodeGroup")) or 0.0
    clusters = as_number(props.get("numCacheClusters"))
    return (clusters - 1) if clusters else 0.0


def validate_cache_multi_az(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPLICATION_GROUP:
        return
    props = args.props
    missing = [
        f"{snake}=True"
        for key, snake in (
            ("multiAzEnabled", "multi_az_enabled"),
            ("automaticFailoverEnabled", "automatic_failover_enabled"),
        )
        if not is_true(props.get(key))
    ]
    if _replica_count(props) < 1:
        missing.append("a replica (num_cache_clusters >= 2 or replicas_per_node_group >= 1)")
    if missing:
        report(
            f"Cache replication group '{args.name}' would not survive losing a zone. Set "
            + ", ".join(missing)
            + ".",
            None,
        )


def validate_cache_snapshots(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPLICATION_GROUP:
        return
    minimum = as_number(_config(args).get("minRetentionDays")) or 1.0
    retention = as_number(args.props.get("snapshotRetentionLimit")) or 0.0
    if retention < minimum:
        report(
            f"Cache replication group '{args.name}' keeps {int(retention)} day(s) of snapshots; "
            f"production needs at least {int(minimum)}. Set snapshot_retention_limit >= "
            f"{int(minimum)} and a snapshot_window.",
            None,
        )


def _fleet_zones(group: PolicyResource) -> tuple[set[str], str]:
    """The zones an Auto Scaling group spans, and how they were learned (for the message).

    Stack policies see outputs. The subnets the group depends on come first: their zone is an
    input, known in a preview, whereas the group's own `availabilityZones` is computed by AWS
    and unknown in the preview of a new fleet (reading it would skip the whole policy)."""
    subnets = [s for s in _dependencies(group, "vpcZoneIdentifiers") if s.resource_type == SUBNET]
    if subnets:
        zones = {
            str(s.props.get("availabilityZone") or s.props.get("availabilityZoneId") or s.urn)
            for s in subnets
        }
        return zones, "zones (from its subnets)"
    zones = {str(z) for z in as_list(group.props.get("availabilityZones"))}
    if zones:
        return zones, "availability zones"
    # Adopted subnets: the policy sees IDs only, so each distinct subnet counts as a zone; the
    # program's own config validation requires one subnet per zone.
    return {str(s) for s in as_list(group.props.get("vpcZoneIdentifiers"))}, "subnets"


def validate_fleet_spans_zones(args: StackValidationArgs, report: ReportViolation) -> None:
    config = _config(args)
    min_instances = as_number(config.get("minInstances")) or 2.0
    min_zones = as_number(config.get("minZones")) or 2.0
    for group in args.resources:
        if group.resource_type != AUTOSCALING_GROUP:
            continue
        min_size = as_number(group.props.get("minSize")) or 0.0
        if min_size < min_instances:
            report(
                f"Auto Scaling group '{group.name}' has min_size {int(min_size)}; production "
                f"needs at least {int(min_instances)} instances so one can fail or be replaced. "
                "Raise the stack's minimum fleet size.",
                group.urn,
            )
        zones, source = _fleet_zones(group)
        if len(zones) < min_zones:
            report(
                f"Auto Scaling group '{group.name}' spans {len(zones)} {source}; production needs "
                f"at least {int(min_zones)} availability zones. Give vpc_zone_identifiers one "
                "private subnet per zone (the stack's zone count).",
                group.urn,
            )


# --------------------------------------------------------------------------------------------
# Advisory
# --------------------------------------------------------------------------------------------
def _instance_types(args: ResourceValidationArgs) -> Iterator[tuple[str, str]]:
    """(where, instance type) for every EC2 type the resource would launch."""
    props = args.props
    if args.resource_type in (LAUNCH_TEMPLATE, INSTANCE) and props.get("instanceType"):
        yield "instance_type", str(props["instanceType"])
    elif args.resource_type == AUTOSCALING_GROUP:
        template = as_mapping(as_mapping(props.get("mixedInstancesPolicy")).get("launchTemplate"))
        for override in as_list(template.get("overrides")):
            kind = as_mapping(override).get("instanceType")
            if kind:
                yield "mixed_instances_policy override", str(kind)
    elif args.resource_type == EKS_NODE_GROUP:
        for kind in as_list(props.get("instanceTypes")):
            yield "instance_types", str(kind)


def validate_instance_type_allowed(args: ResourceValidationArgs, report: ReportViolation) -> None:
    patterns = [str(p) for p in as_list(_config(args).get("allowedInstanceTypes"))]
    if not patterns:
        return  # no allow-list configured for this environment
    for where, kind in _instance_types(args):
        if not any(fnmatch.fnmatchcase(kind, pattern) for pattern in patterns):
            report(
                f"'{args.name}' uses {kind} ({where}), which this environment's allow-list "
                f"{patterns} does not include. Pick an allowed type, or add it to "
                "allowedInstanceTypes in the stack's policy config (policy/config/<stack>.json).",
                None,
            )


# Resource types the project creates that carry tags; anything else with a `tags` input is
# checked too.
TAGGABLE = frozenset(
    {
        LAUNCH_TEMPLATE,
        INSTANCE,
        VOLUME,
        AUTOSCALING_GROUP,
        SUBNET,
        SECURITY_GROUP,
        REPLICATION_GROUP,
        "aws:ec2/vpc:Vpc",
        "aws:ec2/natGateway:NatGateway",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        *LOAD_BALANCERS,
        "aws:lb/targetGroup:TargetGroup",
        EKS_CLUSTER,
        EKS_NODE_GROUP,
    }
)
DEFAULT_REQUIRED_TAGS = ("Project", "Environment")


def _tag_keys(args: ResourceValidationArgs) -> set[str]:
    tags = args.props.get("tags")
    if args.resource_type == AUTOSCALING_GROUP:
        # ASG tags are a list of {key, value, propagateAtLaunch}; provider default tags
        # do not reach them.
        return {str(as_mapping(t).get("key")) for t in as_list(tags)}
    keys = set(as_mapping(tags))
    if args.provider is not None:
        default_tags = args.provider.props.get("defaultTags")
        if isinstance(default_tags, str):  # provider config can arrive as JSON text
            default_tags = _json_object(default_tags)
        keys |= set(as_mapping(as_mapping(default_tags).get("tags")))
    return keys


def validate_required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("aws:"):
        return
    if args.resource_type not in TAGGABLE and "tags" not in args.props:
        return
    required = [str(t) for t in as_list(_config(args).get("requiredTags"))] or list(
        DEFAULT_REQUIRED_TAGS
    )
    missing = [tag for tag in required if tag not in _tag_keys(args)]
    if missing:
        report(
            f"'{args.name}' ({args.resource_type}) lacks tag(s) {missing}. Set them on the "
            "resource or through the aws provider's default_tags (Auto Scaling groups need "
            "them in tags=[...] with propagate_at_launch).",
            None,
        )


# --------------------------------------------------------------------------------------------
# The policies, in the order the pack reports them
# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# EKS and Kubernetes workloads
# --------------------------------------------------------------------------------------------
def validate_eks_secrets_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    for config in as_list(args.props.get("encryptionConfig")):
        config = as_mapping(config)
        if "secrets" in as_list(config.get("resources")) and as_mapping(config.get("provider")).get(
            "keyArn"
        ):
            return
    report(
        f"EKS cluster '{args.name}': Kubernetes Secrets are not envelope-encrypted with a "
        'KMS key. Set encryption_config={provider: {key_arn: <key>}, resources: ["secrets"]}.',
        None,
    )


def _eks_log_check(
    args: ResourceValidationArgs, report: ReportViolation, wanted: Iterable[str]
) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    enabled = set(as_list(args.props.get("enabledClusterLogTypes")))
    missing = [log_type for log_type in wanted if log_type not in enabled]
    if missing:
        report(
            f"EKS cluster '{args.name}': control-plane logs {', '.join(missing)} are off. "
            f"Add them to enabled_cluster_log_types.",
            None,
        )


def validate_eks_control_plane_logging(
    args: ResourceValidationArgs, report: ReportViolation
) -> None:
    _eks_log_check(args, report, EKS_REQUIRED_LOG_TYPES)


def validate_eks_all_control_plane_logs(
    args: ResourceValidationArgs, report: ReportViolation
) -> None:
    _eks_log_check(args, report, EKS_ALL_LOG_TYPES)


def validate_eks_endpoint_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    vpc = as_mapping(args.props.get("vpcConfig"))
    if not is_true(vpc.get("endpointPrivateAccess")):
        report(
            f"EKS cluster '{args.name}': the private endpoint is off, so nodes reach the API "
            "over the internet. Set vpc_config.endpoint_private_access=True.",
            None,
        )
    # The provider's default for endpoint_public_access is true.
    if vpc.get("endpointPublicAccess") is None or is_true(vpc.get("endpointPublicAccess")):
        cidrs = as_list(vpc.get("publicAccessCidrs"))
        open_cidrs = [cidr for cidr in cidrs if cidr in WORLD_CIDRS]
        if not cidrs or open_cidrs:
            report(
                f"EKS cluster '{args.name}': the public API endpoint is open to "
                f"{', '.join(open_cidrs) or '0.0.0.0/0 (no public_access_cidrs)'}. List the "
                "CIDRs that may reach it in vpc_config.public_access_cidrs, or turn "
                "endpoint_public_access off.",
                None,
            )


def _pod_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_mapping(as_mapping(as_mapping(props.get("spec")).get("template")).get("spec"))


def _containers(props: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    spec = _pod_spec(props)
    for key in ("initContainers", "containers"):
        for container in as_list(spec.get(key)):
            yield as_mapping(container)


def validate_pods_not_privileged_or_root(
    args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type not in POD_TEMPLATE_KINDS:
        return
    pod = as_mapping(_pod_spec(args.props).get("securityContext"))
    pod_non_root = is_true(pod.get("runAsNonRoot"))
    for container in _containers(args.props):
        context = as_mapping(container.get("securityContext"))
        name = f"{args.name}/{container.get('name')}"
        if is_true(context.get("privileged")):
            report(f"Pod container '{name}' is privileged. Remove privileged: true.", None)
        if context.get("allowPrivilegeEscalation") is not False:
            report(
                f"Pod container '{name}' may escalate privileges. Set "
                "securityContext.allowPrivilegeEscalation: false.",
                None,
            )
        non_root = context.get("runAsNonRoot")
        if not (is_true(non_root) or (non_root is None and pod_non_root)):
            report(
                f"Pod container '{name}' may run as root. Set runAsNonRoot: true (pod or "
                "container securityContext) and a non-zero runAsUser.",
                None,
            )
        user = context.get("runAsUser", pod.get("runAsUser"))
        if as_number(user) == 0:
            report(f"Pod container '{name}' runs as UID 0. Use a non-root UID.", None)


def validate_pods_have_probes_and_resources(
    args: ResourceValidationArgs, report: ReportViolation
) -> None:
    if args.resource_type not in POD_TEMPLATE_KINDS:
        return
    for container in as_list(_pod_spec(args.props).get("containers")):
        container = as_mapping(container)
        name = f"{args.name}/{container.get('name')}"
        missing = [
            probe for probe in ("readinessProbe", "livenessProbe") if not container.get(probe)
        ]
        resources = as_mapping(container.get("resources"))
        requests = as_mapping(resources.get("requests"))
        limits = as_mapping(resources.get("limits"))
        missing += [f"requests.{key}" for key in ("cpu", "memory") if not requests.get(key)]
        if not limits.get("memory"):
            missing.append("limits.memory")
        if missing:
            report(
                f"Pod container '{name}' has no {', '.join(missing)}: without probes a broken "
                "pod keeps traffic; without requests and a memory limit the scheduler and "
                "the autoscalers cannot size it.",
                None,
            )


# --------------------------------------------------------------------------------------------
# Mandatory: the security review's AWS findings (issue 12)
# --------------------------------------------------------------------------------------------
def _referring(
    resources: Sequence[PolicyResource], types: Sequence[str], key: str, target: PolicyResource
) -> list[PolicyResource]:
    """Resources of ``types`` whose input ``key`` came from ``target``'s outputs."""
    return [
        r
        for r in resources
        if r.resource_type in types and any(d is target for d in _dependencies(r, key))
    ]


def validate_default_security_group_closed(
    args: StackValidationArgs, report: ReportViolation
) -> None:
    for group in (r for r in args.resources if r.resource_type == DEFAULT_SECURITY_GROUP):
        rules = as_list(group.props.get("ingress")) + as_list(group.props.get("egress"))
        if rules:
            report(
                f"The default security group '{group.name}' has {len(rules)} rule(s). Leave "
                "ec2.DefaultSecurityGroup without ingress and egress so it admits nothing.",
                group.urn,
            )
    for vpc in (r for r in args.resources if r.resource_type == VPC):
        if not _referring(args.resources, (DEFAULT_SECURITY_GROUP,), "vpcId", vpc):
            report(
                f"VPC '{vpc.name}': its default security group is unmanaged and keeps AWS's "
                "allow-all-within-the-group rules. Adopt it with ec2.DefaultSecurityGroup "
                "(no rules).",
                vpc.urn,
            )


def validate_alarm_topic_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != TOPIC:
        return
    key = args.props.get("kmsMasterKeyId")
    if not key or key == AWS_MANAGED_SNS_KEY:
        report(
            f"SNS topic '{args.name}': kms_master_key_id is {_show(key)}. Encrypt it with a "
            "customer managed key whose policy lets cloudwatch.amazonaws.com use it (the AWS "
            "managed aws/sns key does not let CloudWatch alarms publish).",
            None,
        )


def validate_kms_key_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != KMS_KEY:
        return
    symmetric = args.props.get("customerMasterKeySpec") in (None, "SYMMETRIC_DEFAULT")
    if symmetric and not is_true(args.props.get("enableKeyRotation")):
        report(
            f"KMS key '{args.name}': enable_key_rotation is "
            f"{_show(args.props.get('enableKeyRotation'))}. Set enable_key_rotation=True.",
            None,
        )


def validate_no_aws_managed_policies(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROLE_POLICY_ATTACHMENT:
        return
    arn = str(args.props.get("policyArn") or "")
    # EKS's own roles: AWS documents these managed policies as the cluster role's and node
    # role's required permissions (README "Security": exceptions).
    if arn.rsplit("/", 1)[-1] in EKS_REQUIRED_MANAGED_POLICIES:
        return
    if ":iam::aws:policy/" in arn:
        report(
            f"Role policy attachment '{args.name}' attaches the AWS managed policy "
            f"{arn.rsplit('/', 1)[-1]}, which grants more than one app needs (e.g. "
            "AmazonSSMManagedInstanceCore reads every SSM parameter). Grant the actions in an "
            "inline policy scoped to the app's resources.",
            None,
        )


def _aborts_uploads_bucket_wide(lifecycle: PolicyResource) -> bool:
    for rule in as_list(lifecycle.props.get("rules")):
        rule = as_mapping(rule)
        abort = as_mapping(rule.get("abortIncompleteMultipartUpload"))
        whole_bucket = as_mapping(rule.get("filter")).get("prefix", "") in ("", None) and not any(
            as_mapping(rule.get("filter")).get(k) for k in ("and", "tag", "objectSizeGreaterThan")
        )
        if rule.get("status") == "Enabled" and abort.get("daysAfterInitiation") and whole_bucket:
            return True
    return False


def validate_buckets_abort_uploads(args: StackValidationArgs, report: ReportViolation) -> None:
    for bucket in (r for r in args.resources if r.resource_type in BUCKETS):
        lifecycles = _referring(args.resources, BUCKET_LIFECYCLES, "bucket", bucket)
        if not any(_aborts_uploads_bucket_wide(lifecycle) for lifecycle in lifecycles):
            report(
                f"Bucket '{bucket.name}': no lifecycle rule aborts incomplete multipart uploads "
                "for the whole bucket; their parts are stored (and billed) until one does. Add "
                "an enabled rule with an empty prefix and abort_incomplete_multipart_upload.",
                bucket.urn,
            )


def validate_waf_logs_requests(args: StackValidationArgs, report: ReportViolation) -> None:
    for acl in (r for r in args.resources if r.resource_type == WEB_ACL):
        logging = _referring(args.resources, (WAF_LOGGING,), "resourceArn", acl)
        groups = [
            d
            for config in logging
            for d in _dependencies(config, "logDestinationConfigs")
            if d.resource_type == LOG_GROUP
        ]
        if not logging:
            report(
                f"Web ACL '{acl.name}' logs no requests. Add a wafv2.WebAclLoggingConfiguration "
                f"to a log group named {WAF_LOG_PREFIX}...",
                acl.urn,
            )
        for group in groups:
            name = str(group.props.get("name") or "")
            if not name.startswith(WAF_LOG_PREFIX):
                report(
                    f"Web ACL '{acl.name}' logs to '{name or group.name}': WAF accepts only "
                    f"destinations named {WAF_LOG_PREFIX}...",
                    acl.urn,
                )


# --------------------------------------------------------------------------------------------
# Production: what the prod stack adds
# --------------------------------------------------------------------------------------------
def validate_vpc_flow_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    for vpc in (r for r in args.resources if r.resource_type == VPC):
        if not _referring(args.resources, (FLOW_LOG,), "vpcId", vpc):
            report(f"VPC '{vpc.name}' has no flow log. Set pyscale:flowLogs: true.", vpc.urn)


def _access_log_buckets(resources: Sequence[PolicyResource]) -> list[PolicyResource]:
    """Buckets ALB access logs go to: ALB log delivery supports SSE-S3 only."""
    return [
        bucket
        for alb in resources
        if alb.resource_type in LOAD_BALANCERS
        for bucket in _dependencies(alb, "accessLogs")
    ]


def validate_customer_managed_key(args: StackValidationArgs, report: ReportViolation) -> None:
    access_log_buckets = _access_log_buckets(args.resources)
    for resource in args.resources:
        props, kind = resource.props, resource.resource_type
        if kind in (LOG_GROUP, SECRET) or (
            kind == REPLICATION_GROUP and is_true(props.get("atRestEncryptionEnabled"))
        ):
            if not props.get("kmsKeyId"):
                report(
                    f"'{resource.name}' is encrypted with an AWS managed key. Set "
                    "pyscale:customerManagedKey: true (kms_key_id = the stack's key).",
                    resource.urn,
                )
        elif kind in BUCKET_ENCRYPTIONS:
            buckets = _dependencies(resource, "bucket")
            if any(b in access_log_buckets for b in buckets):
                continue  # SSE-S3 is what ALB access logs require
            for rule in as_list(props.get("rules")):
                default = as_mapping(as_mapping(rule).get("applyServerSideEncryptionByDefault"))
                if default.get("sseAlgorithm") != "aws:kms" or not default.get("kmsMasterKeyId"):
                    report(
                        f"Bucket encryption '{resource.name}' is not SSE-KMS with the stack's "
                        "key. Set pyscale:customerManagedKey: true.",
                        resource.urn,
                    )


def _cache_user_enabled(user: PolicyResource) -> bool:
    """ElastiCache access strings are Redis ACL rules: the last on/off wins, off if none."""
    states = [t for t in str(user.props.get("accessString") or "").split() if t in ("on", "off")]
    return bool(states) and states[-1] == "on"


def validate_cache_iam_auth(args: StackValidationArgs, report: ReportViolation) -> None:
    """No long-lived password opens a production cache: RBAC, and every enabled user of its
    user groups authenticates with IAM (the disabled ``default`` user may keep its password)."""
    fix = (
        "Set pyscale:cacheAuth: iam (Valkey 7.2+ or Redis 7+; for an older engine disable "
        "this policy in the stack's policy config, with the reason)."
    )
    for group in (r for r in args.resources if r.resource_type == REPLICATION_GROUP):
        props = group.props
        if props.get("authToken") or props.get("authTokenWo"):
            report(
                f"Cache replication group '{group.name}' authenticates with an AUTH token, a "
                f"long-lived password. {fix}",
                group.urn,
            )
            continue
        user_groups = [
            d for d in _dependencies(group, "userGroupIds") if d.resource_type == CACHE_USER_GROUP
        ]
        users = [
            user
            for user_group in user_groups
            for user in _dependencies(user_group, "userIds")
            if user.resource_type == CACHE_USER
        ]
        with_password = [
            user.name
            for user in users
            if _cache_user_enabled(user)
            and as_mapping(user.props.get("authenticationMode")).get("type") != "iam"
        ]
        if not any(_cache_user_enabled(user) for user in users) or with_password:
            report(
                f"Cache replication group '{group.name}': "
                + (
                    f"its enabled users {', '.join(with_password)} authenticate with a password"
                    if with_password
                    else "no enabled IAM-authenticated user of a user group of the stack's"
                )
                + f". {fix}",
                group.urn,
            )


MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
# Production policies ship disabled; policy/config/prod.json enables them as mandatory.
PRODUCTION = EnforcementLevel.DISABLED

_INTEGER_AT_LEAST_1 = {"type": "integer", "minimum": 1}
_PATTERNS = {"type": "array", "items": {"type": "string"}}

POLICIES: list[Policy] = [
    ResourceValidationPolicy(
        name="ebs-encrypted",
        description="Every EBS volume (launch template, instance, volume) is encrypted.",
        validate=validate_ebs_encrypted,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="cache-encrypted-at-rest",
        description="ElastiCache data is encrypted at rest.",
        validate=validate_cache_encrypted_at_rest,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="cache-tls-and-auth",
        description="ElastiCache requires TLS and AUTH (token or RBAC user groups).",
        validate=validate_cache_tls_and_auth,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="imdsv2-required",
        description="Instances and launch templates require IMDSv2 session tokens.",
        validate=validate_imdsv2_required,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="no-open-ingress-except-alb-listeners",
        description="No ingress from 0.0.0.0/0 or ::/0 except an ALB's listener ports.",
        validate=validate_no_open_ingress,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="no-public-ip-on-app-instances",
        description="App instances get no public IP address.",
        validate=validate_no_public_ip,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="alb-drops-invalid-headers",
        description="Application load balancers drop invalid HTTP header fields.",
        validate=validate_alb_drops_invalid_headers,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="prod-alb-deletion-protection",
        description="Production load balancers have deletion protection.",
        validate=validate_alb_deletion_protection,
        enforcement_level=PRODUCTION,
    ),
    ResourceValidationPolicy(
        name="prod-cache-multi-az-failover",
        description="Production caches are multi-AZ with automatic failover and a replica.",
        validate=validate_cache_multi_az,
        enforcement_level=PRODUCTION,
    ),
    StackValidationPolicy(
        name="prod-fleet-spans-zones",
        description="Production fleets run at least 2 instances over at least 2 zones.",
        validate=validate_fleet_spans_zones,
        enforcement_level=PRODUCTION,
        config_schema=PolicyConfigSchema(
            properties={"minInstances": _INTEGER_AT_LEAST_1, "minZones": _INTEGER_AT_LEAST_1}
        ),
    ),
    ResourceValidationPolicy(
        name="prod-cache-snapshots",
        description="Production caches keep daily snapshots.",
        validate=validate_cache_snapshots,
        enforcement_level=PRODUCTION,
        config_schema=PolicyConfigSchema(properties={"minRetentionDays": _INTEGER_AT_LEAST_1}),
    ),
    StackValidationPolicy(
        name="default-security-group-closed",
        description="Every VPC's default security group is managed and has no rules.",
        validate=validate_default_security_group_closed,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="alarm-topics-encrypted",
        description="SNS topics use a customer managed KMS key (CloudWatch alarms can use it).",
        validate=validate_alarm_topic_encrypted,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="kms-keys-rotated",
        description="Symmetric KMS keys have automatic rotation on.",
        validate=validate_kms_key_rotation,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="no-aws-managed-policies-on-roles",
        description="Roles get inline least-privilege policies, not AWS managed ones.",
        validate=validate_no_aws_managed_policies,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="buckets-abort-incomplete-uploads",
        description="Every bucket aborts abandoned multipart uploads, bucket-wide.",
        validate=validate_buckets_abort_uploads,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="waf-logs-requests",
        description="Every web ACL logs its requests to an aws-waf-logs- destination.",
        validate=validate_waf_logs_requests,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="eks-secrets-encrypted",
        description="EKS clusters envelope-encrypt Kubernetes Secrets with a KMS key.",
        validate=validate_eks_secrets_encrypted,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="eks-control-plane-logging",
        description="EKS clusters send the api, audit and authenticator logs.",
        validate=validate_eks_control_plane_logging,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="eks-endpoint-access",
        description="EKS API: private endpoint on; a public one only for listed CIDRs.",
        validate=validate_eks_endpoint_access,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="pods-not-privileged-or-root",
        description="Pod containers run as non-root, unprivileged, without escalation.",
        validate=validate_pods_not_privileged_or_root,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="pods-have-probes-and-resources",
        description="Pod containers have readiness/liveness probes, requests, a memory limit.",
        validate=validate_pods_have_probes_and_resources,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="prod-eks-all-control-plane-logs",
        description="Production EKS clusters send all five control-plane log types.",
        validate=validate_eks_all_control_plane_logs,
        enforcement_level=PRODUCTION,
    ),
    ResourceValidationPolicy(
        name="instance-type-allowed",
        description="EC2 instance types come from the environment's allow-list.",
        validate=validate_instance_type_allowed,
        enforcement_level=ADVISORY,
        config_schema=PolicyConfigSchema(properties={"allowedInstanceTypes": _PATTERNS}),
    ),
    ResourceValidationPolicy(
        name="required-tags",
        description="Taggable resources carry the required tags.",
        validate=validate_required_tags,
        enforcement_level=ADVISORY,
        config_schema=PolicyConfigSchema(properties={"requiredTags": _PATTERNS}),
    ),
    StackValidationPolicy(
        name="prod-vpc-flow-logs",
        description="Production VPCs have flow logs.",
        validate=validate_vpc_flow_logs,
        enforcement_level=PRODUCTION,
    ),
    StackValidationPolicy(
        name="prod-customer-managed-key",
        description="Production data at rest (log groups, cache, secrets, buckets but ALB "
        "access logs) uses a customer managed KMS key.",
        validate=validate_customer_managed_key,
        enforcement_level=PRODUCTION,
    ),
    StackValidationPolicy(
        name="prod-cache-iam-auth",
        description="Production caches take no long-lived password: RBAC whose enabled users "
        "all authenticate with IAM.",
        validate=validate_cache_iam_auth,
        enforcement_level=PRODUCTION,
    ),
]


def policy_names() -> list[str]:
    return [policy.name for policy in POLICIES]


def iter_policies(kind: type) -> Iterable[Any]:
    return (policy for policy in POLICIES if isinstance(policy, kind))
