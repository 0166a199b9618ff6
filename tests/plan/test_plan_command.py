"""`pyscale plan`: every stack's plan through the command, as people and CI read it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyscale import stacks
from pyscale.offline import run_stack
from pyscale.plan import diff_plans, load_schema

STACKS = stacks.stack_names()
EC2_STACKS = stacks.stacks_on("ec2")
COMPONENTS = {
    "pyscale:network:Network",
    "pyscale:network:SecurityGroups",
    "pyscale:loadbalancer:LoadBalancer",
    "pyscale:cache:Cache",
    "pyscale:fleet:Fleet",
    "pyscale:monitoring:Monitoring",
}


def configured(stack: str, key: str) -> str:
    """What the stack asks for (stack file over Pulumi.yaml defaults), as an engine string."""
    return stacks.engine_config(stack)[f"pyscale:{key}"]


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_each_stacks_plan_names_its_components_and_key_settings(plan_json, stack: str) -> None:
    # GIVEN the shipped stack file WHEN planned THEN the plan shows what it asks for
    plan = plan_json(stack)
    assert plan["stack"] == stack
    assert {component["type"] for component in plan["components"]} >= COMPONENTS
    fleet, cache = plan["key_settings"]["fleet"], plan["key_settings"]["cache"]
    assert fleet["instance_type"] == configured(stack, "instanceType")
    assert fleet["architecture"] in ("arm64", "x86_64")
    assert [fleet["min_size"], fleet["desired_capacity"], fleet["max_size"]] == [
        int(configured(stack, key)) for key in ("minSize", "desiredCapacity", "maxSize")
    ]
    assert set(fleet["scaling_targets"]) == {"ASGAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert cache["node_type"] == configured(stack, "cacheNodeType")
    assert cache["replicas_per_shard"] == int(configured(stack, "cacheReplicas"))
    assert cache["at_rest_encryption"] is True
    assert cache["transit_encryption"] is True
    assert plan["key_settings"]["load_balancer"]["listeners"]
    assert plan["key_settings"]["alarms"]
    assert {"url", "region"} <= set(plan["outputs"])


@pytest.mark.parametrize("stack", STACKS)
def test_each_stacks_json_plan_validates_against_the_committed_schema(
    plan_json, schema_validator, stack: str
) -> None:
    errors = [error.message for error in schema_validator.iter_errors(plan_json(stack))]
    assert errors == []


def test_the_diff_json_validates_against_the_committed_schema(plan_json, schema_validator) -> None:
    diff = diff_plans(plan_json("dev"), plan_json("prod"))
    assert [error.message for error in schema_validator.iter_errors(diff)] == []


def test_the_schema_rejects_a_plan_missing_its_key_settings(plan_json, schema_validator) -> None:
    broken = {key: value for key, value in plan_json("dev").items() if key != "key_settings"}
    assert not schema_validator.is_valid(broken)


def test_prod_plan_shows_https_redirect_cluster_cache_and_protection(plan_json) -> None:
    settings = plan_json("prod")["key_settings"]
    assert "HTTP:80 redirect -> HTTPS:443" in settings["load_balancer"]["listeners"]
    assert settings["load_balancer"]["deletion_protection"] is True
    assert settings["load_balancer"]["waf"] is True
    assert settings["cache"]["cluster_mode"] is True
    assert settings["cache"]["shards"] == int(configured("prod", "cacheShards"))
    assert settings["cache"]["multi_az"] is True
    assert settings["cache"]["automatic_failover"] is True
    assert settings["network"]["nat_gateways"] == len(settings["network"]["availability_zones"])


def test_prod_plan_carries_the_programs_warning_about_example_tls_values(plan_json) -> None:
    assert any("EXAMPLE" in warning for warning in plan_json("prod")["warnings"])


def test_no_secret_value_reaches_the_plan(plan_json) -> None:
    run = run_stack("dev")
    password = run.one("random:index/randomPassword:RandomPassword").outputs["result"]
    assert password not in json.dumps(plan_json("dev"))
    assert plan_json("dev")["key_settings"]["cache"]["auth"] == "auth-token"
    assert plan_json("dev")["key_settings"]["cache"]["auth_token"] is True


def test_a_value_read_from_inside_a_secret_input_is_masked_too(plan_json) -> None:
    # prod's disabled `default` cache user: its password makes its whole authenticationMode
    # secret, and the plan shows that input's `passwords` (and `type`) from inside it.
    run = run_stack("prod")
    (password,) = [
        r.outputs["result"] for r in run.of_type("random:index/randomPassword:RandomPassword")
    ]
    plan = plan_json("prod")
    assert password not in json.dumps(plan)
    users = [
        resource["settings"]
        for component in plan["components"]
        for resource in component["resources"]
        if resource["type"] == "aws:elasticache/user:User"
    ]
    assert {"user_name": "default", "passwords": "[secret]"}.items() <= next(
        u for u in users if u.get("user_name") == "default"
    ).items()


def test_the_terminal_plan_is_a_tree_by_component_with_settings_and_outputs(run_cli) -> None:
    result = run_cli("plan", "--stack", "prod")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for expected in (
        "Plan for stack prod",
        "pyscale:fleet:Fleet  pyscale-prod",
        "aws:ec2/launchTemplate:LaunchTemplate  pyscale-prod-launch-template",
        "instance_type=m7g.large",
        "arm64",
        "cache.r7g.large",
        "HTTP:80 redirect -> HTTPS:443",
        "ASGAverageCPUUtilization",
        "Stack outputs",
        "cacheEndpoint",
        "warning:",
    ):
        assert expected in out, expected
    assert "[secret]" in out  # the default cache user's password is shown as set, masked


def test_diff_dev_prod_shows_instance_type_and_cache_shape_side_by_side(run_cli) -> None:
    result = run_cli("plan", "--diff", "dev", "prod")
    assert result.exit_code == 0, result.stderr
    rows = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    for expected in (
        "fleet.instance_type t4g.small m7g.large",
        "cache.node_type cache.t4g.micro cache.r7g.large",
        "cache.cluster_mode false true",
        "cache.shards 1 2",
        "cache.replicas_per_shard 0 1",
        "fleet.max_size 2 12",
    ):
        assert expected in rows, expected


def test_diff_flags_the_stateful_resources_going_from_a_to_b_deletes(plan_json) -> None:
    # GIVEN prod (3 zones, a NAT address per zone, an access-log bucket) diffed against dev
    diff = diff_plans(plan_json("prod"), plan_json("dev"))

    # THEN what prod has and dev lacks, stateful, would be deleted: the subnets of the zone
    # dev does not use, the NAT addresses of the zones dev has no NAT in, the log bucket
    prod_zones = plan_json("prod")["key_settings"]["network"]["availability_zones"]
    dev_zones = plan_json("dev")["key_settings"]["network"]["availability_zones"]
    (extra_zone,) = set(prod_zones) - set(dev_zones)
    deleted = {(c["type"], c["name"]) for c in diff["stateful"] if c["change"] == "deleted"}
    assert deleted == {
        ("aws:ec2/subnet:Subnet", f"pyscale-<stack>-public-{extra_zone}"),
        ("aws:ec2/subnet:Subnet", f"pyscale-<stack>-private-{extra_zone}"),
        *(("aws:ec2/eip:Eip", f"pyscale-<stack>-nat-{zone}") for zone in prod_zones[1:]),
        ("aws:s3/bucket:Bucket", "pyscale-<stack>-access-logs"),
    }
    # and dev -> prod deletes nothing stateful
    assert diff_plans(plan_json("dev"), plan_json("prod"))["stateful"] == []


def test_markdown_diff_puts_stateful_deletions_before_the_settings(run_cli) -> None:
    result = run_cli("plan", "--diff", "prod", "dev", "--markdown")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "**5 stateful resource(s): check each before merging.**" in out
    assert out.index("Stateful resources") < out.index("#### Key settings")
    assert "| deleted | aws:s3/bucket:Bucket pyscale-&lt;stack&gt;-access-logs |" in out


def test_a_warm_pool_stack_plans_and_diffs_its_warm_pool(run_cli, plan_json) -> None:
    # GIVEN staging planned with a warm pool of 2 stopped instances (set inside the group)
    result = run_cli(
        "plan", "--stack", "staging", "--json", "-c", "warmPool=true", "-c", "warmPoolMinSize=2"
    )
    assert result.exit_code == 0, result.stderr
    warm = json.loads(result.stdout)

    # THEN the plan shows it, in the key settings and on the group
    assert warm["key_settings"]["fleet"]["warm_pool"] is True
    assert warm["key_settings"]["fleet"]["warm_pool_min_size"] == 2
    (group,) = [
        r
        for c in warm["components"]
        for r in c["resources"]
        if r["type"] == "aws:autoscaling/group:Group"
    ]
    assert group["settings"]["warm_pool_state"] == "Stopped"
    assert plan_json("staging")["key_settings"]["fleet"]["warm_pool"] is False

    # AND the diff against the shipped staging stack names the warm pool
    diff = diff_plans(plan_json("staging"), warm)
    assert {"setting": "fleet.warm_pool", "a": False, "b": True} in diff["settings"]
    assert {"setting": "fleet.warm_pool_min_size", "a": None, "b": 2} in diff["settings"]


def test_markdown_plan_has_key_settings_table_and_collapsible_components(run_cli) -> None:
    result = run_cli("plan", "--stack", "dev", "--markdown")
    assert result.exit_code == 0, result.stderr
    assert "### Offline plan: stack `dev`" in result.stdout
    assert "| fleet | instance_type | t4g.small |" in result.stdout
    assert "<details><summary><code>pyscale:cache:Cache</code> pyscale-dev" in result.stdout


def test_config_overrides_are_planned_like_config_set(run_cli) -> None:
    result = run_cli("plan", "--stack", "dev", "--json", "-c", "instanceType=c7i.large")
    assert result.exit_code == 0, result.stderr
    fleet = json.loads(result.stdout)["key_settings"]["fleet"]
    assert (fleet["instance_type"], fleet["architecture"]) == ("c7i.large", "x86_64")


def test_plans_need_no_cloud_credentials(plan_json) -> None:
    # GIVEN no AWS or Pulumi variables and no credentials files (run_cli's environment)
    # WHEN a stack is planned THEN the plan is complete
    plan = plan_json("staging")
    assert plan["summary"]["resources"] > 0
    assert plan["key_settings"]["fleet"]["instance_type"] == "t4g.medium"


def test_the_installed_pyscale_command_has_plan() -> None:
    pyscale = Path(sys.executable).parent / "pyscale"
    done = subprocess.run(
        [pyscale, "plan", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "--diff" in done.stdout


def undeclared_keys(document: Any, schema: dict[str, Any], root: dict[str, Any], path: str):
    """Keys in ``document`` that ``schema`` (following $ref/oneOf) does not declare."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in schema:
        kind = document.get("kind")
        schema = next(s for s in schema["oneOf"] if s["$ref"].endswith(kind))
        yield from undeclared_keys(document, schema, root, path)
        return
    if isinstance(document, dict) and "properties" in schema:
        for key, value in document.items():
            if key not in schema["properties"]:
                yield f"{path}.{key}"
            else:
                yield from undeclared_keys(value, schema["properties"][key], root, f"{path}.{key}")
    elif isinstance(document, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(document):
            yield from undeclared_keys(item, schema["items"], root, f"{path}[{index}]")


def test_every_field_the_plan_and_diff_emit_is_documented_in_the_schema(plan_json) -> None:
    # The schema lets consumers ignore fields added later; this keeps it describing them all.
    schema = load_schema()
    for document in (plan_json("prod"), diff_plans(plan_json("dev"), plan_json("prod"))):
        assert list(undeclared_keys(document, schema, schema, "$")) == []
    # and the check sees an undocumented field where one is
    fleet = {**plan_json("dev")["key_settings"]["fleet"], "spot": True}
    extended = {
        **plan_json("dev"),
        "key_settings": {**plan_json("dev")["key_settings"], "fleet": fleet},
    }
    assert list(undeclared_keys(extended, schema, schema, "$")) == ["$.key_settings.fleet.spot"]
