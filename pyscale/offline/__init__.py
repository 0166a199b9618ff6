"""Run the Pulumi program offline, exactly as the language host would, under AWS mocks.

    from pyscale.offline import run_stack
    run = run_stack("prod")                       # ProgramRun
    run.of_type("aws:lb/listener:Listener")       # recorded resources, wire-form inputs
    run.stack_outputs["url"]

Invalid configuration raises ProgramError with ``clean=True`` and the engine's message.
"""

from pyscale.offline.mocks import DATA_SOURCES, RESOURCE_OUTPUTS, AwsMocks
from pyscale.offline.runner import (
    ProgramError,
    ProgramRun,
    RecordedResource,
    ResourceOptionsRecord,
    is_secret,
    run_program,
    run_stack,
)

__all__ = [
    "DATA_SOURCES",
    "RESOURCE_OUTPUTS",
    "AwsMocks",
    "ProgramError",
    "ProgramRun",
    "RecordedResource",
    "ResourceOptionsRecord",
    "is_secret",
    "run_program",
    "run_stack",
]
