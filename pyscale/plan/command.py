"""The `pyscale plan` command (registered on the `pyscale` typer app in pyscale/cli.py)."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from pyscale.plan.diff import diff_plans
from pyscale.plan.extract import build_plan
from pyscale.plan.render import diff_markdown, diff_renderable, plan_markdown, plan_renderable

EXIT_PLAN_FAILED = 1


class PlanError(Exception):
    """Something the user can fix (unknown stack, invalid config): one message, no traceback."""


# Options `pyscale plan` and `pyscale cost` share (same names, same meaning).
MarkdownOption = Annotated[
    bool, typer.Option("--markdown", help="Print Markdown (for a CI job summary).")
]
ConfigOption = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        metavar="KEY=VALUE",
        help="Override a config key for this run only, e.g. -c instanceType=m7g.xlarge.",
    ),
]


def plan(
    stack: Annotated[
        str, typer.Option("--stack", "-s", help="Stack to plan (stacks/Pulumi.<stack>.yaml).")
    ] = "dev",
    diff: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--diff",
            metavar="A B",
            help="Compare two stacks instead: the settings and resources that differ.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print JSON (schema: pyscale/plan/plan.schema.json)."),
    ] = False,
    markdown: MarkdownOption = False,
    config: ConfigOption = None,
) -> None:
    """Run the stack's real Pulumi program offline (no cloud credentials, no network) and show
    every resource it registers by component, the settings that matter, and the outputs."""
    if as_json and markdown:
        raise typer.BadParameter("choose one of --json and --markdown", param_hint="--json")
    error_console = Console(stderr=True)
    try:
        overrides = parse_overrides(config or [])
        if diff is not None:
            document = diff_plans(_plan_of(diff[0], overrides), _plan_of(diff[1], overrides))
        else:
            document = _plan_of(stack, overrides)
    except PlanError as error:
        error_console.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
        raise typer.Exit(EXIT_PLAN_FAILED) from None

    if as_json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif markdown:
        sys.stdout.write((diff_markdown if diff else plan_markdown)(document) + "\n")
    else:
        Console().print((diff_renderable if diff else plan_renderable)(document))


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``-c KEY=VALUE`` options as a mapping, or PlanError naming the malformed one."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise PlanError(f"--config {pair!r}: expected KEY=VALUE, e.g. instanceType=m7g.large")
        overrides[key.strip()] = value
    return overrides


def _plan_of(stack: str, overrides: dict[str, str]) -> dict[str, Any]:
    """Run ``stack`` under the offline runner and build its plan, or raise PlanError."""
    return build_plan(run_of(stack, overrides))


def run_of(stack: str, overrides: dict[str, str]) -> Any:
    """Run ``stack`` under the offline runner (a ProgramRun), or raise PlanError."""
    # Imported here: the runner loads the Pulumi SDK, which other commands never need.
    from pyscale.offline.runner import ProgramError, run_stack
    from pyscale.stacks import StackFileError, UnknownStackError

    try:
        # The program's own prints must not corrupt `--json` on stdout.
        with contextlib.redirect_stdout(sys.stderr):
            run = run_stack(stack, overrides or None)
    except (UnknownStackError, StackFileError) as error:
        raise PlanError(str(error)) from None
    except ProgramError as error:
        raise PlanError(error.message) from None
    return run
