"""infra/settings: engine strings in, frozen typed settings out, every problem named."""

from __future__ import annotations

import pydantic
import pytest

from infra.settings import (
    KEYS,
    CacheEngine,
    CacheTopology,
    Change,
    ConfigError,
    FleetPurchase,
    NatStrategy,
    TlsMode,
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
    assert settings.cache.topology is CacheTopology.CLUSTER
    assert (settings.cache.shards, settings.cache.replicas_per_shard) == (2, 1)
    assert settings.cache.node_count == 4
    assert settings.edge.tls is TlsMode.DOMAIN
    assert settings.edge.listener_ports == (80, 443)
    assert settings.edge.uses_example_tls


def test_dev_is_a_small_burstable_graviton_with_a_single_node_cache():
    settings = settings_for("dev")

    assert settings.fleet.instance.burstable
    assert settings.fleet.architecture == "arm64"
    assert settings.cache.topology is CacheTopology.SINGLE
    assert settings.cache.engine is CacheEngine.VALKEY
    assert settings.cache.parameter_group_family == "valkey8"
    assert settings.edge.tls is TlsMode.NONE
    assert settings.fleet.purchase is FleetPurchase.ON_DEMAND


def test_staging_cache_is_replicated():
    assert settings_for("staging").cache.topology is CacheTopology.REPLICATED


def test_a_given_certificate_wins_over_requesting_one():
    arn = "arn:aws:acm:us-east-1:111122223333:certificate/abc-123"
    edge = settings_for("prod", certificateArn=arn).edge
    assert edge.tls is TlsMode.CERTIFICATE
    assert edge.alias_record  # the domain still points at the ALB


@pytest.mark.parametrize(
    ("overrides", "purchase"),
    [
        ({}, FleetPurchase.ON_DEMAND),
        ({"onDemandPercentAboveBase": "20"}, FleetPurchase.MIXED),
        ({"mixedInstanceTypes": '["t4g.medium"]'}, FleetPurchase.MIXED),
        ({"warmPool": "true"}, FleetPurchase.WARM_POOL),
    ],
)
def test_the_purchase_mode_follows_the_purchase_keys(overrides, purchase):
    assert settings_for("dev", **overrides).fleet.purchase is purchase


def test_settings_are_frozen():
    settings = settings_for("dev")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
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


def test_zero_web_concurrency_leaves_workers_to_gunicorn():
    assert settings_for("dev").fleet.web_concurrency is None
    assert settings_for("dev", webConcurrency="4").fleet.web_concurrency == 4


def test_empty_strings_mean_not_set():
    settings = settings_for("dev")
    assert settings.edge.certificate_arn is None
    assert settings.network.existing_vpc_id is None
    assert settings.monitoring.alarm_email is None


def test_error_names_the_stack_and_every_key():
    with pytest.raises(ConfigError) as error:
        settings_for("staging", minSize="9", cacheNodeType="big")

    assert error.value.stack == "staging"
    assert [problem.split(":")[1] for problem in error.value.problems] == [
        "cacheNodeType",
        "desiredCapacity",
    ]
    assert str(error.value).startswith("stack 'staging': 2 configuration problems:")


def test_errors_say_what_is_allowed_and_never_pydantics_wording():
    with pytest.raises(ConfigError) as error:
        settings_for(
            "dev",
            allowedCidrs="[1]",
            scheduledScaling='[{"name": "a", "recurrence": "* * * * *", "minSize": "x"}]',
            natGateways="perAZ",
        )

    problems = error.value.problems
    assert "pyscale:natGateways: must be one of single, perAz; got 'perAZ'" in problems[0]
    assert "pyscale:allowedCidrs: must be a list of strings, got 1" in problems[1]
    assert any(p.startswith("pyscale:scheduledScaling[0]: misses maxSize") for p in problems)
    assert not any("Input should" in problem for problem in problems)


def test_a_missing_key_falls_back_to_the_declared_default():
    settings = load_settings({"aws:region": "eu-west-1"}, "scratch")
    assert settings.fleet.instance_type == "t4g.small"
    assert settings.region == "eu-west-1"


def test_every_key_says_what_a_later_change_does():
    for key in KEYS:
        assert key.change.kind in Change, key.name
        if key.change.kind is not Change.IN_PLACE:
            assert key.change.effect, f"{key.name}: say what is replaced or refused"
        assert key.description, key.name


def test_every_key_is_camel_case_and_declared_once():
    names = [key.name for key in KEYS]
    assert len(names) == len(set(names))
    assert all(name[0].islower() and "_" not in name for name in names)


@pytest.mark.parametrize("annotation", [float, dict[str, str], set[str], tuple[int, ...]])
def test_a_key_of_a_type_pulumi_config_cannot_carry_is_refused_where_it_is_declared(annotation):
    # A float key used to be left out of Pulumi.yaml silently, shown as "object" in the
    # README, and its bad values explained as "must be a YAML/JSON list of objects".
    from infra.settings.base import AreaSettings, UnsupportedKeyTypeError, declarations, in_place
    from infra.settings.base import setting as declare

    model = pydantic.create_model(
        "Scratch",
        __base__=AreaSettings,
        p99_alarm=(annotation, declare("p99Alarm", None, doc="scratch", change=in_place())),
    )

    refusal = r"scratch setting 'p99Alarm': .* use bool, int"
    with pytest.raises(UnsupportedKeyTypeError, match=refusal):
        declarations("scratch", model)


def test_every_declared_key_has_a_type_the_schema_and_the_reference_carry():
    assert {key.type for key in KEYS} <= {"string", "integer", "boolean", "array", "object"}
    assert [key.name for key in KEYS if key.type == "object"] == ["scheduledScaling"]
