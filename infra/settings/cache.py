"""Cache keys: the ElastiCache replication group (Valkey or Redis) and the app's TTL.

Change safety from terraform-provider-aws internal/service/elasticache/replication_group.go
(read 2026-12-01): ``at_rest_encryption_enabled``, ``port`` and ``subnet_group_name`` are
ForceNew; an engine change other than redis -> valkey and an engine version downgrade force
a new group (CustomizeDiff); shard and replica counts change online
(ModifyReplicationGroupShardConfiguration, Increase/DecreaseReplicaCount, applied
immediately); other modifications (node type, engine version, parameter group, multi-AZ,
failover, transit encryption) go through ModifyReplicationGroup with ``ApplyImmediately``
from ``apply_immediately`` (cacheApplyImmediately), and without it wait for the maintenance
window while `pulumi up` reports them done.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import BeforeValidator, field_validator, model_validator

from infra.settings.base import (
    ROLLS_THE_FLEET,
    AreaSettings,
    Problems,
    in_place,
    lower,
    matches,
    refused,
    replacement,
    setting,
)


class CacheEngine(enum.StrEnum):
    VALKEY = "valkey"
    REDIS = "redis"


class TransitEncryptionMode(enum.StrEnum):
    """required: TLS only; preferred: TLS and plaintext clients both (the migration step)."""

    PREFERRED = "preferred"
    REQUIRED = "required"


class CacheAuth(enum.StrEnum):
    """How the app authenticates to the cache. iam: an ElastiCache RBAC user with IAM
    authentication, the app signing 15-minute SigV4 tokens with its instance role (no
    password anywhere); auth-token: one AUTH token, generated, kept in Secrets Manager,
    rotated with `pyscale cache rotate-auth`; none: no authentication (the security groups
    are the only gate)."""

    IAM = "iam"
    AUTH_TOKEN = "auth-token"  # noqa: S105 (a mode's name, not a token)
    NONE = "none"


# ElastiCache IAM authentication: Valkey 7.2+ and Redis OSS 7.0+ (ElastiCache user guide,
# "Authenticating with IAM", Limitations; read 2026-12-01).
IAM_AUTH_ENGINE_VERSIONS: Mapping[CacheEngine, tuple[str, ...]] = {
    CacheEngine.VALKEY: ("8.0", "8.1", "7.2"),
    CacheEngine.REDIS: ("7.1", "7.0"),
}


class CacheTopology(enum.StrEnum):
    """single: one node; replicated: a primary and replicas (one shard); cluster: cluster
    mode, data sharded over ``shards`` node groups."""

    SINGLE = "single"
    REPLICATED = "replicated"
    CLUSTER = "cluster"


# Engine version -> parameter group family. An empty cacheEngineVersion picks the first
# entry: the version pyscale is tested with, not necessarily the newest.
CACHE_ENGINE_VERSIONS: Mapping[CacheEngine, Mapping[str, str]] = {
    CacheEngine.VALKEY: {"8.0": "valkey8", "8.1": "valkey8", "7.2": "valkey7"},
    CacheEngine.REDIS: {"7.1": "redis7", "7.0": "redis7", "6.2": "redis6.x"},
}
CACHE_PORT = 6379
MAX_CACHE_REPLICAS = 5
MAX_CACHE_SHARDS = 500
_DATA_LOST = "a new replication group: the cached data is lost and the fleet rolls to it"
_AT_MAINTENANCE = (
    "applied at `pulumi up` (cacheApplyImmediately, the default) or else in the next "
    "cacheMaintenanceWindow"
)

_SNAPSHOT_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_DAY = "(mon|tue|wed|thu|fri|sat|sun)"
_MAINTENANCE_WINDOW = rf"^{_DAY}:([01]\d|2[0-3]):([0-5]\d)-{_DAY}:([01]\d|2[0-3]):([0-5]\d)$"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * _MINUTES_PER_DAY


def _daily_span(window: str) -> tuple[int, int]:
    """hh:mm-hh:mm as (start minute of the day, length in minutes)."""
    start_text, end_text = window.split("-")
    start = int(start_text[:2]) * 60 + int(start_text[3:])
    end = int(end_text[:2]) * 60 + int(end_text[3:])
    return start, (end - start) % _MINUTES_PER_DAY


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
    start, length = _daily_span(daily)
    for day in range(8):  # 8: a Sunday-night window runs into the next week's Monday
        begin = day * _MINUTES_PER_DAY + start
        for shift in (0, _MINUTES_PER_WEEK, -_MINUTES_PER_WEEK):
            if begin + shift < weekly[1] and weekly[0] < begin + shift + length:
                return True
    return False


class CacheSettings(AreaSettings):
    engine: CacheEngine = setting(
        "cacheEngine",
        CacheEngine.VALKEY,
        doc="ElastiCache engine.",
        change=replacement(
            f"redis -> valkey is an in-place upgrade; valkey -> redis is {_DATA_LOST}"
        ),
    )
    requested_version: str = setting(
        "cacheEngineVersion",
        "",
        allowed="valkey: 8.0, 8.1, 7.2; redis: 7.1, 7.0, 6.2; empty = the first",
        doc="Engine version; empty picks the version pyscale is tested with.",
        change=in_place(
            f"an upgrade is {_AT_MAINTENANCE} (a new major also creates a new parameter "
            f"group); a downgrade is {_DATA_LOST}"
        ),
    )
    node_type: Annotated[
        str,
        matches(
            r"^cache\.[a-z][a-z0-9-]*\.(micro|small|medium|large|\d*xlarge)$",
            "must look like cache.<family>.<size> (e.g. cache.t4g.micro, cache.r7g.large)",
        ),
    ] = setting(
        "cacheNodeType",
        "cache.t4g.micro",
        allowed="cache.<family>.<size>",
        doc="ElastiCache node type.",
        change=in_place(f"online vertical scaling, {_AT_MAINTENANCE}"),
    )
    cluster_mode: bool = setting(
        "cacheClusterMode",
        False,
        doc="Cluster mode: data sharded over cacheShards node groups.",
        change=refused(
            "AWS moves a group into cluster mode only through the 'compatible' step and "
            "not back; build the new shape in a new stack (the cache refills)"
        ),
    )
    shards: int = setting(
        "cacheShards",
        1,
        ge=1,
        le=MAX_CACHE_SHARDS,
        doc="Shards (node groups); more than one needs cacheClusterMode.",
        change=in_place("online resharding, applied immediately; slots migrate"),
    )
    replicas_per_shard: int = setting(
        "cacheReplicas",
        0,
        ge=0,
        le=MAX_CACHE_REPLICAS,
        doc="Replicas per shard.",
        change=in_place("replicas added or removed online, applied immediately"),
    )
    multi_az: bool = setting(
        "cacheMultiAz",
        False,
        doc="Multi-AZ: replicas in other AZs (needs replicas and automatic failover).",
        change=in_place(),
    )
    automatic_failover: bool = setting(
        "cacheAutomaticFailover",
        False,
        doc="Promote a replica when the primary fails (required by cluster mode).",
        change=in_place(),
    )
    transit_encryption: bool = setting(
        "cacheTransitEncryption",
        True,
        doc="TLS between the app and the cache.",
        change=in_place(
            "on Valkey and Redis 7+, through the 'preferred' mode; the fleet rolls to "
            "match, and requests compute without the cache until it has"
        ),
    )
    transit_encryption_mode: TransitEncryptionMode = setting(
        "cacheTransitEncryptionMode",
        TransitEncryptionMode.REQUIRED,
        doc=(
            "With cacheTransitEncryption: required refuses plaintext clients, preferred "
            "accepts both. AWS turns TLS on for a deployed cache only in two steps, so that "
            "takes two deploys: first cacheTransitEncryption: true with "
            "cacheTransitEncryptionMode: preferred, then required once the fleet has rolled "
            "to TLS (the program cannot see the deployed cache's mode, only this setting)."
        ),
        change=in_place(
            "preferred -> required refuses plaintext clients; required -> preferred admits "
            f"them; {_AT_MAINTENANCE}"
        ),
    )
    apply_immediately: bool = setting(
        "cacheApplyImmediately",
        True,
        doc=(
            "Apply node type, engine version, parameter group, multi-AZ and TLS changes "
            "during `pulumi up` (a failover or node restart may briefly drop connections; "
            "the app then computes without the cache). false defers them to "
            "cacheMaintenanceWindow while the stack reads as changed, and a new engine major "
            "then keeps its old parameter group attached until that window, so deleting it "
            "at the end of the deploy can fail."
        ),
        change=in_place(),
    )
    at_rest_encryption: bool = setting(
        "cacheAtRestEncryption",
        True,
        doc="Encrypt cache data at rest.",
        change=replacement(_DATA_LOST),
    )
    # auth-token until the app signs IAM tokens itself (app/elasticache_iam.py is wired into
    # the app with its settings); iam is the goal for every engine that supports it.
    auth: CacheAuth = setting(
        "cacheAuth",
        CacheAuth.AUTH_TOKEN,
        doc="How the app authenticates: iam (short-lived SigV4 tokens of the instance role, "
        "Valkey 7.2+/Redis 7+), auth-token (a generated token in Secrets Manager) or none.",
        # terraform-provider-aws replication_group.go (read 2026-12-01): auth_token and
        # user_group_ids are not ForceNew; a new user group goes out in one
        # ModifyReplicationGroup with AuthTokenUpdateStrategy=DELETE, a removed one in one
        # call and a new token in another; DELETE is sent only with a user group.
        change=in_place(
            "auth-token -> iam keeps the replication group: the users and their user group "
            "are created (each waited active), then one modification adds the group and "
            "deletes the AUTH token (TLS stays on; both modes need it), and the fleet rolls "
            "to IAM tokens: until the new instances are in, the old ones compute without the "
            "cache. iam -> auth-token removes the user group and sets the token in two "
            "separate modifications (nothing authenticates in between), and the provider has "
            "no request for auth-token -> none: build either in a new stack"
        ),
    )
    snapshot_retention_days: int = setting(
        "cacheSnapshotRetentionDays",
        0,
        ge=0,
        le=35,
        doc="Daily snapshots kept; 0 takes none.",
        change=in_place(),
    )
    snapshot_window: str = setting(
        "cacheSnapshotWindow",
        "03:00-04:00",
        allowed="hh:mm-hh:mm UTC, >= 60 min, apart from the maintenance window",
        doc="Daily snapshot window (UTC).",
        change=in_place(),
    )
    maintenance_window: Annotated[
        str,
        BeforeValidator(lower),
        matches(
            _MAINTENANCE_WINDOW,
            "must be ddd:hh:mm-ddd:hh:mm in UTC (e.g. sun:05:00-sun:06:00)",
        ),
    ] = setting(
        "cacheMaintenanceWindow",
        "sun:05:00-sun:06:00",
        allowed="ddd:hh:mm-ddd:hh:mm UTC, >= 60 min",
        doc="Weekly maintenance window (UTC): when deferred changes are applied.",
        change=in_place(),
    )
    ttl_seconds: int = setting(
        "cacheTtlSeconds",
        300,
        ge=1,
        le=7 * 24 * 3600,
        doc="How long the app keeps a computed result in the cache.",
        change=in_place(ROLLS_THE_FLEET),
    )

    @field_validator("snapshot_window")
    @classmethod
    def _daily_window(cls, window: str) -> str:
        if not _SNAPSHOT_WINDOW.match(window):
            raise ValueError(f"must be hh:mm-hh:mm in UTC, got {window!r}")
        if _daily_span(window)[1] < 60:
            raise ValueError("must span at least 60 minutes")
        return window

    @field_validator("maintenance_window")
    @classmethod
    def _weekly_window(cls, window: str) -> str:
        start, end = _weekly_span(window)
        if end - start < 60:
            raise ValueError("must span at least 60 minutes")
        return window

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        problems = Problems()
        versions = CACHE_ENGINE_VERSIONS[self.engine]
        if self.requested_version and self.requested_version not in versions:
            problems.add(
                "cacheEngineVersion",
                f"{self.engine.value} versions are {', '.join(versions)}; "
                f"got {self.requested_version!r}",
            )
        if self.shards > 1 and not self.cluster_mode:
            problems.add(
                "cacheShards",
                f"is {self.shards} but more than one shard needs cacheClusterMode: true",
            )
        if self.cluster_mode and not self.automatic_failover:
            problems.add("cacheAutomaticFailover", "must be true when cacheClusterMode is true")
        if self.multi_az and self.replicas_per_shard < 1:
            problems.add("cacheMultiAz", "needs cacheReplicas >= 1 (a replica in another AZ)")
        if self.multi_az and not self.automatic_failover:
            problems.add("cacheMultiAz", "needs cacheAutomaticFailover: true")
        if self.automatic_failover and self.replicas_per_shard < 1 and not self.cluster_mode:
            problems.add("cacheAutomaticFailover", "needs cacheReplicas >= 1 to fail over to")
        if self.transit_encryption_mode is TransitEncryptionMode.PREFERRED:
            if not self.transit_encryption:
                problems.add(
                    "cacheTransitEncryptionMode",
                    "preferred needs cacheTransitEncryption: true (it is the step that turns "
                    "TLS on without refusing plaintext clients)",
                )
            elif not self.supports_transit_encryption_mode:
                problems.add(
                    "cacheTransitEncryptionMode",
                    f"{self.engine.value} {self.engine_version} has no transit encryption mode "
                    "(TLS is set at creation only; Valkey and Redis 7 have it)",
                )
        if self.auth is not CacheAuth.NONE and not self.transit_encryption:
            problems.add(
                "cacheAuth",
                f"{self.auth.value} needs cacheTransitEncryption: true (ElastiCache takes "
                "AUTH tokens and IAM tokens over TLS only); or cacheAuth: none",
            )
        known_version = self.engine_version in versions  # else reported above
        iam_versions = IAM_AUTH_ENGINE_VERSIONS[self.engine]
        if self.auth is CacheAuth.IAM and known_version and self.engine_version not in iam_versions:
            problems.add(
                "cacheAuth",
                f"iam needs Valkey 7.2+ or Redis 7+ (ElastiCache IAM authentication); "
                f"{self.engine.value} {self.engine_version} supports auth-token or none",
            )
        # ElastiCache refuses a snapshot window that overlaps the maintenance window.
        if self.snapshot_retention_days and _windows_overlap(
            self.snapshot_window, _weekly_span(self.maintenance_window)
        ):
            problems.add(
                "cacheSnapshotWindow",
                f"{self.snapshot_window} (daily) overlaps cacheMaintenanceWindow "
                f"{self.maintenance_window}; ElastiCache requires them apart: move one of them",
            )
        problems.check()
        return self

    @property
    def engine_version(self) -> str:
        return self.requested_version or next(iter(CACHE_ENGINE_VERSIONS[self.engine]))

    @property
    def supports_transit_encryption_mode(self) -> bool:
        """Valkey and Redis 7+ migrate TLS online (TransitEncryptionMode); on older Redis
        the provider replaces the group to change TLS (pulumi-aws ReplicationGroup docs)."""
        return not (self.engine is CacheEngine.REDIS and self.engine_version.startswith("6."))

    @property
    def parameter_group_family(self) -> str:
        return CACHE_ENGINE_VERSIONS[self.engine][self.engine_version]

    @property
    def auth_token(self) -> bool:
        return self.auth is CacheAuth.AUTH_TOKEN

    @property
    def topology(self) -> CacheTopology:
        if self.cluster_mode:
            return CacheTopology.CLUSTER
        return CacheTopology.REPLICATED if self.replicas_per_shard else CacheTopology.SINGLE

    @property
    def node_count(self) -> int:
        return self.shards * (1 + self.replicas_per_shard)

    @property
    def port(self) -> int:
        return CACHE_PORT
