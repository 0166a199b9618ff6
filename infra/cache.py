"""Cache: an ElastiCache replication group (Valkey by default, or Redis) in private subnets.

Supported combinations (``settings.topology``):
- single: one node; replicated: one shard with ``replicas_per_shard`` replicas (1-5);
- cluster: cluster mode, ``shards`` x ``replicas_per_shard`` (automatic failover required);
- multi-AZ: needs automatic failover and at least one replica;
- authentication (``cacheAuth``): iam | auth-token (both need encryption in transit) |
  none; iam needs Valkey 7.2+ or Redis 7+.
infra/settings/cache.py enforces these before this component is built.

IAM authentication (RBAC): an ElastiCache user for the app, authenticated by IAM (user name
= user id, as AWS requires), and the group's mandatory ``default`` user, disabled; both in a
user group per stack that the replication group uses instead of an AUTH token. The app
signs a 15-minute SigV4 token with its instance role for each new connection
(app/elasticache_iam.py); the role may ``elasticache:Connect`` as exactly this user to
exactly this replication group. terraform-provider-aws (internal/service/elasticache, read
2026-12-01): a user is created and waited ``active`` before the user group, which is
waited ``active`` before the replication group references it; ``auth_token`` conflicts
with ``user_group_ids``; moving an existing group from an AUTH token to RBAC sends
``UserGroupIdsToAdd`` with ``AuthTokenUpdateStrategy=DELETE`` in one modification, which is
why the strategy is DELETE whenever the mode is iam (it is ignored on create).

The AUTH token (auth-token mode) is generated here, handed to ElastiCache and stored in
Secrets Manager; the app gets only the secret's ARN, and the token never appears in an
output or in plain text in the state (it is a Pulumi secret throughout). The disabled
``default`` user's password is the one secret IAM mode keeps in the state: AWS requires
that user in every user group and a password (or IAM) for users of a Valkey group, and
a disabled user cannot authenticate with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from app.contract import CACHE_USER_ACCESS_STRING
from infra.settings import CacheAuth, CacheSettings, CacheTopology

# ElastiCache AUTH tokens: 16-128 printable characters, a restricted set of specials;
# letters and digits only keeps the token safe inside a URL and a shell.
AUTH_TOKEN_LENGTH = 64
SLOW_LOG = "slow-log"
# Every ElastiCache user group must hold a user named "default"; this one can do nothing.
DISABLED_DEFAULT_USER_ACCESS = "off ~* -@all"


@dataclass(frozen=True)
class CacheArgs:
    """Inputs of Cache.

    settings: the cache keys (engine, topology, encryption, authentication, windows).
    log_retention_days: retention of the slow-log group (the stack's logRetentionDays).
    subnet_ids: the private subnets. security_group_id: the cache's group, whose only
        source is the app fleet's group.
    key_arn: the stack's KMS key for the data at rest, the slow-log group and the AUTH
        secret (customerManagedKey); None: AWS managed keys.
    """

    settings: CacheSettings
    log_retention_days: int
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    key_arn: pulumi.Input[str] | None


@dataclass(frozen=True)
class CacheConnection:
    """How the app reaches the cache: what the fleet's boot script is given."""

    endpoint: pulumi.Input[str]
    port: int
    tls: bool
    cluster_mode: bool
    auth_secret_arn: pulumi.Input[str] | None
    ttl_seconds: int
    # The secret's value (its SecretVersion): the secret's ARN exists before the value
    # does, and an instance booting in between finds no token and its gunicorn exits.
    auth_secret_value: pulumi.Resource | None = None
    iam_user: IamCacheUser | None = None


@dataclass(frozen=True)
class IamCacheUser:
    """The IAM-authenticated user the app connects as (cacheAuth: iam): what its token
    names (user id, replication group id) and what the instance role may connect to."""

    user_id: pulumi.Input[str]
    user_arn: pulumi.Input[str]
    replication_group_id: pulumi.Input[str]
    replication_group_arn: pulumi.Input[str]

    def connect_statement(self) -> dict[str, Any]:
        """The IAM statement of whoever runs the app (the instance role, the pod's role):
        ``elasticache:Connect`` as exactly this user to exactly this group. AWS checks both
        ARNs on each AUTH (ElastiCache user guide, "Authenticating with IAM")."""
        return {
            "Sid": "ConnectToTheCacheAsTheAppUser",
            "Effect": "Allow",
            "Action": "elasticache:Connect",
            "Resource": [self.replication_group_arn, self.user_arn],
        }


def _transit_encryption_mode(settings: CacheSettings) -> str | None:
    """The mode where the engine has one (Valkey, Redis 7+); for Redis 6.x it is left unset:
    TLS enabled at creation already refuses plaintext clients."""
    if not settings.transit_encryption or not settings.supports_transit_encryption_mode:
        return None
    return settings.transit_encryption_mode.value


class Cache(pulumi.ComponentResource):
    endpoint: pulumi.Output[str]
    port: int
    cluster_mode: bool
    tls: bool
    auth_secret_arn: pulumi.Output[str] | None
    replication_group_id: pulumi.Output[str]
    member_clusters: pulumi.Output[Sequence[str]]

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pyscale:cache:Cache", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        cache = args.settings

        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            description=f"Private subnets of {name}",
            subnet_ids=list(args.subnet_ids),
            opts=self._child,
        )
        parameter_group = self._parameter_group(cache)
        slow_log = aws.cloudwatch.LogGroup(
            f"{name}-slow-log",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            opts=self._child,
        )
        token, self.auth_secret_arn, auth_secret_value = (
            self._auth_token(args.key_arn)
            if cache.auth is CacheAuth.AUTH_TOKEN
            else (None, None, None)
        )
        app_user, user_group = (
            self._iam_users(cache) if cache.auth is CacheAuth.IAM else (None, None)
        )
        # ROTATE with a token; DELETE with the user group (the move from AUTH to RBAC);
        # none without authentication (the provider refuses a strategy without a token
        # unless it is DELETE).
        auth_update_strategy = "ROTATE" if token is not None else None
        if user_group is not None:
            auth_update_strategy = "DELETE"

        # Shards x replicas with cluster mode, else one primary and its replicas (an input
        # left None is not sent at all).
        cluster = cache.topology is CacheTopology.CLUSTER
        group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            description=f"pyscale cache ({cache.engine.value}) for {name}",
            engine=cache.engine.value,
            engine_version=cache.engine_version,
            node_type=cache.node_type,
            port=cache.port,
            cluster_mode="enabled" if cluster else "disabled",
            num_node_groups=cache.shards if cluster else None,
            replicas_per_node_group=cache.replicas_per_shard if cluster else None,
            num_cache_clusters=None if cluster else 1 + cache.replicas_per_shard,
            parameter_group_name=parameter_group.name,
            subnet_group_name=subnet_group.name,
            security_group_ids=[args.security_group_id],
            automatic_failover_enabled=cache.automatic_failover,
            multi_az_enabled=cache.multi_az,
            at_rest_encryption_enabled=cache.at_rest_encryption,
            kms_key_id=args.key_arn if cache.at_rest_encryption else None,
            transit_encryption_enabled=cache.transit_encryption,
            transit_encryption_mode=_transit_encryption_mode(cache),
            # Without it node type, engine version, parameter group and TLS changes wait for
            # the maintenance window while `pulumi up` reports success (replication_group.go
            # passes apply_immediately to ModifyReplicationGroup; shard and replica counts
            # are applied immediately regardless).
            apply_immediately=cache.apply_immediately,
            auth_token=token,
            auth_token_update_strategy=auth_update_strategy,
            user_group_ids=[user_group.user_group_id] if user_group is not None else None,
            snapshot_retention_limit=cache.snapshot_retention_days,
            snapshot_window=cache.snapshot_window if cache.snapshot_retention_days else None,
            maintenance_window=cache.maintenance_window,
            auto_minor_version_upgrade=True,
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=slow_log.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type=SLOW_LOG,
                )
            ],
            tags={"Name": f"{name}-cache"},
            opts=self._child,
        )
        self.endpoint = (
            group.configuration_endpoint_address
            if cache.topology is CacheTopology.CLUSTER
            else group.primary_endpoint_address
        )
        self.port = cache.port
        self.cluster_mode = cache.topology is CacheTopology.CLUSTER
        self.tls = cache.transit_encryption
        self.replication_group_id = group.id
        self.member_clusters = group.member_clusters
        self.iam_user = (
            IamCacheUser(
                user_id=app_user.user_id,
                user_arn=app_user.arn,
                replication_group_id=group.id,
                replication_group_arn=group.arn,
            )
            if app_user is not None
            else None
        )
        self.connection = CacheConnection(
            endpoint=self.endpoint,
            port=self.port,
            tls=self.tls,
            cluster_mode=self.cluster_mode,
            auth_secret_arn=self.auth_secret_arn,
            ttl_seconds=cache.ttl_seconds,
            auth_secret_value=auth_secret_value,
            iam_user=self.iam_user,
        )
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "port": self.port,
                "clusterMode": self.cluster_mode,
                "authSecretArn": self.auth_secret_arn,
                "replicationGroupId": self.replication_group_id,
            }
        )

    def _parameter_group(self, cache: CacheSettings) -> aws.elasticache.ParameterGroup:
        parameters = [
            # A cache, not a store: under memory pressure evict the least recently used key
            # of any kind rather than refuse writes.
            aws.elasticache.ParameterGroupParameterArgs(
                name="maxmemory-policy", value="allkeys-lru"
            ),
        ]
        if cache.topology is CacheTopology.CLUSTER:
            parameters.append(
                aws.elasticache.ParameterGroupParameterArgs(name="cluster-enabled", value="yes")
            )
        # The family is in the name: a new engine major needs a new group (family is
        # immutable), created beside the old one rather than clashing with it.
        family_label = cache.parameter_group_family.replace(".", "-")
        return aws.elasticache.ParameterGroup(
            f"{self._name}-{family_label}",
            family=cache.parameter_group_family,
            description=f"pyscale {cache.parameter_group_family} for {self._name}",
            parameters=parameters,
            opts=self._child,
        )

    def _iam_users(
        self, cache: CacheSettings
    ) -> tuple[aws.elasticache.User, aws.elasticache.UserGroup]:
        engine = cache.engine.value
        app_user_id = f"{self._name}-app"
        app_user = aws.elasticache.User(
            f"{self._name}-app-user",
            user_id=app_user_id,
            user_name=app_user_id,  # IAM authentication requires user name == user id
            engine=engine,
            access_string=CACHE_USER_ACCESS_STRING,
            authentication_mode=aws.elasticache.UserAuthenticationModeArgs(type="iam"),
            opts=self._child,
        )
        default_password = random.RandomPassword(
            f"{self._name}-default-user", length=AUTH_TOKEN_LENGTH, special=False, opts=self._child
        )
        default_user = aws.elasticache.User(
            f"{self._name}-default-user",
            user_id=f"{self._name}-default",
            user_name="default",
            engine=engine,
            access_string=DISABLED_DEFAULT_USER_ACCESS,
            authentication_mode=aws.elasticache.UserAuthenticationModeArgs(
                type="password", passwords=[pulumi.Output.secret(default_password.result)]
            ),
            opts=self._child,
        )
        group = aws.elasticache.UserGroup(
            f"{self._name}-users",
            user_group_id=self._name,
            engine=engine,
            user_ids=[default_user.user_id, app_user.user_id],
            opts=self._child,
        )
        return app_user, group

    def _auth_token(
        self, key_arn: pulumi.Input[str] | None
    ) -> tuple[pulumi.Output[str], pulumi.Output[str], aws.secretsmanager.SecretVersion]:
        password = random.RandomPassword(
            f"{self._name}-auth-token",
            length=AUTH_TOKEN_LENGTH,
            special=False,
            opts=self._child,
        )
        # random marks `result` secret itself; wrapping again makes it explicit here.
        token: pulumi.Output[str] = pulumi.Output.secret(password.result)
        secret = aws.secretsmanager.Secret(
            f"{self._name}-auth-token",
            description=f"AUTH token of the {self._name} cache (the app reads it by ARN)",
            recovery_window_in_days=7,
            kms_key_id=key_arn,
            opts=self._child,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{self._name}-auth-token",
            secret_id=secret.id,
            secret_string=token,
            opts=self._child,
        )
        return token, secret.arn, version
