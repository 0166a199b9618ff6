"""`pyscale iam-policy`: the deploy role's policy covers every resource type and data source
every stack registers (and every type the offline mocks know, the program's optional
parts), is scoped to the stacks' own names where AWS names them predictably, and fits the
role's inline-policy quota."""

from __future__ import annotations

import fnmatch
import json

import pytest
from typer.testing import CliRunner

from pyscale import iam_policy
from pyscale.cli import app
from pyscale.offline.mocks import DATA_SOURCES, RESOURCE_OUTPUTS
from tests.infra.conftest import STACKS


def registered(run) -> tuple[set[str], set[str]]:
    return {r.type for r in run.resources if r.custom}, {t for t, _ in run.data_source_calls}


def test_every_type_every_stack_registers_has_its_actions(each_stack_run):
    types, data_sources = registered(each_stack_run)

    wanted = iam_policy.actions_for(types, data_sources)

    assert {"ec2", "autoscaling", "elasticloadbalancing", "elasticache", "s3", "iam"} <= set(wanted)


def test_every_type_the_program_can_register_has_its_actions():
    # The mocks answer every resource and data source the program may register, shipped
    # stacks or not (warm pools, KMS, ElastiCache users, WAF logging...).
    iam_policy.actions_for(RESOURCE_OUTPUTS, DATA_SOURCES)


def test_an_unknown_type_is_refused_by_name():
    with pytest.raises(iam_policy.UnknownTypeError, match="aws:sqs/queue:Queue"):
        iam_policy.actions_for({"aws:sqs/queue:Queue"}, set())


def test_elasticache_log_delivery_and_first_use_service_linked_roles_are_granted(shipped_run):
    document = iam_policy.policy_document(
        *registered(shipped_run("prod")), iam_policy.StackNames("aws", ("pyscale-prod-",))
    )
    actions = {a for s in document["Statement"] for a in json.dumps(s["Action"]).split('"')}
    linked = next(s for s in document["Statement"] if s["Sid"] == "ServiceLinkedRolesOnFirstUse")

    assert {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    } <= actions
    assert "elasticache.amazonaws.com" in linked["Condition"]["StringEquals"]["iam:AWSServiceName"]


def test_deploy_wait_can_do_what_it_does(shipped_run):
    document = iam_policy.policy_document(
        *registered(shipped_run("dev")), iam_policy.StackNames("aws", ("pyscale-dev-",))
    )
    granted = {
        a for s in document["Statement"] for a in s["Action"] if isinstance(s["Action"], list)
    }
    called = {
        "autoscaling:" + "".join(w.capitalize() for w in name.split("_"))
        for name in (
            "describe_auto_scaling_groups",
            "describe_instance_refreshes",
            "cancel_instance_refresh",
            "update_auto_scaling_group",
            "start_instance_refresh",
        )
    }

    assert called <= granted
    # The calls pyscale/deploy/wait.py makes (AutoScalingFleet).
    assert "elasticloadbalancing:DescribeTargetHealth" in granted


def test_what_aws_names_after_the_stack_is_scoped_to_the_stack(shipped_run):
    run = shipped_run("prod")
    document = iam_policy.policy_document(
        *registered(run), iam_policy.StackNames("aws", ("pyscale-prod-",))
    )
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    buckets = [r.outputs["bucket"] for r in run.of_type("aws:s3/bucket:Bucket")]

    assert by_sid["S3"]["Resource"] == [
        "arn:aws:s3:::pyscale-prod-*",
        "arn:aws:s3:::pyscale-prod-*/*",
    ]
    assert all(b.startswith("pyscale-prod-") for b in buckets)
    assert by_sid["PassTheInstanceRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }
    assert all(r.startswith("arn:aws:iam::*:") for r in by_sid["StackRolesAndProfiles"]["Resource"])


def test_the_command_prints_one_document_for_all_stacks_that_fits_a_role():
    result = CliRunner().invoke(app, ["iam-policy", *[f"--stack={s}" for s in STACKS]])
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.stderr
    assert document["Version"] == "2012-10-17"
    assert iam_policy.size_without_whitespace(document) <= iam_policy.INLINE_ROLE_POLICY_LIMIT
    s3 = next(s for s in document["Statement"] if s["Sid"] == "S3")
    for stack in STACKS:  # a bucket of every stack, whether or not its prefix is listed itself
        bucket = f"arn:aws:s3:::pyscale-{stack}-release-0123abc"
        assert any(fnmatch.fnmatchcase(bucket, pattern) for pattern in s3["Resource"]), stack
    ecr = next(s for s in document["Statement"] if s["Sid"] == "Ecr")
    assert ecr["Resource"] == ["arn:aws:ecr:*:*:repository/pyscale-dev-eks-app"]


def test_a_prefix_another_stacks_prefix_covers_is_not_listed_again():
    names = iam_policy.StackNames("aws", ("pyscale-dev-", "pyscale-dev-eks-", "pyscale-prod-"))
    assert names.covering_prefixes == ("pyscale-dev-", "pyscale-prod-")
    document = iam_policy.policy_document(["aws:s3/bucket:Bucket"], [], names)
    s3 = next(s for s in document["Statement"] if s["Sid"] == "S3")
    assert s3["Resource"] == [
        "arn:aws:s3:::pyscale-dev-*",
        "arn:aws:s3:::pyscale-dev-*/*",
        "arn:aws:s3:::pyscale-prod-*",
        "arn:aws:s3:::pyscale-prod-*/*",
    ]


def test_an_unknown_stack_is_one_line_and_exit_2():
    result = CliRunner().invoke(app, ["iam-policy", "--stack", "nope"])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown stack 'nope'")


def test_the_deploy_pushes_the_eks_image_to_its_own_stacks_repository_only(shipped_run):
    run = shipped_run("dev-eks")
    document = iam_policy.policy_document(
        *registered(run), iam_policy.StackNames("aws", ("pyscale-dev-eks-",))
    )
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    repository = run.one("aws:ecr/repository:Repository").outputs["arn"]

    assert by_sid["Ecr"]["Resource"] == ["arn:aws:ecr:*:*:repository/pyscale-dev-eks-*"]
    assert fnmatch.fnmatchcase(repository, by_sid["Ecr"]["Resource"][0])
    # What pyscale/image_publish.py calls (boto3) and docker push / imagetools create need.
    needed = {
        "ecr:DescribeRepositories",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:GetDownloadUrlForLayer",
    }
    granted = by_sid["Ecr"]["Action"]
    assert {a for a in needed if not any(fnmatch.fnmatchcase(a, g) for g in granted)} == set()
    assert by_sid["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"
    assert by_sid["EcrLogin"]["Resource"] == "*"  # the token call has no resource-level form


def test_a_stack_without_an_image_repository_gets_no_registry_access(shipped_run):
    document = iam_policy.policy_document(
        *registered(shipped_run("dev")), iam_policy.StackNames("aws", ("pyscale-dev-",))
    )
    assert not [s for s in document["Statement"] if '"ecr:' in json.dumps(s)]
