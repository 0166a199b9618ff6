"""The deploy job's stack outputs, rendered for the job summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "stack_outputs.py"


def render(outputs_json: str, stack: str = "prod") -> subprocess.CompletedProcess:
    env = os.environ | {"STACK_OUTPUTS_JSON": outputs_json, "STACK": stack}
    return subprocess.run(
        [sys.executable, SCRIPT], capture_output=True, text=True, env=env, check=False
    )


def test_outputs_become_a_table_without_the_actions_own_log():
    outputs = {
        "url": "https://app.example.com",
        "albDnsName": "web-123.us-east-1.elb.amazonaws.com",
        "output": "Updating (prod)\n... the whole pulumi log ...",
    }
    result = render(json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    assert "### Stack outputs: `prod`" in result.stdout
    assert "| `url` | `https://app.example.com` |" in result.stdout
    assert "albDnsName" in result.stdout
    assert "pulumi log" not in result.stdout


def test_values_that_look_like_secrets_are_not_shown_but_secret_arns_are():
    outputs = {
        "cacheAuthToken": "hunter2",
        "cacheSecretArn": "arn:aws:secretsmanager:us-east-1:1:secret:x",
    }
    result = render(json.dumps(outputs))
    assert "hunter2" not in result.stdout
    assert "(secret, not shown)" in result.stdout
    assert "arn:aws:secretsmanager" in result.stdout


def test_no_outputs_says_so():
    assert "exported no outputs" in render("{}").stdout


def test_bad_input_is_a_clear_error():
    result = render("not json")
    assert result.returncode == 2
    assert "STACK_OUTPUTS_JSON is not JSON" in result.stderr
