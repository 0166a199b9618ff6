"""The `pyscale cost` command (registered on the `pyscale` typer app in pyscale/cli.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pyscale.cost.capacity import BenchmarkError, load_benchmark
from pyscale.cost.document import build_cost
from pyscale.cost.estimate import CostError
from pyscale.cost.prices import PriceTableError, classifications
from pyscale.cost.render import cost_markdown, cost_renderable
from pyscale.cost.usage import UsageFileError, load_usage, usage_file_of
from pyscale.plan.command import (
    ConfigOption,
    MarkdownOption,
    PlanError,
    parse_overrides,
    run_of,
)

# Exit status of a cost that cannot be computed (unknown stack or type, a region or item the
# price table lacks, a bad override or usage file); 1 stays "the program failed" for `plan`.
EXIT_COST_FAILED = 2


def cost(
    stack: Annotated[
        str, typer.Option("--stack", "-s", help="Stack to estimate (stacks/Pulumi.<stack>.yaml).")
    ] = "dev",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (schema: pyscale/cost/cost.schema.json).")
    ] = False,
    markdown: MarkdownOption = False,
    config: ConfigOption = None,
    usage_file: Annotated[
        Path | None,
        typer.Option(
            "--usage-file",
            help="Monthly usage assumptions (default: stacks/Pulumi.<stack>.usage.yaml, if any).",
        ),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            help="Benchmark results.json for capacity (default: the newest bench/results/<date>/).",
        ),
    ] = None,
) -> None:
    """What the stack costs a month, line by line from sourced and dated prices, and what it
    can serve at its scaling targets from the committed benchmark — computed offline from the
    resources the real program registers (no cloud credentials)."""
    if as_json and markdown:
        raise typer.BadParameter("choose one of --json and --markdown", param_hint="--json")
    try:
        document = cost_of(stack, parse_overrides(config or []), usage_file, results)
    except (PlanError, CostError, UsageFileError, BenchmarkError, PriceTableError) as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
        raise typer.Exit(EXIT_COST_FAILED) from None
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif markdown:
        sys.stdout.write(cost_markdown(document) + "\n")
    else:
        Console().print(cost_renderable(document))


def cost_of(
    stack: str,
    overrides: dict[str, str],
    usage_path: Path | None = None,
    results: Path | None = None,
) -> dict[str, Any]:
    """The cost document of a stack (with overrides), or one of the command's errors."""
    if usage_path is not None and not usage_path.is_file():
        raise UsageFileError(f"--usage-file {usage_path}: no such file")
    return cost_of_run(run_of(stack, overrides), usage_path, results)


def cost_of_run(
    run: Any, usage_path: Path | None = None, results: Path | None = None
) -> dict[str, Any]:
    """The cost document of a program run, with the stack's usage file unless one is given."""
    from pyscale import stacks  # reads Pulumi.yaml; cheap, but only when a cost is asked for

    usage = load_usage(
        usage_path or usage_file_of(stacks.stacks_dir(), run.stack), classifications().usage_keys
    )
    return build_cost(run, usage=usage, benchmark=load_benchmark(results) if results else None)
