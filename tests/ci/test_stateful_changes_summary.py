"""The top of the PR preview's summary: stateful resources replaced or deleted, read from
`pulumi preview --json`. The fixture has the digest's shape as pulumi/pulumi writes it
(pkg/backend/display/json.go: steps with op, urn, oldState/newState, replaceReasons,
detailedDiff; the create-replacement / replace / delete-replaced triple of one replacement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.ci.test_pulumi_steps import index_of, job_steps

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "stateful_changes.py"
FIXTURE = Path(__file__).parent / "fixtures" / "preview-prod-replaces-cache.json"


def summarize(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, str(path), *extra],
        capture_output=True,
        text=True,
        env={"STACK": "prod", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| **")]


def test_the_cache_replacement_and_the_subnet_deletion_head_the_summary():
    # GIVEN a preview that replaces the cache, replaces a parameter group, deletes a subnet,
    # updates the ALB and a launch template and creates a bucket
    result = summarize(FIXTURE)

    # THEN exactly the stateful replacements and deletions are listed, the replacement once
    # with why AWS must replace it
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### Stateful resources replaced or deleted: `prod`")
    assert "**2 stateful resource(s) would be replaced or deleted.**" in result.stdout
    rows = table_rows(result.stdout)
    assert rows == [
        "| **replaced** | `pyscale-prod-redis` | cache: every cached key is lost | "
        "`atRestEncryptionEnabled` |",
        "| **deleted** | `pyscale-prod-private-us-east-1c` | subnet: everything in it is "
        "replaced with it | — |",
    ]


def test_a_preview_that_touches_no_stateful_resource_says_so(tmp_path):
    digest = json.loads(FIXTURE.read_text())
    digest["steps"] = [s for s in digest["steps"] if s["op"] in ("same", "update", "create")]
    path = tmp_path / "preview.json"
    path.write_text(json.dumps(digest))

    result = summarize(path)
    assert result.returncode == 0
    assert "None: no " in result.stdout
    assert table_rows(result.stdout) == []


def test_a_failed_preview_is_not_reported_as_harmless(tmp_path):
    empty = tmp_path / "preview.json"
    empty.write_text("")
    result = summarize(empty, "255")
    assert result.returncode == 0
    assert "The preview failed" in result.stdout
    assert "None:" not in result.stdout


def test_a_file_that_is_not_a_preview_is_one_clear_error(tmp_path):
    for text, message in (("not json", "Expecting value"), ('{"resources": []}', "'steps'")):
        path = tmp_path / "bad.json"
        path.write_text(text)
        result = summarize(path)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr


def test_the_preview_job_writes_it_before_the_preview_writes_its_diff():
    # GIVEN the cloud preview job
    steps = job_steps("preview.yml", "preview")
    summary = index_of(steps, lambda s: "stateful-summary" in s.get("run", ""))
    preview = index_of(steps, lambda s: s.get("with", {}).get("command") == "preview")

    # THEN the stateful summary comes first, from a JSON preview of the same stack, with the
    # project's venv (the script imports pyscale.plan.stateful)
    assert summary < preview
    assert steps[summary]["env"]["STACK_REF"] == "${{ steps.stack.outputs.ref }}"
    recipe = subprocess.run(
        ["make", "-n", "stateful-summary", "STACK_REF=org/prod", "REPORT=/dev/null"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert 'pulumi preview --stack "org/prod" --json' in recipe
    assert ".venv/bin/python .github/scripts/stateful_changes.py" in recipe
