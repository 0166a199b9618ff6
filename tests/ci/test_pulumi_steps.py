"""The jobs that run the Pulumi CLI (pulumi/actions) as GitHub would run them: the CLI uses
Pulumi.yaml's runtime (toolchain uv, virtualenv .venv) and the policy pack's own venv
(policy/venv), and installs neither — so uv must be on PATH and both venvs built before the
Pulumi step; the stack name must fit the backend the repository variables choose."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.ci.test_workflows import GITHUB, ROOT, load, make_targets

PULUMI_JOBS = [("preview.yml", "preview"), ("deploy.yml", "deploy")]


def job_steps(workflow: str, job: str) -> list[dict]:
    return load(GITHUB / "workflows" / workflow)["jobs"][job]["steps"]


def is_pulumi_command(step: dict) -> bool:
    """A pulumi/actions step that runs a command (without one the action only installs
    the CLI)."""
    return step.get("uses", "").startswith("pulumi/actions@") and "command" in step.get("with", {})


def index_of(steps: list[dict], predicate) -> int:
    found = [i for i, step in enumerate(steps) if predicate(step)]
    assert found, "no such step"
    return found[0]


@pytest.mark.parametrize(("workflow", "job"), PULUMI_JOBS)
def test_uv_and_both_venvs_are_ready_before_the_pulumi_step(workflow, job):
    runtime = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]
    pack = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert runtime == {"toolchain": "uv", "virtualenv": ".venv"}
    assert pack["runtime"]["options"]["virtualenv"] == "venv"

    steps = job_steps(workflow, job)
    pulumi = index_of(steps, is_pulumi_command)
    setup_uv = index_of(steps, lambda s: s.get("uses", "").startswith("astral-sh/setup-uv@"))
    install = index_of(
        steps, lambda s: re.search(r"\bmake\b.*\bsync\b.*\bpolicy-venv\b", s.get("run", ""))
    )
    assert setup_uv < install < pulumi
    assert steps[pulumi]["with"]["policyPacks"] == "policy"
    assert steps[pulumi]["with"]["stack-name"] == "${{ steps.stack.outputs.ref }}"


def test_the_policy_venv_installs_what_the_pack_imports():
    requirements = (ROOT / "policy" / "requirements.txt").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", requirements, flags=re.MULTILINE))
    assert {"pulumi", "pulumi-policy"} <= set(pinned)
    entry = (ROOT / "policy" / "__main__.py").read_text()
    rules = (ROOT / "policy" / "rules.py").read_text()
    imported = set(re.findall(r"^(?:from|import) ([a-z_]+)", entry + rules, flags=re.MULTILINE))
    # Standard library, the pack's own module, and what requirements.txt installs.
    assert imported - {"__future__", "collections", "fnmatch", "json", "typing", "rules"} == {
        "pulumi_policy"
    }


def test_the_policy_requirements_are_exactly_uv_locks_policy_group(tmp_path):
    # GIVEN policy/requirements.txt exported afresh from uv.lock
    fresh = tmp_path / "requirements.txt"
    subprocess.run(
        ["make", "-s", "policy-requirements", f"POLICY_REQUIREMENTS={fresh}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    committed = (ROOT / "policy" / "requirements.txt").read_text()

    # THEN the committed file is that export: same packages, versions and hashes
    assert committed == fresh.read_text(), (
        "policy/requirements.txt is stale: make policy-requirements"
    )
    lock = (ROOT / "uv.lock").read_text()
    for name, version in re.findall(r"^([a-z0-9-]+)==([^\s\\]+)", committed, flags=re.MULTILINE):
        assert f'name = "{name}"\nversion = "{version}"' in lock, (name, version)
    assert "pulumi-policy==" in committed
    # and no second updater pins it behind uv.lock's back
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert all(u["package-ecosystem"] != "pip" for u in dependabot["updates"])


def run_stack_step(workflow: str, job: str, tmp_path, **variables: str):
    script = next(s for s in job_steps(workflow, job) if s.get("id") == "stack")["run"]
    output, summary = tmp_path / "output", tmp_path / "summary"
    env = {
        "PATH": "/usr/bin:/bin",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "PULUMI_PROJECT": "pyscale",
        "STACK": "prod",
        "AWS_REGION": "eu-west-1",
        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
        **variables,
    }
    result = subprocess.run(
        ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    return result, (output.read_text() if output.exists() else ""), summary


@pytest.mark.parametrize(("workflow", "job"), PULUMI_JOBS)
@pytest.mark.parametrize(
    ("variables", "ref"),
    [
        ({"PULUMI_BACKEND_URL": "s3://state-bucket"}, "organization/pyscale/prod"),
        ({"PULUMI_ORG": "acme"}, "acme/prod"),
    ],
    ids=["self-managed", "pulumi-cloud"],
)
def test_the_stack_name_fits_the_backend(workflow, job, variables, ref, tmp_path):
    result, output, _ = run_stack_step(workflow, job, tmp_path, **variables)
    assert result.returncode == 0, result.stdout + result.stderr
    assert output == f"ref={ref}\n"


@pytest.mark.parametrize(("workflow", "job"), PULUMI_JOBS)
def test_a_missing_backend_variable_stops_the_job_saying_what_to_set(workflow, job, tmp_path):
    result, output, summary = run_stack_step(workflow, job, tmp_path)
    assert result.returncode == 1
    assert output == ""
    assert "PULUMI_BACKEND_URL" in summary.read_text()
    assert "PULUMI_ORG" in summary.read_text()


def test_every_make_command_the_readme_shows_is_a_makefile_target():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"(?:^|`|\$ )make ((?:[a-z][\w-]*)(?: [a-z][\w-]*)*)", readme, re.M)
    assert commands
    targets = make_targets()
    for command in commands:
        for word in command.split():
            assert word in targets, f"README runs `make {command}`: no target {word!r}"
