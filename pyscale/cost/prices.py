"""The committed price table (prices/aws.csv) and the resource type classification
(prices/resource_types.yaml), loaded and checked.

The table is data: one row per priced item, each with where the price was read (package or
repository at a commit, or a page) and when. A row without a USD figure is an explicit
"price not found" and says where it was searched. Loading refuses a table that breaks these
rules, so no estimate can rest on an unsourced number.

Hand-written on csv/yaml rather than pydantic: the project has no pydantic dependency yet
(the settings redesign adds one), and two flat files need only a few checks.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PRICES_DIR = Path(__file__).resolve().parent / "prices"
PRICE_TABLE_PATH = PRICES_DIR / "aws.csv"
CLASSIFICATION_PATH = PRICES_DIR / "resource_types.yaml"
HOURS_PER_MONTH = 730  # the convention Infracost and ec2instances.info use
CONVENTION = "on-demand, Linux, shared tenancy, 730 hours a month, USD"
PRICE_NOT_FOUND = "price not found"

COLUMNS = (
    "price_id",
    "service",
    "item",
    "region",
    "engine",
    "unit",
    "usd",
    "source",
    "source_ref",
    "source_date",
    "read_on",
    "licence",
    "note",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CLASSIFICATION_KINDS = ("free", "components", "estimator", "not_found")


class PriceTableError(ValueError):
    """The committed price table or classification breaks its own rules."""


@dataclass(frozen=True)
class Price:
    """One row of the price table."""

    price_id: str
    service: str
    item: str
    region: str
    engine: str
    unit: str
    usd: float | None  # None: price not found
    source: str
    source_ref: str
    source_date: str
    read_on: str
    licence: str
    note: str

    @property
    def found(self) -> bool:
        return self.usd is not None

    def citation(self) -> dict[str, str]:
        """Where the figure comes from, as the cost document carries it."""
        return {
            "source": self.source,
            "source_ref": self.source_ref,
            "source_date": self.source_date,
            "read_on": self.read_on,
            "licence": self.licence,
        }


@dataclass(frozen=True)
class PriceTable:
    rows: tuple[Price, ...]
    path: Path

    def regions(self) -> list[str]:
        return sorted({row.region for row in self.rows})

    def get(self, price_id: str, region: str, engine: str = "") -> Price | None:
        for row in self.rows:
            if row.price_id == price_id and row.region == region and row.engine == engine:
                return row
        return None

    def items(self, prefix: str, region: str, engine: str = "") -> list[str]:
        """The items under ``prefix`` (e.g. ``ec2/instance/``) the table has for a region."""
        return sorted(
            row.price_id.removeprefix(prefix)
            for row in self.rows
            if row.price_id.startswith(prefix) and row.region == region and row.engine == engine
        )


def _check_row(number: int, raw: Mapping[str, str]) -> Price:
    where = f"{_relative(PRICE_TABLE_PATH)} line {number}"
    values = {column: (raw.get(column) or "").strip() for column in COLUMNS}
    for column in ("price_id", "service", "item", "region", "unit", "read_on"):
        if not values[column]:
            raise PriceTableError(f"{where}: {column} is empty")
    if not _DATE.match(values["read_on"]):
        raise PriceTableError(
            f"{where}: read_on must be a date YYYY-MM-DD, got {values['read_on']!r}"
        )
    if values["source_date"] and not _DATE.match(values["source_date"]):
        raise PriceTableError(f"{where}: source_date must be YYYY-MM-DD or empty")
    usd: float | None = None
    if values["usd"]:
        try:
            usd = float(values["usd"])
        except ValueError:
            raise PriceTableError(f"{where}: usd {values['usd']!r} is not a number") from None
        if usd < 0:
            raise PriceTableError(f"{where}: usd is negative")
        for column in ("source", "source_ref"):
            if not values[column]:
                raise PriceTableError(
                    f"{where}: a priced row needs its {column} (package or repository at a "
                    "commit, or the pricing page) — or leave usd empty and say 'price not found'"
                )
    elif not values["note"].startswith(PRICE_NOT_FOUND):
        raise PriceTableError(
            f"{where}: a row without usd must say '{PRICE_NOT_FOUND}: <where it was searched>' "
            "in its note"
        )
    return Price(
        price_id=values["price_id"],
        service=values["service"],
        item=values["item"],
        region=values["region"],
        engine=values["engine"],
        unit=values["unit"],
        usd=usd,
        source=values["source"],
        source_ref=values["source_ref"],
        source_date=values["source_date"],
        read_on=values["read_on"],
        licence=values["licence"],
        note=values["note"],
    )


def load_price_table(path: Path = PRICE_TABLE_PATH) -> PriceTable:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise PriceTableError(f"{_relative(path)}: columns must be {', '.join(COLUMNS)}")
        rows = tuple(_check_row(number, raw) for number, raw in enumerate(reader, start=2))
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        key = (row.price_id, row.region, row.engine)
        if key in seen:
            raise PriceTableError(f"{_relative(path)}: {'/'.join(filter(None, key))} appears twice")
        seen.add(key)
    return PriceTable(rows, path)


@cache
def price_table() -> PriceTable:
    return load_price_table()


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UsageKey:
    key: str
    means: str
    to_price_unit: float


@dataclass(frozen=True)
class Component:
    component: str
    price: str
    per: str | None  # "hour" | "month" | None for usage
    usage: str | None


@dataclass(frozen=True)
class Classification:
    """How one resource type is costed (exactly one of the four kinds)."""

    kind: str  # free | components | estimator | not_found
    reason: str = ""
    source: str = ""
    components: tuple[Component, ...] = ()
    estimator: str = ""


@dataclass(frozen=True)
class Classifications:
    types: Mapping[str, Classification]
    providers: Mapping[str, Classification]
    usage_keys: Mapping[str, UsageKey]

    def of(self, type_token: str) -> Classification | None:
        """The type's own entry, else its provider's rule, else None (unclassified)."""
        if type_token in self.types:
            return self.types[type_token]
        return self.providers.get(type_token.split(":", 1)[0])


def _classification(where: str, entry: Any, usage_keys: Mapping[str, UsageKey]) -> Classification:
    if not isinstance(entry, Mapping):
        raise PriceTableError(f"{where}: expected a mapping with one of {CLASSIFICATION_KINDS}")
    kinds = [kind for kind in CLASSIFICATION_KINDS if kind in entry]
    if len(kinds) != 1:
        raise PriceTableError(f"{where}: needs exactly one of {', '.join(CLASSIFICATION_KINDS)}")
    kind = kinds[0]
    if kind == "components":
        components = []
        for item in entry["components"]:
            per, usage = item.get("per"), item.get("usage")
            if (per is None) == (usage is None) or per not in (None, "hour", "month"):
                raise PriceTableError(f"{where}: a component needs `per: hour|month` or `usage:`")
            if usage is not None and usage not in usage_keys:
                raise PriceTableError(f"{where}: usage key {usage!r} is not under usage_keys")
            components.append(Component(str(item["component"]), str(item["price"]), per, usage))
        return Classification(kind, components=tuple(components))
    if kind == "estimator":
        return Classification(kind, estimator=str(entry["estimator"]))
    return Classification(kind, reason=str(entry[kind]), source=str(entry.get("source", "")))


def load_classifications(path: Path = CLASSIFICATION_PATH) -> Classifications:
    document = yaml.safe_load(path.read_text()) or {}
    usage_keys = {
        key: UsageKey(key, str(value["means"]), float(value["to_price_unit"]))
        for key, value in (document.get("usage_keys") or {}).items()
    }
    where = _relative(path)
    return Classifications(
        types={
            token: _classification(f"{where}: {token}", entry, usage_keys)
            for token, entry in (document.get("types") or {}).items()
        },
        providers={
            name: _classification(f"{where}: provider {name}", entry, usage_keys)
            for name, entry in (document.get("providers") or {}).items()
        },
        usage_keys=usage_keys,
    )


@cache
def classifications() -> Classifications:
    return load_classifications()


def unclassified_message(type_token: str, stacks: list[str]) -> str:
    """What an engineer who added a resource type must do (the test and the command say it)."""
    return (
        f"resource type {type_token} (registered by {', '.join(stacks)}) is not classified for "
        f"`pyscale cost`: add it under `types:` in {_relative(CLASSIFICATION_PATH)} as `free:` "
        "(with the reason and a `source:`), `components:` (priced from "
        f"{_relative(PRICE_TABLE_PATH)}, adding sourced rows there), `estimator:` (code in "
        "pyscale/cost/estimate.py) or `not_found:` (what it costs and why no price is known)"
    )


def _relative(path: Path) -> str:
    root = PRICES_DIR.parents[2]
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
