"""`pyscale local ...` with bad input: one clear message, a non-zero exit, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pyscale import stacks
from pyscale.cli import app
from pyscale.local.ports import free_port

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    result = runner.invoke(app, list(args), env=env)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    return result


def test_unknown_stack_is_refused_naming_the_known_stacks(tmp_path: Path) -> None:
    result = run("local", "up", "--stack", "qa", "--workdir", str(tmp_path))
    assert result.exit_code == 1
    assert "unknown stack 'qa'" in result.output
    for known in stacks.stack_names():
        assert known in result.output


@pytest.mark.parametrize("flag", ["--replicas", "--workers"])
def test_zero_replicas_or_workers_is_refused(tmp_path: Path, flag: str) -> None:
    result = run("local", "up", flag, "0", "--workdir", str(tmp_path))
    assert result.exit_code == 1
    assert f"{flag} 0" in result.output
    assert "at least 1" in result.output


def test_a_port_in_use_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("local", "up", "--port", str(port), "--workdir", str(tmp_path))
    assert result.exit_code == 1
    assert f"--port {port}: the port is already in use" in result.output


def test_missing_haproxy_and_redis_say_how_to_install_them(tmp_path: Path) -> None:
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    result = run(
        "local", "up", "--port", str(free_port()), "--workdir", str(tmp_path / "work"),
        env={"PATH": str(empty_path)},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "missing program(s): redis-server, haproxy" in result.output
    assert "apt-get install redis-server haproxy" in result.output
    assert not (tmp_path / "work" / "state.json").exists()


@pytest.mark.parametrize("command", ["status", "roll", "down"])
def test_commands_on_a_topology_that_is_not_running_say_how_to_start_one(
    tmp_path: Path, command: str
) -> None:
    result = run("local", command, "--workdir", str(tmp_path))
    assert result.exit_code == 1
    assert "pyscale local up" in result.output
