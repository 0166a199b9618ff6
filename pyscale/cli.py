"""The `pyscale` command (entry point `pyscale.cli:main`).

`pyscale local up|roll|status|down` drive the one-machine topology (pyscale/local/).
`pyscale cache rotate-auth` rotates a deployed stack's cache AUTH token (pyscale/cache_auth.py).
`pyscale plan` and `pyscale cost` run a stack's program offline (pyscale/plan/, pyscale/cost/).
`pyscale deploy wait` verifies a deploy on AWS and rolls it back (pyscale/deploy/);
`pyscale iam-policy` prints the deploy role's policy (pyscale/iam_policy.py).
Every error the user can fix is printed as one clear message with a non-zero exit, never
a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from app.contract import Env
from pyscale import stacks
from pyscale.cost.command import cost as cost_command
from pyscale.deploy.command import deploy_app
from pyscale.local import haproxy
from pyscale.local import state as local_state
from pyscale.local.errors import LocalTopologyError
from pyscale.local.topology import DEFAULT_WSGI_APP, LocalTopology, TopologySpec
from pyscale.plan.command import plan as plan_command

app = typer.Typer(
    name="pyscale",
    help="pyscale: a Python web app on an auto-scaled, cached, load-balanced deployment.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
local_app = typer.Typer(
    help="The one-machine topology: redis-server + N app replicas + HAProxy.",
    no_args_is_help=True,
)
app.add_typer(local_app, name="local")
cache_app = typer.Typer(
    help="A deployed stack's ElastiCache (needs AWS credentials).", no_args_is_help=True
)
app.add_typer(cache_app, name="cache")
# `pyscale plan`: the stack's program run offline (pyscale/plan/).
app.command("plan")(plan_command)
# `pyscale cost`: monthly cost from sourced prices and capacity from the benchmark (pyscale/cost/).
app.command("cost")(cost_command)
# `pyscale deploy wait`: after `pulumi up`, follow the refresh, verify, roll back (pyscale/deploy/).
app.add_typer(deploy_app, name="deploy")

console = Console()
error_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

WorkdirOption = Annotated[
    Path,
    typer.Option(
        "--workdir",
        envvar="PYSCALE_LOCAL_DIR",
        help="Work directory holding the running topology's state, logs and Redis data.",
    ),
]


class _StopRequested(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C does, so `finally` stops every process."""


def _user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn LocalTopologyError into `error: <message>` on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except LocalTopologyError as error:
            error_console.print(f"[bold red]error:[/] {error}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@local_app.command()
@_user_errors
def up(
    stack: Annotated[
        str, typer.Option(help="Stack whose shape to copy (stacks/Pulumi.<stack>.yaml).")
    ] = "dev",
    replicas: Annotated[
        int | None,
        typer.Option(help="App replicas (default: the stack's desired capacity, capped by cores)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="gunicorn workers per replica (default: from the stack's instance vCPUs, "
            "capped by cores)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port HAProxy listens on (127.0.0.1).")] = 8080,
    wsgi_app: Annotated[
        str,
        typer.Option(
            "--app", help="WSGI app the replicas serve (module:callable; honours app/contract.py)."
        ),
    ] = DEFAULT_WSGI_APP,
    workdir: WorkdirOption = local_state.DEFAULT_WORKDIR,
) -> None:
    """Start Redis, the app replicas and HAProxy; Ctrl-C or SIGTERM stops them all."""
    # Imported here: reading a stack loads the Pulumi SDK and botocore's EC2 model, which
    # `status` and `roll` need not pay for.
    from pyscale.local import sizing

    size = sizing.resolve(stack=stack, replicas=replicas, workers=workers)
    extra_env = {}
    if size.cache_ttl_seconds is not None:
        extra_env[Env.CACHE_TTL_SECONDS] = str(size.cache_ttl_seconds)
    spec = TopologySpec(
        replicas=size.replicas,
        workers=size.workers,
        port=port,
        workdir=workdir,
        stack=stack,
        extra_env=extra_env,
        wsgi_app=wsgi_app,
    )
    spec.validate()
    topology = LocalTopology(workdir)
    topology.programs  # noqa: B018 - fail on a missing program before anything starts
    previous_handler = signal.signal(signal.SIGTERM, _raise_stop)
    # Explicitly: a shell starting `make run &` makes children ignore SIGINT, and Python
    # then never turns Ctrl-C into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with local_state.exclusive_owner(workdir):
        try:
            console.print(f"[bold]pyscale local up[/] — {size.explanation}")
            with console.status("starting…") as spinner:

                def progress(message: str) -> None:
                    spinner.update(message)
                    console.print(f"  [green]✓[/] {message}")

                current = topology.start(spec, progress)
            console.print(f"\n[bold green]Serving on {current.url}[/]")
            console.print(
                f"HAProxy stats: {current.stats_url} (user {haproxy.STATS_USER}, password "
                f"{current.stats_password}); redis-server's password, new for this run, is "
                f"in {workdir / local_state.STATE_FILE} (readable by you only)",
                highlight=False,
            )
            _print_status(topology)
            console.print("Ctrl-C (or SIGTERM) stops everything.")
            _watch(topology)
        except (KeyboardInterrupt, _StopRequested):
            pass
        finally:
            # A second Ctrl-C must not cut the shutdown short and strand processes.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            console.print("stopping HAProxy, replicas and redis-server…")
            report = topology.stop()
            if report.forced:
                console.print(f"[yellow]had to SIGKILL: {', '.join(report.forced)}[/]")
            if report.leftover_pids:
                error_console.print(
                    "[bold red]error:[/] still running after SIGKILL: pids "
                    + ", ".join(map(str, report.leftover_pids))
                )
            else:
                console.print("stopped; verified that no process of the topology remains.")
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous_handler)


def _raise_stop(signum: int, frame: object) -> None:
    raise _StopRequested


def _watch(topology: LocalTopology) -> None:
    """Run until stopped: replace replicas that die (as the ASG does), report Redis."""
    redis_reported = False
    while True:
        time.sleep(1)
        if not topology.haproxy_running():
            raise LocalTopologyError(
                "HAProxy exited on its own; see its log in the work directory. Stopping."
            )
        topology.replace_dead_replicas(lambda message: console.print(f"[yellow]{message}[/]"))
        redis_down = not topology.redis_running()
        if redis_down and not redis_reported:
            console.print(
                "[yellow]redis-server is not running[/]: the replicas serve without the "
                "shared cache (computing instead); restart `pyscale local up` to bring it back."
            )
        redis_reported = redis_down


@local_app.command()
@_user_errors
def status(
    workdir: WorkdirOption = local_state.DEFAULT_WORKDIR,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What runs, whether HAProxy sees each replica healthy, requests served per replica."""
    topology = LocalTopology(workdir)
    if as_json:
        current = topology.state()
        print(
            json.dumps(
                {
                    "url": current.url,
                    "stats_url": current.stats_url,
                    "redis_running": topology.redis_running(),
                    "haproxy_running": topology.haproxy_running(),
                    "replicas": [asdict(row) for row in topology.status()],
                },
                indent=2,
            )
        )
        return
    _print_status(topology)


@local_app.command()
@_user_errors
def roll(workdir: WorkdirOption = local_state.DEFAULT_WORKDIR) -> None:
    """Replace the replicas one at a time, as an ASG instance refresh does: launch a
    replacement, wait until HAProxy sees it healthy, then drain and stop the old one."""
    topology = LocalTopology(workdir)
    topology.state()  # a clear error when nothing runs there
    started = time.monotonic()
    topology.roll(lambda message: console.print(f"  {message}"))
    console.print(f"[green]rolled in {time.monotonic() - started:.1f} s[/]")
    _print_status(topology)


@local_app.command()
@_user_errors
def down(workdir: WorkdirOption = local_state.DEFAULT_WORKDIR) -> None:
    """Stop a topology started by `pyscale local up` in another terminal."""
    current = LocalTopology(workdir).state()
    if not local_state.is_owned(workdir):
        raise LocalTopologyError(
            f"the topology recorded in {workdir} has no running `pyscale local up`; its "
            "processes, if any, were left by a crash: stop them by the pids in "
            f"{workdir / local_state.STATE_FILE}."
        )
    os.kill(current.owner_pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while local_state.is_owned(workdir) and time.monotonic() < deadline:
        time.sleep(0.1)
    console.print("stopped" if not local_state.is_owned(workdir) else "still stopping…")


def _print_status(topology: LocalTopology) -> None:
    current = topology.state()
    table = Table(title=f"pyscale local — {current.url}", title_justify="left")
    for column in ("replica", "pid", "port", "process", "HAProxy", "check"):
        table.add_column(column, no_wrap=True)
    for column in ("in flight", "served", "5xx"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in topology.status():
        healthy = row.balancer_status == "UP"
        table.add_row(
            row.name,
            str(row.pid or "-"),
            str(row.port),
            "[green]running[/]" if row.process_running else "[red]stopped[/]",
            f"[green]{row.balancer_status}[/]" if healthy else f"[red]{row.balancer_status}[/]",
            row.check_status,
            str(row.in_flight),
            str(row.requests),
            str(row.responses_5xx),
        )
    console.print(table)
    redis_state = "[green]running[/]" if topology.redis_running() else "[red]stopped[/]"
    console.print(
        f"redis-server: {redis_state} on port {current.redis_port}   "
        f"workers per replica: {current.workers}   stack: {current.stack or '-'}   "
        f"HAProxy stats: {current.stats_url}"
    )


@cache_app.command("rotate-auth")
def rotate_auth(
    stack: Annotated[str, typer.Option(help="The deployed stack (its file gives the region).")],
    replication_group: Annotated[
        str | None,
        typer.Option(
            help="Replication group id (default: the stack output cacheReplicationGroupId)."
        ),
    ] = None,
    secret_arn: Annotated[
        str | None,
        typer.Option(help="The token's secret (default: the stack output cacheAuthSecretArn)."),
    ] = None,
    asg: Annotated[
        str | None, typer.Option(help="The fleet (default: the stack output asgName).")
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option(help="Seconds between status checks.", hidden=True)
    ] = 15.0,
) -> None:
    """Rotate the cache's AUTH token: ROTATE (both tokens work), roll the fleet onto the new
    one, then SET (only the new one). Safe to re-run: it resumes where it stopped."""
    import boto3
    from botocore.exceptions import BotoCoreError

    from pyscale import cache_auth, stacks

    try:
        config = stacks.engine_config(stack)
        explicit = {"replication_group_id": replication_group, "secret_arn": secret_arn,
                    "asg_name": asg}  # fmt: skip
        outputs = (
            {} if all(explicit.values())
            else cache_auth.stack_outputs(stack, cwd=str(stacks.REPO_ROOT))
        )  # fmt: skip
        target = cache_auth.resolve_target(outputs, **explicit)
        region = config["aws:region"]
        min_healthy = int(config.get(f"{stacks.project_name()}:refreshMinHealthyPercent", "90"))
        rotation = cache_auth.AuthTokenRotation(
            target,
            elasticache=boto3.client("elasticache", region_name=region),
            secretsmanager=boto3.client("secretsmanager", region_name=region),
            autoscaling=boto3.client("autoscaling", region_name=region),
            roll=cache_auth.RollPreferences(min_healthy_percent=min_healthy),
            report=lambda line: console.print(line, highlight=False),
            poll_seconds=poll_seconds,
        )
        rotation.run()
    except (cache_auth.RotationError, stacks.UnknownStackError, BotoCoreError) as error:
        error_console.print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(1) from None


@app.command("iam-policy")
def iam_policy(
    stack: Annotated[
        list[str],
        typer.Option(help="Stack(s) the deploy role deploys (repeat for several)."),
    ],
) -> None:
    """Print the IAM policy the deploy role needs for these stacks' resources (JSON, for
    `aws iam put-role-policy`); the program runs offline to list what it registers."""
    from pyscale import iam_policy as policy
    from pyscale.offline import ProgramError

    try:
        document = policy.stack_policy(stack)
    except (policy.UnknownTypeError, ProgramError, stacks.UnknownStackError) as error:
        message = getattr(error, "message", str(error))
        error_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    print(json.dumps(document, indent=2))
    size = policy.size_without_whitespace(document)
    error_console.print(
        f"{size} characters without whitespace (a role's inline policies may hold "
        f"{policy.INLINE_ROLE_POLICY_LIMIT} together)",
        highlight=False,
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
