"""Hostile YAML: alias bombs, deep nesting, huge files and the flow-reference hint.

A plan runs on every pull request, so the spec is untrusted input: each of these
must end in one diagnostic with a place, quickly and in little memory.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from common.diagnostics import Diagnostic, MlxError, Source
from engine.load import spec_set as loader
from engine.load.yaml_parse import Limits, parse, unquoted_flow_reference


def _src(diag: Diagnostic) -> Source:
    assert diag.source is not None, diag
    return diag.source


def _laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level is ``width`` aliases of the level below."""
    lines = ["models:", "  m:", "    lineage:", "      params:"]
    lines.append("        a0: &a0 [" + ",".join(["lol"] * width) + "]")
    for i in range(1, levels):
        lines.append(f"        a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() -> None:
    text = _laughs(10)  # 9**10 = 3.5e9 nodes once expanded; the file is 1 KB
    data, diags = parse(text, "models.yaml")
    assert data is None and len(diags) == 1
    diag = diags[0]
    assert "alias" in diag.summary and "1,000,000" in diag.summary, diag.summary
    assert diag.source is not None and _src(diag).file == "models.yaml"
    # a6's first alias brings the expanded total past 10**6: its line and column
    assert (_src(diag).line, _src(diag).column) == (11, 18), diag.source
    assert "MLX_MAX_SPEC_ALIAS_NODES" in (diag.detail or "")


def test_moderate_alias_use_is_fine_and_expands_as_yaml_says() -> None:
    data, diags = parse(_laughs(4), "models.yaml")
    assert diags == []
    params = data["models"]["m"]["lineage"]["params"]
    assert params["a3"][8][8][8] == ["lol"] * 9


def test_alias_count_is_limited() -> None:
    text = "x: &x 1\nl: [" + ",".join(["*x"] * 50) + "]\n"
    assert parse(text, "f.yaml", limits=Limits(aliases=100))[1] == []
    _, diags = parse(text, "f.yaml", limits=Limits(aliases=20))
    assert "more than 20 aliases" in diags[0].summary
    assert (_src(diags[0]).file, _src(diags[0]).line) == ("f.yaml", 2)


def test_aliases_of_a_long_string_count_its_text() -> None:
    big = "x" * 10_000
    text = f"s: &s {big}\nl: [" + ",".join(["*s"] * 200) + "]\n"
    _, diags = parse(text, "f.yaml", limits=Limits(file_bytes=1_000_000))
    assert "characters" in diags[0].summary and _src(diags[0]).line == 2


def test_recursive_alias_is_refused() -> None:
    _, diags = parse("a: &a [1, *a]\n", "f.yaml")
    assert "refers to itself" in diags[0].summary and _src(diags[0]).line == 1


@pytest.mark.parametrize("depth", [65, 300, 600, 999])
def test_deep_flow_nesting_is_one_diagnostic_not_a_recursion_error(depth: int) -> None:
    text = "models:\n  m:\n    params: {x: " + "[" * depth + "]" * depth + "}\n"
    data, diags = parse(text, "m.yaml")
    assert data is None
    assert "nested deeper than 64 levels" in diags[0].summary, diags[0].summary
    assert _src(diags[0]).line == 3


def test_deep_block_nesting_points_at_the_line() -> None:
    lines = [" " * (2 * i) + f"k{i}:" for i in range(80)]
    _, diags = parse("\n".join(lines) + " 1\n", "m.yaml")
    assert "nested deeper than 64 levels" in diags[0].summary
    assert _src(diags[0]).line == 65  # the 65th mapping, the value of k63, starts there


def test_nesting_beyond_libyaml_s_own_limit_gets_the_same_message() -> None:
    text = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    _, diags = parse(text, "m.yaml")
    assert "nested deeper than 64 levels" in diags[0].summary
    assert _src(diags[0]).line == 1


def test_depth_through_aliases_counts() -> None:
    inner = "[" * 40 + "]" * 40
    text = f"a: &a {inner}\nb: {'[' * 30}*a{']' * 30}\n"
    _, diags = parse(text, "f.yaml")
    assert "nested deeper than 64 levels" in diags[0].summary and _src(diags[0]).line == 2


def test_limits_come_from_the_environment() -> None:
    limits = Limits.from_environ(
        {
            "MLX_MAX_SPEC_FILE_BYTES": "1000",
            "MLX_MAX_SPEC_DEPTH": "8",
            "MLX_MAX_SPEC_ALIASES": "3",
            "MLX_MAX_SPEC_ALIAS_NODES": "40",
        }
    )
    assert limits == Limits(file_bytes=1000, depth=8, aliases=3, alias_nodes=40)
    assert Limits.from_environ({}) == Limits()
    with pytest.raises(MlxError, match="MLX_MAX_SPEC_DEPTH must be a positive integer"):
        Limits.from_environ({"MLX_MAX_SPEC_DEPTH": "deep"})


def test_file_larger_than_the_limit_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "small.yaml").write_text("variables:\n  a: {default: 1}\n")
    (tmp_path / "big.yaml").write_text("variables:\n  b: {default: '" + "x" * 5000 + "'}\n")
    monkeypatch.setenv("MLX_MAX_SPEC_FILE_BYTES", "4096")
    with pytest.raises(MlxError) as err:
        loader.load(tmp_path)
    summary = err.value.diagnostics[0].summary
    assert "big.yaml is 5,030 bytes" in summary and "4,096" in summary, summary
    assert _src(err.value.diagnostics[0]).file == "big.yaml"
    monkeypatch.delenv("MLX_MAX_SPEC_FILE_BYTES")
    assert set(loader.load(tmp_path).variables) == {"a", "b"}


def test_flow_reference_hint_is_linear_on_long_bracket_runs() -> None:
    # The hint used to be a regex that backtracked from every bracket: on each of these
    # lines (a syntax error, so the hint runs) it took minutes. Now they take no time.
    line = "models: []" + "[]" * 100_000
    _, diags = parse(line + "\n", "m.yaml")
    assert diags[0].summary.startswith("invalid YAML:") and _src(diags[0]).line == 1
    assert "quote it" not in diags[0].summary
    _, diags = parse("models: " + "[" * 100_000 + "\n", "m.yaml")
    assert "nested deeper than 64 levels" in diags[0].summary
    assert unquoted_flow_reference(line) is False
    assert unquoted_flow_reference("[" * 100_000) is False
    assert unquoted_flow_reference(line + "${datasets.x}") is True


def test_flow_reference_hint_matches_the_old_rule() -> None:
    old = re.compile(r"[\[{][^\"']*\$\{")
    rng = random.Random(7)
    alphabet = ["[", "{", "$", "${", "'", '"', "a", " ", "}", "]"]
    for _ in range(5000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert unquoted_flow_reference(line) == bool(old.search(line)), line
