"""`pyscale deploy wait`: after `pulumi up` it follows the instance refresh, verifies the
fleet serves, and rolls back for real (the previous launch template version, not AWS's
rollback to the version the provider already set — hashicorp/terraform-provider-aws#34189).

The AWS conversation is scripted with botocore's Stubber (tests/deploy/aws.py): each test
lists, in order, every call the command must make. The stack URL is a real HTTP server on
loopback. Time is a fake clock that moves only when the command sleeps."""

from __future__ import annotations

from app.contract import HEALTH_PATH
from pyscale.deploy.outputs import DeployTarget
from pyscale.deploy.wait import AutoScalingFleet, DeployWait, Outcome, WaitSettings
from tests.deploy.aws import GROUP, REGION, instance


class Events:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def event(self, message: str) -> None:
        self.lines.append(message)

    def status(self, message: str) -> None:
        pass


def deploy_wait(aws, clock, health_server, *, version: str | None = "7", **settings):
    events = Events()
    settings = {"poll_seconds": 15.0, **settings}
    command = DeployWait(
        AutoScalingFleet(aws.autoscaling, aws.elbv2, GROUP),
        report=events,
        settings=WaitSettings(**settings),
        clock=clock,
    )
    target = DeployTarget(REGION, GROUP, health_server.url, version, source="test")
    result = command.run(target)
    aws.assert_conversation_over()
    return result, events.lines


OLD = [instance("i-old1", "6"), instance("i-old2", "6")]
NEW = [instance("i-new1", "7"), instance("i-new2", "7")]
HEALTHY_NEW = {"i-new1": "healthy", "i-new2": "healthy"}


def rollback_succeeds(aws, *, during_rollback_group=None) -> None:
    """The group is pointed back at version 6 and a skip-matching refresh to it succeeds."""
    aws.group("7", during_rollback_group or [instance("i-old1", "6"), instance("i-new1", "7")])
    aws.group_pointed_at("6")
    aws.refresh_started("6", "r-back")
    aws.refresh("r-back", "InProgress", 50)
    aws.refresh("r-back", "Successful", 100)
    aws.group("6", [instance("i-old1", "6"), instance("i-old3", "6")])
    aws.target_health({"i-old1": "healthy", "i-old3": "healthy"})


# ---------------------------------------------------------------------------------------
# Success
# ---------------------------------------------------------------------------------------
def test_a_good_release_is_followed_to_the_end_and_verified(aws, clock, health_server):
    aws.group("7", OLD)
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "InProgress", 50)
    aws.refresh("r-deploy", "Successful", 100)
    aws.group("7", NEW)
    aws.target_health(HEALTHY_NEW)

    result, events = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.VERIFIED
    assert (
        result.summary == f"launch template version 7 serves {health_server.url}/healthz with 200"
    )
    assert events[0] == f"group {GROUP}: launch template version 7, rolling back to 6 on failure"
    assert any("InProgress 50%" in line for line in events)
    assert any("Successful 100%" in line for line in events)
    assert health_server.requests == [HEALTH_PATH]
    assert clock.sleeps == [15.0]


def test_a_deploy_that_changed_no_instance_is_verified_without_a_refresh(aws, clock, health_server):
    aws.group("7", NEW)
    aws.latest_refresh(None)
    aws.group("7", NEW)
    aws.target_health(HEALTHY_NEW)

    result, events = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.VERIFIED
    assert events == [f"group {GROUP}: launch template version 7; no instance refresh in progress"]


def test_without_the_version_output_the_groups_own_version_is_verified(aws, clock, health_server):
    aws.group("7", NEW)
    aws.latest_refresh(None)
    aws.group("7", NEW)
    aws.target_health(HEALTHY_NEW)

    result, _ = deploy_wait(aws, clock, health_server, version=None)

    assert result.outcome is Outcome.VERIFIED
    assert "version 7" in result.summary


def test_targets_still_registering_are_waited_for_not_failed(aws, clock, health_server):
    aws.group("7", NEW)
    aws.latest_refresh(None)
    aws.group("7", NEW)
    aws.target_health({"i-new1": "healthy", "i-new2": "initial"})
    aws.group("7", NEW)
    aws.target_health(HEALTHY_NEW)

    result, _ = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.VERIFIED
    assert clock.sleeps == [15.0]


# ---------------------------------------------------------------------------------------
# Failure, rolled back for real
# ---------------------------------------------------------------------------------------
def test_a_failed_refresh_is_rolled_back_to_the_version_the_instances_ran(
    aws, clock, health_server
):
    aws.group("7", OLD)
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "InProgress", 50)
    reason = "Instance refresh failed: alarm pyscale-prod-unhealthy-hosts is in ALARM"
    aws.refresh("r-deploy", "Failed", 50, reason)
    aws.latest_refresh("r-deploy", "Failed", reason)
    rollback_succeeds(aws)

    result, events = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.ROLLED_BACK
    assert result.outcome == 1
    assert result.summary.startswith(f"the instance refresh ended Failed: {reason}. Rolled back:")
    assert "launch template version 6 serves" in result.summary
    assert f"deploy failed: the instance refresh ended Failed: {reason}" in events
    assert f"group {GROUP} now launches version 6" in events


def test_a_refresh_that_outlives_the_timeout_is_cancelled_then_rolled_back(
    aws, clock, health_server
):
    aws.group("7", OLD)
    aws.latest_refresh("r-deploy")
    for _ in range(3):  # t = 0, 15, 30: the deadline
        aws.refresh("r-deploy", "InProgress", 10)
    aws.latest_refresh("r-deploy", "InProgress")
    aws.cancel()
    aws.refresh("r-deploy", "Cancelling", 10)
    aws.refresh("r-deploy", "Cancelled", 10)
    rollback_succeeds(aws)

    result, events = deploy_wait(aws, clock, health_server, timeout_seconds=30)

    assert result.outcome is Outcome.ROLLED_BACK
    assert result.summary.startswith("the instance refresh did not finish within 30 s.")
    assert any(line.startswith("cancelling refresh r-deploy") for line in events)
    assert clock.t == 30 + 15 + 15  # the deadline, the cancellation, the rollback


def test_a_release_that_does_not_answer_after_a_good_refresh_is_rolled_back(
    aws, clock, health_server
):
    health_server.statuses = [503, 503, 503, 200]
    aws.group("7", OLD)
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "Successful", 100)
    for _ in range(3):  # t = 0, 15, 30: the deadline
        aws.group("7", NEW)
        aws.target_health(HEALTHY_NEW)
    aws.latest_refresh("r-deploy", "Successful")
    rollback_succeeds(aws, during_rollback_group=NEW)

    result, _ = deploy_wait(aws, clock, health_server, timeout_seconds=30)

    assert result.outcome is Outcome.ROLLED_BACK
    assert result.summary.startswith(
        f"{health_server.url}{HEALTH_PATH} answered HTTP 503. Rolled back: launch template "
        "version 6 serves"
    )


def test_mixed_instance_groups_roll_back_with_their_overrides_and_distribution(
    aws, clock, health_server
):
    aws.mixed_policy = {
        "LaunchTemplate": {
            "Overrides": [{"InstanceType": "m7g.large"}, {"InstanceType": "m6g.large"}]
        },
        "InstancesDistribution": {
            "OnDemandBaseCapacity": 1,
            "OnDemandPercentageAboveBaseCapacity": 50,
            "SpotAllocationStrategy": "price-capacity-optimized",
        },
    }
    aws.group("7", OLD)
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "Failed", 0, "launch failed")
    aws.latest_refresh("r-deploy", "Failed")
    rollback_succeeds(aws)

    result, _ = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.ROLLED_BACK


def test_an_explicit_previous_version_wins_over_the_instances(aws, clock, health_server):
    aws.group("7", [instance("i-old1", "5")])
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "Failed", 0, "launch failed")
    aws.latest_refresh("r-deploy", "Failed")
    rollback_succeeds(aws)

    result, events = deploy_wait(aws, clock, health_server, previous_version="6")

    assert result.outcome is Outcome.ROLLED_BACK
    assert events[0].endswith("rolling back to 6 on failure")


# ---------------------------------------------------------------------------------------
# Failure a human must look at (exit status 3)
# ---------------------------------------------------------------------------------------
def test_a_rollback_whose_refresh_fails_needs_a_human(aws, clock, health_server):
    aws.group("7", OLD)
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "Failed", 0, "launch failed")
    aws.latest_refresh("r-deploy", "Failed")
    aws.group("7", OLD)
    aws.group_pointed_at("6")
    aws.refresh_started("6", "r-back")
    aws.refresh("r-back", "Failed", 0, "InsufficientInstanceCapacity")

    result, _ = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.NEEDS_HUMAN
    assert result.summary == (
        "the instance refresh ended Failed: launch failed. The rollback to version 6 failed "
        "too: it ended Failed: InsufficientInstanceCapacity"
    )


def test_a_failing_first_release_has_nothing_to_roll_back_to(aws, clock, health_server):
    health_server.statuses = [503]
    pending = [instance("i-1", "1", state="Pending:Wait")]
    aws.group("1", pending)
    aws.latest_refresh(None)
    for _ in range(3):
        aws.group("1", pending)
        aws.target_health({})

    result, _ = deploy_wait(aws, clock, health_server, version="1", timeout_seconds=30)

    assert result.outcome is Outcome.NEEDS_HUMAN
    assert "0 healthy target(s) on version 1, needs at least 2" in result.summary
    assert "This deploy started no instance refresh" in result.summary


def test_a_group_rolled_back_earlier_is_reported_not_redeployed(aws, clock, health_server):
    aws.group("6", OLD)  # the stack says 7; a previous deploy wait pointed the group at 6

    result, _ = deploy_wait(aws, clock, health_server, version="7")

    assert result.outcome is Outcome.NEEDS_HUMAN
    assert result.summary.startswith(
        "the group is configured with launch template version 6, the stack with 7"
    )
    assert health_server.requests == []


def test_an_aws_refusal_during_the_rollback_needs_a_human(aws, clock, health_server):
    aws.group("7", OLD)
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "Failed", 0, "launch failed")
    aws.latest_refresh("r-deploy", "Failed")
    aws.group("7", OLD)
    aws.refused("update_auto_scaling_group")

    result, _ = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.NEEDS_HUMAN
    assert "AWS refused UpdateAutoScalingGroup: AccessDenied" in result.summary


# ---------------------------------------------------------------------------------------
# Could not start: nothing changed (exit status 2)
# ---------------------------------------------------------------------------------------
def test_a_refused_first_call_changes_nothing_and_names_the_action(aws, clock, health_server):
    aws.refused("describe_auto_scaling_groups")

    result, _ = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.BAD_INPUT
    assert result.summary == (
        "AWS refused DescribeAutoScalingGroups: AccessDenied: User: ci is not authorized"
    )


def test_an_unknown_group_changes_nothing(aws, clock, health_server):
    aws.no_group()

    result, _ = deploy_wait(aws, clock, health_server)

    assert result.outcome is Outcome.BAD_INPUT
    assert (
        result.summary == f"no Auto Scaling group {GROUP!r} in this region (stack output asgName)"
    )


def test_exit_statuses_are_the_documented_ones():
    assert {o.name: int(o) for o in Outcome} == {
        "VERIFIED": 0,
        "ROLLED_BACK": 1,
        "BAD_INPUT": 2,
        "NEEDS_HUMAN": 3,
    }
