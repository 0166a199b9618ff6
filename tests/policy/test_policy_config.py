"""Each stack's policy config (what `--policy-pack-config` and the workflows pass)."""

from __future__ import annotations

import json

import pytest
from pulumi_policy import EnforcementLevel

from policy import rules
from policy.offline import CONFIG_DIR, PolicyConfigError, config_path, load_policy_config
from pyscale.stacks import stack_names

PRODUCTION_POLICIES = [p.name for p in rules.POLICIES if p.name.startswith("prod-")]


def test_there_is_one_policy_config_per_stack_and_no_other():
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.json")) == sorted(stack_names())


@pytest.mark.parametrize("stack", stack_names())
def test_stack_policy_config_is_valid_and_sets_an_instance_type_allow_list(stack):
    settings = load_policy_config(config_path(stack))
    assert settings["instance-type-allowed"].properties["allowedInstanceTypes"]


def test_prod_turns_every_production_policy_on_as_mandatory():
    settings = load_policy_config(config_path("prod"))
    assert {name: settings[name].level for name in PRODUCTION_POLICIES} == dict.fromkeys(
        PRODUCTION_POLICIES, EnforcementLevel.MANDATORY
    )


@pytest.mark.parametrize("stack", [s for s in stack_names() if s != "prod"])
def test_other_stacks_leave_production_policies_off(stack):
    settings = load_policy_config(config_path(stack))
    assert all(settings[name].level == EnforcementLevel.DISABLED for name in PRODUCTION_POLICIES)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"no-such-policy": "mandatory"}, "unknown policy 'no-such-policy'"),
        ({"ebs-encrypted": "sometimes"}, "enforcementLevel 'sometimes' is not one of"),
        ({"prod-cache-snapshots": {"minRetention": 7}}, "unknown property 'minRetention'"),
        ({"required-tags": 3}, "expected a level or an object"),
    ],
)
def test_bad_policy_config_is_rejected_naming_the_policy(tmp_path, config, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    with pytest.raises(PolicyConfigError, match=expected):
        load_policy_config(path)
