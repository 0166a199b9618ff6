"""The Pulumi program: validated settings in, components wired, outputs exported.

The language host runs this file with the working directory infra/ and ``sys.path[0] ==
"."``; the repository root is importable because ``uv sync`` installs the project into
.venv. Should it not be installed, the root is appended below so that ``infra.*`` and
``app.*`` still resolve, each module under one name only (never ``import config``).
"""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("infra") is None:  # project not installed into the venv
    sys.path.append(str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.cache import Cache, CacheArgs
from infra.config import load_from_pulumi
from infra.load_balancer import LoadBalancer, LoadBalancerArgs
from infra.network import Network, NetworkArgs
from infra.security_groups import SecurityGroups, SecurityGroupsArgs

settings = load_from_pulumi()
name = f"{settings.project}-{settings.stack}"

network = Network(
    name,
    NetworkArgs(
        availability_zone_count=settings.network.availability_zones,
        vpc_cidr=settings.network.vpc_cidr,
        nat=settings.network.nat,
        existing_vpc_id=settings.network.existing_vpc_id,
        existing_public_subnet_ids=settings.network.existing_public_subnet_ids,
        existing_private_subnet_ids=settings.network.existing_private_subnet_ids,
    ),
)
security_groups = SecurityGroups(
    name,
    SecurityGroupsArgs(
        vpc_id=network.vpc_id,
        listener_ports=settings.load_balancer.listener_ports,
        allowed_cidrs=settings.load_balancer.allowed_cidrs,
        cache_port=settings.cache.port,
    ),
)
load_balancer = LoadBalancer(
    name,
    LoadBalancerArgs(
        vpc_id=network.vpc_id,
        public_subnet_ids=network.public_subnet_ids,
        security_group_id=security_groups.alb_security_group_id,
        ssl_policy=settings.load_balancer.ssl_policy,
        certificate_arn=settings.load_balancer.certificate_arn,
        domain_name=settings.load_balancer.domain_name,
        hosted_zone_id=settings.load_balancer.hosted_zone_id,
        deletion_protection=settings.load_balancer.deletion_protection,
        access_logs=settings.load_balancer.access_logs,
        waf=settings.load_balancer.waf,
        waf_rate_limit=settings.load_balancer.waf_rate_limit,
    ),
)
cache = Cache(
    name,
    CacheArgs(
        subnet_ids=network.private_subnet_ids,
        security_group_id=security_groups.cache_security_group_id,
        engine=settings.cache.engine,
        engine_version=settings.cache.engine_version,
        parameter_group_family=settings.cache.parameter_group_family,
        node_type=settings.cache.node_type,
        cluster_mode=settings.cache.cluster_mode,
        shards=settings.cache.shards,
        replicas_per_shard=settings.cache.replicas_per_shard,
        multi_az=settings.cache.multi_az,
        automatic_failover=settings.cache.automatic_failover,
        transit_encryption=settings.cache.transit_encryption,
        at_rest_encryption=settings.cache.at_rest_encryption,
        auth_token=settings.cache.auth_token,
        snapshot_retention_days=settings.cache.snapshot_retention_days,
        snapshot_window=settings.cache.snapshot_window,
        maintenance_window=settings.cache.maintenance_window,
        log_retention_days=settings.monitoring.log_retention_days,
    ),
)

# -- the app fleet (AWS blueprint II) is wired here --------------------------------------

pulumi.export("region", settings.region)
pulumi.export("url", load_balancer.url)
pulumi.export("albDnsName", load_balancer.dns_name)
pulumi.export("cacheEndpoint", cache.endpoint)
pulumi.export("cachePort", cache.port)
pulumi.export("cacheMode", "cluster" if cache.cluster_mode else "single-shard")
if cache.auth_secret_arn is not None:
    pulumi.export("cacheAuthSecretArn", cache.auth_secret_arn)
