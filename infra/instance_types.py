"""Real EC2 instance types: their names, architecture and vCPUs, offline.

Where the names come from: botocore ships the EC2 API model, whose ``InstanceType`` enum
lists every type the API accepts (boto3 is already a runtime dependency). Loading it with
botocore's own loader means no hand-typed list to go stale: upgrading botocore brings the
new families.

Architecture (the AMI depends on it): Graviton families carry a ``g`` right after the
generation digit (t4g, m7g, c7gn, r8g, x2gd, im4gn, is4gen), plus ``a1``; ``p6e-gb200`` runs
on NVIDIA Grace (Arm) and is listed explicitly. Everything else (Intel, AMD, and the
accelerator families whose hosts are Intel/AMD) is x86_64. Mac families run macOS only, so
the blueprint refuses them. On AWS the program can confirm with
``aws.ec2.get_instance_type(...).supported_architectures``.

vCPUs are derived from the size, following the pattern in the AWS "Instance type
specifications" tables: ``medium`` = 1, ``large`` = 2, ``xlarge`` = 4, ``<N>xlarge`` = 4N,
``metal-<N>xl`` = 4N. The documented exceptions are handled explicitly:
- burstable families: t2 nano/micro/small = 1, medium/large = 2; t3, t3a, t4g, t8i
  nano..large = 2;
- first-generation families (t1, m1, m2, c1) have sizes that do not follow the pattern;
- HPC families run with SMT off (vCPUs = physical cores) and plain ``.metal`` sizes expose
  whatever the host has (i3.metal has 72 vCPUs, i3.16xlarge 64).
For those without an entry below ``vcpus`` is ``None`` rather than a guessed number; the
app's gunicorn config then sizes itself from the CPUs it sees at boot.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from typing import Literal

Architecture = Literal["arm64", "x86_64"]

_NAME = re.compile(r"^(?P<family>[a-z0-9-]+)\.(?P<size>[a-z0-9-]+)$")
# series letters, generation digits, attribute letters (e.g. "c" "7" "gn", "u7i" "-12tb").
_FAMILY = re.compile(r"^(?P<series>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z0-9-]*)$")
_XLARGE = re.compile(r"^(?P<multiple>\d*)xlarge$")
_METAL_XL = re.compile(r"^metal-(?P<multiple>\d+)xl$")

_ARM_FAMILIES_OUTSIDE_THE_G_RULE = frozenset({"a1", "p6e-gb200"})
_SIZE_VCPUS = {"nano": 1, "micro": 1, "small": 1, "medium": 1, "large": 2}
_BURSTABLE_TWO_VCPU_FAMILIES = frozenset({"t3", "t3a", "t4g", "t8i"})
# First-generation sizes that break the pattern (AWS "previous generation" tables).
_LEGACY_VCPUS = {
    "t1.micro": 1,
    "m1.small": 1,
    "m1.medium": 1,
    "m1.large": 2,
    "m1.xlarge": 4,
    "c1.medium": 2,
    "c1.xlarge": 8,
    "m2.xlarge": 2,
    "m2.2xlarge": 4,
    "m2.4xlarge": 8,
}
_SIZE_NOT_VCPUS_FAMILY_PREFIXES = ("hpc", "t1", "m1", "m2", "c1")


class UnknownInstanceTypeError(ValueError):
    """The name is not an EC2 instance type; the message suggests the closest ones."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = f" (did you mean {' or '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"{name!r} is not an EC2 instance type{hint}")
        self.name = name
        self.suggestions = suggestions


@dataclass(frozen=True)
class InstanceType:
    """One EC2 instance type as the blueprint needs it."""

    name: str
    family: str
    size: str
    architecture: Architecture | Literal["mac"]
    # None where the size does not determine the vCPU count (see the module docstring).
    vcpus: int | None
    burstable: bool

    @property
    def is_graviton(self) -> bool:
        return self.architecture == "arm64"

    def linux_architecture(self) -> Architecture:
        """The AMI architecture of a Linux type; a mac type (macOS only) is refused."""
        if self.architecture == "mac":
            raise ValueError(
                f"{self.name!r} runs macOS only; choose a Linux type such as t4g.small"
            )
        return self.architecture


@functools.cache
def all_names() -> tuple[str, ...]:
    """Every instance type name the EC2 API accepts, from botocore's EC2 model."""
    import botocore.loaders  # local: only the first lookup pays for loading the model

    model = botocore.loaders.Loader().load_service_model("ec2", "service-2")
    return tuple(model["shapes"]["InstanceType"]["enum"])


@functools.cache
def _name_set() -> frozenset[str]:
    return frozenset(all_names())


def suggestions(name: str, limit: int = 3) -> list[str]:
    """The closest real instance type names to a misspelt one."""
    return difflib.get_close_matches(name.strip().lower(), all_names(), n=limit, cutoff=0.6)


def architecture_of(family: str) -> Architecture | Literal["mac"]:
    if family.startswith("mac"):
        return "mac"
    if family in _ARM_FAMILIES_OUTSIDE_THE_G_RULE:
        return "arm64"
    parts = _FAMILY.match(family)
    if parts and parts["attributes"].startswith("g"):
        return "arm64"
    return "x86_64"


def vcpus_of(name: str) -> int | None:
    """vCPUs from the size, by the derivation in the module docstring (None: not derivable)."""
    family, size = name.split(".", 1)
    if name in _LEGACY_VCPUS:
        return _LEGACY_VCPUS[name]
    if family.startswith(_SIZE_NOT_VCPUS_FAMILY_PREFIXES) or family.startswith("mac"):
        return None
    if family == "t2" and size in ("medium", "large"):
        return 2
    if family in _BURSTABLE_TWO_VCPU_FAMILIES and size in _SIZE_VCPUS:
        return 2
    if size in _SIZE_VCPUS:
        return _SIZE_VCPUS[size]
    if xlarge := _XLARGE.match(size):
        return 4 * int(xlarge["multiple"] or 1)
    if metal := _METAL_XL.match(size):
        return 4 * int(metal["multiple"])
    return None  # plain ".metal": whatever the host has


def lookup(name: str) -> InstanceType:
    """The instance type called ``name``; UnknownInstanceTypeError with suggestions if none."""
    if name not in _name_set():
        raise UnknownInstanceTypeError(name, suggestions(name))
    parts = _NAME.match(name)
    if parts is None:  # every enum value has the family.size shape; guard a future change
        raise UnknownInstanceTypeError(name, [])
    family, size = parts["family"], parts["size"]
    return InstanceType(
        name=name,
        family=family,
        size=size,
        architecture=architecture_of(family),
        vcpus=vcpus_of(name),
        burstable=family.startswith("t") and family[1:2].isdigit(),
    )
