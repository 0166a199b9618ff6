"""The local topology's size: the stack's shape, capped by this machine's cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import sizing as app_sizing
from infra.kubernetes.stack import capacity_plan
from infra.settings import load_settings
from pyscale import stacks
from pyscale.local import sizing
from pyscale.local.errors import LocalTopologyError


def shape_of(stack: str):
    return load_settings(stacks.engine_config(stack), stack).fleet


@pytest.mark.parametrize("stack", stacks.stacks_on("ec2"))
def test_replicas_follow_desired_capacity_and_workers_the_instance_vcpus(stack: str) -> None:
    fleet = shape_of(stack)
    many_cores = 64

    size = sizing.resolve(stack=stack, cores=many_cores)

    assert size.replicas == fleet.desired_capacity
    expected_workers = fleet.web_concurrency or app_sizing.default_workers(fleet.instance.vcpus)
    assert size.workers == expected_workers


@pytest.mark.parametrize("stack", stacks.stack_names())
def test_both_are_capped_by_the_local_cores(stack: str) -> None:
    size = sizing.resolve(stack=stack, cores=1)
    assert (size.replicas, size.workers) == (1, 1)


@pytest.mark.parametrize("stack", stacks.stacks_on("eks", "kubernetes"))
def test_kubernetes_stacks_run_the_hpa_minimum_with_the_pods_workers(stack: str) -> None:
    settings = load_settings(stacks.engine_config(stack), stack)
    pod = capacity_plan(settings).pod

    size = sizing.resolve(stack=stack, cores=64)

    assert size.replicas == settings.platform.hpa_min_replicas
    assert size.workers == pod.workers  # the WEB_CONCURRENCY the Deployment sets
    assert "hpaMinReplicas" in size.explanation
    assert pod.cpu in size.explanation


def test_flags_override_the_stack() -> None:
    size = sizing.resolve(stack="dev", replicas=5, workers=3, cores=2)
    assert (size.replicas, size.workers) == (5, 3)
    assert "--replicas" in size.explanation
    assert "--workers" in size.explanation


def test_the_worker_formula_is_gunicorn_confs_own() -> None:
    # The same function gunicorn.conf.py calls when WEB_CONCURRENCY is unset.
    conf_source = (Path(__file__).parents[2] / "app" / "gunicorn.conf.py").read_text()
    assert "from app.sizing import workers_for" in conf_source
    assert app_sizing.workers_for(None, vcpus=3) == app_sizing.default_workers(3)
    assert (
        sizing.resolve(stack="dev", cores=64, default_workers=lambda vcpus: 10 * vcpus).workers
        == 10 * shape_of("dev").instance.vcpus
    )


def test_an_unknown_stack_is_a_clear_error() -> None:
    with pytest.raises(LocalTopologyError, match=r"--stack nope: unknown stack 'nope'"):
        sizing.resolve(stack="nope")
