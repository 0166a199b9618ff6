"""Entry point the Pulumi CLI runs (`python -m pulumi.policy <engine> policy/`).

Constructing the PolicyPack starts the analyzer's gRPC server and blocks, so nothing else
lives here: the validators are in rules.py (this directory is sys.path[0] when the CLI runs
the pack, hence the top-level import).
"""

from typing import TYPE_CHECKING

from pulumi_policy import EnforcementLevel, PolicyPack

if TYPE_CHECKING:  # the type checker sees the repository, where this directory is a package
    from policy import rules
else:
    import rules

PolicyPack(
    name=rules.PACK_NAME,
    policies=rules.POLICIES,
    enforcement_level=EnforcementLevel.ADVISORY,
)
