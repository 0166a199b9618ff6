"""Specifications of the GitHub workflows: valid, linted, audited, safe by construction, and
in step with the stacks and the Makefile. All offline: the JSON schemas are the ones
check-jsonschema vendors, actionlint and zizmor run from .venv."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pyscale import image_publish, stacks

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
STACKS = stacks.stack_names()  # the stack files (usage files beside them are not stacks)

# What a `run:` script may call besides make: shell syntax and builtins only, so every
# command CI runs is a Makefile target a developer can run too.
SHELL_WORDS = {"if", "then", "elif", "else", "fi", "echo", "exit", "{", "}", "[", "]"}
# Makefile targets that run the Pulumi CLI, so their step may have the Pulumi secrets.
PULUMI_CLI_TARGETS = ("make stateful-summary ", "make image-use ", "make image-keep-deployed ")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as True.
    return workflow.get("on", workflow.get(True)) or {}


def steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def run_scripts():
    for path in WORKFLOWS:
        for job_id, step in steps(load(path)):
            if "run" in step:
                yield f"{path.name}:{job_id}:{step.get('name', '?')}", step["run"]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_./-]+):(?!=)", text, flags=re.MULTILINE))


def make_invocations() -> list[tuple[str, list[str]]]:
    """(where, targets) for every `make` a workflow runs."""
    found = []
    for where, script in run_scripts():
        for line in script.splitlines():
            words = shlex.split(line.split(">>")[0]) if line.strip() else []
            if words and words[0] == "make":
                targets = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
                found.append((where, targets))
    return found


def test_there_are_the_three_workflows():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "preview.yml"]


# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
def test_workflows_validate_against_the_github_workflow_schema():
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_config_validates_against_its_schema():
    result = subprocess.run(
        [
            BIN / "check-jsonschema",
            "--builtin-schema",
            "vendor.dependabot",
            GITHUB / "dependabot.yml",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing():
    # actionlint also runs shellcheck over every run: script when it is on PATH.
    result = subprocess.run(
        [BIN / "actionlint", "-no-color", *WORKFLOWS],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    result = subprocess.run(
        [BIN / "zizmor", "--offline", "--no-progress", "--format", "plain", GITHUB],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


# ---------------------------------------------------------------------------------------------
# Safe by construction
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_grants_nothing_by_default_and_each_job_states_its_permissions(path):
    workflow = load(path)
    assert workflow["permissions"] == {}
    for job_id, job in workflow["jobs"].items():
        assert "permissions" in job, f"{job_id} must state its permissions"
        assert job["permissions"].get("contents") == "read", job_id
        granted = {k for k, v in job["permissions"].items() if v == "write"}
        assert granted <= {"id-token", "pull-requests"}, (job_id, granted)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_workflow_runs_on_pull_request_target(path):
    assert "pull_request_target" not in triggers(load(path))
    assert "workflow_run" not in triggers(load(path))


def test_no_expression_is_interpolated_into_a_run_script():
    offenders = [where for where, script in run_scripts() if "${{" in script]
    assert offenders == []


def test_every_checkout_drops_its_credentials():
    for path in WORKFLOWS:
        for job_id, step in steps(load(path)):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, (path, job_id)


def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment():
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "uses:" not in line:
                continue
            match = re.search(r"uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$", line)
            assert match, f"{path.name}: not pinned to a SHA with a version comment: {line.strip()}"
            pins.setdefault(match[1], set()).add(match[2])
    assert all(len(shas) == 1 for shas in pins.values()), pins
    assert {"actions/checkout", "astral-sh/setup-uv", "pulumi/actions"} <= set(pins)


def test_only_same_repository_pull_requests_get_the_cloud_preview():
    jobs = load(GITHUB / "workflows" / "preview.yml")["jobs"]
    assert "head.repo.full_name == github.repository" in jobs["preview"]["if"]
    assert "head.repo.full_name != github.repository" in jobs["offline"]["if"]
    assert "id-token" not in jobs["offline"]["permissions"]
    offline_steps = [s.get("run", "") for s in jobs["offline"]["steps"]]
    assert any("GITHUB_STEP_SUMMARY" in run and "fork" in run for run in offline_steps)


def test_secrets_reach_only_the_pulumi_step():
    for path in WORKFLOWS:
        workflow = load(path)
        for job_id, job in workflow["jobs"].items():
            assert "secrets." not in str(job.get("env", {})), (path.name, job_id)
            for step in job.get("steps", []):
                if "secrets." in str(step.get("env", {})):
                    # pulumi/actions, or a Makefile target that runs the Pulumi CLI: the
                    # JSON preview for the stateful-changes summary, the eks image's
                    # `pulumi config set` / `pulumi stack output`
                    runs_pulumi = step.get("run", "").startswith(PULUMI_CLI_TARGETS)
                    assert step.get("uses", "").startswith("pulumi/actions@") or runs_pulumi, (
                        path.name,
                        step,
                    )


# ---------------------------------------------------------------------------------------------
# In step with the repository
# ---------------------------------------------------------------------------------------------
def test_preview_matrix_is_every_stack_file():
    jobs = load(GITHUB / "workflows" / "preview.yml")["jobs"]
    assert STACKS, "no stack files in stacks/"
    for job in ("preview", "offline"):
        assert sorted(jobs[job]["strategy"]["matrix"]["stack"]) == STACKS


def test_deploy_offers_every_stack_and_deploys_dev_on_push():
    workflow = load(GITHUB / "workflows" / "deploy.yml")
    on = triggers(workflow)
    assert sorted(on["workflow_dispatch"]["inputs"]["stack"]["options"]) == STACKS
    assert on["push"]["branches"] == ["main"]
    job = workflow["jobs"]["deploy"]
    assert job["environment"]["name"] == "${{ inputs.stack || 'dev' }}"
    assert job["concurrency"]["cancel-in-progress"] is False
    assert "${{ inputs.stack || 'dev' }}" in job["concurrency"]["group"]


def test_every_stack_has_a_policy_config_the_workflows_can_pass():
    for stack in STACKS:
        assert (ROOT / "policy" / "config" / f"{stack}.json").is_file(), stack
    assert (ROOT / "policy" / "PulumiPolicy.yaml").is_file()


def test_ci_runs_what_the_ci_entry_point_runs():
    ci_run = (ROOT / ".ci" / "run").read_text().splitlines()
    entry_point = [line.strip() for line in ci_run if line.strip().startswith("make ")]
    job = load(GITHUB / "workflows" / "ci.yml")["jobs"]["test"]
    workflow = [s["run"].strip() for s in job["steps"] if "run" in s]
    assert workflow == entry_point == ["make lint", "make test"]


def test_every_command_a_workflow_runs_is_a_makefile_target():
    targets = make_targets()
    invocations = make_invocations()
    assert invocations
    for where, wanted in invocations:
        assert wanted, f"{where}: bare `make`"
        missing = set(wanted) - targets
        assert not missing, f"{where}: no Makefile target {missing}"
    for where, script in run_scripts():
        for line in script.splitlines():
            words = shlex.split(line) if line.strip() else []
            if not words or words[0] == "make" or "=" in words[0]:
                continue
            assert words[0] in SHELL_WORDS, f"{where}: runs {words[0]!r}, not a Makefile target"


def test_the_makefile_targets_the_workflows_use_resolve():
    for _, wanted in make_invocations():
        result = subprocess.run(
            ["make", "-n", *wanted, "STACK=dev", "REPORT=/dev/null"],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# The eks image: built per CPU without credentials, pushed by the deploy job, its digest
# passed to `pulumi up` (pyscale/image_publish.py)
# ---------------------------------------------------------------------------------------------
def step_index(job: dict, predicate) -> int:
    matches = [i for i, step in enumerate(job["steps"]) if predicate(step)]
    assert len(matches) == 1, matches
    return matches[0]


def runs(target: str):
    return lambda step: step.get("run", "").startswith(f"make {target} ")


def uses(action: str, command: str | None = None):
    return lambda step: (
        step.get("uses", "").startswith(f"{action}@")
        and (step.get("with", {}).get("command") == command)
    )


def test_the_image_is_built_only_for_eks_stacks_natively_for_both_cpus_without_credentials():
    jobs = load(GITHUB / "workflows" / "deploy.yml")["jobs"]
    image = jobs["image"]
    assert image["needs"] == "platform"
    assert image["if"] == "needs.platform.outputs.platform == 'eks'"
    assert jobs["platform"]["outputs"]["platform"] == "${{ steps.platform.outputs.platform }}"
    assert image["strategy"]["matrix"]["include"] == [
        {"arch": "amd64", "runner": "ubuntu-24.04"},
        {"arch": "arm64", "runner": "ubuntu-24.04-arm"},
    ]
    assert image["runs-on"] == "${{ matrix.runner }}"
    assert image["permissions"] == {"contents": "read"}  # no OIDC token: nothing to push with
    assert "environment" not in image
    build = image["steps"][step_index(image, runs("image-archive"))]
    upload = image["steps"][step_index(image, lambda s: "upload-artifact@" in s.get("uses", ""))]
    # the file the Makefile saves is the one uploaded and the one publish looks for
    archive = image_publish.archive_name("${{ matrix.arch }}")
    assert upload["with"]["path"] == f"build/images/{archive}"
    assert build["run"] == 'make image-archive IMAGE_ARCH="$IMAGE_ARCH"'
    dry_run = subprocess.run(
        ["make", "-n", "image-archive", "IMAGE_ARCH=arm64"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    assert f"--output build/images/{image_publish.archive_name('arm64')}" in dry_run
    assert "--platform linux/arm64" in dry_run
    assert "check-base --image docker.io/library/python:3.12-slim-bookworm@sha256:" in dry_run


def test_the_deploy_pushes_the_image_and_passes_its_digest_before_the_up():
    jobs = load(GITHUB / "workflows" / "deploy.yml")["jobs"]
    deploy = jobs["deploy"]
    assert deploy["needs"] == ["platform", "image"]
    # ec2 and kubernetes stacks skip `image` and still deploy
    assert "needs.image.result == 'skipped'" in deploy["if"]
    assert "!cancelled()" in deploy["if"]
    credentials = step_index(deploy, uses("aws-actions/configure-aws-credentials"))
    download = step_index(deploy, uses("actions/download-artifact"))
    publish = step_index(deploy, lambda s: s.get("id") == "image")
    bootstrap = step_index(deploy, lambda s: "repository == 'missing'" in s.get("if", "") and
                           s.get("uses", "").startswith("pulumi/actions@"))  # fmt: skip
    republish = step_index(deploy, lambda s: s.get("id") == "first-image")
    use = step_index(deploy, runs("image-use"))
    up = step_index(deploy, lambda s: s.get("id") == "up")
    assert credentials < download < publish < bootstrap < republish < use < up
    steps = deploy["steps"]
    assert steps[publish]["run"] == (
        'make image-publish STACK="$STACK" IMAGE_TAG="$GITHUB_SHA" >> "$GITHUB_OUTPUT"'
    )
    assert steps[republish]["run"] == steps[publish]["run"]
    for index in (download, publish, use):
        assert steps[index]["if"] == "needs.platform.outputs.platform == 'eks'"
    # the image of the commit being deployed, from whichever push ran
    assert steps[use]["env"]["APP_IMAGE"] == (
        "${{ steps.first-image.outputs.image || steps.image.outputs.image }}"
    )
    # the first deploy's up is the same up, only without the image
    assert {k: v for k, v in steps[bootstrap]["with"].items() if k != "refresh"} == {
        k: v for k, v in steps[up]["with"].items() if k != "refresh"
    }


def test_the_ec2_fleet_wait_runs_only_for_ec2_stacks():
    deploy = load(GITHUB / "workflows" / "deploy.yml")["jobs"]["deploy"]
    wait = deploy["steps"][step_index(deploy, runs("deploy-wait"))]
    assert wait["if"] == "needs.platform.outputs.platform == 'ec2'"


def test_a_pull_requests_preview_keeps_the_image_the_eks_stack_runs():
    preview = load(GITHUB / "workflows" / "preview.yml")["jobs"]["preview"]
    platform = step_index(preview, runs("image-platform"))
    keep = step_index(preview, runs("image-keep-deployed"))
    stateful = step_index(preview, runs("stateful-summary"))
    cloud_preview = step_index(preview, uses("pulumi/actions", "preview"))
    assert platform < keep < stateful < cloud_preview
    assert preview["steps"][keep]["if"] == "steps.platform.outputs.platform == 'eks'"
