"""`pyscale deploy wait`: after `pulumi up`, wait for the instance refresh, verify the fleet
serves, and roll back to the previous launch template version when it does not
(pyscale/deploy/wait.py says why and how). Exit status: 0 verified, 1 rolled back,
2 could not start (nothing changed), 3 needs a human."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.status import Status

from pyscale.deploy.outputs import (
    OUTPUTS_ENV,
    DeployInputError,
    DeployTarget,
    deploy_target,
    read_outputs,
)
from pyscale.deploy.wait import (
    AutoScalingFleet,
    DeployWait,
    Outcome,
    Result,
    WaitSettings,
)

deploy_app = typer.Typer(help="Deploy steps that run around `pulumi up`.", no_args_is_help=True)
console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False)

_HEADLINES = {
    Outcome.VERIFIED: "[bold green]verified[/]",
    Outcome.ROLLED_BACK: "[bold yellow]failed, rolled back[/]",
    Outcome.BAD_INPUT: "[bold red]error[/]",
    Outcome.NEEDS_HUMAN: "[bold red]failed, needs a human[/]",
}
_MARKDOWN = {
    Outcome.VERIFIED: "✅ verified",
    Outcome.ROLLED_BACK: "⚠️ failed and rolled back",
    Outcome.BAD_INPUT: "❌ could not start",
    Outcome.NEEDS_HUMAN: "❌ failed, not rolled back: needs a human",
}


class _ConsoleReport:
    """Events as timestamped lines (they stay in CI logs); waiting as a spinner on a TTY."""

    def __init__(self, status: Status) -> None:
        self._status = status

    def event(self, message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", soft_wrap=True)

    def status(self, message: str) -> None:
        self._status.update(message)


def _write_report(path: Path, stack: str, result: Result) -> None:
    with path.open("a") as report:
        report.write(f"### Deploy verification: `{stack}`\n\n{_MARKDOWN[result.outcome]}: ")
        report.write(result.summary.replace("|", "\\|") + "\n\n")


def fleet_for(target: DeployTarget) -> AutoScalingFleet:
    """The group's AWS clients, in the stack's region, from the default credential chain."""
    # Imported here: boto3 costs a second to import, which the other commands need not pay.
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=target.region)
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return AutoScalingFleet(
        session.client("autoscaling", config=config),
        session.client("elbv2", config=config),
        target.asg_name,
    )


@deploy_app.command("wait")
def wait(
    stack: Annotated[
        str, typer.Option(help="The stack just deployed (for messages and `pulumi stack output`).")
    ],
    outputs: Annotated[
        Path | None,
        typer.Option(
            help=f"Stack outputs as JSON ('-' for stdin). Default: ${OUTPUTS_ENV}, else "
            "`pulumi stack output --json`.",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds the refresh and verification may take.", min=1)
    ] = WaitSettings.timeout_seconds,
    rollback_timeout: Annotated[
        float, typer.Option(help="Seconds the rollback may take.", min=1)
    ] = WaitSettings.rollback_timeout_seconds,
    poll: Annotated[
        float, typer.Option(help="Seconds between checks.", min=0.1)
    ] = WaitSettings.poll_seconds,
    previous_version: Annotated[
        str | None,
        typer.Option(
            help="Roll back to this launch template version (default: what the "
            "in-service instances ran before the refresh)."
        ),
    ] = None,
    markdown_report: Annotated[
        Path | None, typer.Option(help="Append the outcome as Markdown (e.g. the job summary).")
    ] = None,
) -> None:
    """Wait for the instance refresh `pulumi up` started, verify the fleet serves the new
    release, and roll it back to the previous launch template version if not."""
    try:
        if previous_version is not None and not previous_version.isdigit():
            raise DeployInputError(
                f"--previous-version must be a launch template version number, got "
                f"{previous_version!r}"
            )
        values, source = read_outputs(stack, outputs)
        target = deploy_target(values, source)
    except DeployInputError as error:
        result = Result(Outcome.BAD_INPUT, str(error))
    else:
        fleet = fleet_for(target)
        settings = WaitSettings(
            timeout_seconds=timeout,
            rollback_timeout_seconds=rollback_timeout,
            poll_seconds=poll,
            previous_version=previous_version,
        )
        console.print(
            f"[bold]pyscale deploy wait[/] — stack {stack}, outputs from {source}", soft_wrap=True
        )
        with console.status("starting…") as status:
            result = DeployWait(fleet, report=_ConsoleReport(status), settings=settings).run(target)
    out = console if result.outcome is Outcome.VERIFIED else error_console
    # soft_wrap: one line per message, whatever the terminal's width (CI logs grep well).
    out.print(f"{_HEADLINES[result.outcome]}: {result.summary}", soft_wrap=True)
    if markdown_report is not None:
        _write_report(markdown_report, stack, result)
    raise typer.Exit(int(result.outcome))
