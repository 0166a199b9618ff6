"""Pulumi.yaml's config schema and the README's configuration reference are generated from
the declarations in infra/settings, the README's app environment table from app/settings.py
(`make docs`): they never drift from the code."""

from __future__ import annotations

import json

import pytest
import yaml

from app import settings as app_settings
from app.contract import Env
from infra.settings import KEYS
from pyscale import docs
from pyscale.stacks import PROJECT_FILE, REPO_ROOT


@pytest.mark.parametrize("region", docs.REGIONS, ids=lambda region: region.path)
def test_every_generated_region_is_current(region):
    assert region.is_current(), f"{region.path}: {region.name} is stale: run `make docs`"


def test_a_stale_region_is_rewritten_between_its_markers_only(tmp_path):
    region = docs.Region("doc.md", "demo", lambda: "new body", docs.MARKDOWN_COMMENT)
    (tmp_path / "doc.md").write_text(f"before\n{region.begin}\nold body\n{region.end}\nafter\n")

    assert not region.is_current(tmp_path)
    updated = region.updated((tmp_path / "doc.md").read_text())
    assert updated == f"before\n{region.begin}\nnew body\n{region.end}\nafter\n"


def test_a_file_without_its_markers_is_an_error_naming_them():
    region = docs.Region("doc.md", "demo", lambda: "", docs.MARKDOWN_COMMENT)
    with pytest.raises(ValueError, match="BEGIN GENERATED: demo"):
        region.updated("no markers here\n")


def test_the_schema_types_every_key_the_cli_can_type_with_its_declared_default():
    schema = yaml.safe_load(PROJECT_FILE.read_text())["config"]
    typed = {key.name: key for key in KEYS if key.type != "object"}

    assert list(schema) == list(typed)
    for name, key in typed.items():
        assert (schema[name]["type"], schema[name]["default"]) == (key.type, key.default)


def test_the_reference_gives_every_keys_change_safety():
    readme = (REPO_ROOT / "README.md").read_text()
    for key in KEYS:
        (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{key.full_name}` |")]
        assert row.rstrip(" |").endswith(docs._cell(str(key.change))), key.name


def test_the_readme_lists_every_app_variable_with_what_it_allows():
    readme = (REPO_ROOT / "README.md").read_text()
    for variable in app_settings.variables():
        (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{variable.name}` |")]
        assert docs._cell(variable.description) in row, variable.name
    assert {variable.name for variable in app_settings.variables()} == {
        value for name, value in vars(Env).items() if not name.startswith("_")
    }


def test_benchmark_figures_come_from_the_newest_committed_run(tmp_path):
    def run(date: str, hello: float) -> None:
        row = {
            "worker_class": "gthread",
            "requests_per_second_range": "",
            "p50_ms": 1.0,
            "p99_ms": 2.0,
            "errors": 0,
            "x_cache": "",
            "cpu_us_per_request": 500.0,
        }
        document = {
            "date": date,
            "machine": {"cores": 2, "cpu": "x", "python": "3.11", "load_average": "1 before"},
            "wrk": {"threads": 2, "connections": 32, "duration": 5, "warmup": 1, "rounds": 3},
            "measurements": [
                {**row, "scenario": "hello", "requests_per_second": hello, "baseline": True},
                {**row, "scenario": "hit", "requests_per_second": hello / 2, "baseline": False},
            ],
        }  # fmt: skip
        (tmp_path / "app" / date).mkdir(parents=True)
        (tmp_path / "app" / date / "results.json").write_text(json.dumps(document))

    run("2026-01-01", 1000.0)
    run("2026-02-01", 3000.0)
    table = docs.render_app_benchmark(tmp_path)

    assert "Run of 2026-02-01" in table
    assert "| hit | 1,500 | 0.50x |" in table
    assert "1,000" not in table
