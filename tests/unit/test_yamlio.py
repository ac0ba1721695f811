"""engine.load.yaml_parse: libyaml + the value builder."""

from __future__ import annotations

import math

import yaml

from engine.load.yaml_parse import parse


def test_yaml_1_2_scalars() -> None:
    data, diags = parse(
        "a: on\nb: yes\nc: 2026-01-01\nd: 0o17\ne: 1.5\nf: ~\ng:\nh: 0x1f\ni: True\n"
        "j: .inf\nk: 1e3\nl: -3\nm: '12'\nn: .nan\n",
        "f.yaml",
    )
    assert diags == []
    assert data["a"] == "on" and data["b"] == "yes" and data["c"] == "2026-01-01"
    assert (data["d"], data["h"], data["l"], data["m"]) == (15, 31, -3, "12")
    assert data["e"] == 1.5 and data["k"] == 1000.0 and data["j"] == math.inf
    assert math.isnan(data["n"])
    assert data["f"] is None and data["g"] is None and data["i"] is True


def test_same_values_as_pyyaml_for_plain_documents() -> None:
    text = "x:\n  - {a: 1, b: [true, false, null]}\n  - 'quoted: yes'\ny: {z: 2.5}\n"
    assert parse(text, "f")[0] == yaml.safe_load(text)


def test_duplicate_key_names_both_lines() -> None:
    _, diags = parse("models:\n  a: {}\n  b: {}\n  a: {}\n", "m.yaml")
    assert diags[0].summary == '"a" is defined twice in m.yaml'
    assert (diags[0].source.line, diags[0].related[0][1].line) == (4, 2)


def test_merge_keys_and_aliases() -> None:
    data, _ = parse("base: &b {owner: t, tier: 1}\nm:\n  <<: *b\n  tier: 2\n", "f")
    assert data["m"] == {"owner": "t", "tier": 2}


def test_unsupported_tag_is_an_error_with_a_place() -> None:
    _, diags = parse("a: 1\nb: !!binary aGk=\n", "f.yaml")
    assert "unsupported YAML tag" in diags[0].summary
    assert (diags[0].source.line, diags[0].source.column) == (2, 4)


def test_unquoted_reference_in_flow_list_says_quote_it() -> None:
    _, diags = parse("m:\n  data: [${datasets.x}]\n", "f.yaml")
    assert "quote it" in diags[0].summary
    assert diags[0].source.line == 2
    assert '["${datasets.x}"]' in (diags[0].detail or "")


def test_plain_syntax_error_gets_no_reference_hint() -> None:
    _, diags = parse("a: [1, 2\nb: 3\n", "f.yaml")
    assert diags and "quote it" not in diags[0].summary


def test_empty_file_is_no_data() -> None:
    assert parse("", "f") == (None, [])
