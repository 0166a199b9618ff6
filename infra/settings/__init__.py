"""The stack's settings: every ``pyscale:`` key declared once, validated into frozen models.

Layout (one module per area, each holding its keys, its model and its rules):

- ``network`` (VPC, subnets, NAT, flow logs), ``edge`` (ALB, TLS, WAF, host names),
  ``cache`` (ElastiCache), ``fleet`` (instances, scaling, purchase), ``release`` (the
  app), ``monitoring`` (alarms, log retention), ``encryption`` (the stack's KMS key);
- ``stack``: the stack name, ``aws:region`` and ``aws:defaultTags`` checks;
- ``base``: how a key is declared (``setting``), change safety, ``Problems``;
- ``loading``: engine strings -> ``Settings``, every problem at once (``ConfigError``).

Components take their area's model (``settings.fleet``...) plus the Outputs of other
components; they never read config, and no default is repeated outside the declaration.

How to add a key
----------------
1. Declare it in its area's model: one field, e.g. ::

       warm_pool_min_size: int = setting(
           "warmPoolMinSize", 0, ge=0, le=1000,
           doc="Instances kept in the warm pool.",
           change=in_place(),
       )

   The field's annotation is the type (``bool``, ``int``, ``str``, an ``enum.StrEnum``
   for allowed values, ``tuple[str, ...]`` for a list, a model tuple for a list of
   objects); ``change`` says what a later change does to a deployed stack
   (``in_place``, ``replacement(...)`` with its downtime or data loss, ``refused(...)``).
   A format check is an ``Annotated[..., matches(...)]`` or a ``field_validator``; a rule
   relating keys goes in the area's ``model_validator`` with ``Problems``.
2. Use it where it matters: ``args.settings.warm_pool_min_size`` in the component.
3. Run ``make docs``: it regenerates Pulumi.yaml's ``config:`` schema and the README's
   configuration reference from the declarations (a test fails while they are stale).

Nothing else is edited by hand: the loader, the unknown-key check with its "did you mean",
the engine-string parsing and the error messages all come from the declaration.
"""

from infra.settings.base import NAMESPACE, Change, ChangeSafety, KeyDeclaration
from infra.settings.cache import CACHE_PORT, CacheAuth, CacheEngine, CacheSettings, CacheTopology
from infra.settings.edge import EdgeSettings, TlsMode, WafRule
from infra.settings.encryption import EncryptionSettings
from infra.settings.fleet import FleetPurchase, FleetSettings, ScheduledAction
from infra.settings.loading import (
    AREAS,
    KEYS,
    KEYS_BY_NAME,
    ConfigError,
    Settings,
    load_from_pulumi,
    load_settings,
)
from infra.settings.monitoring import MonitoringSettings
from infra.settings.network import NatStrategy, NetworkSettings
from infra.settings.release import ReleaseSettings
from infra.settings.stack import MAX_RESOURCE_NAME_LENGTH

__all__ = [
    "AREAS",
    "CACHE_PORT",
    "KEYS",
    "KEYS_BY_NAME",
    "MAX_RESOURCE_NAME_LENGTH",
    "NAMESPACE",
    "CacheAuth",
    "CacheEngine",
    "CacheSettings",
    "CacheTopology",
    "Change",
    "ChangeSafety",
    "ConfigError",
    "EdgeSettings",
    "EncryptionSettings",
    "FleetPurchase",
    "FleetSettings",
    "KeyDeclaration",
    "MonitoringSettings",
    "NatStrategy",
    "NetworkSettings",
    "ReleaseSettings",
    "ScheduledAction",
    "Settings",
    "TlsMode",
    "WafRule",
    "load_from_pulumi",
    "load_settings",
]
