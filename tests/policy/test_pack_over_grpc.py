"""The policy pack as the Pulumi CLI runs it: `python -u -m pulumi.policy <engine> policy/`
starts the analyzer's gRPC server and prints its port; the engine then asks it for its
policies, configures it from `--policy-pack-config`, and sends each resource to Analyze.
These tests play the engine's part over a real gRPC channel on loopback."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel

from policy import rules
from policy.offline import config_path, load_policy_config

ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policy")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _read_port(process)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=STARTUP_DEADLINE_S)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def _read_port(process: subprocess.Popen) -> int:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if ready:
            line = process.stdout.readline()
            if line.strip().isdigit():
                return int(line)
            if not line:
                break
    process.kill()
    raise AssertionError(f"policy pack did not start: {process.stderr.read()}")


def analyze(stub, type_: str, name: str, props: dict) -> list:
    properties = struct_pb2.Struct()
    properties.update(props)
    request = analyzer_pb2.AnalyzeRequest(
        type=type_,
        properties=properties,
        urn=f"urn:pulumi:prod::pyscale::{type_}::{name}",
        name=name,
    )
    return list(stub.Analyze(request).diagnostics)


def configure(stub, stack: str) -> None:
    """Send the stack's policy config the way the CLI does: every policy with its level."""
    levels = {
        EnforcementLevel.ADVISORY: analyzer_pb2.ADVISORY,
        EnforcementLevel.MANDATORY: analyzer_pb2.MANDATORY,
        EnforcementLevel.DISABLED: analyzer_pb2.DISABLED,
    }
    policy_config = {}
    for name, setting in load_policy_config(config_path(stack)).items():
        properties = struct_pb2.Struct()
        properties.update(dict(setting.properties))
        policy_config[name] = analyzer_pb2.PolicyConfig(
            enforcementLevel=levels[setting.level], properties=properties
        )
    stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=policy_config))


def test_the_pack_announces_every_policy_with_its_level(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == rules.PACK_NAME
    announced = {p.name: p.enforcementLevel for p in info.policies}
    assert list(announced) == rules.policy_names()
    assert announced["imdsv2-required"] == analyzer_pb2.MANDATORY
    assert announced["prod-alb-deletion-protection"] == analyzer_pb2.DISABLED
    assert announced["required-tags"] == analyzer_pb2.ADVISORY


def test_the_engine_gets_a_mandatory_diagnostic_for_a_launch_template_allowing_imdsv1(analyzer):
    diagnostics = analyze(
        analyzer,
        rules.LAUNCH_TEMPLATE,
        "web-lt",
        {
            "metadataOptions": {"httpTokens": "optional"},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}],
            "tags": {"Project": "pyscale", "Environment": "prod"},
        },
    )
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [
        ("imdsv2-required", analyzer_pb2.MANDATORY)
    ]
    assert 'http_tokens: "required"' in diagnostics[0].message


def test_policy_config_turns_a_production_policy_on(analyzer):
    load_balancer = {
        "loadBalancerType": "application",
        "dropInvalidHeaderFields": True,
        "tags": {"Project": "pyscale", "Environment": "prod"},
    }
    before = analyze(analyzer, rules.LOAD_BALANCERS[0], "web-alb", load_balancer)
    configure(analyzer, "prod")
    after = analyze(analyzer, rules.LOAD_BALANCERS[0], "web-alb", load_balancer)
    assert before == []
    assert [(d.policyName, d.enforcementLevel) for d in after] == [
        ("prod-alb-deletion-protection", analyzer_pb2.MANDATORY)
    ]
    assert "enable_deletion_protection=True" in after[0].message
