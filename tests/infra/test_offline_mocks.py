"""The offline AWS answers the way AWS and the engine would, so it cannot hide a bug that
`pulumi up` would hit: ARN formats, ElastiCache node names, auto-name length limits."""

from __future__ import annotations

import re
import warnings

import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs

from infra.kubernetes.addon_versions import listed_versions
from pyscale.offline import AwsMocks, run_stack
from pyscale.offline.mocks import (
    AutonameTooLongError,
    ElastiCacheRefusedError,
    InvalidFilterError,
    UnknownAddonError,
    UnknownDataSourceError,
    UnsupportedAddonVersionError,
)

AVAILABILITY_ZONES = "aws:index/getAvailabilityZones:getAvailabilityZones"
OFFERINGS = "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings"


def _call(token: str, region: str = "us-east-1", **args):
    mocks = AwsMocks(region, "123456789012", "pyscale", "s")
    answer, _failures = mocks.call(MockCallArgs(token=token, args=args, provider=""))
    return answer


IAM_ARN = re.compile(r"^arn:aws:iam::\d{12}:(role|instance-profile|policy)/[\w+=,.@-]+$")


def test_iam_arns_are_global_and_carry_no_region(each_stack_run):
    # GIVEN every IAM resource a stack registers
    iam = [r for r in each_stack_run.resources if r.type.startswith("aws:iam/") and r.custom]
    arns = [r.outputs["arn"] for r in iam if "arn" in r.outputs]

    # THEN each ARN has the empty region field IAM ARNs have on AWS
    assert arns
    assert all(IAM_ARN.match(arn) for arn in arns), arns


# ElastiCache's member cluster (node) ids, as AWS documents them, written out literally so
# that neither the mocks nor monitoring.cache_node_suffixes can vouch for themselves:
# - cluster mode on: the ElastiCache user guide, "Connecting to nodes in a Valkey or Redis
#   OSS cluster" (describe-replication-groups of "redis2x2", 2 shards of 1 primary + 1
#   replica): MemberClusters redis2x2-0001-001, redis2x2-0001-002, redis2x2-0002-001,
#   redis2x2-0002-002 (shards 0001..0090 as the API's NodeGroup docs number them);
# - cluster mode off: "<group>-001" onwards; terraform-provider-aws replication_group.go
#   names the group's first cluster fmt.Sprintf("%s-001", d.Id()) for snapshots.
DOCUMENTED_NODE_IDS = {
    "dev": ["{group}-001"],  # no replica
    "staging": ["{group}-001", "{group}-002"],  # one replica
    "prod": ["{group}-0001-001", "{group}-0001-002", "{group}-0002-001", "{group}-0002-002"],
}


@pytest.mark.parametrize("stack", sorted(DOCUMENTED_NODE_IDS))
def test_cache_alarms_watch_the_node_ids_elasticache_documents(shipped_run, stack):
    # GIVEN the stack's replication group (prod: 2 shards x 1 replica, like AWS's redis2x2)
    run = shipped_run(stack)
    group_id = run.one("aws:elasticache/replicationGroup:ReplicationGroup").id
    expected = {name.format(group=group_id) for name in DOCUMENTED_NODE_IDS[stack]}

    # WHEN the monitoring component picks its per-node alarm dimensions
    watched = {
        a.inputs["dimensions"]["CacheClusterId"]
        for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if "CacheClusterId" in a.inputs.get("dimensions", {})
    }

    # THEN they are exactly the documented node ids
    assert watched == expected


def test_the_mock_names_member_clusters_as_aws_documents_them():
    mocks = AwsMocks("us-west-2", "123456789012", "pyscale", "s")
    _, cluster = mocks.new_resource(
        MockResourceArgs(
            typ="aws:elasticache/replicationGroup:ReplicationGroup",
            name="redis2x2",
            inputs={
                "replicationGroupId": "redis2x2",
                "clusterMode": "enabled",
                "numNodeGroups": 2.0,
                "replicasPerNodeGroup": 1.0,
            },
            provider="",
            resource_id="",
        )
    )
    assert cluster["memberClusters"] == [
        "redis2x2-0001-001",
        "redis2x2-0001-002",
        "redis2x2-0002-001",
        "redis2x2-0002-002",
    ]


@pytest.mark.parametrize(
    ("type_token", "limit"),
    [
        ("aws:lb/loadBalancer:LoadBalancer", 32),
        ("aws:lb/targetGroup:TargetGroup", 32),
        ("aws:elasticache/replicationGroup:ReplicationGroup", 40),
    ],
)
def test_an_auto_name_longer_than_the_resource_allows_fails_like_the_engine(type_token, limit):
    # GIVEN a logical name that leaves no room for the 8-character random suffix
    mocks = AwsMocks("us-east-1", "123456789012", "pyscale", "s")
    too_long = "n" * (limit - 7)
    fits = "n" * (limit - 8)

    def register(name: str):
        return mocks.new_resource(
            MockResourceArgs(typ=type_token, name=name, inputs={}, provider="", resource_id="")
        )

    # THEN the engine's error, not a silently truncated name
    with pytest.raises(AutonameTooLongError, match=f"longer than maximum length {limit}"):
        register(too_long)
    _, outputs = register(fits)
    assert len(outputs["name" if "lb/" in type_token else "replicationGroupId"]) == limit


def test_eks_creates_only_add_on_versions_it_lists_for_the_clusters_kubernetes_version():
    mocks = AwsMocks("us-east-1", "123456789012", "pyscale", "s")

    def register(typ: str, inputs: dict[str, str]) -> dict[str, object]:
        args = MockResourceArgs(typ=typ, name="r", inputs=inputs, provider="", resource_id="")
        return mocks.new_resource(args)[1]

    def addon(name: str, version: str) -> dict[str, object]:
        inputs = {"clusterName": "c", "addonName": name, "addonVersion": version}
        return register("aws:eks/addon:Addon", inputs)

    # GIVEN a 1.33 cluster, and coredns at a version listed for 1.32 but not 1.33
    register("aws:eks/cluster:Cluster", {"name": "c", "version": "1.33"})
    older = listed_versions("coredns", "1.32")[-1]
    assert older not in listed_versions("coredns", "1.33")
    # THEN CreateAddon's InvalidParameterException, naming the add-on and version
    refused = re.escape(f"Addon version specified is not supported (coredns {older};")
    with pytest.raises(UnsupportedAddonVersionError, match=refused):
        addon("coredns", older)
    with pytest.raises(UnknownAddonError, match=r"not supported in 1\.33 kubernetes version"):
        addon("kube-dns", "v1.0.0-eksbuild.1")
    # and a listed version is created
    assert addon("coredns", listed_versions("coredns", "1.33")[-1])["arn"]


def test_no_stack_uses_a_deprecated_resource_argument_or_attribute(shipped_run):
    # GIVEN every pulumi_aws module the program uses already imported (their import-time
    # notices about *other* deprecated classes, e.g. s3.BucketV2, are not about our calls)
    for stack in ("dev", "staging", "prod"):
        shipped_run(stack)

    # WHEN each stack runs again with every Python warning recorded
    for stack in ("dev", "staging", "prod"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = run_stack(stack)

        # THEN neither the provider SDK's deprecation log (deprecated resources and
        # arguments) nor a DeprecationWarning (deprecated attributes such as
        # get_region().name) was raised by the program's calls
        assert not [w for w in run.warnings if "deprecated" in w.lower()], run.warnings
        assert not [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]


def test_available_zones_include_the_opted_in_local_zone_and_it_sorts_first():
    # WHEN the program asks as it did: every zone whose state is available
    zones = _call(AVAILABILITY_ZONES, state="available")

    # THEN AWS's answer leads with the Boston Local Zone this account opted into (a Local
    # Zone it did not opt into stays out) and lists the region's zones after it
    assert zones["names"][0] == "us-east-1-bos-1a"
    assert "us-east-1-mia-1a" not in zones["names"]
    assert zones["names"][1:] == [f"us-east-1{letter}" for letter in "abcdef"]
    assert dict(zip(zones["names"], zones["zoneIds"], strict=True))["us-east-1e"] == "use1-az3"


def test_the_opt_in_status_filter_leaves_only_the_regions_own_zones():
    zones = _call(
        AVAILABILITY_ZONES,
        state="available",
        filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
    )
    assert zones["names"] == [f"us-east-1{letter}" for letter in "abcdef"]
    assert zones["groupNames"] == ["us-east-1"]


def test_all_availability_zones_lists_local_zones_the_account_did_not_opt_into():
    zones = _call(AVAILABILITY_ZONES, allAvailabilityZones=True)
    assert {"us-east-1-bos-1a", "us-east-1-mia-1a"} <= set(zones["names"])


@pytest.mark.parametrize("instance_type", ["m7g.large", "t4g.small", "c7i.large"])
def test_use1_az3_does_not_offer_current_generation_types(instance_type):
    # WHEN the program asks in which zones (by id) an instance type is offered
    offered = _call(
        OFFERINGS,
        locationType="availability-zone-id",
        filters=[{"name": "instance-type", "values": [instance_type]}],
    )

    # THEN every standard zone but use1-az3 offers it, in parallel lists as the provider
    # flattens EC2's answer
    assert set(offered["instanceTypes"]) == {instance_type}
    assert offered["locationTypes"] == ["availability-zone-id"] * len(offered["locations"])
    assert sorted(offered["locations"]) == [f"use1-az{n}" for n in (1, 2, 4, 5, 6)]
    assert (
        "us-east-1e"
        not in _call(
            OFFERINGS,
            locationType="availability-zone",
            filters=[{"name": "instance-type", "values": [instance_type]}],
        )["locations"]
    )


def test_offerings_by_zone_name_with_a_location_filter_and_a_wildcard():
    offered = _call(
        OFFERINGS,
        locationType="availability-zone",
        filters=[
            {"name": "instance-type", "values": ["m5.l*"]},
            {"name": "location", "values": ["us-east-1e", "us-east-1-bos-1a"]},
        ],
    )
    # m5 is previous-generation x86: use1-az3 (us-east-1e here) and Boston offer it
    assert sorted(zip(offered["instanceTypes"], offered["locations"], strict=True)) == [
        ("m5.large", "us-east-1-bos-1a"),
        ("m5.large", "us-east-1e"),
    ]


def test_a_filter_ec2_does_not_know_is_refused_as_ec2_refuses_it():
    with pytest.raises(InvalidFilterError, match="zone-flavour"):
        _call(AVAILABILITY_ZONES, filters=[{"name": "zone-flavour", "values": ["x"]}])
    with pytest.raises(InvalidFilterError, match="instance-family"):
        _call(OFFERINGS, filters=[{"name": "instance-family", "values": ["m7g"]}])


def test_a_data_source_the_mocks_do_not_know_still_fails():
    with pytest.raises(UnknownDataSourceError, match="getSubnets"):
        _call("aws:ec2/getSubnets:getSubnets")


def _create(type_token: str, logical_name: str, **inputs):
    mocks = AwsMocks("us-east-1", "123456789012", "pyscale", "s")
    return mocks.new_resource(
        MockResourceArgs(
            typ=type_token, name=logical_name, inputs=inputs, provider="", resource_id=""
        )
    )


def test_the_default_security_group_is_the_vpcs_own_not_a_new_one():
    _, vpc = _create("aws:ec2/vpc:Vpc", "net-vpc", cidrBlock="10.0.0.0/16")
    vpc_id, _ = _create("aws:ec2/vpc:Vpc", "net-vpc", cidrBlock="10.0.0.0/16")

    group_id, group = _create(
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "net-default-sg", vpcId=vpc_id
    )

    assert group_id == vpc["defaultSecurityGroupId"]
    assert group["name"] == "default"


@pytest.mark.parametrize(
    ("type_token", "inputs", "pattern"),
    [
        ("aws:kms/key:Key", {}, r"^arn:aws:kms:us-east-1:\d{12}:key/[0-9a-f-]{36}$"),
        ("aws:kms/alias:Alias", {"name": "alias/pyscale-dev"},
         r"^arn:aws:kms:us-east-1:\d{12}:alias/pyscale-dev$"),
        ("aws:ec2/flowLog:FlowLog", {},
         r"^arn:aws:ec2:us-east-1:\d{12}:vpc-flow-log/fl-[0-9a-f]+$"),
        ("aws:elasticache/user:User", {"userId": "pyscale-dev-app"},
         r"^arn:aws:elasticache:us-east-1:\d{12}:user:pyscale-dev-app$"),
        ("aws:elasticache/userGroup:UserGroup", {"userGroupId": "pyscale-dev"},
         r"^arn:aws:elasticache:us-east-1:\d{12}:usergroup:pyscale-dev$"),
        ("aws:lb/listenerRule:ListenerRule",
         {"listenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/1/2"},
         r"^arn:aws:elasticloadbalancing:us-east-1:\d{12}:listener-rule/app/a/1/2/[0-9a-f]+$"),
    ],
)  # fmt: skip
def test_new_security_resources_get_arns_in_aws_formats(type_token, inputs, pattern):
    _, outputs = _create(type_token, "x", **inputs)

    assert re.match(pattern, outputs["arn"]), outputs["arn"]


def test_an_iam_cache_user_whose_name_is_not_its_id_is_refused_as_elasticache_does():
    iam = {"type": "iam"}
    with pytest.raises(ElastiCacheRefusedError, match=r"user name .* must equal the user id"):
        _create(
            "aws:elasticache/user:User", "u", userId="app", userName="App", authenticationMode=iam
        )
    _, outputs = _create(
        "aws:elasticache/user:User", "u", userId="app", userName="app", authenticationMode=iam
    )
    assert outputs["arn"].endswith(":user:app")


@pytest.mark.parametrize(
    ("inputs", "refusal"),
    [
        ({"authToken": "t" * 64, "userGroupIds": ["g"], "transitEncryptionEnabled": True},
         "conflicts with user_group_ids"),
        ({"authToken": "t" * 64, "authTokenUpdateStrategy": "DELETE",
          "transitEncryptionEnabled": True}, "must not be specified"),
        ({"authTokenUpdateStrategy": "ROTATE", "transitEncryptionEnabled": True},
         '"auth_token" must be specified'),
        ({"userGroupIds": ["a", "b"], "transitEncryptionEnabled": True}, "at most one user group"),
        ({"userGroupIds": ["g"], "authTokenUpdateStrategy": "DELETE"}, "need transit encryption"),
    ],
)  # fmt: skip
def test_cache_authentication_the_provider_or_elasticache_refuses_is_refused(inputs, refusal):
    group = "aws:elasticache/replicationGroup:ReplicationGroup"
    with pytest.raises(ElastiCacheRefusedError, match=refusal):
        _create(group, "cache", **inputs)
    # The combinations the program sends: RBAC moving from AUTH, a rotating token, none.
    for accepted in (
        {
            "userGroupIds": ["g"],
            "authTokenUpdateStrategy": "DELETE",
            "transitEncryptionEnabled": True,
        },
        {
            "authToken": "t" * 64,
            "authTokenUpdateStrategy": "ROTATE",
            "transitEncryptionEnabled": True,
        },
        {},
    ):
        _create(group, "cache", **accepted)
