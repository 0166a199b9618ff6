"""Kubernetes objects out of an offline run: normalised manifests, checked against the API's
schemas.

A ``kubernetes:*`` resource reaches the mocks with its full manifest as inputs, in the
engine's wire form. Two things differ from what the API server receives, and are undone
here: numbers arrive as floats (protobuf Struct carries doubles: ``maxUnavailable: 0.0``)
and secret values arrive wrapped in Pulumi's secret marker. Then kubernetes-validate checks
each manifest strictly (unknown fields are errors, as ``kubectl --validate=strict`` and
server-side field validation make them) against the schemas of the cluster's minor version.
There is no API server here: admission, defaulting and CRD conversion stay unproven;
custom resources are checked against the CRD schemas vendored next to the program.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pulumi.runtime import rpc

from pyscale.offline.runner import ProgramRun, RecordedResource

KUBERNETES_PREFIX: Final = "kubernetes:"
PROVIDER_TYPE: Final = "pulumi:providers:kubernetes"
# CRD schemas vendored with the program (infra/kubernetes/data/crd-*.json: group, kind,
# version, schema), for the custom resources it creates.
CRD_SCHEMA_DIR: Final = Path(__file__).resolve().parents[2] / "infra" / "kubernetes" / "data"
# Resource types that are not API objects (the provider, Helm/YAML components).
_NOT_OBJECTS: Final = frozenset({"kubernetes:helm.sh/v3:Release"})


def normalise(value: Any) -> Any:
    """Whole-number floats back to ints, secret markers unwrapped, recursively."""
    if isinstance(value, dict):
        if rpc._special_sig_key in value:
            return normalise(value.get("value"))
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class KubernetesObject:
    """One object as the API server would receive it, and the resource it came from."""

    resource: RecordedResource
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def name(self) -> str:
        return str(self.manifest.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        namespace = self.manifest.get("metadata", {}).get("namespace")
        return None if namespace is None else str(namespace)


def kubernetes_objects(run: ProgramRun) -> list[KubernetesObject]:
    """Every Kubernetes API object the run registered, normalised."""
    return [
        KubernetesObject(resource, normalise(resource.inputs))
        for resource in run.resources
        if resource.type.startswith(KUBERNETES_PREFIX)
        and resource.custom
        and resource.type not in _NOT_OBJECTS
    ]


def _strict(schema: Any) -> Any:
    """A CRD schema with unknown fields refused: the API server prunes them silently
    (structural schemas), which hides a typo exactly as a non-strict check would."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRD_SCHEMA_DIR.glob("crd-*.json")):
        crd = json.loads(path.read_text())
        schemas[(f"{crd['group']}/{crd['version']}", crd["kind"])] = _strict(crd["schema"])
    return schemas


def validate_strictly(manifest: dict[str, Any], kubernetes_version: str) -> None:
    """Raise a ValidationError (kubernetes_validate's, or jsonschema's for a vendored custom
    resource) unless the manifest is valid with no unknown field; SchemaNotFoundError for a
    kind neither knows.

    kubernetes_version: ``"1.33"`` or ``"1.33.0"`` (the schemas are per minor version)."""
    import kubernetes_validate  # dev dependency: imported only by tests and checks

    crd = _crd_schemas().get((manifest.get("apiVersion", ""), manifest.get("kind", "")))
    if crd is not None:
        import jsonschema

        jsonschema.validate(copy.deepcopy(manifest), crd)
        return
    minor = ".".join(kubernetes_version.split(".")[:2])
    kubernetes_validate.validate(manifest, f"{minor}.0", strict=True)
