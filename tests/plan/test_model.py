"""The plan's reading of registered resources, on small hand-built runs (no program)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pulumi.runtime import rpc

from pyscale.plan import build_plan, diff_plans
from pyscale.plan.render import diff_markdown
from pyscale.plan.wire import SECRET_SIG, SECRET_SIG_KEY, SECRET_TEXT, UNKNOWN, lookup, plain

STACK_URN = "urn:pulumi:test::pyscale::pulumi:pulumi:Stack::pyscale-test"


@dataclass
class Recorded:
    """Shaped like pyscale.offline.RecordedResource."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """Shaped like pyscale.offline.ProgramRun."""

    project: str
    stack: str
    resources: list[Recorded]
    stack_outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    data_source_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def secret(value: Any) -> dict[str, Any]:
    return {SECRET_SIG_KEY: SECRET_SIG, "value": value}


def resource(type_: str, name: str, parent: str | None, inputs=None, **extra) -> Recorded:
    return Recorded(
        urn=f"urn:pulumi:test::pyscale::{type_}::{name}",
        type=type_,
        name=name,
        parent=parent,
        custom=not type_.startswith("pyscale:"),
        inputs=inputs or {},
        **extra,
    )


def small_run(stack: str = "test", instance_type: str = "t4g.small") -> Run:
    fleet = resource("pyscale:fleet:Fleet", f"app-{stack}", STACK_URN)
    security_group = resource(
        "aws:ec2/securityGroup:SecurityGroup", f"app-{stack}-sg", fleet.urn, id="sg-0123456789abc"
    )
    return Run(
        project="pyscale",
        stack=stack,
        resources=[
            fleet,
            resource(
                "aws:ec2/launchTemplate:LaunchTemplate",
                f"app-{stack}-lt",
                fleet.urn,
                {
                    "instanceType": instance_type,
                    "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1.0},
                    "vpcSecurityGroupIds": ["sg-0123456789abc"],
                },
            ),
            security_group,
            resource(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                f"app-{stack}-from-alb",
                security_group.urn,
                {
                    "fromPort": 8000.0,
                    "toPort": 8000.0,
                    "referencedSecurityGroupId": "sg-0123456789abc",
                },
            ),
            resource(
                "aws:elasticache/replicationGroup:ReplicationGroup",
                f"cache-{stack}",
                STACK_URN,
                {
                    "nodeType": "cache.t4g.micro",
                    "numCacheClusters": 2.0,
                    "authToken": secret("do-not-print-me-0123456789"),
                    "transitEncryptionEnabled": True,
                },
            ),
        ],
        stack_outputs={"url": "http://example.test", "replicas": 2.0},
        data_source_calls=[
            (
                "aws:ssm/getParameter:getParameter",
                {"name": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"},
            )
        ],
    )


def test_wire_markers_are_the_installed_sdks() -> None:
    assert (
        rpc._special_sig_key,
        rpc._special_secret_sig,
        rpc.UNKNOWN,
    ) == (SECRET_SIG_KEY, SECRET_SIG, UNKNOWN)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (3.0, 3),
        (0.5, 0.5),
        (True, True),
        (secret("hunter2"), SECRET_TEXT),
        (UNKNOWN, "(known after apply)"),
        ({"a": [1.0, secret({"b": 1})]}, {"a": [1, SECRET_TEXT]}),
    ],
)
def test_wire_values_read_as_plain_json(wire: Any, expected: Any) -> None:
    assert plain(wire) == expected


def test_lookup_follows_paths_and_fans_out_over_lists() -> None:
    inputs = {"rules": [{"name": "a", "n": {"x": 1}}, {"name": "b"}], "top": {"k": [5, 6]}}
    assert lookup(inputs, "rules[*].name") == ["a", "b"]
    assert lookup(inputs, "rules[0].n.x") == 1
    assert lookup(inputs, "top.k[1]") == 6
    assert lookup(inputs, "rules[5].name") is None
    assert lookup(inputs, "missing.path") is None


def test_resources_group_under_their_top_level_component_parents_first() -> None:
    plan = build_plan(small_run())
    fleet, outside = plan["components"]
    assert (fleet["type"], fleet["name"]) == ("pyscale:fleet:Fleet", "app-test")
    names = [r["name"] for r in fleet["resources"]]
    # the rule is a child of the security group, so it follows it, not its type's order
    assert names == ["app-test-lt", "app-test-sg", "app-test-from-alb"]
    assert fleet["resources"][2]["parent"] == fleet["resources"][1]["urn"]
    assert outside["type"] == "(stack)"
    assert [r["name"] for r in outside["resources"]] == ["cache-test"]


def test_inputs_naming_another_resources_id_show_that_resource() -> None:
    plan = build_plan(small_run())
    rule = plan["components"][0]["resources"][2]
    assert rule["settings"]["source_security_group"] == "${app-test-sg.id}"


def test_secret_inputs_are_masked_and_their_value_never_appears() -> None:
    plan = build_plan(small_run())
    cache = plan["components"][1]["resources"][0]
    assert cache["settings"]["auth_token"] == SECRET_TEXT
    assert "do-not-print-me" not in repr(plan)
    assert plan["key_settings"]["cache"]["auth_token"] is True


def test_key_settings_come_from_the_registered_inputs_and_lookups() -> None:
    settings = build_plan(small_run())["key_settings"]
    assert settings["fleet"]["instance_type"] == "t4g.small"
    assert settings["fleet"]["architecture"] == "arm64"
    assert settings["fleet"]["imds_tokens"] == "required"
    assert settings["cache"]["replicas_per_shard"] == 1
    assert settings["cache"]["nodes"] == 2
    assert settings["cache"]["cluster_mode"] is False


def test_diff_matches_resources_across_stacks_by_name_without_the_stack() -> None:
    diff = diff_plans(
        build_plan(small_run("dev", "t4g.small")), build_plan(small_run("prod", "m7g.large"))
    )
    assert {"setting": "fleet.instance_type", "a": "t4g.small", "b": "m7g.large"} in diff[
        "settings"
    ]
    assert diff["only_in_a"] == diff["only_in_b"] == []
    # references to each stack's own security group are the same reference
    assert [(r["name"], r["setting"]) for r in diff["resource_settings"]] == [
        ("app-<stack>-lt", "instance_type")
    ]


def test_diff_flags_a_stateful_setting_aws_cannot_change_in_place_as_a_replacement() -> None:
    # GIVEN two runs whose cache differs in its port (ModifyReplicationGroup has no port) and
    # in its node type (changed in place)
    plain, moved = small_run("dev"), small_run("prod")
    cache = next(r for r in moved.resources if r.type.endswith("ReplicationGroup"))
    cache.inputs = {**cache.inputs, "port": 6380.0, "nodeType": "cache.r7g.large"}

    # THEN the cache is flagged replaced because of the port alone
    assert diff_plans(build_plan(plain), build_plan(moved))["stateful"] == [
        {
            "type": "aws:elasticache/replicationGroup:ReplicationGroup",
            "name": "cache-<stack>",
            "loses": "cache: every cached key is lost",
            "change": "replaced",
            "because": ["port"],
        }
    ]


def test_plans_of_identical_runs_have_no_differences() -> None:
    diff = diff_plans(build_plan(small_run()), build_plan(small_run()))
    assert diff["settings"] == diff["resource_counts"] == diff["resource_settings"] == []
    assert diff["stateful"] == []


def test_markdown_diff_keeps_the_stack_placeholder_visible_on_github() -> None:
    diff = diff_plans(
        build_plan(small_run("dev", "t4g.small")), build_plan(small_run("prod", "m7g.large"))
    )
    markdown = diff_markdown(diff)
    assert "| fleet.instance_type | t4g.small | m7g.large |" in markdown
    # a bare <stack> would be swallowed as an HTML tag
    assert "app-&lt;stack&gt;-lt" in markdown
    assert "<stack>" not in markdown


def test_kubernetes_names_and_a_resources_own_id_are_not_read_as_references() -> None:
    # GIVEN a ClusterRole and a Deployment of the same name (ids unique per kind only), and
    # an EKS cluster whose id is its name
    root = resource("pyscale:kubernetes:EksCluster", "eks", STACK_URN)
    run = Run(
        project="pyscale",
        stack="test",
        resources=[
            root,
            resource(
                "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
                "autoscaler-role",
                root.urn,
                id="cluster-autoscaler",
            ),
            resource(
                "kubernetes:apps/v1:Deployment",
                "autoscaler-deployment",
                root.urn,
                {"metadata": {"name": "cluster-autoscaler", "namespace": "kube-system"}},
            ),
            resource(
                "aws:eks/cluster:Cluster",
                "eks-cluster",
                root.urn,
                {"name": "pyscale-test", "version": "1.33"},
                id="pyscale-test",
            ),
            resource(
                "aws:eks/nodeGroup:NodeGroup",
                "eks-nodes",
                root.urn,
                {"clusterName": "pyscale-test"},
            ),
        ],
    )
    settings = {r["name"]: r["settings"] for r in build_plan(run)["components"][0]["resources"]}

    # THEN each shows the plain name, not "${...id}"
    assert settings["autoscaler-deployment"]["name"] == "cluster-autoscaler"
    assert settings["eks-cluster"]["name"] == "pyscale-test"
