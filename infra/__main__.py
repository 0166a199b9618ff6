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
from infra.fleet import Fleet, FleetArgs, FleetCache, FleetRelease
from infra.load_balancer import LoadBalancer, LoadBalancerArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.network import Network, NetworkArgs
from infra.release import AppRelease, AppReleaseArgs, build_artifact
from infra.security_groups import SecurityGroups, SecurityGroupsArgs

settings = load_from_pulumi()
name = f"{settings.project}-{settings.stack}"
# Built before any resource is registered: a wrong appSourceDir/wsgiModule fails cleanly.
artifact = build_artifact(
    Path(__file__).resolve().parent.parent,
    settings.release.app_source_dir,
    settings.release.wsgi_module,
)

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
        region=settings.region,
        certificate_arn=settings.load_balancer.certificate_arn,
        domain_name=settings.load_balancer.domain_name,
        hosted_zone_id=settings.load_balancer.hosted_zone_id,
        deletion_protection=settings.load_balancer.deletion_protection,
        access_logs=settings.load_balancer.access_logs,
        access_log_retention_days=settings.monitoring.log_retention_days,
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

# -- the app fleet (AWS blueprint II) ---------------------------------------------------
release = AppRelease(f"{name}-release", AppReleaseArgs(artifact=artifact))
fleet = Fleet(
    name,
    FleetArgs(
        settings=settings.fleet,
        region=settings.region,
        private_subnet_ids=network.private_subnet_ids,
        security_group_id=security_groups.fleet_security_group_id,
        target_group_arn=load_balancer.target_group_arn,
        target_group_arn_suffix=load_balancer.target_group_arn_suffix,
        load_balancer_arn_suffix=load_balancer.alb_arn_suffix,
        target_group_listeners=[load_balancer.forwarding_listener],
        release=FleetRelease(
            bucket_name=release.bucket_name,
            object_key=release.object_key,
            object_arn=release.object_arn,
            version_id=release.version_id,
            sha256=release.sha256,
            app_version=release.app_version,
            wsgi_module=settings.release.wsgi_module,
        ),
        cache=FleetCache(
            endpoint=cache.endpoint,
            port=cache.port,
            tls=cache.tls,
            cluster_mode=cache.cluster_mode,
            auth_secret_arn=cache.auth_secret_arn,
            ttl_seconds=settings.cache.ttl_seconds,
        ),
        # The ALB's addresses are in the VPC; an adopted VPC's CIDR is not in the settings,
        # and the fleet's security group already admits only the ALB.
        forwarded_allow_ips=(
            "*" if settings.network.adopts_existing_vpc else settings.network.vpc_cidr
        ),
        log_retention_days=settings.monitoring.log_retention_days,
        # Provider default tags do not reach the ASG or the instances it launches.
        tags=settings.tag_map,
    ),
)
monitoring = Monitoring(
    name,
    MonitoringArgs(
        region=settings.region,
        load_balancer_arn_suffix=load_balancer.alb_arn_suffix,
        target_group_arn_suffix=load_balancer.target_group_arn_suffix,
        asg_name=fleet.asg_name,
        asg_max_size=settings.fleet.max_size,
        cache_replication_group_id=cache.replication_group_id,
        cache_cluster_mode=settings.cache.cluster_mode,
        cache_shards=settings.cache.shards,
        cache_replicas_per_shard=settings.cache.replicas_per_shard,
        alarm_email=settings.monitoring.alarm_email,
    ),
)

pulumi.export("region", settings.region)
pulumi.export("url", load_balancer.url)
pulumi.export("albDnsName", load_balancer.dns_name)
pulumi.export("cacheEndpoint", cache.endpoint)
pulumi.export("cachePort", cache.port)
pulumi.export("cacheMode", "cluster" if cache.cluster_mode else "single-shard")
if cache.auth_secret_arn is not None:
    pulumi.export("cacheAuthSecretArn", cache.auth_secret_arn)
pulumi.export("asgName", fleet.asg_name)
pulumi.export("instanceType", fleet.instance_type)
pulumi.export("architecture", fleet.architecture)
pulumi.export("artifactLocation", release.location)
pulumi.export("appVersion", release.app_version)
pulumi.export("alarmTopicArn", monitoring.topic_arn)
pulumi.export("dashboardName", monitoring.dashboard_name)
