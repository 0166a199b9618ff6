"""Where the cost shows up besides `pyscale cost`: the offline plan and its diff, the preview
workflow's job summary and the README's stack table — all from the same document."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pyscale import docs, stacks
from pyscale.plan import diff_plans

ROOT = Path(__file__).resolve().parents[2]
STACKS = stacks.stack_names()
# The fleet's capacity and the README table describe the EC2 blueprint's stacks.
EC2_STACKS = stacks.stacks_on("ec2")


@pytest.mark.parametrize("stack", EC2_STACKS)
def test_the_plan_carries_the_stacks_monthly_total_and_capacity(
    plan_json, cost_json, stack
) -> None:
    summary, cost = plan_json(stack)["cost"], cost_json(stack)
    assert summary["monthly_usd"] == cost["totals"]["monthly_usd"]
    assert summary["price_not_found"] == cost["totals"]["price_not_found"]
    served = {
        entry["scenario"]: entry["fleet_rps_at_max"] for entry in cost["capacity"]["scenarios"]
    }
    assert {
        key: entry["fleet_rps_at_max"] for key, entry in summary["capacity"]["scenarios"].items()
    } == served


def test_the_diff_shows_both_costs_and_the_difference(plan_json) -> None:
    diff = diff_plans(plan_json("dev"), plan_json("prod"))["cost"]
    assert diff["monthly_usd_difference"] == pytest.approx(
        diff["b"]["monthly_usd"] - diff["a"]["monthly_usd"], abs=0.01
    )


def test_the_plans_text_and_markdown_show_the_cost_section(run_cli) -> None:
    markdown = run_cli("plan", "--stack", "dev", "--markdown")
    assert "#### Cost and capacity" in markdown.stdout
    assert "Monthly cost: $" in markdown.stdout
    text = run_cli("plan", "--diff", "dev", "prod")
    assert "Cost and capacity" in text.stdout
    assert "difference a month (b - a)" in text.stdout


def test_a_plan_whose_cost_cannot_be_estimated_still_plans_and_says_why(run_cli) -> None:
    import json

    result = run_cli("plan", "--stack", "dev", "--json", "-c", "aws:region=eu-west-1")
    assert result.exit_code == 0, result.stderr
    assert "no prices for region 'eu-west-1'" in json.loads(result.stdout)["cost"]["error"]


def test_the_preview_workflow_puts_every_stacks_cost_in_the_job_summary_forks_included() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())
    for job_id in ("preview", "offline"):  # same-repository pull requests, and forks
        job = workflow["jobs"][job_id]
        runs = [step.get("run", "") for step in job["steps"]]
        assert any(
            "make cost" in run and "COST_FORMAT=markdown" in run and "$GITHUB_STEP_SUMMARY" in run
            for run in runs
        ), job_id
        assert (
            job["strategy"]["matrix"]["stack"] == STACKS
            or sorted(job["strategy"]["matrix"]["stack"]) == STACKS
        )


def test_the_readme_stack_table_is_generated_from_the_tool_and_carries_each_total(
    cost_json,
) -> None:
    # `make docs` writes it (pyscale/docs.py), tests/infra/test_generated_docs.py keeps it
    # current; here: it is the tool's, with each stack's monthly total.
    [table] = [region for region in docs.REGIONS if region.name == "stack table"]
    assert table.render is docs.render_stack_table
    region = (ROOT / "README.md").read_text().split(table.begin)[1].split(table.end)[0]
    for stack in EC2_STACKS:
        row = next(line for line in region.splitlines() if line.startswith(f"| `{stack}` |"))
        assert f"${cost_json(stack)['totals']['monthly_usd']:,.2f}" in row
