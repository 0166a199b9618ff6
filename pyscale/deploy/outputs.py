"""The stack outputs `pyscale deploy wait` needs, from wherever the caller has them.

Three sources, first match wins:
1. ``--outputs FILE`` (``-`` for stdin): a JSON object, as ``pulumi stack output --json``
   prints it;
2. the ``STACK_OUTPUTS_JSON`` environment variable: what the deploy workflow passes
   (``toJSON(steps.up.outputs)``: pulumi/actions sets one step output per stack output, every
   value a string, plus ``output``, the command's log);
3. ``pulumi stack output --json --stack <stack>``, when the Pulumi CLI is installed.

So the command is testable, and usable in CI, without the Pulumi CLI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

OUTPUTS_ENV: Final = "STACK_OUTPUTS_JSON"
# Exported by infra/__main__.py; launchTemplateVersion is optional (stacks deployed before it
# was exported): without it the group's own configured version is the one to verify.
REQUIRED: Final = ("region", "asgName", "url")
LAUNCH_TEMPLATE_VERSION: Final = "launchTemplateVersion"


class DeployInputError(Exception):
    """The command cannot start: the message says what is missing and where it looked."""


@dataclass(frozen=True)
class DeployTarget:
    """What one stack's deploy must have produced."""

    region: str
    asg_name: str
    url: str
    launch_template_version: str | None
    source: str
    """Where the outputs came from (for messages)."""


def _parse(text: str, source: str) -> Mapping[str, Any]:
    try:
        outputs = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise DeployInputError(f"{source} is not JSON: {error}") from None
    if not isinstance(outputs, dict):
        raise DeployInputError(f"{source} must be a JSON object of stack outputs")
    return outputs


def _from_pulumi(stack: str) -> Mapping[str, Any]:
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    except FileNotFoundError:
        raise DeployInputError(
            f"no stack outputs: pass --outputs FILE or set {OUTPUTS_ENV}, or install the "
            "Pulumi CLI so `pulumi stack output --json` can be read"
        ) from None
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise DeployInputError(f"`{' '.join(command)}` failed: {detail[0]}")
    return _parse(result.stdout, f"`{' '.join(command)}`")


def read_outputs(stack: str, outputs_file: Path | None) -> tuple[Mapping[str, Any], str]:
    """The stack outputs and a description of their source."""
    if outputs_file is not None:
        if str(outputs_file) == "-":
            return _parse(sys.stdin.read(), "the outputs on stdin"), "stdin"
        try:
            text = outputs_file.read_text()
        except OSError as error:
            raise DeployInputError(f"--outputs {outputs_file}: {error.strerror}") from None
        return _parse(text, f"--outputs {outputs_file}"), str(outputs_file)
    if os.environ.get(OUTPUTS_ENV, "").strip():
        return _parse(os.environ[OUTPUTS_ENV], OUTPUTS_ENV), OUTPUTS_ENV
    return _from_pulumi(stack), f"pulumi stack output ({stack})"


def deploy_target(outputs: Mapping[str, Any], source: str) -> DeployTarget:
    """Validate the outputs into a DeployTarget; one error naming every missing output."""
    values = {key: outputs.get(key) for key in (*REQUIRED, LAUNCH_TEMPLATE_VERSION)}
    missing = [key for key in REQUIRED if not isinstance(values[key], str) or not values[key]]
    if missing:
        raise DeployInputError(
            f"the stack outputs ({source}) lack {', '.join(missing)}: did `pulumi up` succeed? "
            "infra/__main__.py exports them"
        )
    version = values[LAUNCH_TEMPLATE_VERSION]
    if version is not None:
        version = str(version)
        if not re.fullmatch(r"[1-9][0-9]*", version):
            raise DeployInputError(
                f"the stack output {LAUNCH_TEMPLATE_VERSION} must be a version number, "
                f"got {version!r}"
            )
    url = str(values["url"])
    if not url.startswith(("http://", "https://")):
        raise DeployInputError(f"the stack output url must be http(s)://..., got {url!r}")
    return DeployTarget(
        region=str(values["region"]),
        asg_name=str(values["asgName"]),
        url=url.rstrip("/"),
        launch_template_version=version,
        source=source,
    )
