"""Run the policy pack without the Pulumi CLI: over resources a mocked program registered.

The engine calls each policy with the resource's inputs deserialised from the wire and
wrapped in its unknown-checking proxy, plus (for stack policies) the property dependencies
it recorded. This module rebuilds exactly those arguments from an offline program run, so
the same validators judge the same shapes — used by tests and by pull requests from forks,
which have no cloud credentials for a real `pulumi preview --policy-pack policy`.

    python -m policy.offline --stack dev [--markdown-report FILE]

Exit status 1 when a mandatory policy is violated, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from . import rules

CONFIG_DIR = Path(__file__).resolve().parent / "config"
PROJECT = "pyscale"


@dataclass(frozen=True)
class WireResource:
    """A registered resource as the mocks saw it: inputs in wire form, mocked outputs."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    parent: str | None = None
    urn: str | None = None  # the engine's URN when known; otherwise one is made up


@dataclass(frozen=True)
class Violation:
    policy: str
    level: EnforcementLevel
    message: str
    resource: str | None  # the resource's name, None for the whole stack


@dataclass(frozen=True)
class PolicySetting:
    level: EnforcementLevel
    properties: Mapping[str, Any]


class PolicyConfigError(ValueError):
    """A policy config file that the Pulumi CLI would reject."""


# --------------------------------------------------------------------------------------------
# Policy config files (the JSON `--policy-pack-config` takes)
# --------------------------------------------------------------------------------------------
def config_path(stack: str) -> Path:
    return CONFIG_DIR / f"{stack}.json"


def load_policy_config(path: Path) -> dict[str, PolicySetting]:
    """Each policy's effective level and properties, as the CLI would hand them to the pack.

    The file maps a policy name to a level ("advisory", "mandatory", "disabled") or to an
    object with an optional "enforcementLevel" and the policy's properties. Unknown policy
    names, levels and properties are errors, as they are for the CLI.
    """
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PolicyConfigError(f"{path}: cannot read policy config: {error}") from error
    if not isinstance(raw, dict):
        raise PolicyConfigError(f"{path}: expected a JSON object of policy name -> setting")
    by_name = {policy.name: policy for policy in rules.POLICIES}
    settings = {name: PolicySetting(_default_level(policy), {}) for name, policy in by_name.items()}
    problems = []
    for name, value in raw.items():
        if name not in by_name:
            problems.append(f"unknown policy {name!r} (known: {', '.join(by_name)})")
            continue
        level_text, properties = (value, {}) if isinstance(value, str) else (None, value)
        if isinstance(properties, dict):
            properties = dict(properties)
            level_text = properties.pop("enforcementLevel", level_text)
        else:
            problems.append(f"{name}: expected a level or an object, got {value!r}")
            continue
        level = settings[name].level
        if level_text is not None:
            try:
                level = EnforcementLevel(level_text)
            except ValueError:
                allowed = ", ".join(e.value for e in EnforcementLevel)
                problems.append(f"{name}: enforcementLevel {level_text!r} is not one of {allowed}")
                continue
        schema = by_name[name].config_schema
        allowed_keys = set(schema.properties) if schema is not None else set()
        for key in sorted(set(properties) - allowed_keys):
            problems.append(
                f"{name}: unknown property {key!r}"
                + (f" (allowed: {', '.join(sorted(allowed_keys))})" if allowed_keys else "")
            )
        settings[name] = PolicySetting(level, properties)
    if problems:
        raise PolicyConfigError(f"{path}:\n  " + "\n  ".join(problems))
    return settings


def _default_level(policy: Any) -> EnforcementLevel:
    return policy.enforcement_level or EnforcementLevel.ADVISORY


# --------------------------------------------------------------------------------------------
# Rebuilding what the engine passes to the pack
# --------------------------------------------------------------------------------------------
def _urn(stack: str, resource: WireResource) -> str:
    return resource.urn or f"urn:pulumi:{stack}::{PROJECT}::{resource.type}::{resource.name}"


def _references(resource: WireResource) -> set[str]:
    """Output values other resources use to refer to this one (id, ARN)."""
    refs = set()
    for key in ("id", "arn"):
        value = resource.outputs.get(key)
        if isinstance(value, str) and value and value != "None":
            refs.add(value)
    return refs


def _strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, Sequence):
        for item in value:
            yield from _strings_in(item)


def build_policy_resources(
    resources: Sequence[WireResource], stack: str
) -> list[tuple[WireResource, PolicyResource]]:
    """PolicyResources with props proxied as the analyzer does and property dependencies
    reconstructed from the outputs (id/ARN) that flowed into each input."""
    by_reference: dict[str, list[int]] = {}
    for index, resource in enumerate(resources):
        for ref in _references(resource):
            by_reference.setdefault(ref, []).append(index)
    policy_resources = [
        PolicyResource(
            r.type,
            unknown_checking_proxy(deserialize_properties(dict(r.inputs))),
            _urn(stack, r),
            r.name,
            _options(r),
            None,
            None,
            [],
            {},
        )
        for r in resources
    ]
    for resource, policy_resource in zip(resources, policy_resources, strict=True):
        for key, value in resource.inputs.items():
            deps: list[PolicyResource] = []
            for text in _strings_in(value):
                deps.extend(policy_resources[i] for i in by_reference.get(text, []))
            if deps:
                policy_resource.property_dependencies[key] = list(dict.fromkeys(deps))
                policy_resource.dependencies.extend(
                    d for d in deps if d not in policy_resource.dependencies
                )
    return list(zip(resources, policy_resources, strict=True))


def _options(resource: WireResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], resource.parent
    )


def provider_from_config(engine_config: Mapping[str, str]) -> PolicyProviderResource:
    """The default aws provider as the engine configures it from the stack's `aws:` keys."""
    props: dict[str, Any] = {}
    for key, value in engine_config.items():
        namespace, _, name = key.partition(":")
        if namespace != "aws" or not name:
            continue
        try:
            props[name] = json.loads(value) if value[:1] in "{[" else value
        except json.JSONDecodeError:
            props[name] = value
    return PolicyProviderResource(
        "pulumi:providers:aws",
        unknown_checking_proxy(props),
        "urn:pulumi:provider::aws::default",
        "default",
    )


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
def evaluate(
    resources: Sequence[WireResource],
    settings: Mapping[str, PolicySetting],
    *,
    stack: str,
    provider: PolicyProviderResource | None = None,
) -> list[Violation]:
    """Every violation the pack would report for these resources under these settings."""
    pairs = build_policy_resources(resources, stack)
    names = {policy_resource.urn: policy_resource.name for _, policy_resource in pairs}
    violations: list[Violation] = []

    def reporter(
        policy_name: str, level: EnforcementLevel, resource: str | None
    ) -> ReportViolation:
        def report(message: str, urn: str | None = None) -> None:
            violations.append(
                Violation(policy_name, level, message, names.get(urn or "", resource))
            )

        return report

    for policy in rules.POLICIES:
        setting = settings.get(policy.name) or PolicySetting(_default_level(policy), {})
        if setting.level == EnforcementLevel.DISABLED:
            continue
        config = dict(setting.properties)
        if isinstance(policy, ResourceValidationPolicy):
            for resource, policy_resource in pairs:
                args = ResourceValidationArgs(
                    resource.type,
                    policy_resource.props,
                    policy_resource.urn,
                    resource.name,
                    policy_resource.opts,
                    provider,
                    config,
                )
                policy.validate(args, reporter(policy.name, setting.level, resource.name))
        elif isinstance(policy, StackValidationPolicy):
            stack_args = StackValidationArgs([pr for _, pr in pairs], config)
            policy.validate(stack_args, reporter(policy.name, setting.level, None))
    return violations


def mandatory(violations: Iterable[Violation]) -> list[Violation]:
    return [v for v in violations if v.level == EnforcementLevel.MANDATORY]


# --------------------------------------------------------------------------------------------
# Command line: the offline check pull requests from forks run
# --------------------------------------------------------------------------------------------
def run_offline_stack(stack: str) -> tuple[list[WireResource], Mapping[str, str]]:
    """Run the real program for `stack` under the offline runner (imported lazily: the
    policy pack's own venv has no pyscale)."""
    from pyscale.offline import run_stack

    run = run_stack(stack)
    return [from_registered(r) for r in run.resources], run.config


def from_registered(resource: Any) -> WireResource:
    """Adapt one resource of `pyscale.offline.ProgramRun.resources`."""
    outputs = dict(resource.outputs or {})
    # The mocks return a custom resource's ID beside its state; references carry it.
    if outputs.get("id") is None and getattr(resource, "id", None):
        outputs["id"] = resource.id
    return WireResource(
        type=resource.type,
        name=resource.name,
        inputs=dict(resource.inputs or {}),
        outputs=outputs,
        parent=resource.parent,
        urn=resource.urn,
    )


def render_markdown(stack: str, count: int, violations: Sequence[Violation]) -> str:
    lines = [
        f"### Policy pack `{rules.PACK_NAME}` on stack `{stack}` (offline)",
        "",
        f"Ran every policy over the {count} resources the program registers for `{stack}` "
        "under the offline runner (no cloud credentials; provider-computed values are mocked).",
        "",
    ]
    if not violations:
        lines.append("No violations.")
    else:
        lines += ["| level | policy | resource | what to do |", "|---|---|---|---|"]
        for v in violations:
            message = v.message.replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {v.level.value} | `{v.policy}` | `{v.resource or '(stack)'}` | {message} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policy.offline", description=__doc__)
    parser.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    parser.add_argument("--markdown-report", type=Path, help="append a Markdown report here")
    options = parser.parse_args(argv)
    from pyscale.stacks import stack_names

    if options.stack not in stack_names():
        known = ", ".join(stack_names())
        print(f"error: unknown stack {options.stack!r}; known stacks: {known}", file=sys.stderr)
        return 2
    try:
        settings = load_policy_config(config_path(options.stack))
        resources, engine_config = run_offline_stack(options.stack)
    except Exception as error:  # any failure is reported as one clear line
        print(f"error: {error}", file=sys.stderr)
        return 2
    violations = evaluate(
        resources, settings, stack=options.stack, provider=provider_from_config(engine_config)
    )
    report = render_markdown(options.stack, len(resources), violations)
    print(report)
    if options.markdown_report:
        with options.markdown_report.open("a") as summary:
            summary.write(report)
    return 1 if mandatory(violations) else 0


if __name__ == "__main__":
    sys.exit(main())
