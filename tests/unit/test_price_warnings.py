"""``engine.plan.price_warnings``: one row per branch of which models a served prompt names and
whether the serving endpoint can price them; then ``mlx plan`` and ``--strict-prices``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from engine.load.spec_set import load
from engine.plan.price_warnings import gateway_known, named_models, unpriced
from tests.conftest import run_mlx, write_spec

#: the bundled table is replaced by this set, so each row says exactly what is known
TABLE = {"gpt-4o-mini", "gpt-4o"}


def known(pricing: Mapping[str, Any], model: str) -> bool:
    return model in pricing or model in TABLE


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ({}, []),
        ({"model": "a"}, [(("model",), "a")]),
        (
            {"model": "a", "routing": {"rules": [{"when": "x", "model": "b"}], "default": "c"}},
            [
                (("model",), "a"),
                (("routing", "rules", 0, "model"), "b"),
                (("routing", "default"), "c"),
            ],
        ),
        ({"routing": {"rules": [{"when": "x"}, "junk"], "default": None}}, []),
        ({"model": 7, "routing": "nope"}, []),
    ],
)
def test_named_models(prompt: dict[str, Any], expected: list[Any]) -> None:
    assert list(named_models(prompt)) == expected


PROMPT = """
prompts:
  support:
    template: "Q: {{question}}"
    owner: team-llm
%s
"""
ENDPOINT = """
endpoints:
  support:
    owner: team-llm
    serves: ${prompts.support}
%s
"""


def _spec(tmp_path: Path, prompt: str, endpoint: str, served: bool = True) -> Path:
    files = {"mlx.yaml": "mlx: {}\n", "prompts.yaml": PROMPT % prompt}
    if served:
        files["endpoints.yaml"] = ENDPOINT % endpoint
    return write_spec(tmp_path / "spec", files)


@pytest.mark.parametrize(
    ("prompt", "endpoint", "served", "expected"),
    [
        # the table knows it: nothing to say
        ("    model: gpt-4o-mini", "", True, []),
        # nobody knows it
        ("    model: house-7b", "", True, [("prompts.support", "model", "house-7b", 5)]),
        # the endpoint's pricing knows it
        (
            "    model: house-7b",
            "    pricing: {house-7b: {input_per_1k: 0.1, output_per_1k: 0.2}}",
            True,
            [],
        ),
        # a routing rule and the default, each with its own line
        (
            "    model: gpt-4o\n    routing:\n      rules:\n        - {when: 'input_tokens < 9', "
            "model: tiny-1b}\n      default: gpt-4o-mini",
            "",
            True,
            [("prompts.support", "routing.rules[0].model", "tiny-1b", 8)],
        ),
        # a prompt no endpoint serves is not the gateway's to price
        ("    model: house-7b", "", False, []),
        # the prompt names no model: the endpoint client's model is the one called
        (
            "",
            "    client: {type: openai, base_url: 'http://127.0.0.1:9/v1', model: house-7b}",
            True,
            [("endpoints.support", "client.model", "house-7b", 5)],
        ),
    ],
)
def test_unpriced(
    tmp_path: Path, prompt: str, endpoint: str, served: bool, expected: list[Any]
) -> None:
    spec = load(_spec(tmp_path, prompt, endpoint, served))
    got = unpriced(spec, known)
    assert [
        (u.prompt, u.message.split(" names ")[0].split(f"{u.prompt}.", 1)[1], u.model, u.where.line)
        for u in got
    ] == expected
    for u in got:
        assert (
            u.message.startswith(f"{u.where}: ") and "endpoints.support cannot price" in u.message
        )


def test_the_gateway_knows_the_bundled_table_and_the_spec() -> None:
    assert gateway_known({}, "gpt-4o-mini") and gateway_known({"house-7b": {}}, "house-7b")
    assert not gateway_known({}, "house-7b")


def test_mlx_plan_warns_and_strict_prices_fails(tmp_path: Path) -> None:
    rules = (
        "    model: gpt-4o-mini\n    routing:\n      rules:\n        - {when: 'input_tokens < 9',"
        " model: tiny-1b}"
    )
    client = "    client: {type: openai, base_url: 'http://127.0.0.1:9/v1'}"
    spec = _spec(tmp_path, rules, client)
    plan = run_mlx(["plan"], spec)
    assert plan.code == 0, plan
    text = plan.out + plan.err
    assert "prompts.yaml:8" in text and "'tiny-1b'" in text and "cannot price" in text
    strict = run_mlx(["plan", "--strict-prices"], spec)
    assert strict.code == 1, strict
    assert "prompts.support: model 'tiny-1b' cannot be priced by endpoints.support" in strict.err
    assert "prompts.yaml:8" in strict.err
    # priced by the endpoint's pricing: strict passes
    (spec / "endpoints.yaml").write_text(
        (
            ENDPOINT
            % f"{client}\n    pricing: {{tiny-1b: {{input_per_1k: 0.01, output_per_1k: 0.02}}}}"
        ).lstrip()
    )
    assert run_mlx(["plan", "--strict-prices"], spec).code == 0


def test_a_model_from_a_variable_is_checked_as_resolved(tmp_path: Path) -> None:
    client = "    client: {type: openai, base_url: 'http://127.0.0.1:9/v1'}"
    spec = _spec(tmp_path, "    model: ${var.llm_model}", client)
    (spec / "mlx.yaml").write_text("mlx: {}\nvariables:\n  llm_model:\n    default: house-7b\n")
    plan = run_mlx(["plan"], spec)
    assert plan.code == 0, plan
    assert "prompts.yaml:5" in plan.out + plan.err and "'house-7b'" in plan.out + plan.err
    assert run_mlx(["plan", "--strict-prices"], spec).code == 1
    (spec / "mlx.yaml").write_text("mlx: {}\nvariables:\n  llm_model:\n    default: gpt-4o\n")
    ok = run_mlx(["plan", "--strict-prices"], spec)
    assert ok.code == 0, ok


def test_without_the_table_the_plan_says_so_instead_of_blaming_each_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common import pricing
    from engine.plan import price_warnings as pw

    spec = load(_spec(tmp_path, "    model: house-7b", ""))
    assert "house-7b" in pw.price_warnings(spec)[0]
    monkeypatch.setattr(pricing, "table_source", lambda: None)
    assert pw.price_warnings(spec) == [pw.NO_TABLE]
    assert [d.summary for d in pw.price_errors(spec)] == [f"--strict-prices: {pw.NO_TABLE}"]
