"""`pyscale deploy wait` as a person or the deploy workflow runs it: where the stack outputs
come from, one clear line and exit status 2 when it cannot start (missing outputs or
credentials), and the exit statuses and output of a verified and a rolled-back deploy."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pyscale.cli import app
from pyscale.deploy import command
from pyscale.deploy.wait import AutoScalingFleet
from tests.deploy.aws import GROUP, REGION, instance

OUTPUTS = {
    "region": REGION,
    "asgName": GROUP,
    "url": "http://127.0.0.1:9",
    "launchTemplateVersion": "7",
    # pulumi/actions adds the command's log as `output`; it is not a stack output.
    "output": "Updating (prod)...",
}
NO_CREDENTIALS = {
    # The default credential chain finds nothing, and never asks EC2's metadata service.
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "BOTO_CONFIG": "/nonexistent/boto",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture
def no_credentials(monkeypatch):
    for name, value in NO_CREDENTIALS.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def invoke(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(app, ["deploy", "wait", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------------------------------
# Could not start: exit 2, one line, nothing changed
# ---------------------------------------------------------------------------------------
def test_missing_credentials_are_one_clear_line_and_exit_2(no_credentials):
    code, _, err = invoke("--stack", "prod", env={"STACK_OUTPUTS_JSON": json.dumps(OUTPUTS)})

    assert code == 2
    assert err.strip() == (
        "error: no AWS credentials: set AWS_PROFILE (or run `aws configure sso`), or run after "
        "the workflow's OIDC step (aws-actions/configure-aws-credentials)"
    )


def test_missing_outputs_are_named_and_exit_2():
    code, _, err = invoke(
        "--stack", "prod", env={"STACK_OUTPUTS_JSON": json.dumps({"url": "https://x"})}
    )

    assert code == 2
    assert err.strip() == (
        "error: the stack outputs (STACK_OUTPUTS_JSON) lack region, asgName: did `pulumi up` "
        "succeed? infra/__main__.py exports them"
    )


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ("not json", "error: STACK_OUTPUTS_JSON is not JSON: Expecting value"),
        ("[1]", "error: STACK_OUTPUTS_JSON must be a JSON object of stack outputs"),
        (
            json.dumps({**OUTPUTS, "launchTemplateVersion": "$Latest"}),
            "error: the stack output launchTemplateVersion must be a version number, got '$Latest'",
        ),
        (
            json.dumps({**OUTPUTS, "url": "pyscale.example.com"}),
            "error: the stack output url must be http(s)://..., got 'pyscale.example.com'",
        ),
    ],
)
def test_unusable_outputs_are_one_line_and_exit_2(outputs, message):
    code, _, err = invoke("--stack", "prod", env={"STACK_OUTPUTS_JSON": outputs})

    assert code == 2
    assert err.strip().startswith(message)
    assert "Traceback" not in err


def test_a_bad_previous_version_is_refused_before_anything_else():
    code, _, err = invoke("--stack", "prod", "--previous-version", "six")

    assert code == 2
    assert "--previous-version must be a launch template version number, got 'six'" in err


def test_without_outputs_or_the_pulumi_cli_it_says_how_to_give_them(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` here
    code, _, err = invoke("--stack", "prod", env={"STACK_OUTPUTS_JSON": ""})

    assert code == 2
    assert "no stack outputs: pass --outputs FILE or set STACK_OUTPUTS_JSON" in err


def test_outputs_are_read_from_the_pulumi_cli_for_the_named_stack(
    monkeypatch, tmp_path, no_credentials
):
    # A stand-in for the Pulumi CLI (none can be installed here): it records its arguments.
    calls = tmp_path / "calls"
    pulumi = tmp_path / "bin" / "pulumi"
    pulumi.parent.mkdir()
    pulumi.write_text(
        f"#!/bin/sh\necho \"$@\" > {calls}\ncat <<'EOF'\n{json.dumps(OUTPUTS)}\nEOF\n"
    )
    pulumi.chmod(pulumi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{pulumi.parent}:{os.environ['PATH']}")

    code, out, err = invoke("--stack", "staging", env={"STACK_OUTPUTS_JSON": ""})

    assert calls.read_text().split() == ["stack", "output", "--json", "--stack", "staging"]
    assert "outputs from pulumi stack output (staging)" in out
    assert code == 2
    assert "no AWS credentials" in err  # it got as far as asking AWS


def test_outputs_can_come_from_a_file(tmp_path, no_credentials):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))

    code, out, err = invoke("--stack", "prod", "--outputs", str(path))

    assert f"outputs from {path}" in out
    assert code == 2
    assert "no AWS credentials" in err


# ---------------------------------------------------------------------------------------
# Verified (0) and rolled back (1), as the workflow sees them
# ---------------------------------------------------------------------------------------
@pytest.fixture
def scripted_fleet(monkeypatch, aws):
    monkeypatch.setattr(
        command, "fleet_for", lambda target: AutoScalingFleet(aws.autoscaling, aws.elbv2, GROUP)
    )
    return aws


def test_a_verified_deploy_exits_0_and_writes_the_job_summary(
    scripted_fleet, health_server, tmp_path
):
    aws = scripted_fleet
    aws.group("7", [instance("i-old", "6")], min_size=1)
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "Successful", 100)
    aws.group("7", [instance("i-new", "7")], min_size=1)
    aws.target_health({"i-new": "healthy"})
    summary = tmp_path / "summary.md"
    outputs = json.dumps({**OUTPUTS, "url": health_server.url})

    code, out, _ = invoke(
        "--stack", "prod", "--markdown-report", str(summary), env={"STACK_OUTPUTS_JSON": outputs}
    )

    assert code == 0, out
    assert f"verified: launch template version 7 serves {health_server.url}/healthz with 200" in out
    assert "refresh r-deploy Successful 100%" in out
    assert summary.read_text().startswith("### Deploy verification: `prod`\n\n✅ verified: ")
    aws.assert_conversation_over()


def test_a_rolled_back_deploy_exits_1_and_says_what_happened(scripted_fleet, health_server):
    aws = scripted_fleet
    aws.group("7", [instance("i-old", "6")], min_size=1)
    aws.latest_refresh("r-deploy")
    aws.refresh("r-deploy", "Failed", 0, "launch failed")
    aws.latest_refresh("r-deploy", "Failed", "launch failed")
    aws.group("7", [instance("i-old", "6")], min_size=1)
    aws.group_pointed_at("6")
    aws.refresh_started("6", "r-back")
    aws.refresh("r-back", "Successful", 100)
    aws.group("6", [instance("i-old", "6")], min_size=1)
    aws.target_health({"i-old": "healthy"})
    outputs = json.dumps({**OUTPUTS, "url": health_server.url})

    code, out, err = invoke("--stack", "prod", env={"STACK_OUTPUTS_JSON": outputs})

    assert code == 1
    assert "deploy failed: the instance refresh ended Failed: launch failed" in out
    assert err.strip() == (
        "failed, rolled back: the instance refresh ended Failed: launch failed. Rolled back: "
        f"launch template version 6 serves {health_server.url}/healthz with 200"
    )
    aws.assert_conversation_over()


def test_the_console_script_exits_with_the_commands_status(tmp_path):
    pyscale = Path(sys.executable).with_name("pyscale")
    env = {**os.environ, "STACK_OUTPUTS_JSON": "{}"}

    result = subprocess.run(
        [pyscale, "deploy", "wait", "--stack", "prod"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("error: the stack outputs (STACK_OUTPUTS_JSON) lack region")
