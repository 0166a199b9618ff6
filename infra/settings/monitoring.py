"""Monitoring keys: who hears the alarms, and how long logs are kept."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from infra.settings.base import AreaSettings, empty_is_none, in_place, matches, setting

# The values CloudWatch Logs PutRetentionPolicy accepts.
LOG_RETENTION_DAYS: tuple[int, ...] = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400)
LOG_RETENTION_DAYS += (545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def _cloudwatch_retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} (CloudWatch Logs), "
            f"got {days}"
        )
    return days


class MonitoringSettings(AreaSettings):
    alarm_email: Annotated[
        str | None,
        BeforeValidator(empty_is_none),
        matches(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "must be an email address"),
    ] = setting(
        "alarmEmail",
        "",
        allowed="an email address, or empty",
        doc="Email subscribed to the alarm topic (AWS first mails a confirmation link).",
        change=in_place(
            "the subscription is replaced: alarms reach the new address once its "
            "confirmation link is followed"
        ),
    )
    log_retention_days: Annotated[int, AfterValidator(_cloudwatch_retention)] = setting(
        "logRetentionDays",
        14,
        ge=1,
        le=3653,
        allowed=", ".join(map(str, LOG_RETENTION_DAYS)),
        doc="Days logs are kept: the CloudWatch log groups and the ALB access logs.",
        change=in_place("applies to existing logs too: older ones are deleted"),
    )
