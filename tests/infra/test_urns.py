"""Every resource keeps its URN: a renamed or re-parented resource is a replacement in the
users' clouds (a new VPC, a new cache, its data gone). The URNs of every shipped stack and
of the what-if shapes below were recorded from the program before the settings redesign
(tests/infra/fixtures/urns.json); each run must register exactly those URNs.

A variant added here is recorded with ``python -m tests.infra.test_urns <variant>``. An
existing variant is re-recorded (``--replace <variant>``) only for a change that means to
add, remove or rename resources, with its effect on deployed stacks said in the commit;
a rename that should not replace anything needs an alias instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pyscale.offline import run_stack

FIXTURE = Path(__file__).parent / "fixtures" / "urns.json"
ADOPTED_VPC = {
    "existingVpcId": "vpc-0123456789abcdef0",
    "existingPublicSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
    "existingPrivateSubnetIds": ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"],
}
# variant -> (stack it starts from, config overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dev": ("dev", {}),
    "staging": ("staging", {}),
    "prod": ("prod", {}),
    "dev-warm-pool": ("dev", {"warmPool": True, "warmPoolMinSize": 1}),
    "dev-spot-mixed": (
        "dev",
        {"mixedInstanceTypes": ["t4g.medium"], "onDemandPercentAboveBase": 50},
    ),
    "dev-cluster-cache": (
        "dev",
        {
            "cacheClusterMode": True,
            "cacheAutomaticFailover": True,
            "cacheShards": 3,
            "cacheReplicas": 1,
        },
    ),
    # IAM cache authentication: the RBAC users and their group, no AUTH token.
    "dev-iam": ("dev", {"cacheAuth": "iam"}),
    "dev-redis-no-auth": (
        "dev",
        {"cacheEngine": "redis", "cacheAuth": "none", "cacheTransitEncryption": False},
    ),
    "dev-https-domain": ("dev", {"domainName": "app.example.org", "hostedZoneId": "Z0123ABC"}),
    "dev-https-certificate": (
        "dev",
        {"certificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/abc-123"},
    ),
    "dev-adopted-vpc": ("dev", ADOPTED_VPC),
    "dev-edge-extras": (
        "dev",
        {
            "albAccessLogs": True,
            "waf": True,
            "alarmEmail": "ops@example.org",
            "scheduledScaling": [
                {
                    "name": "night",
                    "recurrence": "0 20 * * *",
                    "minSize": 1,
                    "maxSize": 1,
                    "desiredCapacity": 1,
                }
            ],
        },
    ),
    "prod-nat-single-eu": ("prod", {"aws:region": "eu-west-1", "natGateways": "single"}),
    # eks: the cluster, its node groups (one per capacity type) and their alarms
    "dev-eks-spot": ("dev-eks", {"eksSpotInstanceTypes": ["t4g.large"], "eksSpotMaxSize": 3}),
}


def urns_of(variant: str) -> list[str]:
    stack, overrides = VARIANTS[variant]
    return sorted(resource.urn for resource in run_stack(stack, overrides).resources)


def recorded() -> dict[str, list[str]]:
    urns: dict[str, list[str]] = json.loads(FIXTURE.read_text())
    return urns


def test_every_variant_is_recorded() -> None:
    assert set(recorded()) == set(VARIANTS)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_program_registers_exactly_the_recorded_urns(variant: str) -> None:
    expected = recorded()[variant]
    actual = urns_of(variant)

    assert sorted(set(expected) - set(actual)) == [], "resources gone or renamed"
    assert sorted(set(actual) - set(expected)) == [], "resources added or renamed"


if __name__ == "__main__":  # record variants (see the module docstring)
    urns = recorded() if FIXTURE.exists() else {}
    replace = "--replace" in sys.argv
    for name in [arg for arg in sys.argv[1:] if arg != "--replace"] or list(VARIANTS):
        if name in urns and not replace:
            raise SystemExit(f"{name} is recorded already: alias a renamed resource instead")
        urns[name] = urns_of(name)
    FIXTURE.write_text(json.dumps(dict(sorted(urns.items())), indent=1) + "\n")
