"""Policies written for Terraform plans, run by a Rego engine that is not mlx's (regopy, the
rego-cpp interpreter), over a real ``mlx plan --json``.

The plan is made by the ``mlx`` command against applied state, then a changed spec, and
holds every kind of entry: a no-op, a create, an update, a replacement (``["delete",
"create"]``) and a delete. The rules are the repo's own ``examples/policy/*.rego``, loaded
the way ``conftest test --policy examples/policy`` loads them (one ``main`` package).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from regopy import Interpreter

from tests.conftest import REPO, run_mlx, write_spec

POLICY = REPO / "examples" / "policy"
SCHEMA = json.loads((REPO / "docs" / "plan-json.schema.json").read_text())

BEFORE = {
    "data.yaml": """
datasets:
  train: {uri: data/train.csv, owner: team-data}
""",
    "models.yaml": """
models:
  fraud:
    artifact: model.bin
    owner: team-ml
    description: Scores card transactions
    lineage: {data: ["${datasets.train}"]}
""",
    "alerts.yaml": """
alerts:
  oncall: {type: file, path: alerts.jsonl, owner: team-ml}
  audit: {type: file, path: audit.jsonl, owner: team-sec}
""",
}
AFTER = {
    # datasets.train: unchanged (no-op); datasets.eval: new (create)
    "data.yaml": """
datasets:
  train: {uri: data/train.csv, owner: team-data}
  eval: {uri: data/eval.csv, owner: team-data}
""",
    # models.fraud: a new description (update)
    "models.yaml": """
models:
  fraud:
    artifact: model.bin
    owner: team-ml
    description: Scores card transactions in real time
    lineage: {data: ["${datasets.train}"]}
""",
    # alerts.oncall: a new type cannot be updated in place (replace); alerts.audit: gone
    "alerts.yaml": """
alerts:
  oncall: {type: webhook, url: "https://hooks.example.com/services/T000", owner: team-ml}
""",
}
EXPECTED_ACTIONS = {
    "alerts.audit": ["delete"],
    "alerts.oncall": ["delete", "create"],
    "datasets.eval": ["create"],
    "datasets.train": ["no-op"],
    "models.fraud": ["update"],
}


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``mlx plan --json`` of the changed spec, against the applied one."""
    spec = tmp_path_factory.mktemp("policy") / "spec"
    write_spec(spec, BEFORE)
    (spec / "data").mkdir()
    (spec / "data" / "train.csv").write_text("amount,label\n10,0\n99,1\n")
    (spec / "data" / "eval.csv").write_text("amount,label\n12,0\n")
    (spec / "model.bin").write_text("weights-v1")
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    write_spec(spec, AFTER)
    result = run_mlx(["plan", "--json"], spec)
    assert result.code == 0, result
    doc: dict[str, Any] = json.loads(result.out)
    jsonschema.validate(doc, SCHEMA)
    return doc


def _evaluate(doc: dict[str, Any], query: str) -> dict[str, Any]:
    """Every ``examples/policy/*.rego`` module, ``doc`` as input, one query: its bindings."""
    rego = Interpreter()
    for path in sorted(POLICY.glob("*.rego")):
        rego.add_module(path.stem, path.read_text())
    rego.set_input(doc)
    out = json.loads(str(rego.query(query)))
    bindings: dict[str, Any] = out["bindings"]
    return bindings


def _deny(doc: dict[str, Any]) -> list[str]:
    return sorted(_evaluate(doc, "x := data.main.deny")["x"])


def _missing_planned(doc: dict[str, Any]) -> list[str]:
    return sorted(_evaluate(doc, "x := data.main.missing_owner_planned")["x"])


def test_the_plan_holds_every_kind_of_entry(plan: dict[str, Any]) -> None:
    actions = {rc["address"]: rc["change"]["actions"] for rc in plan["resource_changes"]}
    assert actions == EXPECTED_ACTIONS
    assert plan["applyable"] is True and plan["complete"] is True and plan["errored"] is False


def test_a_no_op_carries_its_object_on_both_sides(plan: dict[str, Any]) -> None:
    noop = next(rc for rc in plan["resource_changes"] if rc["address"] == "datasets.train")
    change = noop["change"]
    assert change["before"] == change["after"]
    assert change["after"]["owner"] == "team-data"
    assert change["after"]["uri"] == "data/train.csv"
    # its recorded outputs too: what the applied state says about it
    recorded = next(
        r
        for r in plan["prior_state"]["values"]["root_module"]["resources"]
        if r["address"] == "datasets.train"
    )
    assert change["after"]["fingerprint"] == recorded["values"]["fingerprint"]
    assert change["after"]["fingerprint"].startswith("sha256:")


def test_prior_state_planned_values_and_configuration(plan: dict[str, Any]) -> None:
    prior = {r["address"] for r in plan["prior_state"]["values"]["root_module"]["resources"]}
    assert prior == {"alerts.audit", "alerts.oncall", "datasets.train", "models.fraud"}
    planned = {r["address"]: r for r in plan["planned_values"]["root_module"]["resources"]}
    assert set(planned) == {"alerts.oncall", "datasets.eval", "datasets.train", "models.fraud"}
    assert planned["alerts.oncall"]["values"]["type"] == "webhook"
    assert planned["models.fraud"]["values"]["description"] == (
        "Scores card transactions in real time"
    )
    config = {r["address"]: r for r in plan["configuration"]["root_module"]["resources"]}
    assert config["models.fraud"]["expressions"]["lineage"] == {"references": ["datasets.train"]}
    assert config["models.fraud"]["expressions"]["owner"] == {"constant_value": "team-ml"}
    assert "alerts.audit" not in config


def test_every_resource_has_an_owner_passes(plan: dict[str, Any]) -> None:
    assert _deny(plan) == []
    assert _missing_planned(plan) == []


def test_the_owner_rule_would_have_failed_on_null_no_ops(plan: dict[str, Any]) -> None:
    """Format 1.2's no-op (``before``/``after`` null) is what made this rule flag resources
    that have owners: the same rule over that shape names the unchanged one."""
    old = copy.deepcopy(plan)
    for rc in old["resource_changes"]:
        if rc["change"]["actions"] == ["no-op"]:
            rc["change"]["before"] = rc["change"]["after"] = None
    assert _deny(old) == ["datasets.train has no owner"]


@pytest.mark.parametrize("address", ["datasets.train", "datasets.eval", "models.fraud"])
def test_the_owner_rule_fails_naming_the_resource(plan: dict[str, Any], address: str) -> None:
    """Validation requires an owner, so the failing plan is this one with one owner taken
    out, in both parts the two rules read: each rule names exactly that resource."""
    doc = copy.deepcopy(plan)
    change = next(rc for rc in doc["resource_changes"] if rc["address"] == address)["change"]
    del change["after"]["owner"]
    planned = next(
        r for r in doc["planned_values"]["root_module"]["resources"] if r["address"] == address
    )
    planned["values"]["owner"] = ""
    assert _deny(doc) == [f"{address} has no owner"]
    assert _missing_planned(doc) == [address]


def test_a_deleted_resource_needs_no_owner(plan: dict[str, Any]) -> None:
    doc = copy.deepcopy(plan)
    deleted = next(rc for rc in doc["resource_changes"] if rc["address"] == "alerts.audit")
    assert deleted["change"]["after"] is None
    deleted["change"]["before"].pop("owner")
    assert _deny(doc) == []


def test_conftest_style_counts(plan: dict[str, Any]) -> None:
    """conftest's result: the number of ``deny`` and ``warn`` messages of package main."""
    counts = _evaluate(plan, "d := count(data.main.deny); w := count(data.main.warn)")
    assert counts == {"d": 0, "w": 0}
    # the repo's no_unreviewed_deletes rule: a plan deleting a model is denied, by name
    doc = copy.deepcopy(plan)
    model = next(rc for rc in doc["resource_changes"] if rc["address"] == "models.fraud")
    model["change"]["actions"] = ["delete"]
    model["change"]["after"] = None
    bindings = _evaluate(doc, "d := data.main.deny; n := count(data.main.deny)")
    assert bindings["n"] == 1
    assert bindings["d"][0].startswith("models.fraud would be deleted")


def test_a_saved_plan_shows_as_json_with_its_own_time(tmp_path: Path) -> None:
    """``mlx show FILE --json`` renders the plan ``mlx plan -o FILE`` saved: its own
    timestamp and records, the same changes ``mlx plan --json`` prints; and it still
    applies (neither the time nor the records are part of what the plan does)."""
    spec = write_spec(tmp_path / "spec", BEFORE)
    (spec / "data").mkdir()
    (spec / "data" / "train.csv").write_text("amount,label\n10,0\n")
    (spec / "model.bin").write_text("weights-v1")
    saved = run_mlx(["plan", "-o", "plan.bin"], spec)
    assert saved.code == 0, saved
    stored = json.loads((spec / "plan.bin").read_text())["plan"]["timestamp"]
    shown = run_mlx(["show", "plan.bin", "--json"], spec)
    assert shown.code == 0, shown
    doc = json.loads(shown.out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["timestamp"] == stored
    again = json.loads(run_mlx(["show", "plan.bin", "--json"], spec).out)
    assert again["timestamp"] == stored
    fresh = json.loads(run_mlx(["plan", "--json"], spec).out)
    assert doc["resource_changes"] == fresh["resource_changes"]
    assert [rc["change"]["actions"] for rc in doc["resource_changes"]] == [["create"]] * 4
    applied = run_mlx(["apply", "plan.bin"], spec)
    assert applied.code == 0, applied


def test_show_refuses_a_file_that_is_no_plan(tmp_path: Path) -> None:
    """`mlx show FILE` on a file that is not a saved plan: exit 1 naming it, no traceback."""
    spec = write_spec(tmp_path / "spec", BEFORE)
    (spec / "notaplan.bin").write_text("not a plan\n")
    shown = run_mlx(["show", "notaplan.bin", "--json"], spec)
    assert shown.code == 1, shown
    assert "notaplan.bin is not an mlx plan file" in shown.err
    assert "Traceback" not in shown.err and shown.out == ""
