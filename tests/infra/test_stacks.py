"""pyscale.stacks: the stack files as the engine hands them to the program."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.settings import KEYS, load_settings
from pyscale import stacks


def test_the_three_environments_and_one_example_per_kubernetes_platform_are_shipped():
    assert stacks.stack_names() == ["dev", "dev-eks", "dev-k8s", "prod", "staging"]
    assert stacks.stacks_on("ec2") == ["dev", "prod", "staging"]
    assert stacks.stacks_on("eks") == ["dev-eks"]
    assert stacks.stacks_on("kubernetes") == ["dev-k8s"]


def test_engine_config_is_engine_strings_merged_over_project_defaults():
    config = stacks.engine_config("prod")

    assert all(isinstance(value, str) for value in config.values())
    assert config["pyscale:cacheClusterMode"] == "true"  # from the stack file
    assert config["pyscale:cacheShards"] == "2"
    assert config["pyscale:allowedCidrs"] == '["0.0.0.0/0"]'  # default, as JSON text
    assert config["pyscale:webConcurrency"] == "0"  # default
    assert config["aws:region"] == "us-east-1"


def test_unknown_stack_lists_the_known_ones():
    with pytest.raises(
        stacks.UnknownStackError, match="known stacks are dev, dev-eks, dev-k8s, prod, staging"
    ):
        stacks.engine_config("qa")


def test_project_file_points_at_the_program_and_the_stack_directory():
    project = yaml.safe_load(stacks.PROJECT_FILE.read_text())

    assert project["name"] == "pyscale"
    assert project["main"] == "infra/"
    assert project["stackConfigDir"] == "stacks"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "uv", "virtualenv": ".venv"},
    }


def test_project_schema_types_every_key_with_the_registry_default():
    schema = yaml.safe_load(stacks.PROJECT_FILE.read_text())["config"]
    typed = {key.name: key for key in KEYS if key.type != "object"}

    assert set(schema) == set(typed)
    for name, key in typed.items():
        assert schema[name]["type"] == key.type, name
        assert schema[name]["default"] == key.default, name
        if key.type == "array":
            assert schema[name]["items"] == {"type": "string"}


def test_stack_files_only_set_declared_keys_of_the_declared_type():
    typed = {f"pyscale:{key.name}": key.type for key in KEYS}
    python_types = {"string": str, "integer": int, "boolean": bool, "array": list}
    for stack in stacks.stack_names():
        for key, value in stacks.stack_values(stack).items():
            if key.startswith("pyscale:"):
                assert key in typed, f"{stack}: {key}"
                expected = python_types.get(typed[key])
                if expected is not None:
                    assert type(value) is expected, f"{stack}: {key}={value!r}"


@pytest.mark.parametrize("stack", stacks.stack_names())
def test_every_shipped_stack_is_valid(stack):
    settings = load_settings(stacks.engine_config(stack), stack)
    assert settings.stack == stack


def test_lists_and_objects_travel_as_compact_json():
    assert stacks.engine_string(["a", "b"]) == '["a","b"]'
    assert json.loads(stacks.engine_string({"k": [1, True]})) == {"k": [1, True]}
    assert stacks.engine_string(True) == "true"
    assert stacks.engine_string(3) == "3"
