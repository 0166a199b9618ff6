"""The AWS side of a deploy, scripted with botocore's Stubber: every call `pyscale deploy
wait` makes must be the next one the scenario expects, with exactly these parameters, and
every answer is checked against botocore's model of the real API (so a misnamed field in a
request or a response fails the test, as it would fail against AWS)."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
from botocore.stub import Stubber

REGION = "us-east-1"
GROUP = "pyscale-prod-asg-0a1b2c3"
TEMPLATE_ID = "lt-0123456789abcdef0"
TARGET_GROUP = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
    "targetgroup/pyscale-prod-tg/0123456789abcdef"
)
REFRESH_PREFERENCES = {
    "MinHealthyPercentage": 90,
    "MaxHealthyPercentage": 190,
    "InstanceWarmup": 120,
    "SkipMatching": False,
    "AutoRollback": False,
    "AlarmSpecification": {"Alarms": ["pyscale-prod-unhealthy-hosts"]},
}
_T0 = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def instance(instance_id: str, version: str, state: str = "InService") -> dict[str, Any]:
    return {
        "InstanceId": instance_id,
        "AvailabilityZone": "us-east-1a",
        "LifecycleState": state,
        "HealthStatus": "Healthy",
        "ProtectedFromScaleIn": False,
        "LaunchTemplate": {
            "LaunchTemplateId": TEMPLATE_ID,
            "LaunchTemplateName": "pyscale-prod-launch-template",
            "Version": version,
        },
    }


def clients() -> tuple[Any, Any]:
    """Real boto3 clients (autoscaling, elbv2) with dummy credentials; a Stubber answers
    them, so nothing leaves the process."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client("autoscaling"), session.client("elbv2")


class ScriptedAws:
    """Stubbed autoscaling + elbv2 clients and the conversation a scenario expects."""

    def __init__(self, autoscaling: Any, elbv2: Any) -> None:
        self.autoscaling = autoscaling
        self.elbv2 = elbv2
        self._asg = Stubber(self.autoscaling)
        self._elb = Stubber(self.elbv2)
        self._refreshes = 0
        self.mixed_policy: dict[str, Any] | None = None

    def __enter__(self) -> ScriptedAws:
        self._asg.activate()
        self._elb.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self._asg.deactivate()
        self._elb.deactivate()

    def assert_conversation_over(self) -> None:
        self._asg.assert_no_pending_responses()
        self._elb.assert_no_pending_responses()

    # -- answers, in the order the command asks -------------------------------------------
    def group(self, configured: str, instances: list[dict[str, Any]], *, min_size: int = 2) -> None:
        group: dict[str, Any] = {
            "AutoScalingGroupName": GROUP,
            "MinSize": min_size,
            "MaxSize": 12,
            "DesiredCapacity": max(min_size, len(instances)),
            "DefaultCooldown": 300,
            "AvailabilityZones": ["us-east-1a", "us-east-1b"],
            "HealthCheckType": "ELB",
            "CreatedTime": _T0,
            "TargetGroupARNs": [TARGET_GROUP],
            "Instances": instances,
        }
        spec = {"LaunchTemplateId": TEMPLATE_ID, "Version": configured}
        if self.mixed_policy is not None:
            policy = dict(self.mixed_policy)
            policy["LaunchTemplate"] = {
                **policy["LaunchTemplate"],
                "LaunchTemplateSpecification": spec,
            }
            group["MixedInstancesPolicy"] = policy
        else:
            group["LaunchTemplate"] = spec
        self._asg.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": [group]},
            {"AutoScalingGroupNames": [GROUP]},
        )

    def no_group(self) -> None:
        self._asg.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": []},
            {"AutoScalingGroupNames": [GROUP]},
        )

    def refused(self, method: str, code: str = "AccessDenied") -> None:
        self._asg.add_client_error(
            method, service_error_code=code, service_message="User: ci is not authorized"
        )

    def _refresh(self, refresh_id: str, status: str, percent: int, reason: str) -> dict:
        refresh = {
            "InstanceRefreshId": refresh_id,
            "AutoScalingGroupName": GROUP,
            "Status": status,
            "StartTime": _T0 + datetime.timedelta(minutes=len(refresh_id)),
            "PercentageComplete": percent,
            "InstancesToUpdate": 0 if status == "Successful" else 2,
            "Preferences": REFRESH_PREFERENCES,
        }
        if reason:  # AWS omits an empty reason (the model's minimum length is 1)
            refresh["StatusReason"] = reason
        return refresh

    def latest_refresh(
        self, refresh_id: str | None, status: str = "InProgress", reason: str = ""
    ) -> None:
        older = self._refresh("old", "Successful", 100, "")
        refreshes = (
            [older]
            if refresh_id is None
            else [
                self._refresh(refresh_id, status, 0, reason),
                older,
            ]
        )
        self._asg.add_response(
            "describe_instance_refreshes",
            {"InstanceRefreshes": refreshes},
            {"AutoScalingGroupName": GROUP, "MaxRecords": 10},
        )

    def refresh(self, refresh_id: str, status: str, percent: int = 0, reason: str = "") -> None:
        self._asg.add_response(
            "describe_instance_refreshes",
            {"InstanceRefreshes": [self._refresh(refresh_id, status, percent, reason)]},
            {"AutoScalingGroupName": GROUP, "InstanceRefreshIds": [refresh_id]},
        )

    def target_health(self, states: dict[str, str]) -> None:
        self._elb.add_response(
            "describe_target_health",
            {
                "TargetHealthDescriptions": [
                    {"Target": {"Id": instance_id, "Port": 8000}, "TargetHealth": {"State": s}}
                    for instance_id, s in states.items()
                ]
            },
            {"TargetGroupArn": TARGET_GROUP},
        )

    def cancel(self) -> None:
        self._asg.add_response(
            "cancel_instance_refresh",
            {"InstanceRefreshId": "cancelled"},
            {"AutoScalingGroupName": GROUP},
        )

    def _launch(self, version: str) -> dict[str, Any]:
        spec = {"LaunchTemplateId": TEMPLATE_ID, "Version": version}
        if self.mixed_policy is None:
            return {"LaunchTemplate": spec}
        launch = {
            "LaunchTemplateSpecification": spec,
            "Overrides": self.mixed_policy["LaunchTemplate"]["Overrides"],
        }
        return {
            "MixedInstancesPolicy": {
                "LaunchTemplate": launch,
                "InstancesDistribution": self.mixed_policy["InstancesDistribution"],
            }
        }

    def group_pointed_at(self, version: str) -> None:
        self._asg.add_response(
            "update_auto_scaling_group",
            {},
            {"AutoScalingGroupName": GROUP, **self._launch(version)},
        )

    def refresh_started(self, version: str, refresh_id: str) -> None:
        self._asg.add_response(
            "start_instance_refresh",
            {"InstanceRefreshId": refresh_id},
            {
                "AutoScalingGroupName": GROUP,
                "Strategy": "Rolling",
                "DesiredConfiguration": self._launch(version),
                # The deploy's pace and warm-up, without its alarms or AWS's own rollback.
                "Preferences": {
                    "MinHealthyPercentage": 90,
                    "MaxHealthyPercentage": 190,
                    "InstanceWarmup": 120,
                    "SkipMatching": True,
                    "AutoRollback": False,
                },
            },
        )
