"""Components take their area's frozen settings plus wiring inputs: no Args field repeats a
setting with a default of its own (LoadBalancerArgs once said 90 days where the setting
said 14)."""

from __future__ import annotations

import dataclasses

import pytest

from infra.cache import CacheArgs
from infra.encryption import StackKeyArgs
from infra.fleet import FleetArgs
from infra.flow_logs import FlowLogsArgs
from infra.load_balancer import LoadBalancerArgs
from infra.monitoring import MonitoringArgs
from infra.network import NetworkArgs
from infra.release import AppReleaseArgs
from infra.security_groups import SecurityGroupsArgs
from infra.settings import (
    CacheSettings,
    EdgeSettings,
    EncryptionSettings,
    FleetSettings,
    MonitoringSettings,
    NetworkSettings,
    ReleaseSettings,
)

# Defaults that are no setting: the app contract's port, tags, alarm thresholds, ordering.
NOT_SETTINGS = {"app_port", "tags", "thresholds", "target_group_listeners"}
COMPONENT_ARGS = {
    NetworkArgs: NetworkSettings,
    LoadBalancerArgs: EdgeSettings,
    CacheArgs: CacheSettings,
    FleetArgs: FleetSettings,
    AppReleaseArgs: ReleaseSettings,
    MonitoringArgs: MonitoringSettings,
    SecurityGroupsArgs: None,
    StackKeyArgs: EncryptionSettings,
    FlowLogsArgs: NetworkSettings,
}


@pytest.mark.parametrize("args", list(COMPONENT_ARGS), ids=lambda args: args.__name__)
def test_args_take_the_areas_settings_and_default_no_setting(args) -> None:
    fields = {field.name: field for field in dataclasses.fields(args)}
    defaulted = {
        name
        for name, field in fields.items()
        if field.default is not dataclasses.MISSING
        or field.default_factory is not dataclasses.MISSING
    }

    assert defaulted <= NOT_SETTINGS
    if COMPONENT_ARGS[args] is not None:
        assert fields["settings"].type in (COMPONENT_ARGS[args].__name__, COMPONENT_ARGS[args])
