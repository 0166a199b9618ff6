"""How big the local topology is: the stack's shape, scaled down to this machine.

Replicas are the stack's desired capacity (the ASG's instance count at deploy time) and
workers per replica what gunicorn would start on the stack's instance type (its vCPUs
through app/gunicorn.conf.py's own formula, or the stack's webConcurrency), each capped by
the cores here: more processes than cores only measure the scheduler. Flags override both.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

from app.contract import Env
from infra import config as infra_config
from infra import instance_types
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


def local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def stack_shape(stack: str) -> StackShape:
    """Read and validate the stack the way `pulumi up` would; clear errors otherwise."""
    try:
        settings = infra_config.load_settings(stacks.engine_config(stack), stack)
    except (stacks.UnknownStackError, stacks.StackFileError) as error:
        raise LocalTopologyError(f"--stack {stack}: {error.args[0]}") from None
    except infra_config.ConfigError as error:
        raise LocalTopologyError(f"--stack {stack}: {error}") from None
    fleet = settings.fleet
    instance = instance_types.lookup(fleet.instance_type)
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
    formula = default_workers or gunicorn_default_workers
    notes = []

    if replicas is None:
        if shape.desired_capacity < 1:
            raise LocalTopologyError(
                f"--stack {stack} has desiredCapacity {shape.desired_capacity}: nothing "
                "would serve; pass --replicas N (at least 1)."
            )
        replicas = min(shape.desired_capacity, cores)
        notes.append(
            f"{replicas} replica(s) = desiredCapacity {shape.desired_capacity}, capped by "
            f"{cores} local core(s)"
        )
    else:
        notes.append(f"{replicas} replica(s) from --replicas")

    if workers is None:
        if shape.web_concurrency is not None:
            on_instance, source = shape.web_concurrency, "webConcurrency"
        else:
            vcpus = shape.vcpus or cores  # sizes like .metal: whatever the host has
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


def gunicorn_default_workers(vcpus: int) -> int:
    """app/gunicorn.conf.py's `default_workers`, taken from the file itself.

    The file is gunicorn's config, not an importable module (its name has a dot), and it
    reads the environment when loaded; it is loaded here with the variables that would
    reach AWS removed and the environment restored afterwards, so loading has no effect
    on this process.
    """
    from pyscale.local.topology import gunicorn_config_path  # avoid an import cycle

    path = gunicorn_config_path()
    spec = importlib.util.spec_from_file_location("pyscale_gunicorn_conf", path)
    if spec is None or spec.loader is None:
        raise LocalTopologyError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    saved = dict(os.environ)
    for name in (Env.REDIS_AUTH_SECRET_ARN, Env.REDIS_CLUSTER, Env.REDIS_URL):
        os.environ.pop(name, None)
    try:
        spec.loader.exec_module(module)
    except SystemExit:
        raise LocalTopologyError(
            f"{path} rejects this environment (its message is above); fix the variables it names."
        ) from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return int(module.default_workers(vcpus))
