"""Run the real Pulumi program for one stack, offline, the way the language host runs it.

What the Python language host's shim does, and so what this does:
1. hand the engine's config over with ``set_all_config`` (every value an engine string);
2. configure the runtime (here: ``set_mocks`` in place of the engine's resource monitor);
3. chdir into ``main`` (infra/), so ``sys.path[0]`` is "." and the repository root is only
   importable because the project is installed into the venv;
4. ``runpy.run_path(<main dir>, run_name="__main__")`` inside ``run_in_stack``, pumped
   with ``_sync_await`` until every registration and output has settled.

Everything registered is recorded in plain data (type token, name, parent, the inputs in
the wire form the provider would receive, the outputs the mocks answered), with the stack
outputs, so tests, the policy pack's tests and ``pyscale plan`` can inspect a run without
knowing the SDK.
"""

from __future__ import annotations

import contextlib
import logging
import os
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from infra.kubernetes.image_repository import repository_name
from pyscale import stacks
from pyscale.offline.mocks import ACCOUNT_ID, AwsMocks

# Modules of the program itself: purged between runs so each stack starts from a fresh
# import, as it would in its own language-host process.
PROGRAM_PACKAGES = ("infra",)
# Pure lookup modules whose only state is botocore data they cache (the EC2 model, the
# region list): kept across runs, since loading them costs more than the rest of a run.
STATELESS_MODULES = frozenset({"infra.instance_types", "infra.regions"})
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class ResourceOptionsRecord:
    """The options of a registration, read from the RegisterResourceRequest the SDK sends
    (the same message the real engine gets): what the engine diffs, orders and replaces by.

    ``ignore_changes`` holds property paths in wire (camelCase) form, as the SDK translates
    them; ``dependencies`` the URNs of explicit ``depends_on`` plus every resource whose
    output feeds an input; ``provider`` the reference ``<provider URN>::<id>`` of an explicit
    provider ("" when the resource would use the ambient default provider)."""

    ignore_changes: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    protect: bool = False
    delete_before_replace: bool | None = None  # None: not set (the engine's default)
    replace_on_changes: tuple[str, ...] = ()
    retain_on_delete: bool = False
    provider: str = ""

    @classmethod
    def from_request(cls, request: resource_pb2.RegisterResourceRequest) -> ResourceOptionsRecord:
        return cls(
            ignore_changes=tuple(request.ignoreChanges),
            dependencies=tuple(sorted(request.dependencies)),
            protect=bool(request.protect),
            delete_before_replace=(
                bool(request.deleteBeforeReplace) if request.deleteBeforeReplaceDefined else None
            ),
            replace_on_changes=tuple(request.replaceOnChanges),
            retain_on_delete=bool(request.retainOnDelete),
            provider=str(request.provider),
        )


@dataclass
class RecordedResource:
    """One resource as the engine saw it. ``inputs`` are in wire form: camelCase keys,
    numbers as floats, None keys omitted, secrets as ``{SECRET_SIG_KEY: ..., "value": ...}``."""

    urn: str
    id: str | None  # the physical id the mocks answered (None for components)
    type: str
    name: str
    parent: str | None  # the parent's URN; the stack itself for top-level resources
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    # For components: what register_outputs reported.
    registered_outputs: dict[str, Any] = field(default_factory=dict)
    # The resource options the engine receives with the registration (camelCase property
    # paths as the SDK sends them; URNs for dependencies).
    options: ResourceOptionsRecord = field(default_factory=lambda: ResourceOptionsRecord())


@dataclass
class ProgramRun:
    project: str
    stack: str
    config: dict[str, str]
    resources: list[RecordedResource]
    stack_outputs: dict[str, Any]
    warnings: list[str]
    data_source_calls: list[tuple[str, dict[str, Any]]]

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> RecordedResource:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        return next(r for r in self.resources if r.urn == urn)

    def children_of(self, parent: RecordedResource) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants_of(self, parent: RecordedResource) -> list[RecordedResource]:
        """Every resource under ``parent``, at any depth."""
        found: list[RecordedResource] = []
        for child in self.children_of(parent):
            found += [child, *self.descendants_of(child)]
        return found

    def created_after(self, resource: RecordedResource) -> set[str]:
        """URNs of every resource the engine must finish creating before ``resource``.

        The engine starts a resource only once everything in its registration's
        ``dependencies`` exists (explicit ``depends_on`` plus every resource an input's
        Output came from) and, for a child of a custom resource, once its parent exists.
        A component stands for all its descendants: depending on one waits for each of
        them. The closure of those edges is the ordering `pulumi up` guarantees; anything
        outside it may run concurrently, whatever the registration order here was."""
        by_urn = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        pending = list(self._direct_prerequisites(resource, by_urn))
        while pending:
            urn = pending.pop()
            if urn in seen or urn not in by_urn:
                continue
            seen.add(urn)
            pending += self._direct_prerequisites(by_urn[urn], by_urn)
        return seen

    def is_created_after(self, resource: RecordedResource, prerequisite: RecordedResource) -> bool:
        """True when `pulumi up` cannot start ``resource`` before ``prerequisite`` exists."""
        return prerequisite.urn in self.created_after(resource)

    def _direct_prerequisites(
        self, resource: RecordedResource, by_urn: Mapping[str, RecordedResource]
    ) -> list[str]:
        direct = list(resource.options.dependencies)
        parent = by_urn.get(resource.parent or "")
        if parent is not None and parent.custom:
            direct.append(parent.urn)
        expanded: list[str] = []
        for urn in direct:
            dependency = by_urn.get(urn)
            if dependency is not None and not dependency.custom:
                expanded += [d.urn for d in self.descendants_of(dependency)]
            expanded.append(urn)
        return expanded


class ProgramError(Exception):
    """The program failed. ``clean`` is True for errors the engine reports without a
    traceback (pulumi.RunError, e.g. invalid configuration)."""

    def __init__(self, message: str, *, clean: bool, resources: list[RecordedResource]) -> None:
        super().__init__(message)
        self.message = message
        self.clean = clean
        self.resources = resources


SECRET_SIG_KEY = rpc._special_sig_key
SECRET_SIG = rpc._special_secret_sig


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, plus a record of every registration with its parent."""

    def __init__(self, mocks: AwsMocks) -> None:
        super().__init__(mocks)
        self.recorded: dict[str, RecordedResource] = {}
        self.stack_urn: str | None = None
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(  # noqa: N802 - the gRPC method name
        self, request: resource_pb2.RegisterResourceRequest
    ) -> resource_pb2.RegisterResourceResponse:
        # The SDK's MockMonitor is unannotated, hence the ignores on its two methods.
        registered = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        response: resource_pb2.RegisterResourceResponse = registered
        if request.type == STACK_TYPE:
            self.stack_urn = response.urn
            return response
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        registration = self.resources.get(response.urn)
        self.recorded[response.urn] = RecordedResource(
            urn=response.urn,
            id=registration.id if registration and request.custom else None,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            custom=bool(request.custom),
            inputs=dict(inputs),
            outputs=dict(registration.state) if registration else {},
            options=ResourceOptionsRecord.from_request(request),
        )
        return response

    def RegisterResourceOutputs(  # noqa: N802 - the gRPC method name
        self, request: resource_pb2.RegisterResourceOutputsRequest
    ) -> Any:
        outputs = dict(rpc.deserialize_properties(request.outputs, keep_unknowns=True))
        if request.urn == self.stack_urn:
            self.stack_outputs = outputs
        elif request.urn in self.recorded:
            self.recorded[request.urn].registered_outputs = outputs
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _working_directory(path: os.PathLike[str] | str) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def _program_sys_path(main_dir: str) -> Iterator[None]:
    # The shim runs `python -u -m pulumi...` style with the program dir as sys.path[0].
    saved = list(sys.path)
    sys.path.insert(0, ".")
    try:
        yield
    finally:
        sys.path[:] = saved


def _purge_program_modules() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in PROGRAM_PACKAGES and name not in STATELESS_MODULES:
            del sys.modules[name]


def _settle_previous_run() -> None:
    """Let a previous run's outstanding registrations finish and forget its failure.

    The SDK's RPC manager outlives a run: when one registration fails, the engine stops
    waiting at that error and the run's other registrations stay queued, failure recorded,
    so the next run in this process would raise the previous run's error (a mock refusing
    a resource, as CreateAddon refuses an unlisted version); its pending Output tasks
    likewise."""
    manager = pulumi_settings._get_rpc_manager()
    outputs = pulumi_settings.SETTINGS.outputs
    while manager.rpcs or outputs:
        pending = [*manager.rpcs, *outputs]
        manager.rpcs.clear()
        outputs.clear()
        for task in pending:
            with contextlib.suppress(Exception):  # the failed run already reported it
                _sync_await(task)
    manager.clear()


def run_stack(
    stack: str,
    config_overrides: Mapping[str, Any] | None = None,
    *,
    preview: bool = True,
) -> ProgramRun:
    """Run infra/ for ``stack`` under mocks, as ``pulumi preview`` runs it (``preview=False``:
    as ``pulumi up`` does, where the program refuses what only a deploy must not get, such
    as the shipped EXAMPLE domain). ``config_overrides`` replace or add keys
    ("pyscale:minSize" or "minSize"); values may be YAML values or engine strings; a value
    of None removes the key. Raises ProgramError if the program fails.

    An eks stack without ``pyscale:appImage`` (its file leaves it to the deploy workflow,
    which passes the commit's image on every deploy) runs with EKS_STAND_IN_DIGEST in the
    stack's repository, so offline runs show the app a deploy deploys; an override of ""
    runs it without one, as a first deploy's first `pulumi up` does."""
    config = stacks.engine_config(stack)
    config.update(_deployed_image_stand_in(stack, config))
    for key, value in (config_overrides or {}).items():
        qualified = key if ":" in key else f"{stacks.project_name()}:{key}"
        if value is None:
            config.pop(qualified, None)
        else:
            config[qualified] = stacks.engine_string(value)
    return run_program(stacks.project_name(), stack, config, preview=preview)


# All zeros: plainly not an image anyone pushed.
EKS_STAND_IN_DIGEST = "sha256:" + "0" * 64


def _deployed_image_stand_in(stack: str, config: Mapping[str, str]) -> dict[str, str]:
    key = f"{stacks.project_name()}:appImage"
    if config.get(f"{stacks.project_name()}:platform") != "eks" or config.get(key):
        return {}
    region = config.get("aws:region") or "us-east-1"
    repository = repository_name(f"{stacks.project_name()}-{stack}")
    return {key: f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{repository}@{EKS_STAND_IN_DIGEST}"}


def run_program(
    project: str, stack: str, config: Mapping[str, str], *, preview: bool = True
) -> ProgramRun:
    """Run the program in ``main`` with exactly this engine config."""
    main_dir = str(stacks.main_dir())

    def program() -> None:
        with _working_directory(main_dir), _program_sys_path(main_dir):
            runpy.run_path(main_dir, run_name="__main__")

    return run_function(program, project, stack, config, preview=preview, purge=True)


def run_function(
    build: Callable[[], None],
    project: str = "pyscale",
    stack: str = "component",
    config: Mapping[str, str] | None = None,
    *,
    preview: bool = False,
    purge: bool = False,
) -> ProgramRun:
    """Run ``build`` as a Pulumi program under the mocks and record it like ``run_program``
    (component tests: one component and what it registers). ``purge`` re-imports infra/."""
    config = dict(config or {})
    region = config.get("aws:region") or "us-east-1"
    mocks = AwsMocks(region=region, account_id=ACCOUNT_ID, project=project, stack=stack)
    monitor = _RecordingMonitor(mocks)
    collector = _WarningCollector()
    logger = logging.getLogger(f"pyscale.offline.{project}.{stack}")
    logger.propagate = False
    logger.addHandler(collector)

    if purge:
        _purge_program_modules()
    _settle_previous_run()
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config, [])
    pulumi_mocks.set_mocks(
        mocks, project=project, stack=stack, preview=preview, logger=logger, monitor=monitor
    )
    # set_mocks made a root Stack of its own; the shim's run_in_stack makes the real one.
    pulumi_settings.ROOT.set(None)
    failure: BaseException | None = None
    try:
        _sync_await(run_in_stack(build))
    except BaseException as error:
        failure = error
    finally:
        pulumi_settings.ROOT.set(None)
        logger.removeHandler(collector)
        if purge:
            _purge_program_modules()

    resources = list(monitor.recorded.values())
    if failure is not None:
        if isinstance(failure, pulumi.RunError):
            raise ProgramError(str(failure), clean=True, resources=resources) from None
        if isinstance(failure, KeyboardInterrupt | SystemExit):
            raise failure
        text = "".join(traceback.format_exception(failure))
        raise ProgramError(
            f"an unhandled error occurred in the program:\n{text}",
            clean=False,
            resources=resources,
        ) from failure
    return ProgramRun(
        project=project,
        stack=stack,
        config=config,
        resources=resources,
        stack_outputs=dict(monitor.stack_outputs),
        warnings=list(collector.messages),
        data_source_calls=list(mocks.calls),
    )
