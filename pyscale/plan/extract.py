"""From a program run to a plan: what `pulumi up` would create, and the settings that matter.

Everything here is read from what the program *registered* (each resource's type, name,
parent and wire-form inputs, the data sources it called, its stack outputs), never from the
stack file or the settings model: the plan must show what the engine would get, including
any mistake between the settings and the resources.

The result is the plan document itself: plain JSON data whose shape is
``plan.schema.json`` (``kind: "plan"``). Renderers and ``--diff`` work from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from pyscale.plan import kubernetes
from pyscale.plan.wire import lookup, plain

SCHEMA_VERSION = 1
STACK_GROUP = "(stack)"  # resources registered directly under the stack, not in a component
PARAMETER_GROUP = "aws:elasticache/parameterGroup:ParameterGroup"
WARM_POOL = "aws:autoscaling/warmPool:WarmPool"
SSM_GET_PARAMETER = "aws:ssm/getParameter:getParameter"
MIN_REFERENCE_LENGTH = 8
KUBERNETES_TYPES = ("kubernetes:", "pulumi:providers:kubernetes")

# --------------------------------------------------------------------------------------------
# Settings per resource type: setting name (stable, snake_case: part of the JSON contract)
# -> path in the wire inputs. Types not listed still appear, with their type and name.
# --------------------------------------------------------------------------------------------
_SECURITY_GROUP_RULE = {
    "protocol": "ipProtocol",
    "from_port": "fromPort",
    "to_port": "toPort",
    "cidr_ipv4": "cidrIpv4",
    "cidr_ipv6": "cidrIpv6",
    "prefix_list": "prefixListId",
    "source_security_group": "referencedSecurityGroupId",
}
RESOURCE_SETTINGS: Mapping[str, Mapping[str, str]] = {
    # network
    "aws:ec2/vpc:Vpc": {"cidr_block": "cidrBlock"},
    "aws:ec2/subnet:Subnet": {
        "availability_zone": "availabilityZone",
        "cidr_block": "cidrBlock",
        "public_ip_on_launch": "mapPublicIpOnLaunch",
    },
    "aws:ec2/natGateway:NatGateway": {"connectivity_type": "connectivityType"},
    "aws:ec2/vpcEndpoint:VpcEndpoint": {
        "service_name": "serviceName",
        "endpoint_type": "vpcEndpointType",
    },
    "aws:ec2/route:Route": {"destination": "destinationCidrBlock"},
    "aws:ec2/securityGroup:SecurityGroup": {"description": "description"},
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _SECURITY_GROUP_RULE,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _SECURITY_GROUP_RULE,
    "aws:ec2/securityGroupRule:SecurityGroupRule": {
        "direction": "type",
        "protocol": "protocol",
        "from_port": "fromPort",
        "to_port": "toPort",
        "cidr_blocks": "cidrBlocks",
        "source_security_group": "sourceSecurityGroupId",
    },
    # eks: the cluster, its node groups and add-ons
    "aws:eks/cluster:Cluster": {
        "name": "name",
        "version": "version",
        "authentication_mode": "accessConfig.authenticationMode",
        "support_type": "upgradePolicy.supportType",
        "secrets_encryption": "encryptionConfig.resources",
        "log_types": "enabledClusterLogTypes",
        "endpoint_private": "vpcConfig.endpointPrivateAccess",
        "endpoint_public": "vpcConfig.endpointPublicAccess",
        "public_access_cidrs": "vpcConfig.publicAccessCidrs",
        "deletion_protection": "deletionProtection",
    },
    "aws:eks/nodeGroup:NodeGroup": {
        "capacity_type": "capacityType",
        "instance_types": "instanceTypes",
        "ami_type": "amiType",
        "min_size": "scalingConfig.minSize",
        "desired_size": "scalingConfig.desiredSize",
        "max_size": "scalingConfig.maxSize",
        "max_unavailable_percent": "updateConfig.maxUnavailablePercentage",
    },
    "aws:eks/addon:Addon": {"addon": "addonName", "version": "addonVersion"},
    "aws:eks/accessEntry:AccessEntry": {"principal": "principalArn", "type": "type"},
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": {
        "namespace": "namespace",
        "service_account": "serviceAccount",
    },
    "aws:ecr/repository:Repository": {"tag_mutability": "imageTagMutability"},
    # kubernetes workloads
    "kubernetes:apps/v1:Deployment": {
        "name": "metadata.name",
        "namespace": "metadata.namespace",
        "replicas": "spec.replicas",
        "image": "spec.template.spec.containers[*].image",
        "cpu_request": "spec.template.spec.containers[*].resources.requests.cpu",
        "memory_request": "spec.template.spec.containers[*].resources.requests.memory",
        "memory_limit": "spec.template.spec.containers[*].resources.limits.memory",
    },
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": {
        "target": "spec.scaleTargetRef.name",
        "min_replicas": "spec.minReplicas",
        "max_replicas": "spec.maxReplicas",
        "cpu_target": "spec.metrics[0].resource.target.averageUtilization",
    },
    "kubernetes:policy/v1:PodDisruptionBudget": {"max_unavailable": "spec.maxUnavailable"},
    "kubernetes:core/v1:Service": {"type": "spec.type", "port": "spec.ports[0].port"},
    "kubernetes:apps/v1:StatefulSet": {
        "image": "spec.template.spec.containers[*].image",
        "memory_limit": "spec.template.spec.containers[*].resources.limits.memory",
    },
    "kubernetes:helm.sh/v3:Release": {"chart": "chart", "version": "version"},
    # load balancer
    "aws:lb/loadBalancer:LoadBalancer": {
        "load_balancer_type": "loadBalancerType",
        "internal": "internal",
        "deletion_protection": "enableDeletionProtection",
        "drop_invalid_header_fields": "dropInvalidHeaderFields",
        "access_logs": "accessLogs.enabled",
        "idle_timeout": "idleTimeout",
    },
    "aws:lb/listener:Listener": {
        "protocol": "protocol",
        "port": "port",
        "ssl_policy": "sslPolicy",
        "action": "defaultActions[0].type",
        "redirect_protocol": "defaultActions[0].redirect.protocol",
        "redirect_port": "defaultActions[0].redirect.port",
        "redirect_status": "defaultActions[0].redirect.statusCode",
    },
    "aws:lb/targetGroup:TargetGroup": {
        "protocol": "protocol",
        "port": "port",
        "target_type": "targetType",
        "health_check_path": "healthCheck.path",
        "health_check_interval": "healthCheck.interval",
        "deregistration_delay": "deregistrationDelay",
    },
    "aws:acm/certificate:Certificate": {
        "domain_name": "domainName",
        "validation_method": "validationMethod",
    },
    "aws:wafv2/webAcl:WebAcl": {
        "scope": "scope",
        "default_action": "defaultAction",
        "rules": "rules[*].name",
        "rate_limit": "rules[*].statement.rateBasedStatement.limit",
    },
    # cache
    "aws:elasticache/replicationGroup:ReplicationGroup": {
        "engine": "engine",
        "engine_version": "engineVersion",
        "node_type": "nodeType",
        "cluster_mode": "clusterMode",
        "shards": "numNodeGroups",
        "replicas_per_shard": "replicasPerNodeGroup",
        "cache_clusters": "numCacheClusters",
        "multi_az": "multiAzEnabled",
        "automatic_failover": "automaticFailoverEnabled",
        "at_rest_encryption": "atRestEncryptionEnabled",
        "transit_encryption": "transitEncryptionEnabled",
        "auth_token": "authToken",
        "user_groups": "userGroupIds",
        "snapshot_retention_days": "snapshotRetentionLimit",
        "snapshot_window": "snapshotWindow",
        "port": "port",
    },
    # RBAC (cacheAuth: iam): who may connect and how; the disabled default user's password
    # shows as [secret].
    "aws:elasticache/user:User": {
        "user_name": "userName",
        "authentication": "authenticationMode.type",
        "passwords": "authenticationMode.passwords",
        "access_string": "accessString",
    },
    "aws:elasticache/userGroup:UserGroup": {"users": "userIds"},
    "aws:elasticache/parameterGroup:ParameterGroup": {
        "family": "family",
        "parameters": "parameters",
    },
    "aws:secretsmanager/secret:Secret": {"recovery_window_days": "recoveryWindowInDays"},
    # fleet
    "aws:ec2/launchTemplate:LaunchTemplate": {
        "instance_type": "instanceType",
        "image_id": "imageId",
        "imds_tokens": "metadataOptions.httpTokens",
        "imds_hop_limit": "metadataOptions.httpPutResponseHopLimit",
        "root_volume_type": "blockDeviceMappings[0].ebs.volumeType",
        "root_volume_size_gb": "blockDeviceMappings[0].ebs.volumeSize",
        "root_volume_encrypted": "blockDeviceMappings[0].ebs.encrypted",
        "public_ip": "networkInterfaces[0].associatePublicIpAddress",
    },
    "aws:autoscaling/group:Group": {
        "min_size": "minSize",
        "desired_capacity": "desiredCapacity",
        "max_size": "maxSize",
        "health_check_type": "healthCheckType",
        "health_check_grace_period": "healthCheckGracePeriod",
        "launch_template_version": "launchTemplate.version",
        "refresh_strategy": "instanceRefresh.strategy",
        "refresh_min_healthy_percent": "instanceRefresh.preferences.minHealthyPercentage",
        "refresh_auto_rollback": "instanceRefresh.preferences.autoRollback",
        "capacity_rebalance": "capacityRebalance",
        "max_instance_lifetime": "maxInstanceLifetime",
        "mixed_instance_types": "mixedInstancesPolicy.launchTemplate.overrides[*].instanceType",
        "on_demand_percent_above_base": (
            "mixedInstancesPolicy.instancesDistribution.onDemandPercentageAboveBaseCapacity"
        ),
        # The program sets the warm pool inside the group (its warm_pool input).
        "warm_pool_state": "warmPool.poolState",
        "warm_pool_min_size": "warmPool.minSize",
        "warm_pool_reuse_on_scale_in": "warmPool.instanceReusePolicy.reuseOnScaleIn",
    },
    "aws:autoscaling/policy:Policy": {
        "policy_type": "policyType",
        "metric": "targetTrackingConfiguration.predefinedMetricSpecification.predefinedMetricType",
        "target_value": "targetTrackingConfiguration.targetValue",
    },
    "aws:autoscaling/schedule:Schedule": {
        "recurrence": "recurrence",
        "min_size": "minSize",
        "desired_capacity": "desiredCapacity",
        "max_size": "maxSize",
    },
    "aws:autoscaling/warmPool:WarmPool": {"min_size": "minSize", "pool_state": "poolState"},
    # release
    "aws:s3/bucketVersioning:BucketVersioning": {
        "versioning": "versioningConfiguration.status",
    },
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": {
        "algorithm": "rules[0].applyServerSideEncryptionByDefault.sseAlgorithm",
    },
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
        "block_public_acls": "blockPublicAcls",
        "block_public_policy": "blockPublicPolicy",
        "ignore_public_acls": "ignorePublicAcls",
        "restrict_public_buckets": "restrictPublicBuckets",
    },
    "aws:s3/bucketObjectv2:BucketObjectv2": {"key": "key"},
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": {"policy_arn": "policyArn"},
    # monitoring
    "aws:cloudwatch/metricAlarm:MetricAlarm": {
        "namespace": "namespace",
        "metric": "metricName",
        "statistic": "statistic",
        "extended_statistic": "extendedStatistic",
        "comparison": "comparisonOperator",
        "threshold": "threshold",
        "period": "period",
        "evaluation_periods": "evaluationPeriods",
        "expressions": "metricQueries[*].expression",
    },
    "aws:cloudwatch/logGroup:LogGroup": {"retention_days": "retentionInDays"},
    "aws:cloudwatch/dashboard:Dashboard": {"dashboard_name": "dashboardName"},
    "aws:sns/topicSubscription:TopicSubscription": {"protocol": "protocol", "endpoint": "endpoint"},
}


class Resource(Protocol):
    """What the plan reads of one recorded resource (pyscale.offline.RecordedResource).

    Read-only properties, so that a record's concrete types (dict, list) satisfy them."""

    @property
    def urn(self) -> str: ...
    @property
    def id(self) -> str | None: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def custom(self) -> bool: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...


class Run(Protocol):
    """What the plan reads of a program run (pyscale.offline.ProgramRun)."""

    @property
    def project(self) -> str: ...
    @property
    def stack(self) -> str: ...
    @property
    def resources(self) -> Sequence[Resource]: ...
    @property
    def stack_outputs(self) -> Mapping[str, Any]: ...
    @property
    def warnings(self) -> Sequence[str]: ...
    @property
    def data_source_calls(self) -> Sequence[tuple[str, Mapping[str, Any]]]: ...


# --------------------------------------------------------------------------------------------
# The plan document
# --------------------------------------------------------------------------------------------
def build_plan(run: Run) -> dict[str, Any]:
    """The plan of one program run (``kind: "plan"`` in plan.schema.json)."""
    by_urn = {resource.urn: resource for resource in run.resources}
    references = _references(run.resources)
    children: dict[str | None, list[Resource]] = {}
    for resource in run.resources:
        parent = resource.parent if resource.parent in by_urn else None
        children.setdefault(parent, []).append(resource)
    components: list[dict[str, Any]] = []
    outside = _component(STACK_GROUP, STACK_GROUP, None)
    for top in _ordered(children.get(None, [])):
        if top.custom:  # a resource of the program's own, outside any component
            outside["resources"] += [
                _resource_entry(r, by_urn, references) for r in (top, *_descendants(top, children))
            ]
            continue
        component = _component(top.type, top.name, top.urn)
        component["resources"] = [
            _resource_entry(r, by_urn, references) for r in _descendants(top, children)
        ]
        components.append(component)
    if outside["resources"]:
        components.append(outside)
    custom = [resource for resource in run.resources if resource.custom]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "plan",
        "project": run.project,
        "stack": run.stack,
        "platform": kubernetes.platform_of(lambda token: [r for r in custom if r.type == token]),
        "summary": {
            "resources": len(custom),
            "components": sum(1 for resource in run.resources if not resource.custom),
            "by_type": dict(sorted(Counter(resource.type for resource in custom).items())),
        },
        "key_settings": key_settings(run),
        "components": components,
        "outputs": {name: plain(value) for name, value in sorted(run.stack_outputs.items())},
        "warnings": list(run.warnings),
        "cost": _cost_summary(run),
    }


def _cost_summary(run: Run) -> dict[str, Any]:
    """Monthly total and capacity (pyscale/cost), or why they cannot be computed."""
    # Imported here: pyscale.cost reads the plan's wire helpers.
    from pyscale.cost import plan_summary
    from pyscale.cost.document import Run as PricedRun

    if not isinstance(run, PricedRun):  # a run without its engine config has no region
        return {"error": "the run carries no engine config, so no region to price"}
    return plan_summary(run)


def _ordered(resources: Iterable[Resource]) -> list[Resource]:
    # Registration order depends on when each Output resolves, so it can vary between runs;
    # a plan sorted by type and name is the same every time and diffs cleanly.
    return sorted(resources, key=lambda resource: (resource.type, resource.name))


def _descendants(
    resource: Resource, children: Mapping[str | None, list[Resource]]
) -> Iterator[Resource]:
    """Depth first, parents before their children, siblings by type and name."""
    for child in _ordered(children.get(resource.urn, [])):
        yield child
        yield from _descendants(child, children)


def _component(type_token: str, name: str, urn: str | None) -> dict[str, Any]:
    return {"type": type_token, "name": name, "urn": urn, "resources": []}


def _references(resources: Iterable[Resource]) -> dict[str, str]:
    """Each resource's id and ARN -> ``${name.id}`` / ``${name.arn}``.

    An input holding another resource's id reads better, and compares across stacks, as
    the name of that resource than as the physical id the mocks made up for it.
    """
    references: dict[str, str] = {}
    for resource in resources:
        # A Kubernetes object's id is its [namespace/]name, unique only within its kind:
        # a Deployment named like a ClusterRole is not a reference to it.
        if resource.type.startswith(KUBERNETES_TYPES):
            continue
        outputs = getattr(resource, "outputs", None) or {}
        for attribute, value in (
            ("id", getattr(resource, "id", None)),
            ("arn", outputs.get("arn")),
        ):
            # Short values (a "1", a port) could collide with ordinary inputs.
            if isinstance(value, str) and len(value) >= MIN_REFERENCE_LENGTH:
                references.setdefault(value, f"${{{resource.name}.{attribute}}}")
    return references


def _with_references(value: Any, references: Mapping[str, str], own_id: str | None) -> Any:
    """``value`` with other resources' ids and ARNs as references; the resource's own id is
    no reference to itself (an EKS cluster's id is its name)."""
    if isinstance(value, str):
        return value if value == own_id else references.get(value, value)
    if isinstance(value, list):
        return [_with_references(item, references, own_id) for item in value]
    if isinstance(value, dict):
        return {key: _with_references(item, references, own_id) for key, item in value.items()}
    return value


def _resource_entry(
    resource: Resource, by_urn: Mapping[str, Resource], references: Mapping[str, str]
) -> dict[str, Any]:
    parent = by_urn.get(resource.parent or "")
    return {
        "type": resource.type,
        "name": resource.name,
        "urn": resource.urn,
        "parent": parent.urn if parent else None,
        "custom": resource.custom,
        "settings": _with_references(
            resource_settings(resource.type, resource.inputs),
            references,
            own_id=getattr(resource, "id", None),
        ),
    }


def resource_settings(type_token: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that matter for one resource, by its type; absent inputs are left out."""
    settings: dict[str, Any] = {}
    for name, path in RESOURCE_SETTINGS.get(type_token, {}).items():
        value = lookup(inputs, path)
        if value is None or value == []:
            continue
        settings[name] = plain(value)
    if type_token == PARAMETER_GROUP and "parameters" in settings:
        settings["parameters"] = {
            str(item.get("name")): item.get("value")
            for item in settings["parameters"]
            if isinstance(item, Mapping)
        }
    return settings


# --------------------------------------------------------------------------------------------
# Key settings: the handful of facts a reviewer looks for, aggregated over the resources
# --------------------------------------------------------------------------------------------
def key_settings(run: Run) -> dict[str, Any]:
    by_type: dict[str, list[Resource]] = {}
    for resource in run.resources:
        by_type.setdefault(resource.type, []).append(resource)

    def of(type_token: str) -> list[Resource]:
        return by_type.get(type_token, [])

    alarms = _alarms(of("aws:cloudwatch/metricAlarm:MetricAlarm"))
    platform = kubernetes.platform_of(of)
    if platform == "kubernetes":  # an existing cluster: Kubernetes objects only
        return {
            "cluster": kubernetes.existing_cluster(of),
            "workload": kubernetes.workload(of, run.stack_outputs),
            "cache": kubernetes.in_cluster_cache(of),
            "alarms": alarms,
        }
    compute: dict[str, Any] = (
        {"fleet": _fleet(of, run.data_source_calls, run.stack_outputs)}
        if platform == "ec2"
        else {
            "cluster": kubernetes.cluster(of),
            "node_groups": kubernetes.node_groups(of),
            "addons": kubernetes.addons(of),
            "workload": kubernetes.workload(of, run.stack_outputs),
        }
    )
    return {
        "network": _network(of),
        "load_balancer": _load_balancer(of),
        **compute,
        "cache": _cache(of),
        "alarms": alarms,
    }


def _settings(resource: Resource) -> dict[str, Any]:
    return resource_settings(resource.type, resource.inputs)


def _network(of: Any) -> dict[str, Any]:
    subnets = [_settings(subnet) for subnet in of("aws:ec2/subnet:Subnet")]
    vpcs = of("aws:ec2/vpc:Vpc")
    zones = sorted({str(s["availability_zone"]) for s in subnets if "availability_zone" in s})
    return {
        "vpc_cidr": _settings(vpcs[0]).get("cidr_block") if vpcs else None,
        "availability_zones": zones,
        "subnets": len(subnets),
        "nat_gateways": len(of("aws:ec2/natGateway:NatGateway")),
    }


def _listener_summary(settings: Mapping[str, Any]) -> str:
    head = f"{settings.get('protocol', '?')}:{settings.get('port', '?')}"
    if settings.get("action") == "redirect":
        protocol = settings.get("redirect_protocol", "#{protocol}")
        port = settings.get("redirect_port", "#{port}")
        return f"{head} redirect -> {protocol}:{port}"
    tail = f" ({settings['ssl_policy']})" if "ssl_policy" in settings else ""
    return f"{head} {settings.get('action', '?')}{tail}"


def _load_balancer(of: Any) -> dict[str, Any]:
    balancers = [_settings(lb) for lb in of("aws:lb/loadBalancer:LoadBalancer")]
    listeners = sorted(
        (_settings(listener) for listener in of("aws:lb/listener:Listener")),
        key=lambda s: (s.get("port", 0), str(s.get("protocol"))),
    )
    target_groups = [_settings(tg) for tg in of("aws:lb/targetGroup:TargetGroup")]
    first = balancers[0] if balancers else {}
    return {
        "load_balancers": len(balancers),
        "listeners": [_listener_summary(listener) for listener in listeners],
        "https": any(listener.get("protocol") == "HTTPS" for listener in listeners),
        "http_redirects_to_https": any(
            listener.get("protocol") == "HTTP"
            and listener.get("action") == "redirect"
            and listener.get("redirect_protocol") == "HTTPS"
            for listener in listeners
        ),
        "deletion_protection": bool(first.get("deletion_protection", False)),
        "drop_invalid_header_fields": bool(first.get("drop_invalid_header_fields", False)),
        "access_logs": bool(first.get("access_logs", False)),
        "waf": bool(of("aws:wafv2/webAcl:WebAcl")),
        "health_check_path": target_groups[0].get("health_check_path") if target_groups else None,
    }


def _architecture(
    calls: Iterable[tuple[str, Mapping[str, Any]]], outputs: Mapping[str, Any]
) -> str | None:
    """The architecture whose AMI the program looked up (the SSM public parameter it read)."""
    for token, args in calls:
        name = str(args.get("name", "")) if token == SSM_GET_PARAMETER else ""
        if "/ami-amazon-linux-latest/" in name:
            return "arm64" if name.endswith("arm64") else "x86_64"
    value = outputs.get("architecture") or outputs.get("instanceArchitecture")
    return str(plain(value)) if value is not None else None


def _fleet(
    of: Any,
    calls: Iterable[tuple[str, Mapping[str, Any]]],
    outputs: Mapping[str, Any],
) -> dict[str, Any]:
    templates = [_settings(lt) for lt in of("aws:ec2/launchTemplate:LaunchTemplate")]
    groups = [_settings(group) for group in of("aws:autoscaling/group:Group")]
    template = templates[0] if templates else {}
    group = groups[0] if groups else {}
    targets: dict[str, Any] = {}
    for policy in of("aws:autoscaling/policy:Policy"):
        settings = _settings(policy)
        if "metric" in settings and "target_value" in settings:
            targets[str(settings["metric"])] = settings["target_value"]
    return {
        "instance_type": template.get("instance_type"),
        "architecture": _architecture(calls, outputs),
        "min_size": group.get("min_size"),
        "desired_capacity": group.get("desired_capacity"),
        "max_size": group.get("max_size"),
        "scaling_targets": dict(sorted(targets.items())),
        "refresh_min_healthy_percent": group.get("refresh_min_healthy_percent"),
        "imds_tokens": template.get("imds_tokens"),
        "root_volume_encrypted": template.get("root_volume_encrypted"),
        "scheduled_actions": len(of("aws:autoscaling/schedule:Schedule")),
        # In the group's own input or as a separate WarmPool resource: either is a warm pool.
        "warm_pool": "warm_pool_state" in group or bool(of(WARM_POOL)),
        "warm_pool_min_size": group.get("warm_pool_min_size")
        if "warm_pool_state" in group
        else next((_settings(p).get("min_size") for p in of(WARM_POOL)), None),
    }


def _cache(of: Any) -> dict[str, Any]:
    groups = [_settings(group) for group in of("aws:elasticache/replicationGroup:ReplicationGroup")]
    if not groups:
        return {"replication_groups": 0}
    group = groups[0]
    cluster_mode = group.get("cluster_mode") in ("enabled", True) or "shards" in group
    shards = _count(group.get("shards"), default=1)
    if "replicas_per_shard" in group:
        replicas = _count(group["replicas_per_shard"], default=0)
    else:
        replicas = max(_count(group.get("cache_clusters"), default=1) - 1, 0)
    return {
        "replication_groups": len(groups),
        "engine": group.get("engine"),
        "engine_version": group.get("engine_version"),
        "node_type": group.get("node_type"),
        "cluster_mode": cluster_mode,
        "shards": shards,
        "replicas_per_shard": replicas,
        "nodes": shards * (1 + replicas),
        "multi_az": bool(group.get("multi_az", False)),
        "automatic_failover": bool(group.get("automatic_failover", False)),
        "at_rest_encryption": bool(group.get("at_rest_encryption", False)),
        "transit_encryption": bool(group.get("transit_encryption", False)),
        "auth_token": "auth_token" in group,
        # RBAC user groups (IAM authentication in pyscale), an AUTH token, or neither.
        "auth": "iam"
        if group.get("user_groups")
        else "auth-token"
        if "auth_token" in group
        else "none",
        "snapshot_retention_days": group.get("snapshot_retention_days", 0),
    }


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _alarms(alarms: Sequence[Resource]) -> list[dict[str, Any]]:
    entries = []
    for alarm in alarms:
        settings = _settings(alarm)
        metric = settings.get("metric")
        if metric is None and settings.get("expressions"):
            metric = " ; ".join(str(e) for e in settings["expressions"])
        statistic = settings.get("statistic") or settings.get("extended_statistic")
        entries.append(
            {
                "name": alarm.name,
                "namespace": settings.get("namespace"),
                "metric": metric,
                "statistic": statistic,
                "comparison": settings.get("comparison"),
                "threshold": settings.get("threshold"),
            }
        )
    return sorted(entries, key=lambda entry: entry["name"])
