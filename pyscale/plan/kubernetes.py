"""Key settings of the Kubernetes platforms (eks, kubernetes): what a reviewer of such a stack
looks for in place of the EC2 fleet's launch template and Auto Scaling group.

Read, like the rest of the plan, from what the program registered: the EKS cluster, its
managed node groups and add-ons, the Helm charts, the app's Deployment and the HPA that
targets it, the PDB, the Service, and the cache the pods reach (ElastiCache on eks; an
in-cluster Valkey StatefulSet or an external ``REDIS_URL`` Secret on an existing cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pyscale.plan.wire import lookup, plain

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SERVICE = "kubernetes:core/v1:Service"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"

# The app's environment (app/contract.py's names, spelled here: the plan never imports
# the app or the program).
REDIS_URL = "REDIS_URL"
WORKERS = "WEB_CONCURRENCY"
PODS_PER_NODE_OUTPUT = "podsPerNode"


class Resource(Protocol):
    """What these read of a recorded resource (read-only, like pyscale.plan.extract's)."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...


Of = Callable[[str], Sequence[Resource]]


def platform_of(of: Of) -> str:
    """``eks`` with an EKS cluster, ``kubernetes`` with Kubernetes workloads only, else ec2."""
    if of(CLUSTER):
        return "eks"
    if of(DEPLOYMENT):
        return "kubernetes"
    return "ec2"


def _value(resource: Resource, path: str) -> Any:
    value = lookup(resource.inputs, path)
    return None if value is None else plain(value)


def cluster(of: Of) -> dict[str, Any]:
    """The EKS control plane: version, how its endpoint is reached, auth and protection."""
    clusters = of(CLUSTER)
    if not clusters:
        return {"clusters": 0}
    found = clusters[0]
    return {
        "clusters": len(clusters),
        "version": _value(found, "version"),
        "endpoint_private": bool(_value(found, "vpcConfig.endpointPrivateAccess")),
        "endpoint_public": bool(_value(found, "vpcConfig.endpointPublicAccess")),
        "public_access_cidrs": _value(found, "vpcConfig.publicAccessCidrs") or [],
        "authentication_mode": _value(found, "accessConfig.authenticationMode"),
        "support_type": _value(found, "upgradePolicy.supportType"),
        "secrets_encryption": "secrets" in (_value(found, "encryptionConfig.resources") or []),
        "log_types": _value(found, "enabledClusterLogTypes") or [],
        "deletion_protection": bool(_value(found, "deletionProtection")),
    }


def node_groups(of: Of) -> dict[str, Any]:
    """Each managed node group by its capacity type (the program makes one per type)."""
    groups: dict[str, Any] = {}
    for group in sorted(of(NODE_GROUP), key=lambda g: g.name):
        capacity = str(_value(group, "capacityType") or "ON_DEMAND").lower()
        key = capacity if capacity not in groups else f"{capacity} ({group.name})"
        groups[key] = {
            "instance_types": _value(group, "instanceTypes") or [],
            "ami_type": _value(group, "amiType"),
            "min_size": _value(group, "scalingConfig.minSize"),
            "desired_size": _value(group, "scalingConfig.desiredSize"),
            "max_size": _value(group, "scalingConfig.maxSize"),
            "max_unavailable_percent": _value(group, "updateConfig.maxUnavailablePercentage"),
        }
    return groups


def addons(of: Of) -> dict[str, Any]:
    """EKS add-ons and Helm charts, name -> pinned version (None: the API's default)."""
    pinned: dict[str, Any] = {}
    for addon in of(ADDON):
        pinned[str(_value(addon, "addonName"))] = _value(addon, "addonVersion")
    for release in of(HELM_RELEASE):
        pinned[f"{_value(release, 'chart')} (Helm chart)"] = _value(release, "version")
    return dict(sorted(pinned.items()))


def app_deployment(of: Of) -> tuple[Resource | None, Resource | None]:
    """(the HPA, the Deployment it scales): the app's, not a controller's."""
    for hpa in of(HPA):
        target = _value(hpa, "spec.scaleTargetRef.name")
        namespace = _value(hpa, "metadata.namespace")
        for deployment in of(DEPLOYMENT):
            if (
                _value(deployment, "metadata.name") == target
                and _value(deployment, "metadata.namespace") == namespace
            ):
                return hpa, deployment
    return None, None


def _environment(container: Mapping[str, Any]) -> dict[str, Any]:
    """name -> value; a variable from a Secret reads as ``secret <name>/<key>``."""
    found: dict[str, Any] = {}
    for variable in container.get("env") or []:
        reference = lookup(variable, "valueFrom.secretKeyRef")
        if isinstance(reference, Mapping):
            found[str(variable.get("name"))] = (
                f"secret {plain(reference.get('name'))}/{plain(reference.get('key'))}"
            )
        elif "value" in variable:
            found[str(variable.get("name"))] = plain(variable["value"])
    return found


def workload(of: Of, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The app's pods: how many (HPA), how big (requests, limits), how they are reached."""
    hpa, deployment = app_deployment(of)
    if deployment is None:
        return {"deployment": None}
    container = lookup(deployment.inputs, "spec.template.spec.containers[0]") or {}
    environment = _environment(container)
    services = [
        service
        for service in of(SERVICE)
        if lookup(service.inputs, "spec.selector")
        == lookup(deployment.inputs, "spec.selector.matchLabels")
    ]
    budgets = [
        pdb
        for pdb in of(PDB)
        if lookup(pdb.inputs, "spec.selector.matchLabels")
        == lookup(deployment.inputs, "spec.selector.matchLabels")
    ]
    workers = environment.get(WORKERS)
    pods_per_node = plain(outputs.get(PODS_PER_NODE_OUTPUT))
    return {
        "deployment": _value(deployment, "metadata.name"),
        "namespace": _value(deployment, "metadata.namespace"),
        "image": plain(container.get("image")),
        # Absent while the HPA owns the replica count (a value would fight it on every up).
        "replicas": _value(deployment, "spec.replicas"),
        "hpa_min_replicas": _value(hpa, "spec.minReplicas") if hpa else None,
        "hpa_max_replicas": _value(hpa, "spec.maxReplicas") if hpa else None,
        "hpa_cpu_target_percent": hpa_cpu_target(hpa),
        "cpu_request": plain(lookup(container, "resources.requests.cpu")),
        "cpu_limit": plain(lookup(container, "resources.limits.cpu")),
        "memory_request": plain(lookup(container, "resources.requests.memory")),
        "memory_limit": plain(lookup(container, "resources.limits.memory")),
        "gunicorn_workers": int(workers)
        if isinstance(workers, str) and workers.isdigit()
        else None,
        "pods_per_node": pods_per_node if isinstance(pods_per_node, int) else None,
        "max_unavailable_rollout": plain(
            lookup(deployment.inputs, "spec.strategy.rollingUpdate.maxUnavailable")
        ),
        "pdb_max_unavailable": _value(budgets[0], "spec.maxUnavailable") if budgets else None,
        "service_type": _value(services[0], "spec.type") if services else None,
    }


def hpa_cpu_target(hpa: Resource | None) -> Any:
    """The HPA's average CPU utilisation target (a share of the pods' request), or None."""
    if hpa is None:
        return None
    for metric in lookup(hpa.inputs, "spec.metrics") or []:
        if lookup(metric, "resource.name") == "cpu":
            return plain(lookup(metric, "resource.target.averageUtilization"))
    return None


def in_cluster_cache(of: Of) -> dict[str, Any]:
    """On an existing cluster: the Valkey StatefulSet the program runs, or an external URL."""
    _, deployment = app_deployment(of)
    container = (
        lookup(deployment.inputs, "spec.template.spec.containers[0]") or {} if deployment else {}
    )
    redis_url = _environment(container).get(REDIS_URL)
    external = isinstance(redis_url, str) and redis_url.startswith("secret ")
    stateful_sets = of(STATEFUL_SET)
    valkey = stateful_sets[0] if stateful_sets else None
    return {
        "replication_groups": 0,
        "source": "external (REDIS_URL from a Secret)" if external else "in-cluster Valkey",
        "redis_url": redis_url,
        "valkey_image": _value(valkey, "spec.template.spec.containers[0].image")
        if valkey
        else None,
        "valkey_replicas": _value(valkey, "spec.replicas") if valkey else None,
        "valkey_memory_limit": (
            _value(valkey, "spec.template.spec.containers[0].resources.limits.memory")
            if valkey
            else None
        ),
    }


def existing_cluster(of: Of) -> dict[str, Any]:
    """On an existing cluster: which one the provider is identified with."""
    providers = of(KUBERNETES_PROVIDER)
    return {
        "clusters": 0,
        "cluster_identifier": _value(providers[0], "clusterIdentifier") if providers else None,
    }
