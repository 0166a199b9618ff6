"""`pyscale cache rotate-auth`: the AUTH token rotation's conversation with AWS, call by call
(botocore Stubber answers as the services do), and what it does when a step fails."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from pyscale import cache_auth
from pyscale.cache_auth import AuthTokenRotation, RollPreferences, RotationError, RotationTarget
from pyscale.cli import app as cli

GROUP = "pyscale-prod-redis-1a2b3c4"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pyscale-prod-auth-token-AbCdEf"
ASG = "pyscale-prod-asg-5d6e7f8"
OLD_VERSION = "11111111-1111-4111-8111-111111111111"
STAGED_VERSION = "22222222-2222-4222-8222-222222222222"
STAGED_TOKEN = "S" * 64
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 1, 12, 9, tzinfo=UTC)
T2 = datetime(2026, 3, 1, 12, 40, tzinfo=UTC)


class Aws:
    """Stubbed clients, and every call any of them made, in order (service, operation, params)."""

    def __init__(self) -> None:
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.clients = {
            name: boto3.client(name, region_name="us-east-1", **credentials)
            for name in ("elasticache", "secretsmanager", "autoscaling")
        }
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        for name, client in self.clients.items():
            client.meta.events.register("before-parameter-build.*.*", self._recorder(name))

    def _recorder(self, service: str):
        def record(model, params, **_):
            self.calls.append((service, model.name, dict(params)))

        return record

    def expect(self, service: str, operation: str, response: dict, params: dict | None = None):
        self.stubs[service].add_response(operation, response, params)

    def refuse(self, service: str, operation: str, code: str, message: str):
        self.stubs[service].add_client_error(operation, code, message, 400)

    def rotation(self) -> AuthTokenRotation:
        return AuthTokenRotation(
            RotationTarget(GROUP, SECRET, ASG),
            elasticache=self.clients["elasticache"],
            secretsmanager=self.clients["secretsmanager"],
            autoscaling=self.clients["autoscaling"],
            roll=RollPreferences(min_healthy_percent=90),
            report=lambda line: None,
            poll_seconds=0,
            sleep=lambda seconds: None,
        )

    def run(self) -> None:
        for stub in self.stubs.values():
            stub.activate()
        try:
            self.rotation().run()
        finally:
            for stub in self.stubs.values():
                stub.deactivate()

    def assert_all_answered(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()

    def operations(self) -> list[str]:
        return [operation for _, operation, _ in self.calls]

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [params for _, name, params in self.calls if name == operation]


def group(status: str = "available", modified: datetime = T0, pending: str | None = None):
    values = {"AuthTokenStatus": pending} if pending else {}
    return {
        "ReplicationGroups": [
            {
                "ReplicationGroupId": GROUP,
                "Status": status,
                "AuthTokenEnabled": True,
                "AuthTokenLastModifiedDate": modified,
                "PendingModifiedValues": values,
            }
        ]
    }


def describe(aws: Aws, **state) -> None:
    aws.expect("elasticache", "describe_replication_groups", group(**state),
               {"ReplicationGroupId": GROUP})  # fmt: skip


def secret_stages(aws: Aws, stages: dict[str, list[str]]) -> None:
    aws.expect("secretsmanager", "describe_secret",
               {"ARN": SECRET, "VersionIdsToStages": stages}, {"SecretId": SECRET})  # fmt: skip


def modify(aws: Aws, strategy: str, token: Any = ANY) -> None:
    aws.expect(
        "elasticache",
        "modify_replication_group",
        {"ReplicationGroup": {"ReplicationGroupId": GROUP, "Status": "modifying"}},
        {"ReplicationGroupId": GROUP, "AuthToken": token, "AuthTokenUpdateStrategy": strategy,
         "ApplyImmediately": True},
    )  # fmt: skip


def rotate_and_wait(aws: Aws, token: Any = ANY) -> None:
    describe(aws, modified=T0)
    modify(aws, "ROTATE", token)
    describe(aws, status="modifying", modified=T0, pending="ROTATING")
    describe(aws, modified=T1)


def promote(aws: Aws, version: Any = ANY) -> None:
    aws.expect("secretsmanager", "update_secret_version_stage", {"ARN": SECRET},
               {"SecretId": SECRET, "VersionStage": "AWSCURRENT", "MoveToVersionId": version,
                "RemoveFromVersionId": OLD_VERSION})  # fmt: skip


def roll(aws: Aws, outcome: str = "Successful") -> None:
    aws.expect(
        "autoscaling",
        "start_instance_refresh",
        {"InstanceRefreshId": "refresh-1"},
        {"AutoScalingGroupName": ASG, "Strategy": "Rolling",
         "Preferences": {"MinHealthyPercentage": 90, "MaxHealthyPercentage": 190,
                         "SkipMatching": False}},
    )  # fmt: skip
    for status in ("InProgress", outcome):
        aws.expect(
            "autoscaling",
            "describe_instance_refreshes",
            {"InstanceRefreshes": [{"InstanceRefreshId": "refresh-1", "Status": status,
                                    "PercentageComplete": 50}]},
            {"AutoScalingGroupName": ASG, "InstanceRefreshIds": ["refresh-1"]},
        )  # fmt: skip


def set_and_finish(aws: Aws, token: Any = ANY, version: Any = ANY) -> None:
    describe(aws, modified=T1)
    modify(aws, "SET", token)
    describe(aws, modified=T2)
    aws.expect("secretsmanager", "update_secret_version_stage", {"ARN": SECRET},
               {"SecretId": SECRET, "VersionStage": "AWSPENDING",
                "RemoveFromVersionId": version})  # fmt: skip


ROTATE_THEN_ROLL_THEN_SET = [
    "DescribeReplicationGroups",  # the cache uses a token and is available
    "DescribeSecret",  # no rotation under way
    "PutSecretValue",  # stage: the new token as AWSPENDING
    "DescribeReplicationGroups",
    "ModifyReplicationGroup",  # ROTATE: old and new accepted
    "DescribeReplicationGroups",  # still ROTATING...
    "DescribeReplicationGroups",  # ...applied
    "UpdateSecretVersionStage",  # the new token is AWSCURRENT: new instances use it
    "StartInstanceRefresh",
    "DescribeInstanceRefreshes",
    "DescribeInstanceRefreshes",  # Successful
    "DescribeReplicationGroups",
    "ModifyReplicationGroup",  # SET: only the new token
    "DescribeReplicationGroups",
    "UpdateSecretVersionStage",  # AWSPENDING removed: the rotation is finished
]


def test_rotation_stages_rotates_rolls_the_fleet_then_sets_the_same_new_token():
    aws = Aws()
    describe(aws)
    secret_stages(aws, {OLD_VERSION: ["AWSCURRENT"]})
    aws.expect("secretsmanager", "put_secret_value", {"ARN": SECRET, "VersionId": STAGED_VERSION},
               {"SecretId": SECRET, "ClientRequestToken": ANY, "SecretString": ANY,
                "VersionStages": ["AWSPENDING"]})  # fmt: skip
    rotate_and_wait(aws)
    promote(aws)
    roll(aws)
    set_and_finish(aws)

    aws.run()

    aws.assert_all_answered()
    assert aws.operations() == ROTATE_THEN_ROLL_THEN_SET
    [staged] = aws.params("PutSecretValue")
    token, version = staged["SecretString"], staged["ClientRequestToken"]
    assert len(token) == 64
    assert token.isalnum()
    assert [p["AuthToken"] for p in aws.params("ModifyReplicationGroup")] == [token, token]
    promoted, finished = aws.params("UpdateSecretVersionStage")
    assert promoted["MoveToVersionId"] == version
    assert finished["RemoveFromVersionId"] == version


def test_two_rotations_never_reuse_a_token():
    assert cache_auth.new_token() != cache_auth.new_token()


def test_a_failed_fleet_roll_stops_before_set_and_says_both_tokens_still_work():
    aws = Aws()
    describe(aws)
    secret_stages(aws, {OLD_VERSION: ["AWSCURRENT"]})
    aws.expect("secretsmanager", "put_secret_value", {"ARN": SECRET}, None)
    rotate_and_wait(aws)
    promote(aws)
    roll(aws, outcome="RollbackSuccessful")

    with pytest.raises(RotationError, match=r"ended RollbackSuccessful.*still accepts"):
        aws.run()

    aws.assert_all_answered()
    assert [p["AuthTokenUpdateStrategy"] for p in aws.params("ModifyReplicationGroup")] == [
        "ROTATE"
    ]


def test_a_rerun_after_a_failed_roll_reuses_the_staged_token_and_skips_rotate():
    aws = Aws()
    describe(aws)
    secret_stages(aws, {OLD_VERSION: ["AWSPREVIOUS"], STAGED_VERSION: ["AWSCURRENT", "AWSPENDING"]})
    aws.expect("secretsmanager", "get_secret_value",
               {"ARN": SECRET, "VersionId": STAGED_VERSION, "SecretString": STAGED_TOKEN},
               {"SecretId": SECRET, "VersionId": STAGED_VERSION})  # fmt: skip
    roll(aws)
    set_and_finish(aws, token=STAGED_TOKEN, version=STAGED_VERSION)

    aws.run()

    aws.assert_all_answered()
    assert "PutSecretValue" not in aws.operations()
    assert [p["AuthTokenUpdateStrategy"] for p in aws.params("ModifyReplicationGroup")] == ["SET"]


def test_a_rerun_after_staging_only_rotates_with_the_staged_token_even_if_aws_had_applied_it():
    aws = Aws()
    describe(aws)
    secret_stages(aws, {OLD_VERSION: ["AWSCURRENT"], STAGED_VERSION: ["AWSPENDING"]})
    aws.expect("secretsmanager", "get_secret_value",
               {"ARN": SECRET, "VersionId": STAGED_VERSION, "SecretString": STAGED_TOKEN},
               {"SecretId": SECRET, "VersionId": STAGED_VERSION})  # fmt: skip
    describe(aws, modified=T1)
    aws.refuse("elasticache", "modify_replication_group", "InvalidParameterCombination",
               "No modifications were requested.")  # fmt: skip
    describe(aws, modified=T1)  # nothing changes: available is enough
    promote(aws, version=STAGED_VERSION)
    roll(aws)
    set_and_finish(aws, token=STAGED_TOKEN, version=STAGED_VERSION)

    aws.run()

    aws.assert_all_answered()


def test_a_cache_without_an_auth_token_has_nothing_to_rotate():
    aws = Aws()
    iam_group = group()
    iam_group["ReplicationGroups"][0]["AuthTokenEnabled"] = False
    aws.expect("elasticache", "describe_replication_groups", iam_group)

    with pytest.raises(RotationError, match=r"no AUTH token .*nothing to rotate"):
        aws.run()

    assert aws.operations() == ["DescribeReplicationGroups"]


def test_rotate_refused_by_aws_stops_with_its_message_before_touching_the_secret_stages():
    aws = Aws()
    describe(aws)
    secret_stages(aws, {OLD_VERSION: ["AWSCURRENT"]})
    aws.expect("secretsmanager", "put_secret_value", {"ARN": SECRET}, None)
    describe(aws)
    aws.refuse("elasticache", "modify_replication_group", "InvalidReplicationGroupState",
               "Replication group must be in available state to modify.")  # fmt: skip

    with pytest.raises(RotationError, match="ROTATE failed: InvalidReplicationGroupState"):
        aws.run()

    assert "UpdateSecretVersionStage" not in aws.operations()


# -- the command ----------------------------------------------------------------------------
def fake_pulumi(directory, outputs: dict[str, str]) -> str:
    """A `pulumi` on PATH answering `stack output --json` (the engine is ours to fake)."""
    script = directory / "pulumi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(outputs)}\nEOF\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{directory}{os.pathsep}{os.environ['PATH']}"


def test_the_command_names_the_missing_stack_outputs_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_pulumi(tmp_path, {"asgName": ASG}))

    result = CliRunner().invoke(cli, ["cache", "rotate-auth", "--stack", "prod"])

    assert result.exit_code == 1
    assert "no output cacheReplicationGroupId, cacheAuthSecretArn" in result.output
    assert "Traceback" not in result.output


def test_the_command_without_pulumi_asks_for_the_identifiers(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))

    result = CliRunner().invoke(cli, ["cache", "rotate-auth", "--stack", "prod"])

    assert result.exit_code == 1
    assert "pulumi CLI is not on PATH: pass --replication-group, --secret-arn" in result.output


def test_the_command_rejects_an_unknown_stack():
    result = CliRunner().invoke(
        cli,
        ["cache", "rotate-auth", "--stack", "nope", "--replication-group", GROUP,
         "--secret-arn", SECRET, "--asg", ASG],
    )  # fmt: skip

    assert result.exit_code == 1
    assert "unknown stack 'nope'" in result.output
