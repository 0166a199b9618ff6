"""Follow the instance refresh `pulumi up` started, verify the fleet, and roll back for real.

Why a command, not the provider (terraform-provider-aws, internal/service/autoscaling/
group.go, ``resourceGroupUpdate``): the provider first calls UpdateAutoScalingGroup with the
new launch template version and only then StartInstanceRefresh, whose desired configuration
is that same version. AWS's own rollback restores "the configuration the group was using
before the start of the refresh" — already the new version — so it re-deploys the bad
release (hashicorp/terraform-provider-aws#34189, open). The provider does not wait for the
refresh either, and the group's ``wait_for_capacity_timeout`` is "0" (agreed with issue 10:
the provider's capacity wait counts exactly max(min, desired) instances and hangs once
scaling moved away from the configured desired capacity), so `pulumi up` returns as soon
as the refresh has started. This module is what waits for capacity and health.

What it does, against the group's live state rather than any one refresh's bookkeeping:
1. note which launch template version the in-service instances run *before* the refresh
   replaces them: that is the version to roll back to;
2. follow the group's active instance refresh until it ends (bounded by a timeout; on
   timeout it is cancelled);
3. verify: every in-service instance runs the stack's launch template version, each target
   group has at least the group's minimum (>= 1) healthy targets among them, and the stack's
   URL answers the health path with 200;
4. on failure, roll back: cancel what is still running, point the group at the previous
   version (so replacements and scale-outs launch it at once), start a refresh to it with
   skip-matching (instances already on it stay), follow and verify it.

Outcome codes: 0 verified, 1 failed and rolled back (the previous release verified healthy),
2 could not start (missing outputs or credentials, unknown group: nothing was changed),
3 failed and not rolled back, or the rollback failed — a human must look.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final, Protocol

from app.contract import HEALTH_PATH
from pyscale.deploy.outputs import DeployTarget

# DescribeInstanceRefreshes statuses (botocore's InstanceRefreshStatus enum).
ACTIVE: Final = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
SUCCESSFUL: Final = "Successful"
# Preferences of the failed refresh that a rollback keeps: pace and warm-up. Its alarms are
# dropped (the bad release may have left them in ALARM, which would stop the rollback) and
# so is AWS's auto rollback (see the module docstring).
KEPT_PREFERENCES: Final = ("MinHealthyPercentage", "MaxHealthyPercentage", "InstanceWarmup")


class Outcome(IntEnum):
    VERIFIED = 0
    ROLLED_BACK = 1
    BAD_INPUT = 2
    NEEDS_HUMAN = 3


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    summary: str


class AwsCallError(Exception):
    """An AWS call failed; ``changed`` tells whether this command had already changed the
    group (then the outcome needs a human, else nothing happened and the input is at fault)."""

    def __init__(self, message: str, *, changed: bool) -> None:
        super().__init__(message)
        self.changed = changed


class Reporter(Protocol):
    def event(self, message: str) -> None:
        """Something happened: a line the log keeps."""

    def status(self, message: str) -> None:
        """What it is waiting for now: may be shown transiently."""


class Clock:
    """Monotonic time and sleeping, replaceable in tests."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class WaitSettings:
    timeout_seconds: float = 1800.0
    """How long the deploy's refresh and verification may take before it counts as failed."""
    rollback_timeout_seconds: float = 1200.0
    poll_seconds: float = 15.0
    previous_version: str | None = None
    """Roll back to this launch template version instead of the one found on the instances."""


# ---------------------------------------------------------------------------------------
# The group as the command sees it
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    instance_id: str
    lifecycle_state: str
    health_status: str
    version: str | None


@dataclass(frozen=True)
class Group:
    name: str
    min_size: int
    launch_template_id: str
    configured_version: str
    mixed_instances_policy: Mapping[str, Any] | None
    target_group_arns: tuple[str, ...]
    instances: tuple[Instance, ...]

    def in_service(self) -> list[Instance]:
        return [i for i in self.instances if i.lifecycle_state == "InService"]


@dataclass(frozen=True)
class Refresh:
    refresh_id: str
    status: str
    reason: str
    percent_complete: int
    instances_to_update: int
    preferences: Mapping[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def describe(self) -> str:
        text = f"refresh {self.refresh_id[:8]} {self.status} {self.percent_complete}%"
        if self.active:
            text += f", {self.instances_to_update} instance(s) to update"
        return f"{text}: {self.reason}" if self.reason else text


def _group(raw: Mapping[str, Any]) -> Group:
    mixed = raw.get("MixedInstancesPolicy")
    spec = (
        mixed["LaunchTemplate"]["LaunchTemplateSpecification"]
        if mixed
        else raw.get("LaunchTemplate")
    )
    if not spec or not spec.get("Version"):
        raise AwsCallError(
            f"Auto Scaling group {raw['AutoScalingGroupName']} has no launch template version "
            "(not a group this program made?)",
            changed=False,
        )
    return Group(
        name=raw["AutoScalingGroupName"],
        min_size=int(raw["MinSize"]),
        launch_template_id=spec["LaunchTemplateId"],
        configured_version=str(spec["Version"]),
        mixed_instances_policy=mixed,
        target_group_arns=tuple(raw.get("TargetGroupARNs") or ()),
        instances=tuple(
            Instance(
                instance_id=i["InstanceId"],
                lifecycle_state=i["LifecycleState"],
                health_status=i["HealthStatus"],
                version=(i.get("LaunchTemplate") or {}).get("Version"),
            )
            for i in raw.get("Instances") or ()
        ),
    )


def _refresh(raw: Mapping[str, Any]) -> Refresh:
    return Refresh(
        refresh_id=raw["InstanceRefreshId"],
        status=raw["Status"],
        reason=raw.get("StatusReason", ""),
        percent_complete=int(raw.get("PercentageComplete", 0)),
        instances_to_update=int(raw.get("InstancesToUpdate", 0)),
        preferences=raw.get("Preferences") or {},
    )


def _aws_error(error: Exception, operation: str) -> AwsCallError:
    """One line a person can act on, for any failure of an AWS call."""
    import botocore.exceptions

    if isinstance(
        error, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        message = (
            "no AWS credentials: set AWS_PROFILE (or run `aws configure sso`), or run after the "
            "workflow's OIDC step (aws-actions/configure-aws-credentials)"
        )
    elif isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        message = (
            f"AWS refused {operation}: {details.get('Code', '?')}: {details.get('Message', '')}"
        ).rstrip(": ")
    else:
        message = f"{operation} failed: {error}"
    return AwsCallError(message, changed=False)


class AutoScalingFleet:
    """The AWS calls, over boto3 clients (autoscaling, elbv2) for the group's region."""

    def __init__(self, autoscaling: Any, elbv2: Any, group_name: str) -> None:
        self._autoscaling = autoscaling
        self._elbv2 = elbv2
        self.group_name = group_name

    def _call(self, client: Any, operation: str, **params: Any) -> Any:
        import botocore.exceptions

        try:
            return getattr(client, operation)(**params)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            name = client.meta.method_to_api_mapping.get(operation, operation)
            raise _aws_error(error, name) from error

    def group(self) -> Group:
        found = self._call(
            self._autoscaling,
            "describe_auto_scaling_groups",
            AutoScalingGroupNames=[self.group_name],
        )["AutoScalingGroups"]
        if not found:
            raise AwsCallError(
                f"no Auto Scaling group {self.group_name!r} in this region (stack output asgName)",
                changed=False,
            )
        return _group(found[0])

    def latest_refresh(self) -> Refresh | None:
        refreshes = self._call(
            self._autoscaling,
            "describe_instance_refreshes",
            AutoScalingGroupName=self.group_name,
            MaxRecords=10,
        )["InstanceRefreshes"]
        if not refreshes:
            return None
        return _refresh(max(refreshes, key=lambda r: r["StartTime"]))

    def refresh(self, refresh_id: str) -> Refresh:
        found = self._call(
            self._autoscaling,
            "describe_instance_refreshes",
            AutoScalingGroupName=self.group_name,
            InstanceRefreshIds=[refresh_id],
        )["InstanceRefreshes"]
        return _refresh(found[0])

    def target_health(self, target_group_arn: str) -> dict[str, str]:
        """Instance id -> target state ('healthy', 'initial', 'unhealthy', 'draining', ...)."""
        described = self._call(
            self._elbv2, "describe_target_health", TargetGroupArn=target_group_arn
        )
        return {
            d["Target"]["Id"]: d["TargetHealth"]["State"]
            for d in described["TargetHealthDescriptions"]
        }

    def cancel_refresh(self) -> None:
        self._call(
            self._autoscaling, "cancel_instance_refresh", AutoScalingGroupName=self.group_name
        )

    def _launch_configuration(self, group: Group, version: str) -> dict[str, Any]:
        """The group's launch settings with the template at ``version``."""
        template = {"LaunchTemplateId": group.launch_template_id, "Version": version}
        if group.mixed_instances_policy is None:
            return {"LaunchTemplate": template}
        policy = group.mixed_instances_policy
        launch = {
            # Only the id: UpdateAutoScalingGroup refuses a spec naming both id and name.
            "LaunchTemplateSpecification": template,
            "Overrides": list(policy["LaunchTemplate"].get("Overrides") or ()),
        }
        mixed: dict[str, Any] = {"LaunchTemplate": launch}
        if policy.get("InstancesDistribution"):
            mixed["InstancesDistribution"] = dict(policy["InstancesDistribution"])
        return {"MixedInstancesPolicy": mixed}

    def point_group_at(self, group: Group, version: str) -> None:
        self._call(
            self._autoscaling,
            "update_auto_scaling_group",
            AutoScalingGroupName=self.group_name,
            **self._launch_configuration(group, version),
        )

    def start_refresh(self, group: Group, version: str, preferences: Mapping[str, Any]) -> str:
        kept = {key: preferences[key] for key in KEPT_PREFERENCES if key in preferences}
        response = self._call(
            self._autoscaling,
            "start_instance_refresh",
            AutoScalingGroupName=self.group_name,
            Strategy="Rolling",
            DesiredConfiguration=self._launch_configuration(group, version),
            Preferences={**kept, "SkipMatching": True, "AutoRollback": False},
        )
        return str(response["InstanceRefreshId"])


# ---------------------------------------------------------------------------------------
# The health path, as a client on the internet sees it
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str


def probe_health(url: str, timeout_seconds: float = 10.0) -> Probe:
    """GET url once. urllib (standard library): one GET needs no client library."""
    request = urllib.request.Request(url, headers={"User-Agent": "pyscale-deploy-wait"})  # noqa: S310 - the stack's own http(s) URL
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310
            return Probe(response.status == 200, f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        return Probe(False, f"HTTP {error.code}")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Probe(False, f"no answer ({reason})")


# ---------------------------------------------------------------------------------------
# The procedure
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    problems: tuple[str, ...]
    stale_instances: int

    @property
    def ok(self) -> bool:
        return not self.problems


def previous_version(group: Group, desired: str) -> str | None:
    """The version most in-service instances run that is not ``desired`` (None if all do)."""
    versions = Counter(i.version for i in group.in_service() if i.version and i.version != desired)
    return versions.most_common(1)[0][0] if versions else None


class DeployWait:
    def __init__(
        self,
        fleet: AutoScalingFleet,
        *,
        report: Reporter,
        settings: WaitSettings,
        clock: Clock | None = None,
        probe: Callable[[str], Probe] = probe_health,
    ) -> None:
        self._fleet = fleet
        self._report = report
        self._settings = settings
        self._clock = clock or Clock()
        self._probe = probe
        self._changed = False
        self._url = ""

    # -- public ---------------------------------------------------------------------------
    def run(self, target: DeployTarget) -> Result:
        try:
            return self._run(target)
        except AwsCallError as error:
            if error.changed or self._changed:
                return Result(Outcome.NEEDS_HUMAN, f"{error} (during the rollback)")
            return Result(Outcome.BAD_INPUT, str(error))

    # -- steps ----------------------------------------------------------------------------
    def _run(self, target: DeployTarget) -> Result:
        settings, report = self._settings, self._report
        self._url = target.url
        group = self._fleet.group()
        desired = target.launch_template_version or group.configured_version
        if group.configured_version != desired:
            return Result(
                Outcome.NEEDS_HUMAN,
                f"the group is configured with launch template version "
                f"{group.configured_version}, the stack with {desired}: an earlier "
                "`pyscale deploy wait` rolled it back. Deploy a fix (a new release makes a new "
                "version), or `pulumi up --refresh` to retry this one.",
            )
        refresh = self._fleet.latest_refresh()
        changing = refresh is not None and refresh.active
        previous = settings.previous_version or previous_version(group, desired)
        if previous is None and changing and int(desired) > 1:
            # Every instance already runs the new version (the refresh is about to finish):
            # the version before it is the best guess left.
            previous = str(int(desired) - 1)
        report.event(
            f"group {group.name}: launch template version {desired}"
            + (f", rolling back to {previous} on failure" if previous else "")
            + ("" if changing else "; no instance refresh in progress")
        )
        deadline = self._clock.now() + settings.timeout_seconds
        if changing and refresh is not None:
            final = self._follow(refresh.refresh_id, deadline)
            if final is None:
                return self._fail(
                    f"the instance refresh did not finish within {settings.timeout_seconds:.0f} s",
                    previous,
                )
            if final.status != SUCCESSFUL:
                return self._fail(
                    f"the instance refresh ended {final.status}: {final.reason or 'no reason'}",
                    previous,
                    final,
                )
        check = self._verify_until(desired, deadline)
        if check.ok:
            return Result(Outcome.VERIFIED, self._verified(desired))
        reason = "; ".join(check.problems)
        if not changing and previous is None:
            return Result(
                Outcome.NEEDS_HUMAN,
                f"{reason}. This deploy started no instance refresh, so rolling the fleet "
                "back would not help.",
            )
        return self._fail(reason, previous)

    def _follow(self, refresh_id: str, deadline: float) -> Refresh | None:
        """The refresh once it has ended, or None when the deadline passed first."""
        shown = ""
        while True:
            refresh = self._fleet.refresh(refresh_id)
            if refresh.describe() != shown:
                shown = refresh.describe()
                self._report.event(shown)
            if not refresh.active:
                return refresh
            if self._clock.now() >= deadline:
                return None
            self._report.status(f"waiting: {shown}")
            self._clock.sleep(self._settings.poll_seconds)

    def _check(self, desired: str) -> Check:
        group = self._fleet.group()
        need = max(group.min_size, 1)
        in_service = group.in_service()
        stale = [i for i in in_service if i.version != desired]
        current = {i.instance_id for i in in_service if i.version == desired}
        problems = []
        if stale:
            versions = ", ".join(sorted({i.version or "?" for i in stale}))
            problems.append(
                f"{len(stale)} in-service instance(s) still run launch template version(s) "
                f"{versions}"
            )
        if not group.target_group_arns:
            problems.append("the group is attached to no target group")
        for arn in group.target_group_arns:
            health = self._fleet.target_health(arn)
            healthy = sum(1 for i, state in health.items() if i in current and state == "healthy")
            if healthy < need:
                problems.append(
                    f"target group {arn.rsplit(':', 1)[-1]} has {healthy} healthy target(s) on "
                    f"version {desired}, needs at least {need} (the group's minimum)"
                )
        probe = self._probe(self._url + HEALTH_PATH)
        if not probe.ok:
            problems.append(f"{self._url}{HEALTH_PATH} answered {probe.detail}")
        return Check(problems=tuple(problems), stale_instances=len(stale))

    def _verify_until(self, desired: str, deadline: float) -> Check:
        """Check until healthy or the deadline; stops early when instances run another
        version and no refresh is left that could change them."""
        while True:
            check = self._check(desired)
            if check.ok or self._clock.now() >= deadline:
                return check
            if check.stale_instances:
                latest = self._fleet.latest_refresh()
                if latest is None or not latest.active:
                    return check
            self._report.status("verifying: " + "; ".join(check.problems))
            self._clock.sleep(self._settings.poll_seconds)

    def _verified(self, version: str) -> str:
        return f"launch template version {version} serves {self._url}{HEALTH_PATH} with 200"

    # -- rollback -------------------------------------------------------------------------
    def _fail(self, reason: str, previous: str | None, refresh: Refresh | None = None) -> Result:
        self._report.event(f"deploy failed: {reason}")
        if previous is None:
            return Result(
                Outcome.NEEDS_HUMAN,
                f"{reason}; there is no earlier launch template version to roll back to "
                "(pass --previous-version to name one)",
            )
        rolled_back = self._roll_back(previous, refresh)
        if rolled_back.ok:
            return Result(
                Outcome.ROLLED_BACK,
                f"{reason}. Rolled back: {self._verified(previous)}",
            )
        return Result(
            Outcome.NEEDS_HUMAN,
            f"{reason}. The rollback to version {previous} failed too: "
            + "; ".join(rolled_back.problems),
        )

    def _roll_back(self, previous: str, failed: Refresh | None) -> Check:
        settings, fleet, report = self._settings, self._fleet, self._report
        deadline = self._clock.now() + settings.rollback_timeout_seconds
        latest = fleet.latest_refresh()
        # The pace the deploy's refresh had (None: AWS's defaults).
        paced = failed or latest
        preferences = paced.preferences if paced is not None else {}
        self._changed = True
        if latest is not None and latest.active:
            report.event(f"cancelling {latest.describe()}")
            fleet.cancel_refresh()
            if self._follow(latest.refresh_id, deadline) is None:
                return Check(("the failed refresh did not finish cancelling",), 0)
        group = fleet.group()
        fleet.point_group_at(group, previous)
        report.event(f"group {group.name} now launches version {previous}")
        refresh_id = fleet.start_refresh(group, previous, preferences)
        report.event(f"rollback refresh {refresh_id[:8]} started (instances on {previous} stay)")
        final = self._follow(refresh_id, deadline)
        if final is None:
            return Check(
                (f"it did not finish within {settings.rollback_timeout_seconds:.0f} s",), 0
            )
        if final.status != SUCCESSFUL:
            return Check((f"it ended {final.status}: {final.reason or 'no reason'}",), 0)
        return self._verify_until(previous, deadline)
