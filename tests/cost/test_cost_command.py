"""`pyscale cost`: every shipped stack's monthly cost from sourced prices, as people, CI and
tools read it — and what it refuses, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyscale import stacks
from pyscale.cost.prices import HOURS_PER_MONTH, PRICE_NOT_FOUND, price_table
from tests.cost.conftest import assert_one_line_failure

STACKS = stacks.stack_names()
# Shipped stacks and what-ifs that register the types the stacks can (warm pool, alarm email).
VARIANTS = [
    *((stack,) for stack in STACKS),
    ("dev", "-c", "warmPool=true", "-c", "warmPoolMinSize=1"),
    ("dev", "-c", "alarmEmail=ops@example.com"),
]
REGION = "us-east-1"


def configured(stack: str, key: str) -> str:
    return stacks.engine_config(stack)[f"pyscale:{key}"]


def lines_of(document, resource_type: str, component_start: str = "") -> list[dict]:
    return [
        line
        for line in document["lines"]
        if line["resource_type"] == resource_type and line["component"].startswith(component_start)
    ]


def usd(price_id: str, engine: str = "") -> float:
    price = price_table().get(price_id, REGION, engine)
    assert price is not None, price_id
    assert price.usd is not None, price_id
    return price.usd


@pytest.mark.parametrize("variant", VARIANTS, ids=" ".join)
def test_every_resource_type_a_stack_registers_is_classified(cost_json, variant) -> None:
    # A type nobody classified shows as an "(unclassified type)" line whose note says how to
    # classify it (pyscale/cost/prices/resource_types.yaml).
    document = cost_json(*variant)
    unclassified = [
        line["note"] for line in document["lines"] if line["component"] == "(unclassified type)"
    ]
    assert unclassified == [], "\n".join(unclassified)


@pytest.mark.parametrize("stack", STACKS)
def test_every_line_is_sourced_and_dated_or_says_price_not_found(cost_json, stack) -> None:
    document = cost_json(stack)
    for line in document["lines"]:
        if line["status"] == "not_found":
            assert line["monthly_usd"] is None
            assert line["note"].startswith(PRICE_NOT_FOUND), line
            continue
        price = document["prices"][line["price_id"]]
        assert price["usd"] == line["unit_price_usd"] is not None
        for field in ("source", "source_ref", "read_on"):
            assert price[field], (field, line)


@pytest.mark.parametrize("stack", STACKS)
def test_each_stacks_json_validates_against_the_committed_schema(
    cost_json, cost_validator, stack
) -> None:
    assert [error.message for error in cost_validator.iter_errors(cost_json(stack))] == []


def test_the_schema_rejects_a_priced_line_without_its_price(cost_json, cost_validator) -> None:
    document = cost_json("dev")
    priced = next(line for line in document["lines"] if line["status"] == "priced")
    broken = {**document, "lines": [{**priced, "monthly_usd": None}]}
    assert not cost_validator.is_valid(broken)


def test_instances_cost_desired_capacity_times_730_hours_at_the_tables_rate(cost_json) -> None:
    document = cost_json("prod")
    [line] = lines_of(document, "aws:autoscaling/group:Group", "Instance usage")
    instance_type, desired = (
        configured("prod", "instanceType"),
        int(configured("prod", "desiredCapacity")),
    )
    assert line["price_id"] == f"ec2/instance/{instance_type}"
    assert line["monthly_quantity"] == HOURS_PER_MONTH * desired
    assert line["monthly_usd"] == pytest.approx(HOURS_PER_MONTH * desired * usd(line["price_id"]))
    assert line["scales_with_fleet"] is True


def test_each_nat_gateway_and_its_address_bill_every_hour_and_its_traffic_depends_on_usage(
    cost_json,
) -> None:
    for stack, gateways in (("dev", 1), ("prod", int(configured("prod", "availabilityZones")))):
        document = cost_json(stack)
        hours = lines_of(document, "aws:ec2/natGateway:NatGateway", "NAT gateway")
        traffic = lines_of(document, "aws:ec2/natGateway:NatGateway", "Data processed")
        addresses = lines_of(document, "aws:ec2/eip:Eip")
        assert len(hours) == len(addresses) == len(traffic) == gateways
        assert {line["monthly_usd"] for line in hours} == {
            HOURS_PER_MONTH * usd("vpc/nat-gateway-hour")
        }
        assert {line["status"] for line in traffic} == {"usage"}
        assert {line["monthly_usd"] for line in traffic} == {None}
        assert {line["unit_price_usd"] for line in traffic} == {usd("vpc/nat-gateway-gb")}


def test_elasticache_nodes_are_counted_and_shown_as_price_not_found(cost_json) -> None:
    document = cost_json("prod")
    [line] = lines_of(document, "aws:elasticache/replicationGroup:ReplicationGroup", "Cache nodes")
    shards, replicas = (
        int(configured("prod", "cacheShards")),
        int(configured("prod", "cacheReplicas")),
    )
    assert line["status"] == "not_found"
    assert line["monthly_quantity"] == HOURS_PER_MONTH * shards * (1 + replicas)
    assert document["totals"]["complete"] is False
    assert any("Cache nodes" in item for item in document["totals"]["price_not_found"])


def test_the_total_is_the_sum_of_priced_lines(cost_json) -> None:
    for stack in STACKS:
        document = cost_json(stack)
        priced = sum(
            line["monthly_usd"] for line in document["lines"] if line["status"] == "priced"
        )
        assert document["totals"]["monthly_usd"] == pytest.approx(round(priced, 2))


def test_prod_pays_for_waf_rules_and_https_only_adds_no_certificate_cost(cost_json) -> None:
    document = cost_json("prod")
    [acl, rules, requests] = lines_of(document, "aws:wafv2/webAcl:WebAcl")
    assert acl["monthly_usd"] == usd("waf/web-acl")
    # the rate limit and AWS's IP reputation, known-bad-inputs and common rule sets
    assert rules["monthly_quantity"] == 4
    assert requests["status"] == "usage"
    free_types = {entry["type"] for entry in document["free"]}
    assert "aws:acm/certificate:Certificate" in free_types  # a public certificate


def test_a_usage_file_prices_the_usage_lines_it_names(run_cli, tmp_path: Path) -> None:
    import json

    usage = tmp_path / "usage.yaml"
    usage.write_text("usage:\n  nat_gateway_gb: 100\nresources:\n  pyscale-dev-alb: {alb_lcu: 2}\n")
    result = run_cli("cost", "--stack", "dev", "--json", "--usage-file", str(usage))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    [traffic] = lines_of(document, "aws:ec2/natGateway:NatGateway", "Data processed")
    [lcu] = lines_of(document, "aws:lb/loadBalancer:LoadBalancer", "Load balancer capacity")
    assert traffic["status"] == lcu["status"] == "usage_assumed"
    assert traffic["monthly_usd"] == pytest.approx(100 * usd("vpc/nat-gateway-gb"))
    assert lcu["monthly_usd"] == pytest.approx(2 * HOURS_PER_MONTH * usd("elb/alb-lcu-hour"))
    totals = document["totals"]
    assert totals["usage_monthly_usd"] == pytest.approx(
        round(traffic["monthly_usd"] + lcu["monthly_usd"], 2)
    )
    assert totals["monthly_usd"] == pytest.approx(
        totals["baseline_monthly_usd"] + totals["usage_monthly_usd"]
    )


def test_a_usage_file_beside_the_stack_is_read_and_is_not_a_stack(
    run_cli, tmp_path, monkeypatch
) -> None:
    import json
    import shutil

    for stack in STACKS:
        shutil.copy(stacks.stack_file(stack), tmp_path / stacks.stack_file(stack).name)
    (tmp_path / "Pulumi.dev.usage.yaml").write_text("usage:\n  log_ingest_gb: 10\n")
    monkeypatch.setattr(stacks, "stacks_dir", lambda: tmp_path)
    assert stacks.stack_names() == STACKS
    result = run_cli("cost", "--stack", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["usage_file"].endswith("Pulumi.dev.usage.yaml")
    ingest = lines_of(document, "aws:cloudwatch/logGroup:LogGroup", "Data ingested")
    assert {line["monthly_usd"] for line in ingest} == {10 * usd("cloudwatch/logs-ingest")}


def test_a_what_if_instance_type_changes_the_price_and_the_capacity(cost_json) -> None:
    document = cost_json("dev", "-c", "instanceType=m7g.xlarge")
    [line] = lines_of(document, "aws:autoscaling/group:Group", "Instance usage")
    assert line["price_id"] == "ec2/instance/m7g.xlarge"
    assert document["capacity"]["fleet"]["vcpus"] == 4
    assert not lines_of(document, "aws:autoscaling/group:Group", "CPU credits")  # not burstable
    assert lines_of(cost_json("dev"), "aws:autoscaling/group:Group", "CPU credits")


def test_a_warm_pool_bills_its_stopped_instances_volumes_not_their_hours(cost_json) -> None:
    document = cost_json("dev", "-c", "warmPool=true", "-c", "warmPoolMinSize=1")
    group = lines_of(document, "aws:autoscaling/group:Group")
    [volumes] = [
        line for line in group if line["component"].startswith("Warm pool volumes (stopped)")
    ]
    size = int(configured("dev", "maxSize")) - int(configured("dev", "desiredCapacity"))
    root_gb = lines_of(cost_json("dev"), "aws:autoscaling/group:Group", "Root volume")[0][
        "monthly_quantity"
    ]
    assert volumes["monthly_quantity"] == root_gb * max(size, 1)
    assert volumes["price_id"] == "ebs/gp3-storage"
    assert not [line for line in group if "Warm pool instances" in line["component"]]


def test_markdown_has_the_table_the_totals_and_where_each_price_comes_from(run_cli) -> None:
    result = run_cli("cost", "--stack", "prod", "--markdown")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "| resource | component | monthly qty | unit | monthly cost |" in text
    assert "**Monthly total:" in text
    assert "depends on usage: $0.045 per GB *" in text
    assert f"{PRICE_NOT_FOUND} !" in text
    assert "Where each price comes from" in text
    assert "skypilot-org/skypilot-catalog" in text
    assert "#### Capacity" in text


def test_the_terminal_table_marks_usage_and_missing_prices(run_cli) -> None:
    result = run_cli("cost", "--stack", "dev")
    assert result.exit_code == 0, result.stderr
    assert "Monthly total:" in result.stdout
    assert "depends on usage" in result.stdout
    assert PRICE_NOT_FOUND in result.stdout
    assert "Capacity at the stack's scaling targets" in result.stdout


# --------------------------------------------------------------------------------------------
# Refusals: one line, exit 2, no traceback
# --------------------------------------------------------------------------------------------
def test_an_unknown_instance_type_gets_the_programs_did_you_mean(run_cli) -> None:
    assert_one_line_failure(
        run_cli("cost", "-c", "instanceType=m7g.lrge"), "did you mean m7g.large"
    )


def test_an_instance_type_the_table_has_no_price_for_is_named_with_what_it_has(run_cli) -> None:
    assert_one_line_failure(
        run_cli("cost", "-c", "instanceType=c7g.large"),
        "no price for EC2 instance type 'c7g.large' in us-east-1",
        "t4g.small",
    )


def test_a_cache_node_type_the_table_has_no_row_for_is_named(run_cli) -> None:
    assert_one_line_failure(
        run_cli("cost", "-c", "cacheNodeType=cache.r8g.large"),
        "no price row for ElastiCache node type 'cache.r8g.large' (valkey)",
    )


def test_a_region_without_prices_is_refused_naming_the_regions_it_has(run_cli) -> None:
    assert_one_line_failure(
        run_cli("cost", "-c", "aws:region=eu-west-1"),
        "no prices for region 'eu-west-1'",
        "covers us-east-1",
    )


def test_an_override_that_is_not_key_value_is_refused(run_cli) -> None:
    assert_one_line_failure(run_cli("cost", "-c", "instanceType"), "expected KEY=VALUE")


def test_an_unknown_stack_lists_the_known_ones(run_cli) -> None:
    assert_one_line_failure(run_cli("cost", "--stack", "qa"), "unknown stack 'qa'", "prod")


def test_a_usage_file_with_an_unknown_key_or_a_negative_amount_is_refused(
    run_cli, tmp_path
) -> None:
    usage = tmp_path / "usage.yaml"
    usage.write_text("usage:\n  nat_gb: 5\n")
    assert_one_line_failure(
        run_cli("cost", "--usage-file", str(usage)),
        "usage.nat_gb is not a usage key",
        "nat_gateway_gb",
    )
    usage.write_text("usage:\n  nat_gateway_gb: -5\n")
    assert_one_line_failure(run_cli("cost", "--usage-file", str(usage)), "must be a number >= 0")
    assert_one_line_failure(
        run_cli("cost", "--usage-file", str(tmp_path / "none.yaml")), "no such file"
    )


def test_json_and_markdown_together_are_a_usage_error(run_cli) -> None:
    result = run_cli("cost", "--json", "--markdown")
    assert result.exit_code == 2
    assert "choose one of --json and --markdown" in result.stderr


def test_every_field_the_cost_document_emits_is_documented_in_its_schema(cost_json) -> None:
    from pyscale.cost import load_schema
    from tests.plan.test_plan_command import undeclared_keys

    schema = load_schema()
    for stack in STACKS:
        assert list(undeclared_keys(cost_json(stack), schema, schema, "$")) == []
    extended = {**cost_json("dev"), "discount": 0.1}
    assert list(undeclared_keys(extended, schema, schema, "$")) == ["$.discount"]
