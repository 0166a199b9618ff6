"""The app fleet, as the real program registers it for every stack file (run through the
offline engine-faithful runner): launch template, Auto Scaling group, scaling, instance
role — and what a change of instance type or of the app does between two runs."""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import shutil
import uuid
from pathlib import Path

import pytest

from app.contract import PORT_BEHIND_PROXY
from infra import boot
from infra.fleet import AL2023_AMI_PARAMETERS, GROUP_METRICS, LAUNCH_HOOK_TIMEOUT_SECONDS
from infra.release import RELEASES_PREFIX
from infra.settings import ConfigError, load_settings
from pyscale import stacks
from pyscale.offline import ProgramError, ProgramRun, run_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASE_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
POLICY = "aws:autoscaling/policy:Policy"
SUBNET = "aws:ec2/subnet:Subnet"
SSM_PARAMETER = "aws:ssm/getParameter:getParameter"


def settings_of(run: ProgramRun):
    return load_settings(run.config, run.stack)


def user_data_of(run: ProgramRun) -> str:
    return base64.b64decode(run.one(LAUNCH_TEMPLATE).inputs["userData"]).decode()


def inputs_by_urn(run: ProgramRun) -> dict[str, dict]:
    return {r.urn: r.inputs for r in run.resources}


def changed_resources(before: ProgramRun, after: ProgramRun) -> set[str]:
    """Types of the resources whose inputs differ (both runs must register the same URNs)."""
    old, new = inputs_by_urn(before), inputs_by_urn(after)
    assert old.keys() == new.keys()
    types = {r.urn: r.type for r in after.resources}
    return {types[urn] for urn in new if _comparable(new[urn]) != _comparable(old[urn])}


def _comparable(inputs: dict) -> str:
    # Assets compare by their file (its name carries the content hash), not object identity.
    return json.dumps(inputs, sort_keys=True, default=lambda value: getattr(value, "path", None))


# ---------------------------------------------------------------------------------------
# Launch template
# ---------------------------------------------------------------------------------------
def test_instances_run_only_in_private_subnets_without_a_public_ip_or_ssh_key(each_stack_run):
    private = {
        r.id
        for r in each_stack_run.of_type(SUBNET)
        if r.inputs["tags"]["pyscale:tier"] == "private"
    }
    template = each_stack_run.one(LAUNCH_TEMPLATE).inputs
    [interface] = template["networkInterfaces"]

    assert set(each_stack_run.one(ASG).inputs["vpcZoneIdentifiers"]) == private
    assert len(private) == settings_of(each_stack_run).network.availability_zones
    assert interface["associatePublicIpAddress"] == "false"
    assert "keyName" not in template


def test_instance_metadata_requires_imdsv2_tokens_with_hop_limit_one(each_stack_run):
    metadata = each_stack_run.one(LAUNCH_TEMPLATE).inputs["metadataOptions"]

    assert metadata["httpTokens"] == "required"
    assert metadata["httpPutResponseHopLimit"] == 1


def test_root_volume_is_encrypted_gp3_of_the_configured_size(each_stack_run):
    [root] = each_stack_run.one(LAUNCH_TEMPLATE).inputs["blockDeviceMappings"]

    assert root["deviceName"] == "/dev/xvda"
    assert root["ebs"]["encrypted"] == "true"
    assert root["ebs"]["volumeType"] == "gp3"
    assert root["ebs"]["volumeSize"] == settings_of(each_stack_run).fleet.root_volume_size_gb


def test_ami_is_al2023_for_the_instance_types_architecture(each_stack_run):
    fleet = settings_of(each_stack_run).fleet
    lookups = [args for token, args in each_stack_run.data_source_calls if token == SSM_PARAMETER]
    template = each_stack_run.one(LAUNCH_TEMPLATE).inputs

    assert [args["name"] for args in lookups] == [AL2023_AMI_PARAMETERS[fleet.architecture]]
    assert template["imageId"].startswith("ami-")
    assert template["instanceType"] == fleet.instance_type


def test_instances_use_the_fleets_security_group_which_only_the_alb_reaches(each_stack_run):
    [interface] = each_stack_run.one(LAUNCH_TEMPLATE).inputs["networkInterfaces"]
    fleet_group = next(
        r
        for r in each_stack_run.of_type("aws:ec2/securityGroup:SecurityGroup")
        if r.name.endswith("-fleet")
    )

    assert interface["securityGroups"] == [fleet_group.id]


# ---------------------------------------------------------------------------------------
# Auto Scaling group
# ---------------------------------------------------------------------------------------
def test_group_sizes_and_elb_health_checks_follow_the_stack(each_stack_run):
    fleet = settings_of(each_stack_run).fleet
    group = each_stack_run.one(ASG).inputs
    target_group = each_stack_run.one("aws:lb/targetGroup:TargetGroup")

    assert (group["minSize"], group["desiredCapacity"], group["maxSize"]) == (
        fleet.min_size,
        fleet.desired_capacity,
        fleet.max_size,
    )
    assert group["healthCheckType"] == "ELB"
    assert group["healthCheckGracePeriod"] == fleet.health_check_grace_seconds
    assert group["targetGroupArns"] == [target_group.outputs["arn"]]
    assert set(group["enabledMetrics"]) == set(GROUP_METRICS)


def test_instance_refresh_follows_the_launch_template_version_never_latest(each_stack_run):
    template = each_stack_run.one(LAUNCH_TEMPLATE)
    group = each_stack_run.one(ASG).inputs
    refresh = group["instanceRefresh"]
    fleet = settings_of(each_stack_run).fleet

    assert group["launchTemplate"]["id"] == template.id
    assert group["launchTemplate"]["version"] == str(int(template.outputs["latestVersion"]))
    assert "$" not in json.dumps(group["launchTemplate"])
    assert refresh["strategy"] == "Rolling"
    assert refresh["preferences"]["minHealthyPercentage"] == fleet.refresh_min_healthy_percent
    # Launch before terminate: capacity never dips during a size change or a release.
    assert refresh["preferences"]["maxHealthyPercentage"] > 100


def test_awss_refresh_rollback_is_off_because_it_would_return_to_the_new_version(
    each_stack_run,
):
    # The provider points the group at the new version before StartInstanceRefresh
    # (terraform-provider-aws#34189): `pyscale deploy wait` rolls back instead.
    preferences = each_stack_run.one(ASG).inputs["instanceRefresh"]["preferences"]
    assert preferences["autoRollback"] is False


def test_a_release_that_answers_5xx_or_fails_health_checks_fails_its_own_refresh(
    each_stack_run,
):
    preferences = each_stack_run.one(ASG).inputs["instanceRefresh"]["preferences"]
    alarms = {
        a.inputs["name"] for a in each_stack_run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    name = f"{each_stack_run.project}-{each_stack_run.stack}"

    assert preferences["alarmSpecification"]["alarms"] == [
        f"{name}-alb-5xx-rate",
        f"{name}-unhealthy-hosts",
    ]
    assert set(preferences["alarmSpecification"]["alarms"]) <= alarms


def test_no_instance_serves_before_its_boot_completed_the_launch_hook(each_stack_run):
    hooks = each_stack_run.one(ASG).inputs["initialLifecycleHooks"]

    # On the group itself: the provider creates the group at size 0, adds the hook, then
    # sizes it, so even the first instances and the warm pool's first fill wait for it.
    assert hooks == [
        {
            "name": boot.LAUNCH_HOOK_NAME,
            "lifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "defaultResult": "ABANDON",
            "heartbeatTimeout": float(LAUNCH_HOOK_TIMEOUT_SECONDS),
        }
    ]
    assert not each_stack_run.of_type("aws:autoscaling/lifecycleHook:LifecycleHook")


def test_scaling_owns_the_running_capacity_so_a_redeploy_ignores_desired_capacity_drift(
    each_stack_run,
):
    # GIVEN a stack run through the real entry point
    # WHEN the engine receives the group's registration
    group = each_stack_run.one(ASG)

    # THEN it is told to ignore drift on desiredCapacity (and only on that): a re-deploy
    # after target tracking scaled out must not reset the group to its starting size
    assert group.options.ignore_changes == ("desiredCapacity",)
    # ... while the launch template and target group stay real dependencies
    assert each_stack_run.one(LAUNCH_TEMPLATE).urn in group.options.dependencies


def test_prod_keeps_at_least_ninety_percent_healthy_while_it_refreshes(shipped_run):
    refresh = shipped_run("prod").one(ASG).inputs["instanceRefresh"]

    assert refresh["preferences"]["minHealthyPercentage"] >= 90


def test_cpu_and_requests_per_target_tracking_policies_with_their_targets(each_stack_run):
    fleet = settings_of(each_stack_run).fleet
    alb = each_stack_run.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    target_group = each_stack_run.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    group_name = each_stack_run.one(ASG).outputs["name"]
    policies = {
        p.inputs["targetTrackingConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]: p.inputs
        for p in each_stack_run.of_type(POLICY)
    }

    assert set(policies) == {"ASGAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert all(p["policyType"] == "TargetTrackingScaling" for p in policies.values())
    assert all(p["autoscalingGroupName"] == group_name for p in policies.values())
    cpu = policies["ASGAverageCPUUtilization"]["targetTrackingConfiguration"]
    requests = policies["ALBRequestCountPerTarget"]["targetTrackingConfiguration"]
    assert cpu["targetValue"] == fleet.cpu_target_percent
    assert requests["targetValue"] == fleet.requests_per_target
    assert requests["predefinedMetricSpecification"]["resourceLabel"] == f"{alb}/{target_group}"


def test_requests_per_target_policy_waits_for_the_listener_that_attaches_its_target_group(
    each_stack_run,
):
    # GIVEN the listener that forwards to the target group (in prod the HTTPS one, which
    # itself waits for ACM to validate the certificate)
    target_group = each_stack_run.one("aws:lb/targetGroup:TargetGroup")
    forwarding = [
        listener
        for listener in each_stack_run.of_type("aws:lb/listener:Listener")
        if any(
            action.get("targetGroupArn") == target_group.outputs["arn"]
            for action in listener.inputs["defaultActions"]
        )
    ]
    requests = next(
        p
        for p in each_stack_run.of_type(POLICY)
        if p.inputs["targetTrackingConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]
        == "ALBRequestCountPerTarget"
    )

    # THEN the engine creates the policy only after that listener: AWS refuses an
    # ALBRequestCountPerTarget label whose target group no load balancer uses yet
    assert len(forwarding) == 1
    assert forwarding[0].urn in requests.options.dependencies


def test_tags_propagate_to_instances(each_stack_run):
    tags = each_stack_run.one(ASG).inputs["tags"]

    assert tags
    assert all(tag["propagateAtLaunch"] is True for tag in tags)


def test_the_stacks_default_tags_reach_the_group_and_its_instances(each_stack_run):
    """Provider default tags skip Auto Scaling groups and what they launch: the program
    forwards aws:defaultTags to both."""
    stack_tags = settings_of(each_stack_run).tag_map
    group_tags = {t["key"]: t["value"] for t in each_stack_run.one(ASG).inputs["tags"]}
    template = each_stack_run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs

    assert stack_tags["Environment"] == settings_of(each_stack_run).stack
    assert stack_tags.items() <= group_tags.items()
    for specification in template["tagSpecifications"]:
        assert stack_tags.items() <= specification["tags"].items()


def test_stack_exports_the_group_artifact_instance_type_and_architecture(each_stack_run):
    fleet = settings_of(each_stack_run).fleet
    outputs = each_stack_run.stack_outputs

    assert outputs["asgName"] == each_stack_run.one(ASG).outputs["name"]
    assert outputs["instanceType"] == fleet.instance_type
    assert outputs["architecture"] == fleet.architecture
    assert re.search(rf"/{RELEASES_PREFIX}[0-9a-f]{{64}}\.tar$", outputs["artifactLocation"])
    assert outputs["launchTemplateVersion"] == str(
        int(each_stack_run.one(LAUNCH_TEMPLATE).outputs["latestVersion"])
    )


# ---------------------------------------------------------------------------------------
# Instance role
# ---------------------------------------------------------------------------------------
def _instance_role(run):
    return next(r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-instance-role"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_instance_role_reads_exactly_the_releases_and_completes_only_its_own_launch(stack):
    run = run_stack(stack, {"cacheAuth": "auth-token", "customerManagedKey": False})
    bucket = next(r for r in run.of_type("aws:s3/bucket:Bucket") if "release" in r.name)
    secret = run.one("aws:secretsmanager/secret:Secret")
    access = next(
        r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-app-access")
    )
    policy = json.loads(access.inputs["policy"])
    trust = json.loads(_instance_role(run).inputs["assumeRolePolicy"])

    grants = {
        (
            tuple(sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"])),
            s["Resource"],
        )
        for s in policy["Statement"]
    }
    group_arns = (
        f"arn:aws:autoscaling:{run.config['aws:region']}:*:autoScalingGroup:*:"
        f"autoScalingGroupName/{run.project}-{run.stack}-asg-*"
    )
    assert grants == {
        (("s3:GetObject", "s3:GetObjectVersion"), f"{bucket.outputs['arn']}/{RELEASES_PREFIX}*"),
        (("secretsmanager:GetSecretValue",), secret.outputs["arn"]),
        (("autoscaling:CompleteLifecycleAction",), group_arns),
        (("autoscaling:DescribeAutoScalingInstances",), "*"),
    }
    assert fnmatch.fnmatch(run.one(ASG).outputs["name"], group_arns.rsplit("/", 1)[1])
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_launch_template_uses_the_instance_profile_of_that_role(each_stack_run):
    profile = each_stack_run.one("aws:iam/instanceProfile:InstanceProfile")
    role = _instance_role(each_stack_run)

    assert profile.inputs["role"] == role.outputs["name"]
    assert each_stack_run.one(LAUNCH_TEMPLATE).inputs["iamInstanceProfile"] == {
        "arn": profile.outputs["arn"]
    }


# ---------------------------------------------------------------------------------------
# Between two runs: what a change of size or of the app touches
# ---------------------------------------------------------------------------------------
def test_a_bigger_instance_of_the_same_architecture_changes_only_the_launch_template(
    shipped_run,
):
    before = shipped_run("dev")
    after = run_stack("dev", {"instanceType": "t4g.large"})
    old, new = before.one(LAUNCH_TEMPLATE).inputs, after.one(LAUNCH_TEMPLATE).inputs

    # A new template version; on AWS the group then points at it and refreshes.
    assert changed_resources(before, after) == {LAUNCH_TEMPLATE}
    assert (old["instanceType"], new["instanceType"]) == ("t4g.small", "t4g.large")
    assert new["imageId"] == old["imageId"]
    assert new["userData"] == old["userData"]


def test_switching_to_x86_changes_the_ami_and_only_the_launch_template(shipped_run):
    before = shipped_run("dev")
    after = run_stack("dev", {"instanceType": "c7i.large"})
    old, new = before.one(LAUNCH_TEMPLATE).inputs, after.one(LAUNCH_TEMPLATE).inputs
    lookups = [args["name"] for token, args in after.data_source_calls if token == SSM_PARAMETER]

    # The release changes too: it carries the wheels of the new CPU (a new object).
    assert changed_resources(before, after) == {LAUNCH_TEMPLATE, RELEASE_OBJECT}
    assert new["imageId"] != old["imageId"]
    assert lookups == [AL2023_AMI_PARAMETERS["x86_64"]]
    assert "readonly EXPECTED_MACHINE=x86_64" in user_data_of(after)
    assert after.stack_outputs["architecture"] == "x86_64"


@pytest.fixture
def own_app():
    """A user's own WSGI app inside the repository (under the git-ignored build/)."""
    package = f"pyscale_test_{uuid.uuid4().hex[:8]}"
    directory = REPO_ROOT / "build" / package / "shop"
    directory.mkdir(parents=True)
    (directory / "wsgi.py").write_text(
        'def application(environ, start_response):\n    return [b"v1"]\n'
    )
    yield {
        "appSourceDir": f"build/{package}/shop",
        "wsgiModule": f"build.{package}.shop.wsgi:application",
        "file": directory / "wsgi.py",
    }
    shutil.rmtree(REPO_ROOT / "build" / package)


def test_changing_the_app_changes_the_artifact_hash_and_so_the_launch_template(own_app):
    config = {key: own_app[key] for key in ("appSourceDir", "wsgiModule")}
    before = run_stack("dev", config)
    own_app["file"].write_text(own_app["file"].read_text().replace("v1", "v2"))
    after = run_stack("dev", config)

    assert after.stack_outputs["appVersion"] != before.stack_outputs["appVersion"]
    assert changed_resources(before, after) == {
        LAUNCH_TEMPLATE,
        "aws:s3/bucketObjectv2:BucketObjectv2",
    }
    assert f"readonly APP_VERSION={after.stack_outputs['appVersion']}" in user_data_of(after)


def test_an_own_app_is_served_by_gunicorn_with_the_blueprints_settings(own_app):
    run = run_stack("dev", {key: own_app[key] for key in ("appSourceDir", "wsgiModule")})

    assert (
        "ExecStart=/opt/pyscale/current/venv/bin/gunicorn --config app/gunicorn.conf.py "
        f"--bind 127.0.0.1:{PORT_BEHIND_PROXY} {own_app['wsgiModule']}"
    ) in user_data_of(run)


def test_a_wsgi_module_that_is_not_in_the_app_fails_before_any_resource():
    with pytest.raises(ProgramError) as failure:
        run_stack("dev", {"wsgiModule": "shop.wsgi:application"})

    assert failure.value.clean
    assert "pyscale:wsgiModule" in failure.value.message
    assert failure.value.resources == []


# ---------------------------------------------------------------------------------------
# Options: mixed instances / spot, schedules, lifetime; warm pool
# ---------------------------------------------------------------------------------------
def test_spot_and_mixed_types_use_a_mixed_instances_policy_with_capacity_rebalance():
    run = run_stack(
        "dev",
        {
            "mixedInstanceTypes": ["t4g.medium", "m7g.medium"],
            "onDemandBaseCapacity": 1,
            "onDemandPercentAboveBase": 25,
            "maxInstanceLifetimeDays": 7,
            "scheduledScaling": [
                {
                    "name": "business-hours",
                    "recurrence": "0 8 * * 1-5",
                    "minSize": 2,
                    "maxSize": 4,
                    "desiredCapacity": 2,
                    "timeZone": "Europe/Paris",
                }
            ],
        },
    )
    group = run.one(ASG).inputs
    template = run.one(LAUNCH_TEMPLATE)
    policy = group["mixedInstancesPolicy"]
    [schedule] = run.of_type("aws:autoscaling/schedule:Schedule")

    assert "launchTemplate" not in group
    assert policy["launchTemplate"]["launchTemplateSpecification"] == {
        "launchTemplateId": template.id,
        "version": str(int(template.outputs["latestVersion"])),
    }
    assert [o["instanceType"] for o in policy["launchTemplate"]["overrides"]] == [
        "t4g.small",
        "t4g.medium",
        "m7g.medium",
    ]
    assert policy["instancesDistribution"]["onDemandBaseCapacity"] == 1
    assert policy["instancesDistribution"]["onDemandPercentageAboveBaseCapacity"] == 25
    assert group["capacityRebalance"] is True
    assert group["maxInstanceLifetime"] == 7 * 86_400
    assert schedule.inputs["recurrence"] == "0 8 * * 1-5"
    assert schedule.inputs["timeZone"] == "Europe/Paris"
    assert schedule.inputs["autoscalingGroupName"] == run.one(ASG).outputs["name"]


def test_a_warm_pool_keeps_stopped_instances_ready():
    run = run_stack("dev", {"warmPool": True, "warmPoolMinSize": 1})
    group = run.one(ASG).inputs

    assert group["warmPool"]["minSize"] == 1
    assert group["warmPool"]["poolState"] == "Stopped"
    assert group["capacityRebalance"] is False
    assert "mixedInstancesPolicy" not in group


@pytest.mark.parametrize("adopted", [False, True], ids=["new-vpc", "adopted-vpc"])
def test_nat_gateways_none_is_not_a_value_since_instances_could_not_install_the_app(adopted):
    # "none" was offered but a new VPC refused it and an adopted one ignored it: the boot
    # script installs the app's packages from PyPI (no wheelhouse in the release yet)
    config = {**stacks.engine_config("dev"), "pyscale:natGateways": "none"}
    if adopted:
        public = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
        private = ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"]
        config |= {
            "pyscale:existingVpcId": "vpc-0123456789abcdef0",
            "pyscale:existingPublicSubnetIds": json.dumps(public),
            "pyscale:existingPrivateSubnetIds": json.dumps(private),
        }

    with pytest.raises(ConfigError) as error:
        load_settings(config, "dev")
    assert error.value.problems == (
        "pyscale:natGateways: must be one of single, perAz; got 'none'",
    )


def test_instances_answer_exactly_the_names_the_alb_forwards(
    shipped_run,
):
    prod, dev = shipped_run("prod"), shipped_run("dev")
    alb_dns_name = prod.one("aws:lb/loadBalancer:LoadBalancer").outputs["dnsName"]

    assert (
        f"TRUSTED_HOSTS=app.example.com,{alb_dns_name},127.0.0.1,localhost"
        in user_data_of(prod).splitlines()
    )
    # Without a domain, the names the ALB forwards: its own (and hostNames), nothing else.
    dev_alb = dev.one("aws:lb/loadBalancer:LoadBalancer").outputs["dnsName"]
    assert f"TRUSTED_HOSTS={dev_alb},127.0.0.1,localhost" in user_data_of(dev).splitlines()
