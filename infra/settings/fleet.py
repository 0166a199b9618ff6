"""Fleet keys: the app's instances, their scaling and how they are bought."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from infra import instance_types
from infra.settings.base import (
    ROLLS_THE_FLEET,
    AreaSettings,
    Problems,
    empty_is_none,
    in_place,
    matches,
    setting,
)

MAX_INSTANCES = 1000


class FleetPurchase(enum.StrEnum):
    """on-demand: one instance type, on-demand only; mixed: several types and/or spot
    (a mixed instances policy); warm-pool: one type, on-demand, with pre-initialised
    stopped instances. AWS allows no warm pool with a mixed instances policy."""

    ON_DEMAND = "on-demand"
    MIXED = "mixed"
    WARM_POOL = "warm-pool"


class SpotAllocationStrategy(enum.StrEnum):
    PRICE_CAPACITY_OPTIMIZED = "price-capacity-optimized"
    CAPACITY_OPTIMIZED = "capacity-optimized"
    CAPACITY_OPTIMIZED_PRIORITIZED = "capacity-optimized-prioritized"
    LOWEST_PRICE = "lowest-price"


def _linux_instance_type(name: str) -> str:
    try:
        instance_types.lookup(name).linux_architecture()  # a mac type raises ValueError
    except instance_types.UnknownInstanceTypeError as error:
        raise ValueError(str(error)) from None
    return name


InstanceTypeName = Annotated[str, AfterValidator(_linux_instance_type)]
_CRON = re.compile(r"^\S+( \S+){4}$")


class ScheduledAction(BaseModel):
    """One entry of scheduledScaling: a recurring change of the group's sizes."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)

    name: str
    recurrence: str
    min_size: int = Field(alias="minSize")
    max_size: int = Field(alias="maxSize")
    desired_capacity: int = Field(alias="desiredCapacity")
    time_zone: str = Field("Etc/UTC", alias="timeZone")

    @field_validator("recurrence")
    @classmethod
    def _cron(cls, recurrence: str) -> str:
        if not _CRON.match(recurrence):
            raise ValueError(f"must be a 5-field cron, got {recurrence!r}")
        return recurrence

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        if not 0 <= self.min_size <= self.desired_capacity <= self.max_size <= MAX_INSTANCES:
            raise ValueError(f"needs 0 <= minSize <= desiredCapacity <= maxSize <= {MAX_INSTANCES}")
        return self


def _zero_is_none(value: object) -> object:
    return None if value == 0 else value


class FleetSettings(AreaSettings):
    instance_type: InstanceTypeName = setting(
        "instanceType",
        "t4g.small",
        allowed="an EC2 Linux instance type",
        doc="EC2 instance type of the app fleet; its architecture picks the AMI.",
        change=in_place(ROLLS_THE_FLEET),
    )
    ami_id: Annotated[
        str | None,
        BeforeValidator(empty_is_none),
        matches(r"^ami-[0-9a-f]{8,17}$", "must look like ami-0123456789abcdef0"),
    ] = setting(
        "amiId",
        "",
        allowed="an AMI id of instanceType's architecture, or empty",
        doc=(
            "Pin the fleet's AMI; empty follows AWS's latest AL2023 for instanceType's "
            "architecture (its public SSM parameter), so a new AMI rolls the fleet on the "
            "next deploy."
        ),
        change=in_place(ROLLS_THE_FLEET),
    )
    min_size: int = setting(
        "minSize",
        1,
        ge=0,
        le=MAX_INSTANCES,
        doc="Fewest instances.",
        change=in_place("the group launches or terminates instances to fit"),
    )
    desired_capacity: int = setting(
        "desiredCapacity",
        1,
        ge=0,
        le=MAX_INSTANCES,
        doc="Instances at the first deploy; scaling owns the count afterwards.",
        change=in_place("ignored after the first deploy (scaling owns the running count)"),
    )
    max_size: int = setting(
        "maxSize",
        2,
        ge=1,
        le=MAX_INSTANCES,
        doc="Most instances.",
        change=in_place("the group terminates instances above it"),
    )
    cpu_target_percent: int = setting(
        "cpuTargetPercent",
        50,
        ge=1,
        le=100,
        doc="Target tracking: average CPU % the group scales to.",
        change=in_place(),
    )
    requests_per_target: int = setting(
        "requestsPerTarget",
        1000,
        ge=1,
        le=1_000_000,
        doc="Target tracking: ALB requests per instance per minute the group scales to.",
        change=in_place(),
    )
    # 60: the launch lifecycle hook keeps an instance out of service until its boot saw
    # /healthz answer, and the grace period starts only then (AWS: with a launch hook it
    # "can be 0"), so it covers the ALB's first checks of a running app — two healthy checks
    # 15 s apart — not the boot. The boot's install itself takes seconds from the release's
    # wheelhouse (bench/bench_boot.py here: ~5 s, 10 s from archive to /healthz, vs ~16 s
    # and ~23 s from PyPI); dnf and the S3 download come on top on EC2, within the hook's
    # own timeout (infra/fleet.py LAUNCH_HOOK_TIMEOUT_SECONDS).
    health_check_grace_seconds: int = setting(
        "healthCheckGraceSeconds",
        60,
        ge=0,
        le=7200,
        doc="Seconds a new instance has before failed ELB health checks replace it.",
        change=in_place(),
    )
    instance_warmup_seconds: int = setting(
        "instanceWarmupSeconds",
        120,
        ge=0,
        le=3600,
        doc="Seconds before a new instance's metrics count for scaling and refreshes.",
        change=in_place(),
    )
    refresh_min_healthy_percent: int = setting(
        "refreshMinHealthyPercent",
        90,
        ge=0,
        le=100,
        doc="Share of the fleet kept in service during an instance refresh.",
        change=in_place(),
    )
    warm_pool: bool = setting(
        "warmPool",
        False,
        doc="Keep pre-initialised stopped instances for faster scale-out (one type, on-demand).",
        change=in_place("the warm pool is added or removed"),
    )
    warm_pool_min_size: int = setting(
        "warmPoolMinSize",
        0,
        ge=0,
        le=MAX_INSTANCES,
        doc="Instances kept in the warm pool.",
        change=in_place(),
    )
    mixed_instance_types: tuple[InstanceTypeName, ...] = setting(
        "mixedInstanceTypes",
        (),
        allowed="instance types of instanceType's architecture",
        doc="Extra instance types for a mixed instances policy (with spot or on-demand).",
        change=in_place(
            "the group switches between a launch template and a mixed instances policy"
        ),
    )
    on_demand_base_capacity: int = setting(
        "onDemandBaseCapacity",
        0,
        ge=0,
        le=MAX_INSTANCES,
        doc="On-demand instances before any spot (mixed instances only).",
        change=in_place(),
    )
    on_demand_percent_above_base: int = setting(
        "onDemandPercentAboveBase",
        100,
        ge=0,
        le=100,
        doc="On-demand share above the base; below 100 the rest is spot.",
        change=in_place("instances are replaced over time to reach the new mix"),
    )
    spot_allocation_strategy: SpotAllocationStrategy = setting(
        "spotAllocationStrategy",
        SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
        doc="How spot capacity is chosen.",
        change=in_place(),
    )
    max_instance_lifetime_days: int = setting(
        "maxInstanceLifetimeDays",
        0,
        ge=0,
        le=365,
        unit=" (0 turns it off)",
        doc="Replace instances older than this many days; 0 never.",
        change=in_place(),
    )
    scheduled_actions: tuple[ScheduledAction, ...] = setting(
        "scheduledScaling",
        (),
        allowed="list of {name, recurrence, minSize, maxSize, desiredCapacity, timeZone}",
        doc="Scheduled capacity changes (5-field cron recurrence, optional time zone).",
        change=in_place("schedules are added, changed or removed"),
    )
    root_volume_size_gb: int = setting(
        "rootVolumeSizeGb",
        16,
        ge=8,
        le=16384,
        doc="Size of the encrypted gp3 root volume in GiB.",
        change=in_place(ROLLS_THE_FLEET),
    )
    web_concurrency: Annotated[int | None, BeforeValidator(_zero_is_none)] = setting(
        "webConcurrency",
        0,
        ge=0,
        le=256,
        unit=" (0 = from vCPUs)",
        doc="gunicorn workers per instance; 0 derives them from the vCPUs.",
        change=in_place(ROLLS_THE_FLEET),
    )

    @field_validator("scheduled_actions")
    @classmethod
    def _unique_names(cls, actions: tuple[ScheduledAction, ...]) -> tuple[ScheduledAction, ...]:
        if len({action.name for action in actions}) != len(actions):
            raise ValueError("names must be unique")
        return actions

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        problems = Problems()
        if not self.min_size <= self.desired_capacity <= self.max_size:
            problems.add(
                "desiredCapacity",
                f"needs minSize <= desiredCapacity <= maxSize, got {self.min_size} <= "
                f"{self.desired_capacity} <= {self.max_size}",
            )
        for name in self.mixed_instance_types:
            other = instance_types.lookup(name)
            if other.architecture != self.architecture:
                problems.add(
                    "mixedInstanceTypes",
                    f"{name} is {other.architecture} but instanceType {self.instance_type} is "
                    f"{self.architecture}; one launch template has one AMI architecture",
                )
        if self.warm_pool and (self.mixed_instance_types or self.uses_spot):
            problems.add(
                "warmPool",
                "cannot be combined with spot or mixed instances (mixedInstanceTypes / "
                "onDemandPercentAboveBase < 100): an Auto Scaling group with a mixed "
                "instances policy can't have a warm pool",
            )
        if self.warm_pool_min_size and not self.warm_pool:
            problems.add("warmPoolMinSize", "is set but warmPool is false")
        if self.on_demand_base_capacity > self.max_size:
            problems.add("onDemandBaseCapacity", f"must be <= maxSize ({self.max_size})")
        problems.check()
        return self

    @property
    def instance(self) -> instance_types.InstanceType:
        return instance_types.lookup(self.instance_type)

    @property
    def architecture(self) -> instance_types.Architecture:
        return self.instance.linux_architecture()

    @property
    def uses_spot(self) -> bool:
        return self.on_demand_percent_above_base < 100

    @property
    def purchase(self) -> FleetPurchase:
        if self.warm_pool:
            return FleetPurchase.WARM_POOL
        if self.mixed_instance_types or self.uses_spot:
            return FleetPurchase.MIXED
        return FleetPurchase.ON_DEMAND
