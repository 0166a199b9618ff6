"""infra/config.py: engine strings in, frozen typed settings out, every problem named."""

from __future__ import annotations

import dataclasses

import pytest

from infra.config import (
    CacheEngine,
    ConfigError,
    NatStrategy,
    load_settings,
)
from pyscale import stacks


def settings_for(stack: str, **overrides: str):
    config = stacks.engine_config(stack)
    config.update({f"pyscale:{key}": value for key, value in overrides.items()})
    return load_settings(config, stack)


def test_prod_shape():
    settings = settings_for("prod")

    assert (settings.fleet.min_size, settings.fleet.max_size) == (3, 12)
    assert settings.network.availability_zones == 3
    assert settings.network.nat is NatStrategy.PER_AZ
    assert settings.cache.cluster_mode
    assert (settings.cache.shards, settings.cache.replicas_per_shard) == (2, 1)
    assert settings.cache.node_count == 4
    assert settings.load_balancer.https
    assert settings.load_balancer.listener_ports == (80, 443)
    assert settings.load_balancer.uses_example_tls


def test_dev_is_a_small_burstable_graviton_with_a_single_node_cache():
    settings = settings_for("dev")

    assert settings.fleet.instance.burstable
    assert settings.fleet.architecture == "arm64"
    assert settings.cache.node_count == 1
    assert settings.cache.engine is CacheEngine.VALKEY
    assert settings.cache.parameter_group_family == "valkey8"
    assert not settings.load_balancer.https


def test_settings_are_frozen():
    settings = settings_for("dev")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.fleet.min_size = 5  # type: ignore[misc]


def test_the_instance_type_decides_the_architecture():
    assert settings_for("dev", instanceType="m7i.large").fleet.architecture == "x86_64"
    assert settings_for("dev", instanceType="c8g.large").fleet.architecture == "arm64"


def test_scheduled_scaling_is_read_from_a_list_of_objects():
    schedule = (
        '[{"name":"night","recurrence":"0 20 * * MON-FRI","minSize":1,"maxSize":2,'
        '"desiredCapacity":1,"timeZone":"Europe/Berlin"}]'
    )
    (action,) = settings_for("dev", scheduledScaling=schedule).fleet.scheduled_actions

    assert (action.name, action.recurrence, action.time_zone) == (
        "night",
        "0 20 * * MON-FRI",
        "Europe/Berlin",
    )


def test_spot_is_on_demand_below_one_hundred_percent():
    fleet = settings_for("dev", onDemandPercentAboveBase="20").fleet
    assert fleet.uses_spot
    assert fleet.uses_mixed_instances


def test_zero_web_concurrency_leaves_workers_to_gunicorn():
    assert settings_for("dev").fleet.web_concurrency is None
    assert settings_for("dev", webConcurrency="4").fleet.web_concurrency == 4


def test_error_names_the_stack_and_every_key():
    with pytest.raises(ConfigError) as error:
        settings_for("staging", minSize="9", cacheNodeType="big")

    assert error.value.stack == "staging"
    assert [problem.split(":")[1] for problem in error.value.problems] == [
        "cacheNodeType",
        "desiredCapacity",
    ]
    assert str(error.value).startswith("stack 'staging': 2 configuration problems:")


def test_a_missing_key_falls_back_to_the_registry_default():
    settings = load_settings({"aws:region": "eu-west-1"}, "scratch")
    assert settings.fleet.instance_type == "t4g.small"
    assert settings.region == "eu-west-1"
