"""Engine strings in, one frozen ``Settings`` out, or a ``ConfigError`` listing every problem.

The engine hands the program every value as a string (``"3"``, ``"true"``, lists and
objects as JSON text). Each key's string is turned into a value of its declared type here;
pydantic then checks each area's model (bounds, allowed values, formats, the cross-field
rules), and its errors are rewritten into the project's one-line style: the full key, what
is allowed, what was got. Nothing here registers a resource: the program calls
``load_from_pulumi()`` before building any component.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from infra.kubernetes.eks_versions import support_warning
from infra.settings import stack as stack_checks
from infra.settings.base import (
    NAMESPACE,
    AreaSettings,
    KeyDeclaration,
    declarations,
    did_you_mean,
    unwrap,
)
from infra.settings.cache import CacheSettings
from infra.settings.edge import EdgeSettings
from infra.settings.encryption import EncryptionSettings
from infra.settings.fleet import FleetSettings
from infra.settings.monitoring import MonitoringSettings
from infra.settings.network import NetworkSettings
from infra.settings.platform import Platform, PlatformSettings, platform_key_problems
from infra.settings.release import ReleaseSettings

# Every area, in the order of the configuration reference.
AREAS: tuple[tuple[str, type[AreaSettings]], ...] = (
    ("network", NetworkSettings),
    ("edge", EdgeSettings),
    ("cache", CacheSettings),
    ("fleet", FleetSettings),
    ("release", ReleaseSettings),
    ("monitoring", MonitoringSettings),
    ("platform", PlatformSettings),
    ("encryption", EncryptionSettings),
)
KEYS: tuple[KeyDeclaration, ...] = tuple(
    key for area, model in AREAS for key in declarations(area, model)
)
KEYS_BY_NAME: Mapping[str, KeyDeclaration] = {key.name: key for key in KEYS}


class Settings(BaseModel):
    """The whole stack's settings: one frozen model per area, plus what every stack has."""

    model_config = ConfigDict(frozen=True)

    project: str
    stack: str
    region: str
    network: NetworkSettings
    edge: EdgeSettings
    cache: CacheSettings
    fleet: FleetSettings
    release: ReleaseSettings
    monitoring: MonitoringSettings
    platform: PlatformSettings
    encryption: EncryptionSettings
    # From aws:defaultTags; sorted (key, value) pairs so the settings stay hashable.
    tags: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


class ConfigError(pulumi.RunError):
    """The stack's configuration is invalid. A RunError: the engine prints it without a
    traceback. ``problems`` holds one line per problem, each naming its key."""

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.stack = stack
        self.problems = tuple(problems)
        noun = "problem" if len(problems) == 1 else "problems"
        lines = [f"stack {stack!r}: {len(problems)} configuration {noun}:"]
        lines += [f"  - {problem}" for problem in problems]
        lines.append("Fix them in stacks/Pulumi.<stack>.yaml or with `pulumi config set`.")
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------------
# Engine strings -> values of the declared type
# ---------------------------------------------------------------------------------------
def _engine_value(key: KeyDeclaration, raw: str) -> tuple[Any, str | None]:
    """(value, None) or (None, what is wrong), as the engine marshals each type."""
    if key.type == "boolean":
        text = raw.strip().lower()
        if text in ("true", "false"):
            return text == "true", None
        return None, f"must be true or false, got {raw!r}"
    if key.type == "integer":
        try:
            return int(raw.strip()), None
        except ValueError:
            low, high = key.bounds
            return None, f"must be a whole number from {low} to {high}, got {raw!r}"
    if key.type in ("array", "object"):
        try:
            return json.loads(raw), None
        except json.JSONDecodeError:
            what = "list" if key.type == "array" else "list of objects"
            return None, f"must be a YAML/JSON {what}, got {raw!r}"
    return raw, None


# ---------------------------------------------------------------------------------------
# pydantic's errors -> the project's one-line problems
# ---------------------------------------------------------------------------------------
def _nested_fields(key: KeyDeclaration, required_only: bool = False) -> list[str]:
    """The field names of a list-of-objects key (scheduledScaling), as users spell them."""
    (item,) = typing.get_args(unwrap(key.field.annotation))[:1] or (None,)
    if not (isinstance(item, type) and issubclass(item, BaseModel)):
        return []
    return [
        field.alias or name
        for name, field in item.model_fields.items()
        if field.is_required() or not required_only
    ]


def _message(key: KeyDeclaration, error: ErrorDetails, field: str) -> str:
    kind, got = error["type"], error.get("input")
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind in ("greater_than_equal", "less_than_equal"):
        low, high = key.bounds
        return f"must be from {low} to {high}{key.unit}, got {got}"
    if kind in ("enum", "literal_error"):
        choices = key.choices
        return f"must be one of {', '.join(choices)}; got {got!r}{did_you_mean(got, choices)}"
    if kind == "missing":
        return f"misses {field} (an entry needs {', '.join(_nested_fields(key, True))})"
    if kind == "extra_forbidden":
        return f"has unknown field {field!r}; allowed {', '.join(_nested_fields(key))}"
    prefix = f"{field} " if field else ""
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{prefix}must be a whole number, got {got!r}"
    if kind in ("list_type", "tuple_type"):
        what = "strings" if key.type == "array" else "objects"
        return f"must be a list of {what}, got {got!r}"
    if kind == "string_type" and key.type == "array":
        return f"must be a list of strings, got {got!r} at position {error['loc'][1]}"
    if kind == "string_type":
        return f"{prefix}must be a string, got {got!r}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be an object with {', '.join(_nested_fields(key))}, got {got!r}"
    return f"{prefix}{error['msg'].lower()}, got {got!r}"


def _problems(model: type[AreaSettings], error: ErrorDetails) -> list[str]:
    if error["type"] == "pyscale_rules":
        ctx = error.get("ctx") or {}
        return [f"{NAMESPACE}:{key}: {message}" for key, message in ctx["problems"]]
    if not error["loc"]:  # a model-level error outside the rules (a bug in a validator)
        return [f"{NAMESPACE}: {model.__name__}: {error['msg']}"]
    name, *path = error["loc"]
    key = KEYS_BY_NAME[str(name)]
    where, field = key.full_name, ""
    if key.type == "object":  # a list of objects: name the entry, then its field
        where += "".join(f"[{part}]" for part in path if isinstance(part, int))
        field = ".".join(str(part) for part in path if isinstance(part, str))
    message = _message(key, error, field)
    if field and error["type"] == "value_error":
        message = f"{field} {message}"
    return [f"{where}: {message}"]


def _read_area(
    area: str, model: type[AreaSettings], config: Mapping[str, str], context: Mapping[str, Any]
) -> tuple[AreaSettings | None, list[str]]:
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key in declarations(area, model):
        raw = config.get(key.full_name)
        if raw is None:
            continue  # the declared default
        value, problem = _engine_value(key, raw)
        if problem is None:
            values[key.name] = value
        else:
            problems.append(f"{key.full_name}: {problem}")
    try:
        settings = model.model_validate(values, context=dict(context))
    except ValidationError as error:
        for details in error.errors(include_url=False):
            problems += _problems(model, details)
        return None, problems
    return settings, problems


def _changed_keys(areas: Mapping[str, AreaSettings | None], region: str) -> dict[str, str]:
    """Key name -> area of every key whose value differs from its default (the engine hands
    the program every key, Pulumi.yaml's defaults included)."""
    changed = {}
    for area, model in AREAS:
        current = areas.get(area)
        defaults, _ = _read_area(area, model, {}, {"region": region})
        if current is None or defaults is None:
            continue
        for key in declarations(area, model):
            if getattr(current, key.attribute) != getattr(defaults, key.attribute):
                changed[key.name] = area
    return changed


def _unknown_keys(config: Mapping[str, str]) -> list[str]:
    prefix = f"{NAMESPACE}:"
    known = [key.full_name for key in KEYS]
    return [
        f"{name}: is not a pyscale setting{did_you_mean(name, known, quote=str)}"
        for name in config
        if name.startswith(prefix) and name[len(prefix) :] not in KEYS_BY_NAME
    ]


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------
def load_settings(
    config: Mapping[str, str], stack: str, project: str = NAMESPACE, today: date | None = None
) -> Settings:
    """Validate engine config strings into Settings; ConfigError lists every problem.

    ``today`` (UTC) dates the warnings that depend on it (an eks stack's Kubernetes version
    near or past its end of EKS standard support); without it they are left out.
    """
    problems = stack_checks.resource_name_problems(project, stack)
    problems += _unknown_keys(config)
    region, region_problems = stack_checks.read_region(config)
    problems += region_problems
    areas: dict[str, AreaSettings | None] = {}
    for area, model in AREAS:
        areas[area], area_problems = _read_area(area, model, config, {"region": region})
        problems += area_problems
    tags, tag_problems = stack_checks.read_default_tags(config)
    problems += tag_problems
    platform = areas["platform"]
    if isinstance(platform, PlatformSettings):
        problems += platform_key_problems(platform.platform, _changed_keys(areas, region))
    if problems:
        raise ConfigError(stack, problems)
    settings = Settings.model_validate(
        {"project": project, "stack": stack, "region": region, "tags": tags, **areas}
    )
    warnings = []
    if settings.edge.uses_example_tls:
        warnings.append(
            "pyscale:certificateArn/domainName/hostedZoneId hold the shipped EXAMPLE values: "
            "replace them with your certificate or domain and hosted zone before `pulumi up`"
        )
    for key in settings.platform.placeholder_images:
        warnings.append(
            f"pyscale:{key} holds the shipped EXAMPLE digest (all zeros): set the image's "
            "real digest before `pulumi up`"
        )
    if today is not None and settings.platform.platform == Platform.EKS:
        support = support_warning(settings.platform.kubernetes_version, today)
        if support is not None:
            warnings.append(support)
    if warnings:
        settings = settings.model_copy(update={"warnings": tuple(warnings)})
    return settings


def load_from_pulumi() -> Settings:
    """The program's adapter: the engine's config for this stack, validated."""
    # The language host hands config over with set_all_config (CONFIG); older hosts and
    # tests may use the PULUMI_CONFIG variable. Either way the values are engine strings.
    from pulumi.runtime.config import CONFIG, get_config_env

    config = {**get_config_env(), **CONFIG.get()}
    # The one clock read: the support-window warning is about the day the preview runs.
    today = datetime.now(UTC).date()
    settings = load_settings(config, pulumi.get_stack(), pulumi.get_project(), today)
    # A deploy with the shipped example domain builds the VPC, NAT and the cache, then
    # fails at Route 53 (no such hosted zone) after billed minutes: refuse it up front.
    # A preview (and `pyscale plan`) of the shipped stack keeps working, with the warning.
    # Likewise an image by the shipped placeholder digest: its pods would never pull.
    placeholders = {**settings.edge.example_tls_values, **settings.platform.placeholder_images}
    if placeholders and not pulumi.runtime.is_dry_run():
        raise ConfigError(
            settings.stack,
            [
                f"{NAMESPACE}:{key}: holds the shipped EXAMPLE value {value!r}: set your own "
                "before `pulumi up` (preview and `pyscale plan` accept it)"
                for key, value in placeholders.items()
            ],
        )
    for warning in settings.warnings:
        pulumi.log.warn(warning)
    return settings
