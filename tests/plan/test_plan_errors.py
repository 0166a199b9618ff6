"""`pyscale plan` on stacks that cannot be planned: one clear message, non-zero exit, no
traceback — the message `pulumi preview` of the same stack would print."""

from __future__ import annotations

import pytest

from infra.settings import ConfigError, load_settings
from pyscale import stacks


def assert_clean_failure(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, fragment


def test_unknown_stack_lists_the_known_stacks(run_cli) -> None:
    result = run_cli("plan", "--stack", "qa")
    assert_clean_failure(result, "unknown stack 'qa'", ", ".join(stacks.stack_names()))


def test_unknown_stack_in_a_diff_lists_the_known_stacks(run_cli) -> None:
    result = run_cli("plan", "--diff", "qa", "dev", "--json")
    assert_clean_failure(result, "unknown stack 'qa'", "prod")


def test_invalid_config_gives_the_programs_configuration_error(run_cli) -> None:
    overrides = {"pyscale:instanceType": "m7g.lrge", "pyscale:cacheReplicas": "9"}
    with pytest.raises(ConfigError) as expected:
        load_settings({**stacks.engine_config("dev"), **overrides}, "dev")
    result = run_cli(
        "plan", "--stack", "dev", "-c", "instanceType=m7g.lrge", "-c", "cacheReplicas=9"
    )
    assert_clean_failure(result, "did you mean m7g.large", "pyscale:cacheReplicas")
    # the whole message, every problem, exactly as the program raises it
    assert " ".join(str(expected.value).split()) in " ".join(result.stderr.split())


def test_a_broken_stack_file_fails_with_its_configuration_problems(
    run_cli, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stacks directory holding a stack whose min exceeds its max
    (tmp_path / "Pulumi.broken.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  pyscale:minSize: 5\n  pyscale:maxSize: 2\n"
    )
    monkeypatch.setattr(stacks, "stacks_dir", lambda: tmp_path)
    # WHEN it is planned THEN the error names the keys and the rule
    result = run_cli("plan", "--stack", "broken")
    assert_clean_failure(result, "stack 'broken'", "pyscale:desiredCapacity", "minSize")


def test_a_config_override_that_is_not_key_value_is_refused(run_cli) -> None:
    assert_clean_failure(run_cli("plan", "-c", "instanceType"), "expected KEY=VALUE")


def test_json_and_markdown_together_are_a_usage_error(run_cli) -> None:
    result = run_cli("plan", "--json", "--markdown")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
