"""The Pulumi program: validated settings in, components wired, outputs exported.

The language host runs this file with the working directory infra/ and ``sys.path[0] ==
"."``; the repository root is importable because ``uv sync`` installs the project into
.venv. Should it not be installed, the root is appended below so that ``infra.*`` and
``app.*`` still resolve, each module under one name only (never ``import settings``).

Each component takes its area's settings and the Outputs of the components before it;
nothing here copies a setting field by field.
"""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("infra") is None:  # project not installed into the venv
    sys.path.append(str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.cache import Cache, CacheArgs
from infra.fleet import Fleet, FleetArgs
from infra.load_balancer import LoadBalancer, LoadBalancerArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.network import Network, NetworkArgs
from infra.release import AppRelease, AppReleaseArgs, build_release
from infra.security_groups import SecurityGroups, SecurityGroupsArgs
from infra.settings import load_from_pulumi

settings = load_from_pulumi()
name = f"{settings.project}-{settings.stack}"
log_retention_days = settings.monitoring.log_retention_days
# Built before any resource is registered: a wrong appSourceDir/wsgiModule fails cleanly.
artifact = build_release(
    Path(__file__).resolve().parent.parent, settings.release, settings.fleet.architecture
)

network = Network(
    name,
    NetworkArgs(
        settings=settings.network,
        instance_types=(settings.fleet.instance_type, *settings.fleet.mixed_instance_types),
    ),
)
security_groups = SecurityGroups(
    name,
    SecurityGroupsArgs(vpc_id=network.vpc_id, edge=settings.edge, cache=settings.cache),
)
load_balancer = LoadBalancer(
    name,
    LoadBalancerArgs(
        settings=settings.edge,
        region=settings.region,
        log_retention_days=log_retention_days,
        vpc_id=network.vpc_id,
        public_subnet_ids=network.public_subnet_ids,
        security_group_id=security_groups.alb_security_group_id,
        internet_ready=network.internet_ready,
    ),
)
cache = Cache(
    name,
    CacheArgs(
        settings=settings.cache,
        log_retention_days=log_retention_days,
        subnet_ids=network.private_subnet_ids,
        security_group_id=security_groups.cache_security_group_id,
    ),
)

# -- the app fleet (AWS blueprint II) ---------------------------------------------------
release = AppRelease(
    f"{name}-release", AppReleaseArgs(settings=settings.release, artifact=artifact)
)
fleet = Fleet(
    name,
    FleetArgs(
        settings=settings.fleet,
        region=settings.region,
        log_retention_days=log_retention_days,
        private_subnet_ids=network.private_subnet_ids,
        security_group_id=security_groups.fleet_security_group_id,
        target_group_arn=load_balancer.target_group_arn,
        target_group_arn_suffix=load_balancer.target_group_arn_suffix,
        load_balancer_arn_suffix=load_balancer.alb_arn_suffix,
        target_group_listeners=[load_balancer.forwarding_listener],
        release=release.installable,
        cache=cache.connection,
        forwarded_allow_ips=settings.network.alb_source_range,
        # With a domain the stack knows every name clients use (the domain, and the ALB's
        # own for checks by hand); without one, any name may point at the ALB (README
        # "Security": not restricted).
        trusted_hosts=(
            [settings.edge.domain_name, load_balancer.dns_name] if settings.edge.domain_name else []
        ),
        # Provider default tags do not reach the ASG or the instances it launches.
        tags=settings.tag_map,
    ),
)
monitoring = Monitoring(
    name,
    MonitoringArgs(
        settings=settings.monitoring,
        fleet=settings.fleet,
        cache=settings.cache,
        region=settings.region,
        load_balancer_arn_suffix=load_balancer.alb_arn_suffix,
        target_group_arn_suffix=load_balancer.target_group_arn_suffix,
        asg_name=fleet.asg_name,
        cache_replication_group_id=cache.replication_group_id,
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
# What `pyscale deploy wait` verifies the instances run (pyscale/deploy/outputs.py).
pulumi.export("launchTemplateVersion", fleet.launch_template_version)
pulumi.export("instanceType", fleet.instance_type)
pulumi.export("architecture", fleet.architecture)
pulumi.export("artifactLocation", release.location)
pulumi.export("appVersion", release.app_version)
pulumi.export("alarmTopicArn", monitoring.topic_arn)
pulumi.export("dashboardName", monitoring.dashboard_name)
