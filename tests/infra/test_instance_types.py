"""EC2 instance types: real names from botocore, architecture, vCPUs by the documented rule."""

from __future__ import annotations

import pytest

from infra import instance_types


def test_names_come_from_the_ec2_api_model():
    names = instance_types.all_names()
    assert {"t4g.small", "m7g.large", "c7i.xlarge", "r8g.2xlarge"} <= set(names)
    assert "t4g.smal" not in names


@pytest.mark.parametrize(
    ("name", "architecture"),
    [
        ("t4g.small", "arm64"),
        ("m7g.large", "arm64"),
        ("c7gn.xlarge", "arm64"),
        ("r8g.2xlarge", "arm64"),
        ("x2gd.medium", "arm64"),
        ("im4gn.large", "arm64"),
        ("a1.large", "arm64"),
        ("t3.micro", "x86_64"),
        ("m7i.large", "x86_64"),
        ("c7a.large", "x86_64"),
        ("m7i-flex.large", "x86_64"),
        ("g5.xlarge", "x86_64"),
        ("mac2.metal", "mac"),
    ],
)
def test_architecture_follows_the_graviton_rule(name, architecture):
    assert instance_types.lookup(name).architecture == architecture


@pytest.mark.parametrize(
    ("name", "vcpus"),
    [
        ("t2.micro", 1),
        ("t2.medium", 2),
        ("t3.micro", 2),
        ("t4g.small", 2),
        ("t4g.xlarge", 4),
        ("a1.medium", 1),
        ("m7g.medium", 1),
        ("m7g.large", 2),
        ("c7g.16xlarge", 64),
        ("m5.24xlarge", 96),
        ("m7i.metal-48xl", 192),
        ("c1.xlarge", 8),
        ("i3.metal", None),  # 72 on AWS, not what the size says: not derived
        ("hpc7a.96xlarge", None),  # SMT off: vCPUs are physical cores
    ],
)
def test_vcpus_are_derived_from_the_size_with_documented_exceptions(name, vcpus):
    assert instance_types.lookup(name).vcpus == vcpus


def test_every_real_type_gets_an_answer_without_error():
    for name in instance_types.all_names():
        found = instance_types.lookup(name)
        assert found.vcpus is None or found.vcpus >= 1


def test_a_typo_suggests_the_closest_real_types():
    with pytest.raises(instance_types.UnknownInstanceTypeError) as error:
        instance_types.lookup("m7g.larg")
    assert "m7g.large" in error.value.suggestions
    assert "did you mean" in str(error.value)
