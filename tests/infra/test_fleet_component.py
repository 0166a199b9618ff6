"""The Fleet component on its own, under the offline AWS mocks: what the whole-program runs
cannot show, such as the resource options the engine receives."""

from __future__ import annotations

import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from infra.cache import CacheConnection
from infra.fleet import Fleet, FleetArgs, refresh_max_healthy_percent
from infra.release import ReleaseObject
from infra.settings import load_settings
from pyscale import stacks
from pyscale.offline.mocks import ACCOUNT_ID, AwsMocks


class OptionsRecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, keeping each registration's inputs and ignoreChanges."""

    def __init__(self, mocks: AwsMocks) -> None:
        super().__init__(mocks)
        self.ignore_changes: dict[str, list[str]] = {}
        self.inputs: dict[str, dict] = {}

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method name
        self.ignore_changes[request.name] = list(request.ignoreChanges)
        self.inputs[request.name] = dict(rpc.deserialize_properties(request.object))
        return super().RegisterResource(request)


def run_component(build) -> OptionsRecordingMonitor:
    mocks = AwsMocks("us-east-1", ACCOUNT_ID, "pyscale", "component")
    monitor = OptionsRecordingMonitor(mocks)
    pulumi_settings.ROOT.set(None)
    pulumi_mocks.set_mocks(mocks, project="pyscale", stack="component", monitor=monitor)
    pulumi_settings.ROOT.set(None)
    try:
        _sync_await(run_in_stack(build))
    finally:
        pulumi_settings.ROOT.set(None)
    return monitor


def fleet_args() -> FleetArgs:
    settings = load_settings(stacks.engine_config("dev"), "dev")
    return FleetArgs(
        settings=settings.fleet,
        region="us-east-1",
        log_retention_days=settings.monitoring.log_retention_days,
        private_subnet_ids=["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
        security_group_id="sg-0123456789abcdef0",
        target_group_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app/0123",
        target_group_arn_suffix="targetgroup/app/0123",
        load_balancer_arn_suffix="app/alb/4567",
        metrics_namespace="pyscale/unit",
        key_arn=None,
        release=ReleaseObject(
            bucket_name="releases-bucket",
            object_key="releases/" + "a" * 64 + ".tar",
            releases_arn="arn:aws:s3:::releases-bucket/releases/*",
            version_id="v1",
            sha256="a" * 64,
            app_version="r-aaaaaaaaaaaa",
            wsgi_module="app.wsgi:app",
        ),
        cache=CacheConnection(
            endpoint="master.cache.example",
            port=6379,
            tls=True,
            cluster_mode=False,
            auth_secret_arn=None,
            ttl_seconds=300,
        ),
        forwarded_allow_ips="10.0.0.0/16",
        trusted_hosts=[],
    )


def test_scaling_owns_the_running_capacity_so_desired_capacity_drift_is_ignored():
    monitor = run_component(lambda: Fleet("unit", fleet_args()))

    assert monitor.ignore_changes["unit-asg"] == ["desiredCapacity"]
    assert all(
        not ignored for name, ignored in monitor.ignore_changes.items() if name != "unit-asg"
    )


def test_without_an_auth_secret_the_role_reads_only_the_release():
    monitor = run_component(lambda: Fleet("unit", fleet_args()))
    policy = monitor.inputs["unit-app-access"]

    assert "secretsmanager" not in policy["policy"]
    assert "arn:aws:s3:::releases-bucket/releases/*" in policy["policy"]


@pytest.mark.parametrize(("min_healthy", "max_healthy"), [(90, 190), (100, 200), (0, 100)])
def test_refresh_launches_before_terminating_within_awss_bounds(min_healthy, max_healthy):
    assert refresh_max_healthy_percent(min_healthy) == max_healthy


def test_the_ami_id_is_public_in_previews_and_a_stack_can_pin_one():
    from pyscale.offline import is_secret, run_stack

    # GIVEN the AMI looked up from AWS's public parameter (whose `value` is a secret output)
    latest = run_stack("dev").one("aws:ec2/launchTemplate:LaunchTemplate").inputs["imageId"]
    # THEN the template's image id is in clear, so a preview shows an AMI roll
    assert not is_secret(latest)
    assert latest.startswith("ami-")

    # AND with amiId the stack keeps its AMI whatever AWS publishes, and looks nothing up
    pinned = run_stack("dev", {"amiId": "ami-0123456789abcdef0"})
    assert pinned.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["imageId"] == (
        "ami-0123456789abcdef0"
    )
    assert not [token for token, _ in pinned.data_source_calls if token.startswith("aws:ssm/")]
