"""What every stack has besides pyscale's keys: its name, its region (``aws:region``) and
the provider's default tags (``aws:defaultTags``). Each check returns its problems, each a
line naming the key (or the stack name) and what is allowed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from infra import regions
from infra.settings.base import did_you_mean

REGION_KEY = "aws:region"
# The aws provider's own setting: pulumi-aws applies these tags to every taggable resource.
# The program forwards them where the provider cannot reach: the Auto Scaling group (with
# propagate_at_launch) and the launch template's instance and volume tag specifications.
DEFAULT_TAGS_KEY = "aws:defaultTags"

# Components name their resources "<project>-<stack>-<role>" and Pulumi auto-names them by
# appending "-" and 7 random characters; the engine refuses (mid-deploy) a name that then
# exceeds the resource's limit. The tightest: the ALB and its target group ("-alb", "-app"),
# 32 characters. Their character rules (letters, digits, single hyphens) and S3's
# (lowercase) and ElastiCache's (starts with a letter, no "--") make the rest.
AUTONAME_SUFFIX_LENGTH = 8
_NAME_LIMITS = (
    ("the ALB and its target group", 32, len("-alb")),
    ("the ElastiCache replication group id", 40, len("-redis")),
    ("the instance role", 64, len("-instance-role")),
    ("the release bucket", 63, len("-release-bucket")),
)
MAX_RESOURCE_NAME_LENGTH = min(
    limit - suffix - AUTONAME_SUFFIX_LENGTH for _, limit, suffix in _NAME_LIMITS
)
_RESOURCE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def resource_name_problems(project: str, stack: str) -> list[str]:
    """The project and stack names make every resource name: check them against AWS's
    naming rules before `pulumi up` fails on the first auto-named resource."""
    problems = []
    name = f"{project}-{stack}"
    if not _RESOURCE_NAME.match(name):
        problems.append(
            f"stack name {stack!r} (project {project!r}): resource names are "
            f"'{name}-<role>', so the names may hold only lowercase letters, digits and "
            "single hyphens, starting with a letter (ALB, S3 and ElastiCache naming rules); "
            "rename the stack, e.g. `pulumi stack rename`"
        )
    if len(name) > MAX_RESOURCE_NAME_LENGTH:
        tightest, limit, _ = min(_NAME_LIMITS, key=lambda entry: entry[1] - entry[2])
        room = MAX_RESOURCE_NAME_LENGTH - len(project) - 1
        problems.append(
            f"stack name {stack!r} is too long: '{name}' is {len(name)} characters, at most "
            f"{MAX_RESOURCE_NAME_LENGTH} fit ({tightest} are auto-named '{name}-<role>-<7 "
            f"random>' within AWS's {limit}-character limit); use a stack name of at most "
            f"{room} characters with project {project!r}"
        )
    return problems


def read_region(config: Mapping[str, str]) -> tuple[str, list[str]]:
    region = (config.get(REGION_KEY) or "").strip()
    known = regions.known_regions()
    if not region:
        return region, [f"{REGION_KEY}: is required: set the AWS region, e.g. us-east-1"]
    if region not in known:
        hint = did_you_mean(region, known)
        return region, [f"{REGION_KEY}: {region!r} is not an AWS region{hint}"]
    return region, []


def read_default_tags(config: Mapping[str, str]) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """aws:defaultTags is ``{tags: {Key: value}}``; AWS tag rules checked here, before the
    provider would refuse them resource by resource. Sorted pairs: hashable settings."""
    raw = config.get(DEFAULT_TAGS_KEY)
    if raw is None:
        return (), []
    expected = f"{DEFAULT_TAGS_KEY}: must be an object {{tags: {{Key: value, ...}}}} of strings"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return (), [f"{expected}, got {raw!r}"]
    tags = value.get("tags") if isinstance(value, dict) else None
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        return (), [f"{expected}, got {raw!r}"]
    problems = []
    for key, tag_value in tags.items():
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            problems.append(
                f"{DEFAULT_TAGS_KEY}: tag key {key!r} must be 1-128 characters and not "
                "start with 'aws:'"
            )
        if len(tag_value) > 256:
            problems.append(f"{DEFAULT_TAGS_KEY}: tag {key!r}: value is longer than 256 characters")
    return tuple(sorted(tags.items())), problems
