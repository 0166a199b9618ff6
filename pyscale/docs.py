"""Generated documentation: regions of committed files written from code (``make docs``):
Pulumi.yaml's config schema and the README's configuration reference (infra/settings/), the
README's table of the app's environment variables (app/settings.py), the benchmark figures
in docs/benchmarks.md (the newest committed bench/results/ runs).

Each ``Region`` is a span of a file between a begin and an end marker, and the function
that renders it. ``python -m pyscale.docs`` rewrites every region; ``--check`` lists the
stale ones and exits 1 (tests/infra/test_generated_docs.py fails the same way). To
generate another table, write its render function and add a ``Region`` to ``REGIONS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.settings import Variable, variables
from infra.settings import KEYS, KeyDeclaration
from pyscale.stacks import REPO_ROOT


@dataclass(frozen=True)
class Region:
    """``path`` (from the repository root) holds ``begin``...``end`` marker lines; the
    lines between them are ``render()``'s output."""

    path: str
    name: str
    render: Callable[[], str]
    comment: tuple[str, str]  # how the file's syntax opens and closes a comment

    def _marker(self, word: str) -> str:
        opening, closing = self.comment
        return f"{opening} {word} GENERATED: {self.name} (make docs) {closing}".rstrip()

    @property
    def begin(self) -> str:
        return self._marker("BEGIN")

    @property
    def end(self) -> str:
        return self._marker("END")

    def file(self, root: Path = REPO_ROOT) -> Path:
        return root / self.path

    def updated(self, text: str) -> str:
        """``text`` with this region's lines rendered anew."""
        lines = text.splitlines(keepends=True)
        stripped = [line.rstrip("\n") for line in lines]
        if stripped.count(self.begin) != 1 or stripped.count(self.end) != 1:
            raise ValueError(
                f"{self.path}: needs exactly one line {self.begin!r} and one {self.end!r}"
            )
        start, stop = stripped.index(self.begin), stripped.index(self.end)
        body = self.render().rstrip("\n") + "\n"
        return "".join([*lines[: start + 1], body, *lines[stop:]])

    def is_current(self, root: Path = REPO_ROOT) -> bool:
        text = self.file(root).read_text()
        return self.updated(text) == text


YAML_COMMENT = ("#", "")
MARKDOWN_COMMENT = ("<!--", "-->")


# ---------------------------------------------------------------------------------------
# Pulumi.yaml: the typed project config the CLI checks `pulumi config set` against
# ---------------------------------------------------------------------------------------
def render_config_schema(keys: Sequence[KeyDeclaration] = KEYS) -> str:
    """Pulumi.yaml's ``config:``: every key the CLI can type, with its default. Values are
    written as JSON, which is YAML, so quoting is never ambiguous."""
    lines = [
        "# From the declarations in infra/settings/ (the rules the CLI cannot check live",
        "# there too). Lists of objects (scheduledScaling) cannot be typed here.",
        "config:",
    ]
    for key in keys:
        if key.type == "object":
            continue
        lines += [f"  {key.name}:", f"    type: {key.type}"]
        if key.type == "array":
            lines += ["    items:", "      type: string"]
        lines += [
            f"    default: {json.dumps(key.default)}",
            f"    description: {json.dumps(key.description)}",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# README: the configuration reference
# ---------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_configuration_reference(keys: Sequence[KeyDeclaration] = KEYS) -> str:
    rows = [
        "| key | type | default | allowed | description | change safety |",
        "|---|---|---|---|---|---|",
    ]
    for key in keys:
        cells = (
            f"`{key.full_name}`",
            key.type,
            f"`{json.dumps(key.default)}`",
            key.allowed,
            key.description,
            str(key.change),
        )
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------
# README: each shipped stack's shape, monthly cost and capacity (`pyscale cost`)
# ---------------------------------------------------------------------------------------
def render_stack_table() -> str:
    # Imported here: it runs each shipped stack's program offline (the Pulumi SDK).
    from pyscale.cost import readme

    return readme.render()


# ---------------------------------------------------------------------------------------
# README: the app's environment variables (app/settings.py)
# ---------------------------------------------------------------------------------------
def render_app_environment(declared: Sequence[Variable] | None = None) -> str:
    rows = ["| variable | for | default | allowed | what it does |", "|---|---|---|---|---|"]
    for variable in variables() if declared is None else declared:
        cells = (
            f"`{variable.name}`",
            variable.section,
            variable.default,
            variable.allowed,
            variable.description,
        )
        # <region>, <PORT>: shown as written, not taken for HTML tags.
        escaped = (_cell(cell).replace("<", "&lt;").replace(">", "&gt;") for cell in cells)
        rows.append("| " + " | ".join(escaped) + " |")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------
# docs/benchmarks.md: the figures of the newest committed runs (bench/results/)
# ---------------------------------------------------------------------------------------
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def _newest(runs: Path) -> Path | None:
    """The results.json of the newest run directly under ``runs`` (names are ISO dates)."""
    found = sorted(path for path in runs.glob("*/results.json") if path.parent.name[:1].isdigit())
    return found[-1] if found else None


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _ratio(value: float, baseline: float | None) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"


def render_app_benchmark(results_dir: Path = RESULTS_DIR) -> str:
    path = _newest(results_dir / "app")
    if path is None:
        return "No committed run yet: `make bench-app` writes `bench/results/app/<date>/`."
    run = json.loads(path.read_text())
    machine, wrk = run["machine"], run["wrk"]
    lines = [
        f"Run of {run['date']} (`{_relative(path)}`): {machine['cores']} cores ({machine['cpu']}), "
        f"Python {machine['python']}, load average {machine['load_average']}; wrk "
        f"-t{wrk['threads']} -c{wrk['connections']}, {wrk['duration']} s per row after a "
        f"{wrk['warmup']} s warm-up, median of {wrk['rounds']} rounds.",
    ]
    classes = list(dict.fromkeys(row["worker_class"] for row in run["measurements"]))
    for worker_class in classes:
        rows = [row for row in run["measurements"] if row["worker_class"] == worker_class]
        hello = next((row for row in rows if row["baseline"]), None)
        lines += [
            "",
            f"gunicorn `{worker_class}`:",
            "",
            "| scenario | req/s | vs hello | app CPU µs/req | CPU vs hello | p50 ms | p99 ms "
            "| errors | X-Cache |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in rows:
            rate, cpu = row["requests_per_second"], row["cpu_us_per_request"]
            cells = (
                row["scenario"],
                f"{rate:,.0f}",
                _ratio(rate, hello and hello["requests_per_second"]),
                f"{cpu:,.0f}",
                _ratio(hello["cpu_us_per_request"], cpu) if hello and cpu else "-",
                f"{row['p50_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                str(row["errors"]),
                row["x_cache"],
            )
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def render_topology_benchmark(results_dir: Path = RESULTS_DIR) -> str:
    path = _newest(results_dir)
    if path is None:
        return "No committed run yet: `make bench` writes `bench/results/<date>/`."
    run = json.loads(path.read_text())
    machine, wrk = run["machine"], run["wrk"]
    lines = [
        f"Run of {run['date']} (`{_relative(path)}`, plots beside it): {machine['cores']} "
        f"cores ({machine['cpu']}), load average {machine['load_average']}; wrk "
        f"-t{wrk['threads']} -c{wrk['connections']}, {wrk['duration']} s per measurement.",
        "",
        "| sweep | measurement | replicas | workers | req/s | CPU ms/req | p50 ms | p99 ms "
        "| errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in run["measurements"]:
        label = f"{row['label']} ({row['series']})" if row["series"] else row["label"]
        cells = (
            row["sweep"],
            label,
            str(row["replicas"]),
            str(row["workers"]),
            f"{row['requests_per_second']:,.0f}",
            f"{row['cpu_ms_per_request']:.2f}",
            f"{row['p50_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            str(row["errors"]),
        )
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


REGIONS: tuple[Region, ...] = (
    Region("Pulumi.yaml", "config schema", render_config_schema, YAML_COMMENT),
    Region(
        "README.md",
        "configuration reference",
        render_configuration_reference,
        MARKDOWN_COMMENT,
    ),
    Region("README.md", "stack table", render_stack_table, MARKDOWN_COMMENT),
    Region("README.md", "app environment variables", render_app_environment, MARKDOWN_COMMENT),
    Region("docs/benchmarks.md", "app benchmark", render_app_benchmark, MARKDOWN_COMMENT),
    Region("docs/benchmarks.md", "topology benchmark", render_topology_benchmark, MARKDOWN_COMMENT),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyscale.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="list stale regions, exit 1")
    options = parser.parse_args(argv)
    stale = [region for region in REGIONS if not region.is_current()]
    if options.check:
        for region in stale:
            print(f"{region.path}: {region.name} is stale: run `make docs`", file=sys.stderr)
        return 1 if stale else 0
    for region in stale:
        path = region.file()
        path.write_text(region.updated(path.read_text()))
        print(f"updated {region.path}: {region.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
