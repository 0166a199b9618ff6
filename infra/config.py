"""The one place the stack's configuration is read and validated.

Engine strings in (``"pyscale:minSize" -> "3"``, booleans ``"true"``, lists as JSON text —
exactly what the Pulumi engine hands the program), one frozen, typed ``Settings`` out.
Every problem is collected and reported at once, each naming the key and what is allowed,
before any resource is registered. Components never read config: they take Args built
from these settings.

``KEYS`` is the registry of every project key: its type, default and meaning. Pulumi.yaml's
``config:`` schema mirrors it (a test keeps the two equal), so the CLI type-checks
``pulumi config set`` and the program sees the same defaults offline and on AWS.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi

from infra import instance_types, regions

NAMESPACE = "pyscale"
REGION_KEY = "aws:region"
# The aws provider's own setting: pulumi-aws applies these tags to every taggable resource.
# The program forwards them where the provider cannot reach: the Auto Scaling group (with
# propagate_at_launch) and the launch template's instance and volume tag specifications.
DEFAULT_TAGS_KEY = "aws:defaultTags"

KeyType = Literal["string", "integer", "boolean", "array", "object"]


@dataclass(frozen=True)
class ConfigKey:
    """One project config key. ``object`` keys cannot be typed by the CLI (schema omits them)."""

    name: str
    type: KeyType
    default: Any
    description: str

    @property
    def full_name(self) -> str:
        return f"{NAMESPACE}:{self.name}"


# ---------------------------------------------------------------------------------------
# The registry: every key, its type and default. Order = the README's reference table.
# ---------------------------------------------------------------------------------------
KEYS: tuple[ConfigKey, ...] = (
    # network
    ConfigKey("availabilityZones", "integer", 2, "AZs to spread subnets over (2-6)."),
    ConfigKey("vpcCidr", "string", "10.0.0.0/16", "IPv4 CIDR of the new VPC (/16 to /22)."),
    ConfigKey("natGateways", "string", "single", "NAT for private subnets: none|single|perAz."),
    ConfigKey("existingVpcId", "string", "", "Adopt this VPC instead of creating one."),
    ConfigKey("existingPublicSubnetIds", "array", [], "Public subnets of the adopted VPC."),
    ConfigKey("existingPrivateSubnetIds", "array", [], "Private subnets of the adopted VPC."),
    # load balancer
    ConfigKey("allowedCidrs", "array", ["0.0.0.0/0"], "IPv4 CIDRs the ALB listeners admit."),
    ConfigKey("requireHttps", "boolean", False, "Refuse to deploy without a certificate."),
    ConfigKey("certificateArn", "string", "", "ACM certificate for the HTTPS listener."),
    ConfigKey("domainName", "string", "", "Domain to request+DNS-validate a certificate for."),
    ConfigKey("hostedZoneId", "string", "", "Route 53 hosted zone of domainName."),
    ConfigKey(
        "sslPolicy",
        "string",
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ALB TLS policy (a TLS 1.3 policy).",
    ),
    ConfigKey("albDeletionProtection", "boolean", False, "Protect the ALB from deletion."),
    ConfigKey("albAccessLogs", "boolean", False, "ALB access logs to an encrypted bucket."),
    ConfigKey("waf", "boolean", False, "WAF web ACL: AWS common rules + rate limit per IP."),
    ConfigKey("wafRateLimit", "integer", 2000, "Requests per IP per 5 minutes before block."),
    # cache
    ConfigKey("cacheEngine", "string", "valkey", "ElastiCache engine: valkey|redis."),
    ConfigKey("cacheEngineVersion", "string", "", "Engine version; empty = latest pinned."),
    ConfigKey("cacheNodeType", "string", "cache.t4g.micro", "ElastiCache node type."),
    ConfigKey("cacheClusterMode", "boolean", False, "Cluster mode (sharding) on."),
    ConfigKey("cacheShards", "integer", 1, "Shards (node groups); >1 needs cluster mode."),
    ConfigKey("cacheReplicas", "integer", 0, "Replicas per shard (0-5)."),
    ConfigKey("cacheMultiAz", "boolean", False, "Multi-AZ (needs replicas and failover)."),
    ConfigKey("cacheAutomaticFailover", "boolean", False, "Promote a replica on failure."),
    ConfigKey("cacheTransitEncryption", "boolean", True, "TLS between app and cache."),
    ConfigKey("cacheAtRestEncryption", "boolean", True, "Encrypt cache data at rest."),
    ConfigKey("cacheAuthToken", "boolean", True, "AUTH token (needs transit encryption)."),
    ConfigKey("cacheSnapshotRetentionDays", "integer", 0, "Daily snapshots kept (0-35)."),
    ConfigKey("cacheSnapshotWindow", "string", "03:00-04:00", "UTC hh:mm-hh:mm, >= 60 min."),
    ConfigKey(
        "cacheMaintenanceWindow", "string", "sun:05:00-sun:06:00", "UTC ddd:hh:mm-ddd:hh:mm."
    ),
    ConfigKey("cacheTtlSeconds", "integer", 300, "The app's cache TTL in seconds."),
    # fleet
    ConfigKey("instanceType", "string", "t4g.small", "EC2 instance type of the app fleet."),
    ConfigKey("minSize", "integer", 1, "Fewest instances."),
    ConfigKey("desiredCapacity", "integer", 1, "Instances at deploy time."),
    ConfigKey("maxSize", "integer", 2, "Most instances."),
    ConfigKey("cpuTargetPercent", "integer", 50, "Target tracking: average CPU % (1-100)."),
    ConfigKey("requestsPerTarget", "integer", 1000, "Target tracking: ALB requests/target."),
    ConfigKey("healthCheckGraceSeconds", "integer", 120, "ELB health check grace (0-7200)."),
    ConfigKey("instanceWarmupSeconds", "integer", 120, "Warm-up before metrics count."),
    ConfigKey("refreshMinHealthyPercent", "integer", 90, "Instance refresh min healthy %."),
    ConfigKey("warmPool", "boolean", False, "Keep pre-initialised stopped instances."),
    ConfigKey("warmPoolMinSize", "integer", 0, "Instances kept in the warm pool."),
    ConfigKey("mixedInstanceTypes", "array", [], "Extra types for mixed instances/spot."),
    ConfigKey("onDemandBaseCapacity", "integer", 0, "On-demand instances before spot."),
    ConfigKey("onDemandPercentAboveBase", "integer", 100, "On-demand % above base; <100=spot."),
    ConfigKey(
        "spotAllocationStrategy",
        "string",
        "price-capacity-optimized",
        "How spot capacity is chosen.",
    ),
    ConfigKey("maxInstanceLifetimeDays", "integer", 0, "Replace instances older (0=off)."),
    ConfigKey("scheduledScaling", "object", [], "Scheduled capacity changes (list of objects)."),
    ConfigKey("rootVolumeSizeGb", "integer", 16, "Encrypted gp3 root volume size in GiB."),
    ConfigKey("webConcurrency", "integer", 0, "gunicorn workers; 0 = from the vCPUs."),
    # release
    ConfigKey("appSourceDir", "string", "app", "Your app's directory, relative to the repo."),
    ConfigKey("wsgiModule", "string", "app.wsgi:app", "WSGI callable as module:attribute."),
    # monitoring
    ConfigKey("alarmEmail", "string", "", "Email subscribed to the alarm topic."),
    ConfigKey(
        "logRetentionDays",
        "integer",
        14,
        "Days logs are kept: CloudWatch log groups and ALB access logs.",
    ),
)
KEYS_BY_NAME: Mapping[str, ConfigKey] = {key.name: key for key in KEYS}


# ---------------------------------------------------------------------------------------
# Allowed values (AWS rules the provider's Check would otherwise report mid-deploy)
# ---------------------------------------------------------------------------------------
class NatStrategy(enum.StrEnum):
    NONE = "none"
    SINGLE = "single"
    PER_AZ = "perAz"


class CacheEngine(enum.StrEnum):
    VALKEY = "valkey"
    REDIS = "redis"


# Engine version -> parameter group family. An empty cacheEngineVersion picks the first
# entry: the version pyscale is tested with, not necessarily the newest.
CACHE_ENGINE_VERSIONS: Mapping[CacheEngine, Mapping[str, str]] = {
    CacheEngine.VALKEY: {"8.0": "valkey8", "8.1": "valkey8", "7.2": "valkey7"},
    CacheEngine.REDIS: {"7.1": "redis7", "7.0": "redis7", "6.2": "redis6.x"},
}
# The values CloudWatch Logs PutRetentionPolicy accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096)
LOG_RETENTION_DAYS += (1827, 2192, 2557, 2922, 3288, 3653)
SPOT_ALLOCATION_STRATEGIES = (
    "price-capacity-optimized",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "lowest-price",
)
TLS13_POLICY_PREFIX = "ELBSecurityPolicy-TLS13-"
CACHE_PORT = 6379
MAX_CACHE_REPLICAS = 5
MAX_CACHE_SHARDS = 500
# Values the shipped stacks use as placeholders (RFC 2606 domains, AWS docs' account id).
EXAMPLE_MARKERS = ("example.com", "example.org", "example.net", "EXAMPLE", "123456789012")

_CACHE_NODE_TYPE = re.compile(r"^cache\.[a-z][a-z0-9-]*\.(micro|small|medium|large|\d*xlarge)$")
_SNAPSHOT_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_DAY = "(mon|tue|wed|thu|fri|sat|sun)"
_MAINTENANCE_WINDOW = re.compile(
    rf"^{_DAY}:([01]\d|2[0-3]):([0-5]\d)-{_DAY}:([01]\d|2[0-3]):([0-5]\d)$"
)
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_CERTIFICATE_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+$"
)
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_WSGI = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
_CRON = re.compile(r"^\S+( \S+){4}$")


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkSettings:
    availability_zones: int
    vpc_cidr: str
    nat: NatStrategy
    # Adopting an existing VPC: all three set, else all empty (we create the network).
    existing_vpc_id: str | None
    existing_public_subnet_ids: tuple[str, ...]
    existing_private_subnet_ids: tuple[str, ...]

    @property
    def adopts_existing_vpc(self) -> bool:
        return self.existing_vpc_id is not None


@dataclass(frozen=True)
class LoadBalancerSettings:
    allowed_cidrs: tuple[str, ...]
    require_https: bool
    certificate_arn: str | None
    domain_name: str | None
    hosted_zone_id: str | None
    ssl_policy: str
    deletion_protection: bool
    access_logs: bool
    waf: bool
    waf_rate_limit: int
    # True while the TLS values are the shipped placeholders: the program warns.
    uses_example_tls: bool

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None or self.domain_name is not None

    @property
    def listener_ports(self) -> tuple[int, ...]:
        return (80, 443) if self.https else (80,)


@dataclass(frozen=True)
class CacheSettings:
    engine: CacheEngine
    engine_version: str
    parameter_group_family: str
    node_type: str
    cluster_mode: bool
    shards: int
    replicas_per_shard: int
    multi_az: bool
    automatic_failover: bool
    transit_encryption: bool
    at_rest_encryption: bool
    auth_token: bool
    snapshot_retention_days: int
    snapshot_window: str
    maintenance_window: str
    ttl_seconds: int
    port: int = CACHE_PORT

    @property
    def node_count(self) -> int:
        return self.shards * (1 + self.replicas_per_shard)


@dataclass(frozen=True)
class ScheduledAction:
    name: str
    recurrence: str
    min_size: int
    max_size: int
    desired_capacity: int
    time_zone: str = "Etc/UTC"


@dataclass(frozen=True)
class FleetSettings:
    instance_type: str
    instance: instance_types.InstanceType
    min_size: int
    desired_capacity: int
    max_size: int
    cpu_target_percent: int
    requests_per_target: int
    health_check_grace_seconds: int
    instance_warmup_seconds: int
    refresh_min_healthy_percent: int
    warm_pool: bool
    warm_pool_min_size: int
    mixed_instance_types: tuple[str, ...]
    on_demand_base_capacity: int
    on_demand_percent_above_base: int
    spot_allocation_strategy: str
    max_instance_lifetime_days: int
    scheduled_actions: tuple[ScheduledAction, ...]
    root_volume_size_gb: int
    # None: gunicorn derives workers from the vCPUs it sees.
    web_concurrency: int | None

    @property
    def architecture(self) -> str:
        return self.instance.architecture

    @property
    def uses_spot(self) -> bool:
        return self.on_demand_percent_above_base < 100

    @property
    def uses_mixed_instances(self) -> bool:
        return bool(self.mixed_instance_types) or self.uses_spot


@dataclass(frozen=True)
class ReleaseSettings:
    app_source_dir: str
    wsgi_module: str


@dataclass(frozen=True)
class MonitoringSettings:
    alarm_email: str | None
    log_retention_days: int


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    region: str
    network: NetworkSettings
    load_balancer: LoadBalancerSettings
    cache: CacheSettings
    fleet: FleetSettings
    release: ReleaseSettings
    monitoring: MonitoringSettings
    # From aws:defaultTags; sorted (key, value) pairs so the settings stay hashable.
    tags: tuple[tuple[str, str], ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


class ConfigError(pulumi.RunError):
    """The stack's configuration is invalid. A RunError: the engine prints it without a
    traceback. ``problems`` holds one line per problem, each naming its key."""

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.stack = stack
        self.problems = tuple(problems)
        noun = "problem" if len(problems) == 1 else "problems"
        lines = [f"stack {stack!r}: {len(problems)} configuration {noun}:"]
        lines += [f"  - {problem}" for problem in problems]
        lines.append("Fix them in stacks/Pulumi.<stack>.yaml or with `pulumi config set`.")
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------------
# Reading engine strings, collecting problems instead of stopping at the first
# ---------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, config: Mapping[str, str]) -> None:
        self.config = config
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        name = key if ":" in key else f"{NAMESPACE}:{key}"
        self.problems.append(f"{name}: {message}")

    def _raw(self, key: str) -> tuple[str | None, Any]:
        spec = KEYS_BY_NAME[key]
        raw = self.config.get(spec.full_name)
        return raw, spec.default

    def string(self, key: str) -> str:
        raw, default = self._raw(key)
        return default if raw is None else raw.strip()

    def boolean(self, key: str) -> bool:
        raw, default = self._raw(key)
        if raw is None:
            return default
        if raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        self.problem(key, f"must be true or false, got {raw!r}")
        return default

    def integer(self, key: str, low: int, high: int, what: str = "") -> int:
        raw, default = self._raw(key)
        if raw is None:
            value = default
        else:
            try:
                value = int(raw.strip())
            except ValueError:
                self.problem(key, f"must be a whole number from {low} to {high}, got {raw!r}")
                return default
        if not low <= value <= high:
            self.problem(key, f"must be from {low} to {high}{what}, got {value}")
            return max(low, min(high, value))
        return value

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self.string(key)
        if value not in allowed:
            hint = difflib.get_close_matches(value, allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.problem(key, f"must be one of {', '.join(allowed)}; got {value!r}{suggestion}")
            return str(KEYS_BY_NAME[key].default)
        return value

    def json_value(self, key: str) -> Any:
        raw, default = self._raw(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            spec = KEYS_BY_NAME[key]
            self.problem(key, f"must be a YAML/JSON {_describe(spec.type)}, got {raw!r}")
            return default

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.json_value(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(key, f"must be a list of strings, got {value!r}")
            return ()
        return tuple(item.strip() for item in value)


def _describe(key_type: str) -> str:
    return {"array": "list", "object": "list of objects"}.get(key_type, key_type)


# ---------------------------------------------------------------------------------------
# Per-area readers
# ---------------------------------------------------------------------------------------
def _read_region(reader: _Reader) -> str:
    region = (reader.config.get(REGION_KEY) or "").strip()
    known = regions.known_regions()
    if not region:
        reader.problem(REGION_KEY, "is required: set the AWS region, e.g. us-east-1")
    elif region not in known:
        hint = difflib.get_close_matches(region, known, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        reader.problem(REGION_KEY, f"{region!r} is not an AWS region{suggestion}")
    return region


def _read_default_tags(reader: _Reader) -> tuple[tuple[str, str], ...]:
    """aws:defaultTags is ``{tags: {Key: value}}``; AWS tag rules checked here, before the
    provider would refuse them resource by resource."""
    raw = reader.config.get(DEFAULT_TAGS_KEY)
    if raw is None:
        return ()
    expected = "must be an object {tags: {Key: value, ...}} of strings"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        reader.problem(DEFAULT_TAGS_KEY, f"{expected}, got {raw!r}")
        return ()
    tags = value.get("tags") if isinstance(value, dict) else None
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        reader.problem(DEFAULT_TAGS_KEY, f"{expected}, got {raw!r}")
        return ()
    for key, tag_value in tags.items():
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            reader.problem(
                DEFAULT_TAGS_KEY,
                f"tag key {key!r} must be 1-128 characters and not start with 'aws:'",
            )
        if len(tag_value) > 256:
            reader.problem(DEFAULT_TAGS_KEY, f"tag {key!r}: value is longer than 256 characters")
    return tuple(sorted(tags.items()))


def _read_network(reader: _Reader) -> NetworkSettings:
    azs = reader.integer("availabilityZones", 2, 6, " (an ALB needs at least two AZs)")
    cidr = reader.string("vpcCidr")
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
        if not 16 <= network.prefixlen <= 22:
            reader.problem("vpcCidr", f"prefix must be /16 to /22, got /{network.prefixlen}")
    except ValueError:
        reader.problem("vpcCidr", f"must be an IPv4 network such as 10.0.0.0/16, got {cidr!r}")
    nat = NatStrategy(reader.choice("natGateways", [s.value for s in NatStrategy]))
    vpc_id = reader.string("existingVpcId") or None
    public = reader.string_list("existingPublicSubnetIds")
    private = reader.string_list("existingPrivateSubnetIds")
    if vpc_id is None and (public or private):
        reader.problem(
            "existingVpcId",
            "is required when existingPublicSubnetIds/existingPrivateSubnetIds are set",
        )
    if vpc_id is None and nat is NatStrategy.NONE:
        # The boot script installs Python packages from PyPI and the app calls Secrets
        # Manager; the new VPC's only endpoint is the S3 gateway, so instances would hang.
        reader.problem(
            "natGateways",
            "none leaves the app instances of a new VPC without a route to PyPI, Secrets "
            "Manager, SSM and CloudWatch: use single or perAz (or adopt a VPC with "
            "existingVpcId whose private subnets have that egress)",
        )
    if vpc_id is not None:
        if not _VPC_ID.match(vpc_id):
            reader.problem("existingVpcId", f"must look like vpc-0123456789abcdef0, got {vpc_id!r}")
        for key, subnets in (
            ("existingPublicSubnetIds", public),
            ("existingPrivateSubnetIds", private),
        ):
            if len(subnets) < 2:
                reader.problem(key, "must list at least two subnets (in different AZs)")
            bad = [s for s in subnets if not _SUBNET_ID.match(s)]
            if bad:
                reader.problem(key, f"must hold subnet ids like subnet-0123abcd, got {bad}")
        if set(public) & set(private):
            reader.problem(
                "existingPrivateSubnetIds", "must not repeat a subnet of existingPublicSubnetIds"
            )
    return NetworkSettings(
        availability_zones=len(public) if vpc_id else azs,
        vpc_cidr=cidr,
        nat=nat,
        existing_vpc_id=vpc_id,
        existing_public_subnet_ids=public if vpc_id else (),
        existing_private_subnet_ids=private if vpc_id else (),
    )


def _read_load_balancer(reader: _Reader, region: str) -> LoadBalancerSettings:
    cidrs = reader.string_list("allowedCidrs")
    if not cidrs:
        reader.problem("allowedCidrs", 'must list at least one IPv4 CIDR, e.g. ["0.0.0.0/0"]')
    for cidr in cidrs:
        try:
            ipaddress.IPv4Network(cidr, strict=True)
        except ValueError:
            reader.problem("allowedCidrs", f"{cidr!r} is not an IPv4 network (e.g. 203.0.113.0/24)")
    certificate_arn = reader.string("certificateArn") or None
    domain = reader.string("domainName").lower() or None
    zone = reader.string("hostedZoneId") or None
    require_https = reader.boolean("requireHttps")
    if certificate_arn is not None:
        arn = _CERTIFICATE_ARN.match(certificate_arn)
        if arn is None:
            reader.problem(
                "certificateArn",
                "must be an ACM certificate ARN "
                "(arn:aws:acm:<region>:<account>:certificate/<id>), "
                f"got {certificate_arn!r}",
            )
        elif region and arn["region"] != region:
            reader.problem(
                "certificateArn",
                f"must be in the stack's region {region} (an ALB uses certificates from its "
                f"own region), got {arn['region']}",
            )
    if domain is not None and not _DOMAIN.match(domain):
        reader.problem("domainName", f"must be a DNS name like app.example.com, got {domain!r}")
    if zone is not None and not _HOSTED_ZONE_ID.match(zone):
        reader.problem("hostedZoneId", f"must be a Route 53 zone id like Z0123ABC, got {zone!r}")
    if (domain is None) != (zone is None):
        missing = "hostedZoneId" if zone is None else "domainName"
        reader.problem(missing, "domainName and hostedZoneId must be set together")
    if require_https and certificate_arn is None and domain is None:
        reader.problem(
            "requireHttps",
            "is true but no certificate is configured: set pyscale:certificateArn to an ACM "
            "certificate in this region, or pyscale:domainName and pyscale:hostedZoneId so "
            "the program requests and DNS-validates one",
        )
    ssl_policy = reader.string("sslPolicy")
    if not ssl_policy.startswith(TLS13_POLICY_PREFIX):
        reader.problem(
            "sslPolicy",
            f"must be a TLS 1.3 policy ({TLS13_POLICY_PREFIX}*, e.g. "
            f"{KEYS_BY_NAME['sslPolicy'].default}), got {ssl_policy!r}",
        )
    waf = reader.boolean("waf")
    # AWS WAF developer guide, "Rate-based rule high-level settings" (read 2026-11-25): the
    # lowest limit allowed is 10; the upper bound is the API's (2,000,000,000).
    rate_limit = reader.integer("wafRateLimit", 10, 2_000_000_000, " requests per 5 minutes")
    tls_values = " ".join(v for v in (certificate_arn, domain, zone) if v)
    return LoadBalancerSettings(
        allowed_cidrs=cidrs,
        require_https=require_https,
        certificate_arn=certificate_arn,
        domain_name=domain,
        hosted_zone_id=zone,
        ssl_policy=ssl_policy,
        deletion_protection=reader.boolean("albDeletionProtection"),
        access_logs=reader.boolean("albAccessLogs"),
        waf=waf,
        waf_rate_limit=rate_limit,
        uses_example_tls=any(marker in tls_values for marker in EXAMPLE_MARKERS),
    )


def _window_minutes(start_h: str, start_m: str, end_h: str, end_m: str, week: bool) -> int:
    start, end = int(start_h) * 60 + int(start_m), int(end_h) * 60 + int(end_m)
    return (end - start) % (7 * 24 * 60 if week else 24 * 60)


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * _MINUTES_PER_DAY


def _weekly_span(window: str) -> tuple[int, int]:
    """ddd:hh:mm-ddd:hh:mm as minutes from Monday 00:00: (start, end), end > start (an end
    earlier in the week wraps past Sunday)."""
    start_text, end_text = window.split("-")

    def minute(text: str) -> int:
        day, hour, minute_ = text.split(":")
        return _DAYS.index(day) * _MINUTES_PER_DAY + int(hour) * 60 + int(minute_)

    start, end = minute(start_text), minute(end_text)
    return start, end if end > start else end + _MINUTES_PER_WEEK


def _windows_overlap(daily: str, weekly: tuple[int, int]) -> bool:
    """Does the daily hh:mm-hh:mm window, on any day, overlap the weekly span?"""
    start_text, end_text = daily.split("-")
    start = int(start_text[:2]) * 60 + int(start_text[3:])
    length = (int(end_text[:2]) * 60 + int(end_text[3:]) - start) % _MINUTES_PER_DAY
    for day in range(8):  # 8: a Sunday-night window runs into the next week's Monday
        begin = day * _MINUTES_PER_DAY + start
        for shift in (0, _MINUTES_PER_WEEK, -_MINUTES_PER_WEEK):
            if begin + shift < weekly[1] and weekly[0] < begin + shift + length:
                return True
    return False


def _read_cache(reader: _Reader) -> CacheSettings:
    engine = CacheEngine(reader.choice("cacheEngine", [e.value for e in CacheEngine]))
    versions = CACHE_ENGINE_VERSIONS[engine]
    version = reader.string("cacheEngineVersion") or next(iter(versions))
    if version not in versions:
        reader.problem(
            "cacheEngineVersion",
            f"{engine.value} versions are {', '.join(versions)}; got {version!r}",
        )
        version = next(iter(versions))
    node_type = reader.string("cacheNodeType")
    if not _CACHE_NODE_TYPE.match(node_type):
        reader.problem(
            "cacheNodeType",
            f"must look like cache.<family>.<size> (e.g. cache.t4g.micro, cache.r7g.large), "
            f"got {node_type!r}",
        )
    cluster_mode = reader.boolean("cacheClusterMode")
    shards = reader.integer("cacheShards", 1, MAX_CACHE_SHARDS)
    replicas = reader.integer("cacheReplicas", 0, MAX_CACHE_REPLICAS)
    multi_az = reader.boolean("cacheMultiAz")
    failover = reader.boolean("cacheAutomaticFailover")
    transit = reader.boolean("cacheTransitEncryption")
    auth = reader.boolean("cacheAuthToken")
    if shards > 1 and not cluster_mode:
        reader.problem(
            "cacheShards", f"is {shards} but more than one shard needs cacheClusterMode: true"
        )
    if cluster_mode and not failover:
        reader.problem("cacheAutomaticFailover", "must be true when cacheClusterMode is true")
    if multi_az and replicas < 1:
        reader.problem("cacheMultiAz", "needs cacheReplicas >= 1 (a replica in another AZ)")
    if multi_az and not failover:
        reader.problem("cacheMultiAz", "needs cacheAutomaticFailover: true")
    if failover and replicas < 1 and not cluster_mode:
        reader.problem("cacheAutomaticFailover", "needs cacheReplicas >= 1 to fail over to")
    if auth and not transit:
        reader.problem(
            "cacheAuthToken", "needs cacheTransitEncryption: true (AUTH is sent over TLS only)"
        )
    retention = reader.integer("cacheSnapshotRetentionDays", 0, 35)
    snapshot_window = reader.string("cacheSnapshotWindow")
    if match := _SNAPSHOT_WINDOW.match(snapshot_window):
        if _window_minutes(*match.groups(), week=False) < 60:
            reader.problem("cacheSnapshotWindow", "must span at least 60 minutes")
    else:
        reader.problem(
            "cacheSnapshotWindow", f"must be hh:mm-hh:mm in UTC, got {snapshot_window!r}"
        )
    maintenance = reader.string("cacheMaintenanceWindow").lower()
    if not _MAINTENANCE_WINDOW.match(maintenance):
        reader.problem(
            "cacheMaintenanceWindow",
            f"must be ddd:hh:mm-ddd:hh:mm in UTC (e.g. sun:05:00-sun:06:00), got {maintenance!r}",
        )
    else:
        maintenance_span = _weekly_span(maintenance)
        if (maintenance_span[1] - maintenance_span[0]) < 60:
            reader.problem("cacheMaintenanceWindow", "must span at least 60 minutes")
        # ElastiCache refuses a snapshot window that overlaps the maintenance window.
        if (
            retention
            and _SNAPSHOT_WINDOW.match(snapshot_window)
            and _windows_overlap(snapshot_window, maintenance_span)
        ):
            reader.problem(
                "cacheSnapshotWindow",
                f"{snapshot_window} (daily) overlaps cacheMaintenanceWindow "
                f"{maintenance}; ElastiCache requires them apart: move one of them",
            )
    return CacheSettings(
        engine=engine,
        engine_version=version,
        parameter_group_family=versions[version],
        node_type=node_type,
        cluster_mode=cluster_mode,
        shards=shards,
        replicas_per_shard=replicas,
        multi_az=multi_az,
        automatic_failover=failover,
        transit_encryption=transit,
        at_rest_encryption=reader.boolean("cacheAtRestEncryption"),
        auth_token=auth,
        snapshot_retention_days=retention,
        snapshot_window=snapshot_window,
        maintenance_window=maintenance,
        ttl_seconds=reader.integer("cacheTtlSeconds", 1, 7 * 24 * 3600),
    )


def _instance_type(reader: _Reader, key: str, name: str) -> instance_types.InstanceType | None:
    try:
        found = instance_types.lookup(name)
    except instance_types.UnknownInstanceTypeError as error:
        reader.problem(key, str(error))
        return None
    if found.architecture == "mac":
        reader.problem(key, f"{name!r} runs macOS only; choose a Linux type such as t4g.small")
        return None
    return found


def _read_scheduled_actions(reader: _Reader, max_allowed: int) -> tuple[ScheduledAction, ...]:
    raw = reader.json_value("scheduledScaling")
    if not isinstance(raw, list):
        reader.problem("scheduledScaling", "must be a list of objects")
        return ()
    actions: list[ScheduledAction] = []
    fields = {"name", "recurrence", "minSize", "maxSize", "desiredCapacity", "timeZone"}
    for index, item in enumerate(raw):
        where = f"scheduledScaling[{index}]"
        if not isinstance(item, dict):
            reader.problem(where, "must be an object with name, recurrence and sizes")
            continue
        if unknown := set(item) - fields:
            reader.problem(where, f"unknown fields {sorted(unknown)}; allowed {sorted(fields)}")
        try:
            action = ScheduledAction(
                name=str(item["name"]),
                recurrence=str(item["recurrence"]),
                min_size=int(item["minSize"]),
                max_size=int(item["maxSize"]),
                desired_capacity=int(item["desiredCapacity"]),
                time_zone=str(item.get("timeZone", "Etc/UTC")),
            )
        except (KeyError, TypeError, ValueError) as error:
            reader.problem(
                where,
                f"needs name, recurrence (cron), minSize, maxSize, desiredCapacity ({error})",
            )
            continue
        if not _CRON.match(action.recurrence):
            reader.problem(where, f"recurrence must be a 5-field cron, got {action.recurrence!r}")
        if not 0 <= action.min_size <= action.desired_capacity <= action.max_size <= max_allowed:
            reader.problem(
                where, f"needs 0 <= minSize <= desiredCapacity <= maxSize <= {max_allowed}"
            )
        actions.append(action)
    if len({a.name for a in actions}) != len(actions):
        reader.problem("scheduledScaling", "names must be unique")
    return tuple(actions)


def _read_fleet(reader: _Reader) -> FleetSettings:
    type_name = reader.string("instanceType")
    instance = _instance_type(reader, "instanceType", type_name)
    min_size = reader.integer("minSize", 0, 1000)
    desired = reader.integer("desiredCapacity", 0, 1000)
    max_size = reader.integer("maxSize", 1, 1000)
    if not min_size <= desired <= max_size:
        reader.problem(
            "desiredCapacity",
            f"needs minSize <= desiredCapacity <= maxSize, got {min_size} <= {desired} <= "
            f"{max_size}",
        )
    warm_pool = reader.boolean("warmPool")
    warm_pool_min = reader.integer("warmPoolMinSize", 0, 1000)
    mixed = reader.string_list("mixedInstanceTypes")
    on_demand_base = reader.integer("onDemandBaseCapacity", 0, 1000)
    on_demand_percent = reader.integer("onDemandPercentAboveBase", 0, 100)
    for name in mixed:
        other = _instance_type(reader, "mixedInstanceTypes", name)
        if other and instance and other.architecture != instance.architecture:
            reader.problem(
                "mixedInstanceTypes",
                f"{name} is {other.architecture} but instanceType {type_name} is "
                f"{instance.architecture}; one launch template has one AMI architecture",
            )
    if warm_pool and (mixed or on_demand_percent < 100):
        reader.problem(
            "warmPool",
            "cannot be combined with spot or mixed instances (mixedInstanceTypes / "
            "onDemandPercentAboveBase < 100): an Auto Scaling group with a mixed instances "
            "policy can't have a warm pool",
        )
    if warm_pool_min and not warm_pool:
        reader.problem("warmPoolMinSize", "is set but warmPool is false")
    if on_demand_base > max_size:
        reader.problem("onDemandBaseCapacity", f"must be <= maxSize ({max_size})")
    lifetime = reader.integer("maxInstanceLifetimeDays", 0, 365, " (0 turns it off)")
    web_concurrency = reader.integer("webConcurrency", 0, 256, " (0 = from vCPUs)")
    return FleetSettings(
        instance_type=type_name,
        instance=instance or instance_types.lookup(KEYS_BY_NAME["instanceType"].default),
        min_size=min_size,
        desired_capacity=desired,
        max_size=max_size,
        cpu_target_percent=reader.integer("cpuTargetPercent", 1, 100),
        requests_per_target=reader.integer("requestsPerTarget", 1, 1_000_000),
        health_check_grace_seconds=reader.integer("healthCheckGraceSeconds", 0, 7200),
        instance_warmup_seconds=reader.integer("instanceWarmupSeconds", 0, 3600),
        refresh_min_healthy_percent=reader.integer("refreshMinHealthyPercent", 0, 100),
        warm_pool=warm_pool,
        warm_pool_min_size=warm_pool_min,
        mixed_instance_types=mixed,
        on_demand_base_capacity=on_demand_base,
        on_demand_percent_above_base=on_demand_percent,
        spot_allocation_strategy=reader.choice(
            "spotAllocationStrategy", SPOT_ALLOCATION_STRATEGIES
        ),
        max_instance_lifetime_days=lifetime,
        scheduled_actions=_read_scheduled_actions(reader, 1000),
        root_volume_size_gb=reader.integer("rootVolumeSizeGb", 8, 16384),
        web_concurrency=web_concurrency or None,
    )


def _read_release(reader: _Reader) -> ReleaseSettings:
    source_dir = reader.string("appSourceDir").rstrip("/")
    if not source_dir or source_dir.startswith("/") or ".." in source_dir.split("/"):
        reader.problem(
            "appSourceDir",
            f"must be a directory inside the repository, relative to it, got {source_dir!r}",
        )
    wsgi = reader.string("wsgiModule")
    if not _WSGI.match(wsgi):
        reader.problem(
            "wsgiModule", f"must be module.path:callable like app.wsgi:app, got {wsgi!r}"
        )
    return ReleaseSettings(app_source_dir=source_dir, wsgi_module=wsgi)


def _read_monitoring(reader: _Reader) -> MonitoringSettings:
    email = reader.string("alarmEmail") or None
    if email is not None and not _EMAIL.match(email):
        reader.problem("alarmEmail", f"must be an email address, got {email!r}")
    retention = reader.integer("logRetentionDays", 1, 3653)
    if retention not in LOG_RETENTION_DAYS:
        reader.problem(
            "logRetentionDays",
            f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} (CloudWatch Logs), "
            f"got {retention}",
        )
    return MonitoringSettings(alarm_email=email, log_retention_days=retention)


# Components name their resources "<project>-<stack>-<role>" and Pulumi auto-names them by
# appending "-" and 7 random characters; the engine refuses (mid-deploy) a name that then
# exceeds the resource's limit. The tightest: the ALB and its target group ("-alb", "-app"),
# 32 characters. Their character rules (letters, digits, single hyphens) and S3's
# (lowercase) and ElastiCache's (starts with a letter, no "--") make the rest.
AUTONAME_SUFFIX_LENGTH = 8
_NAME_LIMITS = (
    ("the ALB and its target group", 32, len("-alb")),
    ("the ElastiCache replication group id", 40, len("-redis")),
    ("the instance role", 64, len("-instance-role")),
    ("the release bucket", 63, len("-release-bucket")),
)
MAX_RESOURCE_NAME_LENGTH = min(
    limit - suffix - AUTONAME_SUFFIX_LENGTH for _, limit, suffix in _NAME_LIMITS
)
_RESOURCE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _check_resource_names(reader: _Reader, project: str, stack: str) -> None:
    """The project and stack names make every resource name: check them against AWS's
    naming rules before `pulumi up` fails on the first auto-named resource."""
    name = f"{project}-{stack}"
    if not _RESOURCE_NAME.match(name):
        reader.problems.append(
            f"stack name {stack!r} (project {project!r}): resource names are "
            f"'{name}-<role>', so the names may hold only lowercase letters, digits and "
            "single hyphens, starting with a letter (ALB, S3 and ElastiCache naming rules); "
            "rename the stack, e.g. `pulumi stack rename`"
        )
    if len(name) > MAX_RESOURCE_NAME_LENGTH:
        tightest, limit, _ = min(_NAME_LIMITS, key=lambda entry: entry[1] - entry[2])
        room = MAX_RESOURCE_NAME_LENGTH - len(project) - 1
        reader.problems.append(
            f"stack name {stack!r} is too long: '{name}' is {len(name)} characters, at most "
            f"{MAX_RESOURCE_NAME_LENGTH} fit ({tightest} are auto-named '{name}-<role>-<7 "
            f"random>' within AWS's {limit}-character limit); use a stack name of at most "
            f"{room} characters with project {project!r}"
        )


def _unknown_keys(reader: _Reader) -> None:
    prefix = f"{NAMESPACE}:"
    known = [key.full_name for key in KEYS]
    for name in reader.config:
        if name.startswith(prefix) and name[len(prefix) :] not in KEYS_BY_NAME:
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f" (did you mean {hint[0]}?)" if hint else ""
            reader.problem(name, f"is not a pyscale setting{suggestion}")


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------
def load_settings(config: Mapping[str, str], stack: str, project: str = NAMESPACE) -> Settings:
    """Validate engine config strings into Settings; ConfigError lists every problem."""
    reader = _Reader(config)
    _check_resource_names(reader, project, stack)
    _unknown_keys(reader)
    region = _read_region(reader)
    network = _read_network(reader)
    load_balancer = _read_load_balancer(reader, region)
    cache = _read_cache(reader)
    fleet = _read_fleet(reader)
    release = _read_release(reader)
    monitoring = _read_monitoring(reader)
    tags = _read_default_tags(reader)
    if reader.problems:
        raise ConfigError(stack, reader.problems)
    warnings = []
    if load_balancer.uses_example_tls:
        warnings.append(
            "pyscale:certificateArn/domainName/hostedZoneId hold the shipped EXAMPLE values: "
            "replace them with your certificate or domain and hosted zone before `pulumi up`"
        )
    return Settings(
        project=project,
        stack=stack,
        region=region,
        network=network,
        load_balancer=load_balancer,
        cache=cache,
        fleet=fleet,
        release=release,
        monitoring=monitoring,
        tags=tags,
        warnings=tuple(warnings),
    )


def load_from_pulumi() -> Settings:
    """The program's adapter: the engine's config for this stack, validated."""
    # The language host hands config over with set_all_config (CONFIG); older hosts and
    # tests may use the PULUMI_CONFIG variable. Either way the values are engine strings.
    from pulumi.runtime.config import CONFIG, get_config_env

    config = {**get_config_env(), **CONFIG.get()}
    settings = load_settings(config, pulumi.get_stack(), pulumi.get_project())
    for warning in settings.warnings:
        pulumi.log.warn(warning)
    return settings
