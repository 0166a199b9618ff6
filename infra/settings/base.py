"""How a setting is declared: one ``setting(...)`` per stack key, on a frozen pydantic model.

Each area module (network, edge, cache, fleet, release, monitoring) holds one
``AreaSettings`` model. A field's declaration carries everything about its key: the stack
key (``"minSize"``), the type (the annotation), the default (the value a stack file would
hold), bounds or allowed values, the description users read, and what a later change of
it does to a deployed stack (``in_place`` / ``replacement`` / ``refused``). The loader
(infra/settings/loading.py), Pulumi.yaml's ``config:`` schema and the README's
configuration reference (pyscale/docs.py, ``make docs``) all read these declarations.

Rules relating several fields of an area are ``@model_validator(mode="after")`` methods
of its model, next to those fields; they report every broken rule at once through
``Problems``, each naming the key at fault.
"""

from __future__ import annotations

import difflib
import enum
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

NAMESPACE = "pyscale"
KeyType = Literal["string", "integer", "boolean", "array", "object"]


# ---------------------------------------------------------------------------------------
# Change safety: what `pulumi up` does to a deployed stack when the key changes
# ---------------------------------------------------------------------------------------
class Change(enum.StrEnum):
    IN_PLACE = "in place"
    REPLACEMENT = "replacement"
    REFUSED = "refused"


@dataclass(frozen=True)
class ChangeSafety:
    """``kind``: in place | replacement | refused; ``effect``: what it means for users
    (downtime, data loss, what rolls), in a sentence."""

    kind: Change
    effect: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.effect}" if self.effect else self.kind.value


def in_place(effect: str = "") -> ChangeSafety:
    return ChangeSafety(Change.IN_PLACE, effect)


def replacement(effect: str) -> ChangeSafety:
    return ChangeSafety(Change.REPLACEMENT, effect)


def refused(effect: str) -> ChangeSafety:
    return ChangeSafety(Change.REFUSED, effect)


# The README's wording for a change that rolls the fleet (a new launch template version).
ROLLS_THE_FLEET = (
    "a new launch template version starts a rolling instance refresh that keeps "
    "refreshMinHealthyPercent in service (no downtime)"
)


# ---------------------------------------------------------------------------------------
# Declaring a key
# ---------------------------------------------------------------------------------------
def setting(
    key: str,
    default: Any,
    *,
    doc: str,
    change: ChangeSafety,
    ge: int | None = None,
    le: int | None = None,
    unit: str = "",
    allowed: str = "",
) -> Any:
    """One stack key. ``key``: its name in the stack file (``pyscale:<key>``);
    ``default``: the value as a stack file would hold it; ``ge``/``le``: integer bounds;
    ``unit``: said after the bounds in errors (" (0 turns it off)"); ``allowed``: the
    allowed values in words, where the type and bounds do not say it."""
    extra: dict[str, Any] = {"change": change, "unit": unit, "allowed": allowed}
    return Field(
        default,
        alias=key,
        description=doc,
        ge=ge,
        le=le,
        json_schema_extra=extra,  # read back by KeyDeclaration
    )


class AreaSettings(BaseModel):
    """One area's settings: frozen, typed, every field declared with ``setting``.
    Defaults are validated like stack values (``validate_default``), so ``""`` or ``0``
    meaning "unset" become None in one place."""

    model_config = ConfigDict(
        frozen=True,
        validate_default=True,
        validate_by_alias=True,
        validate_by_name=True,
        str_strip_whitespace=True,
        extra="forbid",
    )


def matches(pattern: str, must: str) -> AfterValidator:
    """A string check: ``must`` is the sentence the error starts with."""
    compiled = re.compile(pattern)

    def check(value: str | None) -> str | None:
        if value is not None and not compiled.match(value):
            raise ValueError(f"{must}, got {value!r}")
        return value

    return AfterValidator(check)


def empty_is_none(value: Any) -> Any:
    """Stack files spell "not set" as ``""`` (Pulumi.yaml defaults cannot be null)."""
    return None if value == "" else value


def lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------
# Cross-field rules
# ---------------------------------------------------------------------------------------
class Problems:
    """Broken rules of one model, each naming its key; ``check`` raises them together
    (as one pydantic error the loader turns back into one line per problem)."""

    def __init__(self) -> None:
        self._found: list[tuple[str, str]] = []

    def add(self, key: str, message: str) -> None:
        self._found.append((key, message))

    def check(self) -> None:
        if self._found:
            raise PydanticCustomError(
                "pyscale_rules",
                "{count} broken rule(s)",
                {"count": len(self._found), "problems": tuple(self._found)},
            )


# ---------------------------------------------------------------------------------------
# Reading declarations back (the loader and the generated docs)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyDeclaration:
    """A declared key, as the loader and the docs generator see it."""

    area: str
    attribute: str
    field: FieldInfo

    @property
    def name(self) -> str:
        assert self.field.alias is not None, f"{self.attribute} is declared without setting()"
        return self.field.alias

    @property
    def full_name(self) -> str:
        return f"{NAMESPACE}:{self.name}"

    @property
    def description(self) -> str:
        return self.field.description or ""

    @property
    def default(self) -> Any:
        value = self.field.default
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, tuple):
            return list(value)
        return value

    def _extra(self, name: str) -> Any:
        extra = self.field.json_schema_extra
        assert isinstance(extra, dict), f"{self.name} is declared without setting()"
        return extra[name]

    @property
    def change(self) -> ChangeSafety:
        change = self._extra("change")
        assert isinstance(change, ChangeSafety)
        return change

    @property
    def unit(self) -> str:
        return str(self._extra("unit"))

    @property
    def type(self) -> KeyType:
        return key_type(self.field.annotation)

    @property
    def bounds(self) -> tuple[int | None, int | None]:
        low = high = None
        for constraint in self.field.metadata:  # ge/le: int (``setting`` takes no other)
            if isinstance(constraint, annotated_types.Ge) and isinstance(constraint.ge, int):
                low = constraint.ge
            elif isinstance(constraint, annotated_types.Le) and isinstance(constraint.le, int):
                high = constraint.le
        return low, high

    @property
    def choices(self) -> tuple[str, ...]:
        """The allowed values of an enum key, else ()."""
        inner = unwrap(self.field.annotation)
        if isinstance(inner, type) and issubclass(inner, enum.Enum):
            return tuple(str(member.value) for member in inner)
        return ()

    @property
    def allowed(self) -> str:
        """The allowed values in words (the README's "allowed" column)."""
        if text := self._extra("allowed"):
            return str(text)
        if self.choices:
            return " | ".join(self.choices)
        low, high = self.bounds
        if low is not None and high is not None:
            return f"{low} to {high}"
        if low is not None:
            return f">= {low}"
        if self.type == "boolean":
            return "true | false"
        return ""


def unwrap(annotation: Any) -> Any:
    """``X | None`` -> X; ``Annotated[X, ...]`` -> X."""
    if typing.get_origin(annotation) is typing.Annotated:
        return unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return unwrap(options[0])
    return annotation


class UnsupportedKeyTypeError(TypeError):
    """A declaration whose type the loader, Pulumi.yaml's schema or the README cannot carry."""


def key_type(annotation: Any) -> KeyType:
    """The Pulumi config type of a field: how the engine marshals it and the CLI checks it.

    Pulumi's project config types are string, integer, boolean and array; a list of
    objects (scheduledScaling) is the one shape beyond them, left untyped in Pulumi.yaml.
    Anything else (a float, a dict, a set) is refused at import: before this check a float
    key was silently left out of Pulumi.yaml, shown as "object" in the README, and its bad
    values were explained as "must be a YAML/JSON list of objects"."""
    inner = unwrap(annotation)
    if inner is bool:
        return "boolean"
    if inner is int:
        return "integer"
    if inner is str or (isinstance(inner, type) and issubclass(inner, enum.Enum)):
        return "string"
    if typing.get_origin(inner) in (tuple, list):
        item = unwrap(typing.get_args(inner)[0])
        if item is str:
            return "array"
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "object"
    raise UnsupportedKeyTypeError(
        f"{annotation!r} is not a key type: use bool, int (a float in a finer unit, e.g. "
        "milliseconds), str, an enum.StrEnum, tuple[str, ...] or a tuple of models"
    )


def declarations(area: str, model: type[AreaSettings]) -> tuple[KeyDeclaration, ...]:
    keys = tuple(
        KeyDeclaration(area, attribute, field) for attribute, field in model.model_fields.items()
    )
    for key in keys:
        try:
            key.type  # noqa: B018 - evaluated for its check
        except UnsupportedKeyTypeError as error:
            raise UnsupportedKeyTypeError(f"{area} setting {key.name!r}: {error}") from None
    return keys


def did_you_mean(value: str, choices: Sequence[str], quote: Callable[[str], str] = repr) -> str:
    hint = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {quote(hint[0])}?)" if hint else ""
