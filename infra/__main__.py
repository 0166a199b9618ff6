"""The Pulumi program: validated settings in, components wired, outputs exported.

The language host runs this file with the working directory infra/ and ``sys.path[0] ==
"."``; the repository root is importable because ``uv sync`` installs the project into
.venv. Should it not be installed, the root is appended below so that ``infra.*`` and
``app.*`` still resolve, each module under one name only (never ``import settings``).

Each component takes its area's settings and the Outputs of the components before it;
nothing here copies a setting field by field.

``pyscale:platform`` picks what runs the app: ec2 (an Auto Scaling group behind the ALB),
eks (an EKS cluster behind the same ALB, with the same cache), or kubernetes (an existing
cluster: Kubernetes objects only). Everything a platform refuses is refused by the
settings and the pod budget before the first resource.
"""

import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if importlib.util.find_spec("infra") is None:  # project not installed into the venv
    sys.path.append(str(Path(__file__).resolve().parent.parent))

import pulumi
import pulumi_aws as aws

from app.views import route_templates
from infra.cache import Cache, CacheArgs
from infra.encryption import StackKey, StackKeyArgs
from infra.fleet import Fleet, FleetArgs
from infra.flow_logs import FlowLogs, FlowLogsArgs
from infra.kubernetes.capacity import CapacityPlan
from infra.kubernetes.eks_cluster import asg_name_of
from infra.kubernetes.eks_platform import EksPlatform, EksPlatformArgs
from infra.kubernetes.existing_cluster import ExistingClusterArgs, ExistingClusterPlatform
from infra.kubernetes.stack import addon_versions, admin_principal_arn, capacity_plan
from infra.load_balancer import LoadBalancer, LoadBalancerArgs
from infra.monitoring import (
    ClusterCompute,
    FleetCompute,
    Monitoring,
    MonitoringArgs,
    NodeGroupTarget,
)
from infra.network import Network, NetworkArgs
from infra.release import AppRelease, AppReleaseArgs, ReleaseArtifact, build_release
from infra.security_groups import SecurityGroups, SecurityGroupsArgs
from infra.settings import load_from_pulumi
from infra.settings.platform import Platform

settings = load_from_pulumi()
name = f"{settings.project}-{settings.stack}"
log_retention_days = settings.monitoring.log_retention_days


# The app's metrics (the CloudWatch agent's only namespace; alarms and dashboard read it).
metrics_namespace = f"pyscale/{name}"


def existing_cluster() -> None:
    """platform kubernetes: the workload (and Valkey) on a cluster the stack does not own."""
    capacity = capacity_plan(settings)
    existing = ExistingClusterPlatform(
        name,
        ExistingClusterArgs(
            platform=settings.platform,
            fleet=settings.fleet,
            release=settings.release,
            capacity=capacity,
        ),
    )
    pulumi.export("kubernetesNamespace", settings.platform.namespace)
    pulumi.export("serviceName", existing.workload.service_name)
    # The pod budget the app's requests were sized to (the plan shows it).
    pulumi.export("podsPerNode", capacity.pods_per_node)


@dataclass(frozen=True)
class SharedAws:
    """What both AWS platforms run behind and beside the compute."""

    network: Network
    security_groups: SecurityGroups
    load_balancer: LoadBalancer
    cache: Cache
    stack_key: StackKey


def aws_blueprint() -> None:
    """platforms ec2 and eks: the network, ALB and cache, then the compute."""
    # Decided before any resource is registered: a wrong appSourceDir/wsgiModule (ec2) or
    # an impossible pod budget (eks) fails cleanly.
    if settings.platform.platform is Platform.EC2:
        artifact = build_release(
            Path(__file__).resolve().parent.parent, settings.release, settings.fleet.architecture
        )
        shared = network_edge_and_cache(settings.fleet.mixed_instance_types, "instance")
        ec2_fleet(shared, artifact)
    else:
        capacity = capacity_plan(settings)
        shared = network_edge_and_cache(settings.platform.eks_spot_instance_types, "ip")
        eks_platform(shared, capacity)
    load_balancer, cache = shared.load_balancer, shared.cache
    pulumi.export("region", settings.region)
    pulumi.export("url", load_balancer.url)
    pulumi.export("albDnsName", load_balancer.dns_name)
    pulumi.export("cacheEndpoint", cache.endpoint)
    pulumi.export("cachePort", cache.port)
    pulumi.export("cacheMode", "cluster" if cache.cluster_mode else "single-shard")
    pulumi.export("cacheAuth", settings.cache.auth.value)
    pulumi.export("cacheReplicationGroupId", cache.replication_group_id)
    if cache.auth_secret_arn is not None:
        pulumi.export("cacheAuthSecretArn", cache.auth_secret_arn)


def network_edge_and_cache(extra_types: Sequence[str], target_type: str) -> SharedAws:
    """The network, security groups, ALB and cache. ``extra_types``: the instance types the
    compute launches besides fleet.instanceType (the zones must offer every one);
    ``target_type``: how the compute registers in the ALB's target group."""
    network = Network(
        name,
        NetworkArgs(
            settings=settings.network,
            instance_types=(settings.fleet.instance_type, *extra_types),
        ),
    )
    account_id = aws.get_caller_identity().account_id
    stack_key = StackKey(
        name,
        StackKeyArgs(settings=settings.encryption, region=settings.region, account_id=account_id),
    )
    # The stack key where customerManagedKey is on; None leaves AWS managed keys.
    data_key = stack_key.data_key_arn
    if settings.network.flow_logs and not settings.network.adopts_existing_vpc:
        FlowLogs(
            name,
            FlowLogsArgs(
                settings=settings.network,
                vpc_id=network.vpc_id,
                region=settings.region,
                account_id=account_id,
                log_retention_days=log_retention_days,
                log_key_arn=data_key,
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
            target_type=target_type,
            internet_ready=network.internet_ready,
            log_key_arn=data_key,
        ),
    )
    cache = Cache(
        name,
        CacheArgs(
            settings=settings.cache,
            log_retention_days=log_retention_days,
            subnet_ids=network.private_subnet_ids,
            security_group_id=security_groups.cache_security_group_id,
            key_arn=data_key,
        ),
    )
    return SharedAws(network, security_groups, load_balancer, cache, stack_key)


def ec2_fleet(shared: SharedAws, artifact: ReleaseArtifact) -> None:
    """platform ec2: the release, the Auto Scaling group behind the ALB, its alarms."""
    # -- the app fleet (AWS blueprint II) ------------------------------------------------------
    data_key = shared.stack_key.data_key_arn
    release = AppRelease(
        f"{name}-release",
        AppReleaseArgs(settings=settings.release, artifact=artifact, key_arn=data_key),
    )
    fleet = Fleet(
        name,
        FleetArgs(
            settings=settings.fleet,
            region=settings.region,
            log_retention_days=log_retention_days,
            private_subnet_ids=shared.network.private_subnet_ids,
            security_group_id=shared.security_groups.fleet_security_group_id,
            target_group_arn=shared.load_balancer.target_group_arn,
            target_group_arn_suffix=shared.load_balancer.target_group_arn_suffix,
            load_balancer_arn_suffix=shared.load_balancer.alb_arn_suffix,
            target_group_listeners=[shared.load_balancer.forwarding_listener],
            release=release.installable,
            cache=shared.cache.connection,
            forwarded_allow_ips=settings.network.alb_source_range,
            # Exactly the names the ALB forwards (its own DNS name, domainName, hostNames).
            trusted_hosts=shared.load_balancer.host_names,
            metrics_namespace=metrics_namespace,
            key_arn=data_key,
            # Provider default tags do not reach the ASG or the instances it launches.
            tags=settings.tag_map,
        ),
    )
    monitoring(
        shared,
        FleetCompute(
            fleet=settings.fleet,
            asg_name=fleet.asg_name,
            metrics_namespace=metrics_namespace,
            metrics_stack=name,
            endpoints=route_templates(),
        ),
    )
    pulumi.export("asgName", fleet.asg_name)
    # What `pyscale deploy wait` verifies the instances run (pyscale/deploy/outputs.py).
    pulumi.export("launchTemplateVersion", fleet.launch_template_version)
    pulumi.export("instanceType", fleet.instance_type)
    pulumi.export("architecture", fleet.architecture)
    pulumi.export("artifactLocation", release.location)
    pulumi.export("appVersion", release.app_version)


def monitoring(shared: SharedAws, compute: FleetCompute | ClusterCompute) -> None:
    """The alarms (to the stack's topic) and the dashboard of either AWS platform."""
    alarms = Monitoring(
        name,
        MonitoringArgs(
            settings=settings.monitoring,
            cache=settings.cache,
            region=settings.region,
            load_balancer_arn_suffix=shared.load_balancer.alb_arn_suffix,
            target_group_arn_suffix=shared.load_balancer.target_group_arn_suffix,
            cache_replication_group_id=shared.cache.replication_group_id,
            topic_key_arn=shared.stack_key.key_arn,
            compute=compute,
        ),
    )
    pulumi.export("alarmTopicArn", alarms.topic_arn)
    pulumi.export("dashboardName", alarms.dashboard_name)


def eks_platform(shared: SharedAws, capacity: CapacityPlan) -> None:
    """platform eks: the cluster and its workload behind the same ALB, with the same cache."""
    eks = EksPlatform(
        name,
        EksPlatformArgs(
            platform=settings.platform,
            fleet=settings.fleet,
            release=settings.release,
            capacity=capacity,
            admin_principal_arn=admin_principal_arn(settings),
            addon_versions=addon_versions(settings),
            region=settings.region,
            account_id=aws.get_caller_identity().account_id,
            log_retention_days=log_retention_days,
            vpc_id=shared.network.vpc_id,
            private_subnet_ids=shared.network.private_subnet_ids,
            forwarded_allow_ips=settings.network.alb_source_range,
            alb_security_group_id=shared.security_groups.alb_security_group_id,
            cache_security_group_id=shared.security_groups.cache_security_group_id,
            cache_port=settings.cache.port,
            target_group_arn=shared.load_balancer.target_group_arn,
            cache=shared.cache.connection,
            key_arn=shared.stack_key.data_key_arn,
            tags=settings.tag_map,
        ),
    )
    pulumi.export("clusterName", eks.eks.cluster.name)
    pulumi.export("imageRepositoryUrl", eks.image_repository_url)
    if settings.platform.app_image is not None:
        # The image the Deployment runs: a pull request's preview keeps it
        # (pyscale/image_publish.py keep-deployed) instead of proposing another.
        pulumi.export("appImage", settings.platform.app_image)
    pulumi.export("kubernetesNamespace", settings.platform.namespace)
    # The pod budget the app's requests were sized to (the plan shows it).
    pulumi.export("podsPerNode", capacity.pods_per_node)
    monitoring(
        shared,
        ClusterCompute(
            cluster_name=eks.eks.cluster.name,
            node_groups=[
                NodeGroupTarget(key, asg_name_of(group))
                for key, group in eks.eks.node_groups.items()
            ],
            min_pods=settings.platform.hpa_min_replicas,
            max_pods=settings.platform.hpa_max_replicas,
        ),
    )


if settings.platform.platform is Platform.KUBERNETES:
    existing_cluster()
else:
    aws_blueprint()
