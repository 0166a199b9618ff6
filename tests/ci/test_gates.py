"""What the workflows gate on: a deploy fails unless `pyscale deploy wait` verified it; the
preview workflow reports its one required check on every pull request; every workflow
installs the one pinned uv the release's bytes depend on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.ci.test_workflows import GITHUB, ROOT, WORKFLOWS, load, steps, triggers

VERDICT = GITHUB / "scripts" / "needs_verdict.py"


def makefile_variable(name: str) -> str:
    match = re.search(rf"^{name} := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, name
    return match[1].strip()


# ---------------------------------------------------------------------------------------
# uv, pinned
# ---------------------------------------------------------------------------------------
def test_every_workflow_installs_the_makefiles_uv_version():
    wanted = makefile_variable("UV_VERSION")
    versions = [
        (path.name, step.get("with", {}).get("version"))
        for path in WORKFLOWS
        for _, step in steps(load(path))
        if step.get("uses", "").startswith("astral-sh/setup-uv@")
    ]
    assert versions
    assert {version for _, version in versions} == {wanted}, versions
    assert re.fullmatch(r"\d+\.\d+\.\d+", wanted)
    assert "uv==$(UV_VERSION)" in (ROOT / "Makefile").read_text()


# ---------------------------------------------------------------------------------------
# Deploy: verified or failed
# ---------------------------------------------------------------------------------------
def test_the_deploy_fails_unless_deploy_wait_verifies_it_after_pulumi_up():
    job_steps = load(GITHUB / "workflows" / "deploy.yml")["jobs"]["deploy"]["steps"]
    up = next(i for i, s in enumerate(job_steps) if s.get("id") == "up")
    wait = next(i for i, s in enumerate(job_steps) if "make deploy-wait" in s.get("run", ""))
    step = job_steps[wait]

    assert wait > up
    assert step["env"]["STACK_OUTPUTS_JSON"] == "${{ toJSON(steps.up.outputs) }}"
    assert 'STACK="$STACK"' in step["run"]
    # A failing deploy wait fails the job: nothing lets the step pass on error. It runs on
    # every ec2 deploy; eks and kubernetes have no instance refresh (the Kubernetes
    # provider waits for the Deployment's rollout inside `pulumi up`).
    assert "continue-on-error" not in step
    assert step["if"] == "needs.platform.outputs.platform == 'ec2'"


# ---------------------------------------------------------------------------------------
# Preview: one check that always reports
# ---------------------------------------------------------------------------------------
def test_the_preview_workflow_runs_on_every_pull_request():
    on = triggers(load(GITHUB / "workflows" / "preview.yml"))
    assert "pull_request" in on
    assert not (on["pull_request"] or {}).get("paths")
    assert not (on["pull_request"] or {}).get("paths-ignore")


def test_its_required_check_always_reports_and_judges_every_job():
    jobs = load(GITHUB / "workflows" / "preview.yml")["jobs"]
    verdict = jobs["verdict"]

    assert verdict["name"] == "preview"
    assert verdict["if"] == "always()"
    assert sorted(verdict["needs"]) == sorted(set(jobs) - {"verdict"})
    assert "strategy" not in verdict  # a matrix check would be named per stack
    run = next(s for s in verdict["steps"] if "run" in s)
    assert run["run"].strip() == "make needs-verdict"
    assert run["env"]["NEEDS_JSON"] == "${{ toJSON(needs) }}"
    for job in ("preview", "offline"):
        assert jobs[job]["needs"] == "changes"
        assert jobs[job]["if"].startswith("needs.changes.outputs.program == 'true' && ")


def run_verdict(needs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, VERDICT],
        env={**os.environ, "NEEDS_JSON": json.dumps(needs)},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("results", "passes"),
    [
        ({"changes": "success", "preview": "success", "offline": "skipped"}, True),
        # Nothing a preview covers changed (a README edit, Dependabot bumping an action).
        ({"changes": "success", "preview": "skipped", "offline": "skipped"}, True),
        ({"changes": "success", "preview": "failure", "offline": "skipped"}, False),
        ({"changes": "success", "preview": "cancelled", "offline": "skipped"}, False),
        ({"changes": "failure", "preview": "skipped", "offline": "skipped"}, False),
    ],
)
def test_the_verdict_passes_only_when_every_job_passed_or_was_skipped(results, passes):
    result = run_verdict({job: {"result": r, "outputs": {}} for job, r in results.items()})

    assert (result.returncode == 0) is passes, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"{job}: {r}" for job, r in sorted(results.items())]


def test_the_verdict_refuses_what_is_not_the_needs_context():
    assert run_verdict([1]).returncode == 2
    assert run_verdict({}).returncode == 1


@pytest.fixture
def repository(tmp_path):
    """A git repository with the Makefile, one commit on a base branch."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "fleet.py").write_text("# fleet\n")
    (tmp_path / "README.md").write_text("# readme\n")

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.com",
            },
        )
        return result.stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "base")
    return tmp_path, git


def preview_scope(directory, base: str) -> str:
    result = subprocess.run(
        ["make", "-s", "preview-scope", f"BASE={base}"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("changed", "program"),
    [("README.md", "false"), ("infra/fleet.py", "true")],
)
def test_the_scope_says_whether_the_pull_request_changes_what_a_preview_covers(
    repository, changed, program
):
    directory, git = repository
    base = git("rev-parse", "HEAD")
    (directory / changed).write_text("# changed\n")
    git("commit", "-q", "-am", "change")

    assert preview_scope(directory, base) == f"program={program}"
