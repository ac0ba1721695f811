"""The `evals` spec: SPEC.md's example stays valid; mistakes are caught with useful messages."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from specs.evals import Eval, OpenAIClient, PythonClient

#: The `evals` example of SPEC.md ("Every YAML example in this file is valid").
SPEC_EXAMPLE = """
evals:
  fraud_release:
    subject: ${models.fraud}
    dataset: ${datasets.fraud_eval}
    label: is_fraud
    baseline: previous                     # or {alias: production}, {model: "${models.x}"}, …
    metrics:
      roc_auc: {min: 0.85, max_drop: 0.01} # max_drop: tolerance against baseline
      recall:  {min: 0.70}
    slices: {by: [country], min_rows: 50}
"""


def test_spec_md_example_is_valid() -> None:
    for body in yaml.safe_load(SPEC_EXAMPLE)["evals"].values():
        gate = Eval.model_validate(body)
        assert gate.baseline == "previous" and gate.metrics["roc_auc"].max_drop == 0.01
        assert gate.slices is not None and gate.slices.min_rows == 50


@pytest.mark.parametrize(
    "baseline",
    [{"alias": "production"}, {"model": "${models.x}"}, {"heuristic": "majority"}, "none"],
)
def test_every_baseline_form_of_spec_md(baseline: Any) -> None:
    body = yaml.safe_load(SPEC_EXAMPLE)["evals"]["fraud_release"]
    Eval.model_validate({**body, "baseline": baseline})


def base(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "${models.m}",
        "dataset": "${datasets.d}",
        "label": "y",
        "metrics": {"roc_auc": {"min": 0.9}},
    }
    body.update(over)
    return body


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"metrics": {"roc_acu": {"min": 0.9}}}, 'did you mean "roc_auc"'),
        ({"metrics": {"recall": {"min": 0.9, "max": 0.5}}}, "greater than max"),
        ({"metrics": {"recall": {"max_drop": -0.1}}}, "greater than or equal to 0"),
        ({"label": None}, "needs `label`"),
        ({"cases": "c.yaml"}, "exclude each other"),
        ({"assert": [{"type": "contains", "value": "x"}]}, "belong to LLM gates"),
        ({"baseline": {"heuristic": "constant"}}, "needs `value`"),
        ({"baseline": "latest"}, "baseline"),
        ({"slices": {"by": []}}, "at least 1 item"),
    ],
)
def test_mistakes_are_rejected(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Eval.model_validate(base(**over))


def test_llm_gate_fields() -> None:
    gate = Eval.model_validate(
        {
            "subject": "${prompts.p}",
            "cases": "cases.yaml",
            "assert": [{"type": "not_icontains", "value": "sorry"}],
            "pass_rate": {"min": 0.9},
        }
    )
    assert gate.is_llm and gate.assert_[0].type == "not_icontains"
    with pytest.raises(ValidationError, match="belong to ML gates"):
        Eval.model_validate({"subject": "${prompts.p}", "cases": "c.yaml", "metrics": {"f1": {}}})


def test_client_type_may_be_omitted_as_the_normalised_spec_does() -> None:
    """The engine drops fields equal to their default, `type: openai` included."""
    body = {"subject": "prompts.p", "cases": "c.yaml", "client": {"base_url": "http://x/v1"}}
    assert isinstance(Eval.model_validate(body).client, OpenAIClient)
    body["client"] = {"type": "python", "python": "hooks:answer"}
    assert isinstance(Eval.model_validate(body).client, PythonClient)
