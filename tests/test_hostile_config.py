"""A hostile config file (alias bombs, deep nesting, odd bytes, unknown tags) is exit 2 with file:line.

Never a traceback (exit 1), a hang or a silent default. Bounds are asserted on what the loader counts and on
peak memory (tracemalloc), not on seconds.
"""

from __future__ import annotations

import itertools
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result

from connector import safe_yaml
from connector.cli import cli
from connector.config import ConfigErrors, load_config, load_config_text

pytestmark = pytest.mark.reliability("Hostile input")

HEAD = "stage_model: {preset: default}\n"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def bomb(levels: int, under: str = "x_unknown") -> str:
    """Billion laughs: each level is a list of nine aliases of the level before, so 9**levels leaves."""
    lines = [f"{under}:", '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"
    for prev, name in itertools.pairwise(names[: levels + 1]):
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return HEAD + "\n".join(lines) + "\n"


def validate(tmp_path: Path, content: str | bytes) -> Result:
    path = tmp_path / "connector.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return CliRunner().invoke(cli, ["--log-level", "warning", "validate", "-c", str(path)])


def assert_config_error(result: Result, line: int, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"connector.yaml:{line}:" in result.stderr
    for word in words:
        assert word in result.stderr


def test_a_bomb_is_refused_at_the_alias_within_a_few_megabytes() -> None:
    # 9**6 = 531,441 strings: small enough that the old loader expanded it (tens of megabytes) without
    # taking the machine down; the billion-laughs size runs in a memory-capped subprocess below
    tracemalloc.start()
    try:
        with pytest.raises(ConfigErrors) as caught:
            load_config_text(bomb(5), "bomb.yaml", base_dir=Path.cwd())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (issue,) = caught.value.issues
    # a copy of level e (66,430 nodes) on top of the levels before crosses the limit: line 8, level f
    assert (issue.file, issue.line) == ("bomb.yaml", 8)
    assert f"alias *e makes the document expand to more than {safe_yaml.MAX_EXPANDED_NODES:,} nodes" in (
        issue.message
    )
    assert peak < 8 * 1024 * 1024


def _capped(limit: int) -> Callable[[], None]:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return cap


@pytest.mark.parametrize("under", ["x_unknown", "identity"])
def test_the_cli_refuses_a_billion_laughs_with_exit_2(tmp_path: Path, under: str) -> None:
    text = bomb(9, under=under)
    assert len(text.encode()) < 1024  # 1 KB that expands to 9**9 (387 million) strings
    path = tmp_path / "connector.yaml"
    path.write_text(text, encoding="utf-8")
    # a subprocess with its address space capped at 1 GiB: the old loader ran out of memory there (exit 1)
    # instead of eating the machine; the timeout is a guard, nothing asserts on time
    done = subprocess.run(
        [sys.executable, "-c", "from connector.cli import main; main()", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=_capped(1024**3),
    )
    assert done.returncode == 2, done.stderr
    assert f"{path}:8: alias *e makes the document expand" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    text = HEAD + (
        "targets:\n"
        "  - &files {name: marketing_files, type: segment_files, directory: out}\n"
        "segments:\n"
        "  - name: all\n"
        "    when: &always {field: email, present: true}\n"
        "    targets: [marketing_files]\n"
        "  - name: everyone\n"
        "    when: *always\n"
        "    targets: [marketing_files]\n"
    )
    (tmp_path / "connector.yaml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "connector.yaml")
    assert config.segments[0].when == config.segments[1].when


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    result = validate(tmp_path, HEAD + "identity:\n  source_priority: &loop [a, *loop]\n")
    assert_config_error(result, 3, "alias *loop refers to a node that contains it")


def test_nesting_thousands_deep_is_refused_with_its_line(tmp_path: Path) -> None:
    result = validate(tmp_path, HEAD + "segments:\n  - when: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_config_error(result, 3, f"nested more than {safe_yaml.MAX_DEPTH} levels deep")
    assert "RecursionError" not in result.output


def test_undecodable_bytes_name_their_line(tmp_path: Path) -> None:
    result = validate(tmp_path, HEAD.encode() + b"identity:\n  source_priority: [caf\xe9]\n")
    assert_config_error(result, 3, "not UTF-8 (byte 0xe9")


def test_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    result = validate(tmp_path, b"\xef\xbb\xbf" + HEAD.encode())
    assert result.exit_code == 0, result.output


def test_a_nul_character_names_its_line(tmp_path: Path) -> None:
    result = validate(tmp_path, HEAD + "identity:\n  source_priority: [a\x00b]\n")
    assert_config_error(result, 3, "character #x0000 is not allowed")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!env STATE_PATH", "tag !env is not supported"),
        ("!!python/object:os.system {}", "tag !!python/object:os.system is not supported"),
        ("!!binary aGVsbG8=", "tag !!binary is not supported"),
    ],
)
def test_unknown_tags_are_refused_not_taken_as_values(tmp_path: Path, value: str, shown: str) -> None:
    result = validate(tmp_path, HEAD + f"state:\n  path: {value}\n")
    assert_config_error(result, 3, shown)


def test_an_unknown_tag_where_any_value_is_allowed_is_refused(tmp_path: Path) -> None:
    # `constants` take any value: a TaggedScalar object would have been kept silently
    text = HEAD + (
        "sources:\n"
        "  - name: f\n"
        "    type: file\n"
        "    path: people.csv\n"
        "    fields: {E-mail: email}\n"
        "    constants: {extra.campaign: !env CAMPAIGN}\n"
    )
    result = validate(tmp_path, text)
    assert_config_error(result, 7, "tag !env is not supported")


def test_core_tags_are_fine(tmp_path: Path) -> None:
    result = validate(tmp_path, HEAD + "state: !!map\n  path: !!str state.sqlite\n")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2026-02-30", ("2026-02-30: day is out of range for month",)),
        ("1" * 5000, ("Exceeds the limit (4300 digits)",)),
    ],
)
def test_scalars_python_refuses_name_their_line(tmp_path: Path, value: str, words: tuple[str, ...]) -> None:
    result = validate(tmp_path, HEAD + f"identity:\n  source_priority: [{value}]\n")
    assert_config_error(result, 3, *words)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.Inf"])
def test_a_share_that_is_not_a_finite_number_names_its_line(tmp_path: Path, value: str) -> None:
    """A NaN limit compares false with every share: the mass-change guard would never hold."""
    result = validate(tmp_path, HEAD + f"guard:\n  max_segment_removal_share: {value}\n")
    assert result.exit_code == 2, result.output
    assert (
        "connector.yaml:3 guard.max_segment_removal_share: Input should be a finite number" in result.stderr
    )


@pytest.mark.parametrize("value", [".nan", "[1, .inf]"])
def test_a_condition_operand_that_is_not_a_finite_number_names_its_line(tmp_path: Path, value: str) -> None:
    """`gt: .nan` would make a rule that silently never matches."""
    op = "in" if value.startswith("[") else "gt"
    content = HEAD.replace(
        "{preset: default}",
        "{preset: default, rules: [{name: fans, stage: ambassador, when: {field: review_score, "
        + op
        + ": "
        + value
        + "}}]}",
    )
    result = validate(tmp_path, content)
    assert result.exit_code == 2, result.output
    assert "connector.yaml:1 stage_model.rules[0].when" in result.stderr
    assert "needs a finite number" in result.stderr
