"""What `pulumi up` waits for, as the provider implements it (terraform-provider-aws), and
the settings that keep those waits from hanging or silently deferring a change."""

from __future__ import annotations

import pytest

from pyscale.offline import ProgramError, run_stack

ASG = "aws:autoscaling/group:Group"


def test_the_group_never_waits_for_a_capacity_a_scaled_group_cannot_match(each_stack_run):
    # The provider's update waits for exactly max(minSize, desiredCapacity) healthy
    # instances, desiredCapacity being the stale configured value: a scaled-out group never
    # matches it (group.go, #5241). "0" turns the wait off; `pyscale deploy wait` checks.
    assert each_stack_run.one(ASG).inputs["waitForCapacityTimeout"] == "0"


REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
PARAMETER_GROUP = "aws:elasticache/parameterGroup:ParameterGroup"


def test_cache_changes_apply_during_the_deploy_unless_a_stack_defers_them(each_stack_run):
    # Without apply_immediately a node type, engine or parameter group change reports
    # success and applies in the maintenance window (replication_group.go's update).
    assert each_stack_run.one(REPLICATION_GROUP).inputs["applyImmediately"] is True
    deferred = run_stack("dev", {"cacheApplyImmediately": False}).one(REPLICATION_GROUP)
    assert deferred.inputs["applyImmediately"] is False


def test_a_new_engine_major_creates_its_parameter_group_before_the_old_one_goes():
    # GIVEN a Valkey 7.2 cache moved to 8.0 (family valkey7 -> valkey8; family is immutable)
    before = run_stack("dev", {"cacheEngineVersion": "7.2"})
    after = run_stack("dev", {"cacheEngineVersion": "8.0"})
    (old,) = before.of_type(PARAMETER_GROUP)
    (new,) = after.of_type(PARAMETER_GROUP)

    # THEN the new family's group is another resource (another URN): the engine creates it,
    # repoints the cache, and deletes the old one only after every create and update,
    # never first (no delete-before-replace)
    assert old.urn != new.urn
    assert new.inputs["family"] == "valkey8"
    assert new.options.delete_before_replace in (None, False)
    group = after.one(REPLICATION_GROUP)
    assert after.is_created_after(group, new)
    # and the cache lets go of the old group during the deploy, not at the next window,
    # so that delete finds it detached
    assert group.inputs["applyImmediately"] is True


def test_transit_encryption_turns_on_in_two_deploys_through_preferred():
    # Step 1 of 2 for a deployed cache without TLS: TLS on, plaintext clients still admitted
    step_one = run_stack("dev", {"cacheTransitEncryptionMode": "preferred"})
    group = step_one.one(REPLICATION_GROUP).inputs
    assert (group["transitEncryptionEnabled"], group["transitEncryptionMode"]) == (
        True,
        "preferred",
    )
    # Step 2 (the default): required
    assert run_stack("dev").one(REPLICATION_GROUP).inputs["transitEncryptionMode"] == "required"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "cacheTransitEncryptionMode": "preferred",
                "cacheTransitEncryption": False,
                "cacheAuthToken": False,
            },
            "pyscale:cacheTransitEncryptionMode: preferred needs cacheTransitEncryption: true",
        ),
        (
            {
                "cacheTransitEncryptionMode": "preferred",
                "cacheEngine": "redis",
                "cacheEngineVersion": "6.2",
            },
            "pyscale:cacheTransitEncryptionMode: redis 6.2 has no transit encryption mode",
        ),
    ],
)
def test_a_transit_mode_the_engine_cannot_take_is_refused_before_any_resource(overrides, message):
    with pytest.raises(ProgramError) as failure:
        run_stack("dev", overrides)
    assert failure.value.clean
    assert message in failure.value.message
    assert failure.value.resources == []
