"""The program starts the way Pulumi's language host starts it, even when the project is
not installed into the venv: cwd infra/, sys.path[0] == ".", the repository root absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from pyscale import stacks

# Runs in a fresh interpreter. Everything from the repository is imported first (the
# mocks, the stack's engine config), then the root is taken off sys.path, as for a venv
# into which the project was never installed, before the shim's steps run the program.
SHIM = textwrap.dedent(
    """
    import importlib.util, json, os, runpy, sys
    from pyscale import stacks
    from pyscale.offline.mocks import ACCOUNT_ID, AwsMocks

    stack = sys.argv[1]
    root = str(stacks.REPO_ROOT)
    config = stacks.engine_config(stack)
    for name in [m for m in sys.modules if m.split(".")[0] in ("infra", "app")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p not in ("", root) and os.path.abspath(p) != root]
    sys.path.insert(0, ".")
    os.chdir(stacks.main_dir())
    assert importlib.util.find_spec("infra") is None, "the root must not be importable"

    import pulumi.runtime
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_in_stack
    from pulumi.runtime.sync_await import _sync_await

    pulumi.runtime.set_all_config(config, [])
    mocks = AwsMocks(config["aws:region"], ACCOUNT_ID, "pyscale", stack)
    monitor = pulumi.runtime.mocks.MockMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="pyscale", stack=stack, preview=False, monitor=monitor)
    settings.ROOT.set(None)
    _sync_await(run_in_stack(lambda: runpy.run_path(".", run_name="__main__")))
    types = sorted({r.urn.split("::")[2].split("$")[-1] for r in monitor.resources.values()})
    config_file = os.path.join(root, "infra", "settings", "__init__.py")
    config_modules = sorted(
        name for name, module in list(sys.modules.items())
        if os.path.abspath(getattr(module, "__file__", None) or "") == config_file
    )
    print(json.dumps({"types": types, "config_modules": config_modules}))
    """
)


def test_program_runs_from_infra_with_the_repository_root_off_sys_path():
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PULUMI_CONFIG")}
    completed = subprocess.run(
        [sys.executable, "-c", SHIM, "dev"],
        cwd=stacks.main_dir(),
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "aws:lb/loadBalancer:LoadBalancer" in result["types"]
    assert "aws:elasticache/replicationGroup:ReplicationGroup" in result["types"]
    # infra/settings loaded once, as infra.settings — never a second time as `settings`.
    assert result["config_modules"] == ["infra.settings"]
