"""The README's "Deploy to AWS" and "Operate" guides stay true to the program: the outputs
table names the stack outputs (the configuration reference is generated:
test_generated_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str, level: str = "##") -> str:
    text = README.read_text()
    start = text.index(f"\n{level} {title}\n")
    following = re.search(rf"\n{level} ", text[start + 1 :])
    return text[start : start + 1 + following.start()] if following else text[start:]


def table_rows(text: str, header: str) -> list[list[str]]:
    lines = text[text.index(header) :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([cell.strip().replace("\\|", "|") for cell in cells])
    return rows


def test_outputs_table_names_every_stack_output(shipped_run):
    rows = table_rows(section("Deploy to AWS"), "| output | what |")
    documented = {name.strip("` ") for row in rows for name in row[0].split(",")}

    for stack in ("dev", "prod"):
        assert set(shipped_run(stack).stack_outputs) <= documented, stack


def test_the_guide_shows_the_commands_a_user_runs():
    guide = section("Deploy to AWS") + section("Operate")

    for command in (
        "pulumi stack select dev",
        "pulumi config set pyscale:instanceType m7g.large",
        "pulumi up",
        "pulumi destroy",
    ):
        assert command in guide
