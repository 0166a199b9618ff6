"""How big the local topology is: the stack's shape, scaled down to this machine.

Replicas are the stack's desired capacity (the ASG's instance count at deploy time) and
workers per replica what gunicorn would start on the stack's instance type (its vCPUs
through app/sizing.py, the formula app/gunicorn.conf.py uses, or the stack's
webConcurrency), each capped by the vCPUs here, counted as gunicorn counts them: more
processes than cores only measure the scheduler. Flags override both.

On the Kubernetes platforms (eks, kubernetes) the same shape comes from the pods: replicas
are the HPA's minimum (hpaMinReplicas) and workers the WEB_CONCURRENCY the Deployment sets,
derived from the pod's CPU request (infra/kubernetes/capacity.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app import sizing as app_sizing
from infra import instance_types
from infra import settings as infra_settings
from infra.kubernetes.stack import capacity_plan
from infra.settings.platform import Platform
from pyscale import stacks
from pyscale.local.errors import LocalTopologyError


@dataclass(frozen=True)
class Size:
    """What `pyscale local up` starts, and a sentence saying where the numbers came from."""

    replicas: int
    workers: int
    cache_ttl_seconds: int | None
    explanation: str


@dataclass(frozen=True)
class StackShape:
    """The parts of a stack's settings the local topology copies."""

    stack: str
    instance_type: str
    vcpus: int | None
    desired_capacity: int
    web_concurrency: int | None
    cache_ttl_seconds: int
    # Where desired_capacity and web_concurrency come from, for the explanation.
    replicas_key: str = "desiredCapacity"
    workers_source: str = "webConcurrency"


def local_cores() -> int:
    """vCPUs here, counted as gunicorn counts them (affinity, capped by a cgroup quota)."""
    return app_sizing.available_vcpus()


def stack_shape(stack: str) -> StackShape:
    """Read and validate the stack the way `pulumi up` would; clear errors otherwise."""
    try:
        settings = infra_settings.load_settings(stacks.engine_config(stack), stack)
    except (stacks.UnknownStackError, stacks.StackFileError) as error:
        raise LocalTopologyError(f"--stack {stack}: {error.args[0]}") from None
    except infra_settings.ConfigError as error:
        raise LocalTopologyError(f"--stack {stack}: {error}") from None
    fleet = settings.fleet
    instance = instance_types.lookup(fleet.instance_type)
    if settings.platform.platform is not Platform.EC2:
        try:
            pod = capacity_plan(settings).pod
        except infra_settings.ConfigError as error:
            raise LocalTopologyError(f"--stack {stack}: {error}") from None
        return StackShape(
            stack=stack,
            instance_type=instance.name,
            vcpus=instance.vcpus,
            desired_capacity=settings.platform.hpa_min_replicas,
            web_concurrency=pod.workers,
            cache_ttl_seconds=settings.cache.ttl_seconds,
            replicas_key="hpaMinReplicas",
            workers_source=f"the pod's CPU request ({pod.cpu}, WEB_CONCURRENCY)",
        )
    return StackShape(
        stack=stack,
        instance_type=instance.name,
        vcpus=instance.vcpus,
        desired_capacity=fleet.desired_capacity,
        web_concurrency=fleet.web_concurrency,
        cache_ttl_seconds=settings.cache.ttl_seconds,
    )


def resolve(
    *,
    stack: str,
    replicas: int | None = None,
    workers: int | None = None,
    cores: int | None = None,
    default_workers: Callable[[int], int] | None = None,
) -> Size:
    """The topology's size: from the stack, capped by `cores`, overridden by the flags."""
    cores = cores or local_cores()
    shape = stack_shape(stack)
    formula = default_workers or app_sizing.default_workers
    notes = []

    if replicas is None:
        if shape.desired_capacity < 1:
            raise LocalTopologyError(
                f"--stack {stack} has {shape.replicas_key} {shape.desired_capacity}: nothing "
                "would serve; pass --replicas N (at least 1)."
            )
        replicas = min(shape.desired_capacity, cores)
        notes.append(
            f"{replicas} replica(s) = {shape.replicas_key} {shape.desired_capacity}, capped by "
            f"{cores} local core(s)"
        )
    else:
        notes.append(f"{replicas} replica(s) from --replicas")

    if workers is None:
        vcpus = shape.vcpus or cores  # sizes like .metal: whatever the host has
        if shape.web_concurrency is not None:
            # webConcurrency reaches the instances as WEB_CONCURRENCY: it wins there too.
            on_instance = app_sizing.workers_for(shape.web_concurrency, vcpus)
            source = shape.workers_source
        else:
            on_instance = formula(vcpus)
            source = f"gunicorn's formula for {shape.instance_type} ({vcpus} vCPUs)"
        workers = min(on_instance, cores)
        notes.append(f"{workers} worker(s) each = {on_instance} from {source}, capped by cores")
    else:
        notes.append(f"{workers} worker(s) each from --workers")

    return Size(
        replicas=replicas,
        workers=workers,
        cache_ttl_seconds=shape.cache_ttl_seconds,
        explanation=f"stack {stack}: " + "; ".join(notes),
    )
