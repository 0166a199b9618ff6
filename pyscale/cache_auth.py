"""Rotating a stack's ElastiCache AUTH token without dropping a request (auth-token mode).

Stacks whose engine has IAM authentication (Valkey 7.2+, Redis 7+) have no token to rotate;
this is for the others. The app reads the token from Secrets Manager once, when gunicorn
starts, so a new token reaches the fleet only through new instances. The order keeps every
instance able to authenticate at every moment:

1. **stage**: a new random token is stored as the secret's ``AWSPENDING`` version;
2. **rotate**: ``ModifyReplicationGroup(AuthTokenUpdateStrategy=ROTATE)``: the cache now
   accepts the old *and* the new token; the ``AWSPENDING`` version becomes ``AWSCURRENT``,
   so every instance launched from here on starts with the new token;
3. **roll**: an instance refresh replaces every instance (same launch template; each new
   one fetches the new token), and must end ``Successful``;
4. **set**: ``ModifyReplicationGroup(AuthTokenUpdateStrategy=SET)``: only the new token is
   accepted; the ``AWSPENDING`` label is removed, which marks the rotation finished.

A run that stops part way (a failed refresh, an interrupt) leaves the cache accepting both
tokens, which is safe; running the command again resumes from the step it reached, using
the staged token (still labelled ``AWSPENDING``) rather than making another.

ElastiCache's strategies (API reference, ModifyReplicationGroup AuthTokenUpdateStrategy):
ROTATE is the default, SET is allowed only after ROTATE, DELETE only when moving to RBAC.
The operator needs elasticache:DescribeReplicationGroups and ModifyReplicationGroup,
secretsmanager:DescribeSecret, GetSecretValue, PutSecretValue and UpdateSecretVersionStage,
autoscaling:StartInstanceRefresh and DescribeInstanceRefreshes.
"""

from __future__ import annotations

import json
import secrets
import shutil
import string
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_autoscaling.type_defs import RefreshPreferencesTypeDef
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_elasticache.literals import AuthTokenUpdateStrategyTypeType
    from mypy_boto3_elasticache.type_defs import ReplicationGroupTypeDef
    from mypy_boto3_secretsmanager import SecretsManagerClient

PENDING: Final = "AWSPENDING"
CURRENT: Final = "AWSCURRENT"
# The program's own tokens are 64 letters and digits (infra/cache.py): safe in a URL and a
# shell, and inside ElastiCache's 16-128 printable characters.
TOKEN_LENGTH: Final = 64
TOKEN_ALPHABET: Final = string.ascii_letters + string.digits
# Instance refresh states after which nothing more will happen.
REFRESH_DONE: Final = frozenset(
    {"Successful", "Failed", "Cancelled", "RollbackFailed", "RollbackSuccessful"}
)
DEFAULT_POLL_SECONDS: Final = 15.0
# ElastiCache modifications of a multi-shard group take minutes; give them half an hour.
CACHE_WAIT_SECONDS: Final = 1800
REFRESH_WAIT_SECONDS: Final = 7200


class RotationError(RuntimeError):
    """The rotation cannot go on; the message says where it stopped and what is safe."""


@dataclass(frozen=True)
class RotationTarget:
    replication_group_id: str
    secret_arn: str
    asg_name: str


@dataclass(frozen=True)
class RollPreferences:
    """The instance refresh's rolling shape (the stack's refreshMinHealthyPercent)."""

    min_healthy_percent: int = 90
    instance_warmup_seconds: int | None = None


# The stack outputs (infra/__main__.py) that name what a rotation touches.
OUTPUT_KEYS: Final = {
    "replication_group_id": "cacheReplicationGroupId",
    "secret_arn": "cacheAuthSecretArn",
    "asg_name": "asgName",
}


def stack_outputs(stack: str, cwd: str) -> dict[str, Any]:
    """``pulumi stack output --json`` of the deployed stack (the user's Pulumi CLI)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise RotationError(
            "the pulumi CLI is not on PATH: pass --replication-group, --secret-arn and --asg"
        )
    result = subprocess.run(
        [pulumi, "stack", "output", "--json", "--stack", stack],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise RotationError(f"`pulumi stack output --stack {stack}` failed: {last_line}")
    outputs: dict[str, Any] = json.loads(result.stdout)
    return outputs


def resolve_target(outputs: dict[str, Any], **given: str | None) -> RotationTarget:
    """Explicit values win; the rest come from the stack outputs, or the error names them."""
    values: dict[str, str] = {}
    missing = []
    for field, output in OUTPUT_KEYS.items():
        value = given.get(field) or outputs.get(output)
        if isinstance(value, str) and value:
            values[field] = value
        else:
            missing.append(output)
    if missing:
        raise RotationError(
            f"the stack has no output {', '.join(missing)} (a stack without an AUTH token, or "
            "not deployed yet): pass --replication-group, --secret-arn and --asg"
        )
    return RotationTarget(**values)


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


class AuthTokenRotation:
    """The rotation over boto3 clients (elasticache, secretsmanager, autoscaling).

    ``report`` receives one line per step; ``sleep`` paces the polling (tests pass a no-op).
    """

    def __init__(
        self,
        target: RotationTarget,
        *,
        elasticache: ElastiCacheClient,
        secretsmanager: SecretsManagerClient,
        autoscaling: AutoScalingClient,
        roll: RollPreferences = RollPreferences(),
        report: Callable[[str], None] = print,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.elasticache = elasticache
        self.secretsmanager = secretsmanager
        self.autoscaling = autoscaling
        self.roll = roll
        self.report = report
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    # -- the steps ------------------------------------------------------------------------
    def run(self) -> None:
        self._check_cache_uses_a_token()
        stages = self._version_stages()
        pending = _version_with(stages, PENDING)
        if pending is None:
            token = new_token()
            pending = self._stage(token)
        else:
            self.report(f"resuming: the secret has a staged token (version {pending})")
            token = self.secretsmanager.get_secret_value(
                SecretId=self.target.secret_arn, VersionId=pending
            )["SecretString"]
        if CURRENT not in stages.get(pending, []):
            self._modify_cache(token, "ROTATE")
            self._promote(pending, current=_version_with(stages, CURRENT))
        else:
            self.report("the cache already accepts the staged token (rotated before)")
        self._roll_fleet()
        self._modify_cache(token, "SET")
        self.secretsmanager.update_secret_version_stage(
            SecretId=self.target.secret_arn, VersionStage=PENDING, RemoveFromVersionId=pending
        )
        self.report("done: the cache accepts only the new token; every instance uses it")

    def _check_cache_uses_a_token(self) -> None:
        group = self._replication_group()
        if not group.get("AuthTokenEnabled"):
            raise RotationError(
                f"replication group {self.target.replication_group_id} has no AUTH token "
                "(IAM authentication or none): there is nothing to rotate"
            )
        if group.get("Status") != "available":
            raise RotationError(
                f"replication group {self.target.replication_group_id} is "
                f"{group.get('Status')!r}, not 'available': try again when it is"
            )

    def _stage(self, token: str) -> str:
        version = str(uuid.uuid4())
        self.secretsmanager.put_secret_value(
            SecretId=self.target.secret_arn,
            ClientRequestToken=version,
            SecretString=token,
            VersionStages=[PENDING],
        )
        self.report(f"staged a new token as {PENDING} (version {version})")
        return version

    def _promote(self, pending: str, current: str | None) -> None:
        move: dict[str, str] = {"MoveToVersionId": pending}
        if current is not None:
            move["RemoveFromVersionId"] = current
        self.secretsmanager.update_secret_version_stage(
            SecretId=self.target.secret_arn, VersionStage=CURRENT, **move
        )
        self.report("the secret's current version is the new token: new instances use it")

    def _modify_cache(self, token: str, strategy: AuthTokenUpdateStrategyTypeType) -> None:
        group_id = self.target.replication_group_id
        before = self._replication_group().get("AuthTokenLastModifiedDate")
        changed = True
        try:
            self.elasticache.modify_replication_group(
                ReplicationGroupId=group_id,
                AuthToken=token,
                AuthTokenUpdateStrategy=strategy,
                ApplyImmediately=True,
            )
        except ClientError as error:
            # What AWS answers when the group already has exactly this change (a resumed
            # run); terraform-provider-aws treats it the same way.
            if "No modifications were requested" not in str(error):
                raise RotationError(f"{strategy} failed: {_aws_message(error)}") from None
            changed = False
        self._wait_for_token_change(strategy, before if changed else None)
        accepted = "old and new tokens" if strategy == "ROTATE" else "only the new token"
        self.report(f"{strategy}: the cache accepts {accepted}")

    def _wait_for_token_change(self, strategy: str, modified_before: Any) -> None:
        """Until the group is available with no token change pending and, when we changed
        it, a new AuthTokenLastModifiedDate: a bare "available" read right after the call
        could predate the modification, and the next step relies on it being applied."""
        deadline = time.monotonic() + CACHE_WAIT_SECONDS
        while True:
            group = self._replication_group()
            pending = (group.get("PendingModifiedValues") or {}).get("AuthTokenStatus")
            applied = modified_before is None or (
                group.get("AuthTokenLastModifiedDate") != modified_before
            )
            if group.get("Status") == "available" and not pending and applied:
                return
            if time.monotonic() >= deadline:
                raise RotationError(
                    f"{strategy}: replication group {self.target.replication_group_id} is "
                    f"still {group.get('Status')!r} (token change {pending or 'not applied'}) "
                    f"after {CACHE_WAIT_SECONDS // 60} minutes; run the command again to resume "
                    "(every instance keeps a token the cache accepts)"
                )
            self.sleep(self.poll_seconds)

    def _roll_fleet(self) -> None:
        preferences: RefreshPreferencesTypeDef = {
            "MinHealthyPercentage": self.roll.min_healthy_percent,
            # Launch each replacement before terminating: capacity never dips below min.
            "MaxHealthyPercentage": min(200, self.roll.min_healthy_percent + 100),
            # Same launch template: every instance must still be replaced.
            "SkipMatching": False,
        }
        if self.roll.instance_warmup_seconds is not None:
            preferences["InstanceWarmup"] = self.roll.instance_warmup_seconds
        try:
            refresh_id = self.autoscaling.start_instance_refresh(
                AutoScalingGroupName=self.target.asg_name,
                Strategy="Rolling",
                Preferences=preferences,
            )["InstanceRefreshId"]
        except ClientError as error:
            raise RotationError(
                f"could not start the instance refresh of {self.target.asg_name}: "
                f"{_aws_message(error)}; the cache accepts both tokens, so this is safe: "
                "run the command again once the group can refresh"
            ) from None
        self.report(f"rolling the fleet: instance refresh {refresh_id}")
        status = self._wait_for_refresh(refresh_id)
        if status != "Successful":
            raise RotationError(
                f"instance refresh {refresh_id} ended {status}: some instances may still use "
                "the old token, which the cache still accepts; fix the fleet and run the "
                "command again to resume (it reuses the staged token)"
            )

    def _wait_for_refresh(self, refresh_id: str) -> str:
        deadline = time.monotonic() + REFRESH_WAIT_SECONDS
        last = None
        while True:
            refresh = self.autoscaling.describe_instance_refreshes(
                AutoScalingGroupName=self.target.asg_name, InstanceRefreshIds=[refresh_id]
            )["InstanceRefreshes"][0]
            status = refresh["Status"]
            if status in REFRESH_DONE:
                return status
            progress = f"{status} {refresh.get('PercentageComplete', 0)}%"
            if progress != last:
                self.report(f"  instance refresh: {progress}")
                last = progress
            if time.monotonic() >= deadline:
                return f"still {status} after {REFRESH_WAIT_SECONDS // 60} minutes"
            self.sleep(self.poll_seconds)

    # -- reading ----------------------------------------------------------------------------
    def _replication_group(self) -> ReplicationGroupTypeDef:
        try:
            groups = self.elasticache.describe_replication_groups(
                ReplicationGroupId=self.target.replication_group_id
            )["ReplicationGroups"]
        except ClientError as error:
            raise RotationError(_aws_message(error)) from None
        return groups[0]

    def _version_stages(self) -> dict[str, list[str]]:
        try:
            secret = self.secretsmanager.describe_secret(SecretId=self.target.secret_arn)
        except ClientError as error:
            raise RotationError(_aws_message(error)) from None
        return secret.get("VersionIdsToStages", {})


def _version_with(stages: dict[str, list[str]], stage: str) -> str | None:
    return next((version for version, labels in stages.items() if stage in labels), None)


def _aws_message(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'error')}: {details.get('Message', error)}"
