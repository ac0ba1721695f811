"""The release workflow: saved plans, JSON/Markdown plans, history and diff, rollback, promotion."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import BASIC, REPO, run_mlx, secret_spec, write_spec
from tests.support.registry_rows import read_record

ROLLOUT = """
rollouts:
  fraud:
    subject: ${models.fraud}
    alias: production
    owner: team-ml
"""


def registry_object(spec: Path, env: str = "default") -> dict:
    return dict(read_record(spec / ".mlx" / "registry", "models", "fraud", env)["object"])


def state_rows(spec: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        return list(conn.execute(sql))


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec", {**BASIC, "rollout.yaml": ROLLOUT})


# -- saved plans -------------------------------------------------------------------------
def test_saved_plan_applies_exactly_without_asking(spec: Path) -> None:
    saved = run_mlx(["plan", "-o", "plan.json"], spec)
    assert saved.code == 0, saved
    applied = run_mlx(["apply", "plan.json"], spec)  # no --yes, no stdin: it must not ask
    assert applied.code == 0, applied
    assert "Apply complete! Resources: 4 added" in applied.out
    assert run_mlx(["plan", "--detailed-exitcode"], spec).code == 0


def test_stale_saved_plan_is_refused(spec: Path) -> None:
    assert run_mlx(["apply", "--yes"], spec).code == 0
    (spec / "model.bin").write_text("weights-v2")
    assert run_mlx(["plan", "-o", "plan.json"], spec).code == 0
    (spec / "model.bin").write_text("weights-v3")
    assert run_mlx(["apply", "--yes"], spec).code == 0  # someone else applied meanwhile
    stale = run_mlx(["apply", "plan.json"], spec)
    assert stale.code == 1
    assert "state moved from serial 1 to 2 since this plan was made; plan again" in stale.err
    assert state_rows(spec, "SELECT max(serial) FROM mlx_state_versions") == [(2,)]


def test_saved_plan_refused_when_spec_files_or_content_changed(spec: Path) -> None:
    assert run_mlx(["plan", "-o", "plan.json"], spec).code == 0
    text = (spec / "models.yaml").read_text().replace("fraud model", "fraud model v2")
    (spec / "models.yaml").write_text(text)
    refused = run_mlx(["apply", "plan.json"], spec)
    assert refused.code == 1 and "the spec files changed since this plan was made" in refused.err
    (spec / "models.yaml").write_text(text.replace("fraud model v2", "fraud model"))
    (spec / "model.bin").write_text("other bytes")  # same spec, other content
    refused = run_mlx(["apply", "plan.json"], spec)
    assert refused.code == 1, refused
    assert "no longer matches what mlx would do now" in refused.err
    assert "models.fraud" in refused.err
    assert not (spec / ".mlx" / "state.db").exists() or state_rows(
        spec, "SELECT count(*) FROM mlx_resources"
    ) == [(0,)]


def test_plan_file_holds_no_secret(tmp_path: Path) -> None:
    secret = "xoxb-very-secret-token"
    spec = secret_spec(tmp_path / "spec", "MLX_TEST_SECRET")
    env = {"MLX_TEST_SECRET": secret}
    assert run_mlx(["plan", "-o", "plan.json"], spec, env=env).code == 0
    assert secret not in (spec / "plan.json").read_text()
    applied = run_mlx(["apply", "plan.json"], spec, env=env)
    assert applied.code == 0, applied
    changed = run_mlx(["apply", "plan.json"], spec, env={"MLX_TEST_SECRET": "other"})
    assert changed.code == 1  # state moved: a second apply of one plan is refused
    assert "since this plan was made; plan again" in changed.err, changed


def test_protected_environment_only_takes_a_saved_plan(spec: Path) -> None:
    write_spec(spec, {"envs.yaml": "environments:\n  prod: {protected: true}\n"})
    direct = run_mlx(["apply", "--yes", "--env", "prod"], spec)
    assert direct.code == 1 and 'environment "prod" is protected' in direct.err
    assert run_mlx(["plan", "-o", "prod.json", "--env", "prod"], spec).code == 0
    assert run_mlx(["apply", "prod.json", "--env", "prod"], spec).code == 0
    wrong_env = run_mlx(["apply", "prod.json"], spec)
    assert wrong_env.code == 1 and "--env prod" in wrong_env.err


def test_protected_environment_refuses_unreviewed_high_risk_model(spec: Path) -> None:
    write_spec(
        spec,
        {
            "envs.yaml": "environments:\n  prod: {protected: true}\n",
            "models.yaml": """
                models:
                  fraud:
                    artifact: model.bin
                    owner: team-ml
                    card: {risk: high}
            """,
        },
    )
    refused = run_mlx(["plan", "--env", "prod"], spec)
    assert refused.code == 1
    assert "models.fraud has card.risk: high" in refused.err and "models.yaml:5:" in refused.err
    allowed = run_mlx(["plan"], spec)  # not protected: a warning, not an error
    assert allowed.code == 0 and "card.review names no approver" in allowed.out
    write_spec(
        spec,
        {
            "models.yaml": """
                models:
                  fraud:
                    artifact: model.bin
                    owner: team-ml
                    card:
                      risk: high
                      review: {approved_by: dr-chen, approved_at: "2026-11-20"}
            """
        },
    )
    assert run_mlx(["plan", "--env", "prod"], spec).code == 0


# -- JSON and Markdown ----------------------------------------------------------------------
def _schema() -> dict:
    return json.loads((REPO / "docs" / "plan-json.schema.json").read_text())


def test_json_plan_validates_and_a_policy_over_actions_works(spec: Path) -> None:
    import jsonschema

    assert run_mlx(["apply", "--yes"], spec).code == 0
    write_spec(spec, {"rollout.yaml": ""})  # remove the rollout
    (spec / "model.bin").write_text("weights-v2")
    result = run_mlx(["plan", "--json"], spec)
    assert result.code == 0, result
    doc = json.loads(result.out)
    jsonschema.validate(doc, _schema())
    by_address = {rc["address"]: rc for rc in doc["resource_changes"]}
    assert by_address["rollouts.fraud"]["change"]["actions"] == ["delete"]
    assert by_address["models.fraud"]["change"]["actions"] == ["update"]
    assert by_address["models.fraud"]["change"]["after_unknown"] == {"version": True, "uri": True}
    assert by_address["datasets.train"]["change"]["actions"] == ["no-op"]
    # the example policy (examples/policy/no_unreviewed_deletes.rego), evaluated the same way
    denied = [
        rc["address"]
        for rc in doc["resource_changes"]
        if rc["type"] in ("models", "rollouts") and "delete" in rc["change"]["actions"]
    ]
    assert denied == ["rollouts.fraud"]


def test_json_plan_never_shows_a_secret(tmp_path: Path) -> None:
    import jsonschema

    spec = secret_spec(tmp_path / "spec", "MLX_TEST_SECRET")
    result = run_mlx(["plan", "--json"], spec, env={"MLX_TEST_SECRET": "s3cr3t-v4lue"})
    assert "s3cr3t-v4lue" not in result.out
    doc = json.loads(result.out)
    jsonschema.validate(doc, _schema())
    alert = next(rc for rc in doc["resource_changes"] if rc["address"] == "alerts.oncall")
    assert alert["change"]["after"]["url"] is None
    assert alert["change"]["after_sensitive"] == {"url": True}


# -- history, show, diff -------------------------------------------------------------------------
def test_history_show_and_diff(spec: Path) -> None:
    assert run_mlx(["apply", "--yes"], spec).code == 0
    (spec / "model.bin").write_text("weights-v2")
    assert run_mlx(["apply", "--yes"], spec).code == 0
    history = json.loads(run_mlx(["history", "--json"], spec).out)
    assert [(h["serial"], h["operation"]) for h in history] == [(1, "apply"), (2, "apply")]
    assert {"serial", "operation", "created_at", "actor"} <= set(history[0])
    assert history[0]["actor"] == "tester"
    show = json.loads(run_mlx(["show", "models.fraud", "--json"], spec).out)
    assert show["outputs"]["version"] == 2
    assert show["introduced_by"]["serial"] == 2
    assert show["content_hash"] == show["outputs"]["fingerprint"]
    assert show["data_snapshots"][0]["address"] == "datasets.train"
    assert show["data_snapshots"][0]["fingerprint"].startswith("sha256:")
    diff = run_mlx(["diff", "1", "2"], spec)
    assert diff.code == 0
    assert "~ models.fraud" in diff.out
    assert "~ outputs.version = 1 -> 2" in diff.out
    assert "~ rollouts.fraud" in diff.out and "released_version = 1 -> 2" in diff.out
    assert "datasets.train" not in diff.out
    missing = run_mlx(["diff", "1", "9"], spec)
    assert missing.code == 1 and "9" in missing.err and "Traceback" not in missing.err, missing


# -- rollback ------------------------------------------------------------------------------------
def test_rollback_round_trip_restores_registry_and_alias(spec: Path) -> None:
    assert run_mlx(["apply", "--yes"], spec).code == 0
    v1_object = registry_object(spec)
    v1_state = state_rows(spec, "SELECT address, content_hash, outputs FROM mlx_resources")
    (spec / "model.bin").write_text("weights-v2")
    write_spec(spec, {"alerts.yaml": "alerts:\n  oncall:\n    type: file\n    path: other.jsonl\n"})
    assert run_mlx(["apply", "--yes"], spec).code == 0
    assert registry_object(spec)["aliases"] == {"production": 2}

    back = run_mlx(["rollback", "--yes"], spec)
    assert back.code == 0, back
    assert "Rolling back to state version 1" in back.out
    assert registry_object(spec) == v1_object  # current version and alias back at v1
    assert state_rows(spec, "SELECT address, content_hash, outputs FROM mlx_resources") == v1_state
    channel = json.loads((spec / ".mlx" / "alerts" / "oncall.json").read_text())
    assert channel["path"] == "alerts.jsonl"
    history = json.loads(run_mlx(["history", "--json"], spec).out)
    assert [h["operation"] for h in history] == ["apply", "apply", "rollback"]

    forward = run_mlx(["apply", "--yes"], spec)  # the files still hold v2: roll forward
    assert forward.code == 0, forward
    assert registry_object(spec)["aliases"] == {"production": 2}
    assert run_mlx(["plan", "--detailed-exitcode"], spec).code == 0


def test_rollback_refuses_when_an_artifact_is_gone(spec: Path) -> None:
    assert run_mlx(["apply", "--yes"], spec).code == 0
    (spec / "model.bin").write_text("weights-v2")
    assert run_mlx(["apply", "--yes"], spec).code == 0
    before = state_rows(spec, "SELECT * FROM mlx_resources ORDER BY address")
    v1 = registry_object(spec)  # noqa: F841 - the registry object exists
    import hashlib

    sha = hashlib.sha256(b"weights-v1").hexdigest()
    blob = spec / ".mlx" / "registry" / "blobs" / sha[:2] / sha
    blob.unlink()
    refused = run_mlx(["rollback", "--yes"], spec)
    assert refused.code == 1
    assert "models.fraud: version 1" in refused.err and "no longer available" in refused.err
    assert state_rows(spec, "SELECT * FROM mlx_resources ORDER BY address") == before
    assert registry_object(spec)["aliases"] == {"production": 2}


# -- promotion ---------------------------------------------------------------------------------
def test_promotion_copies_exact_fingerprints(spec: Path) -> None:
    write_spec(spec, {"envs.yaml": "environments:\n  staging: {}\n  prod: {}\n"})
    assert run_mlx(["apply", "--yes", "--env", "staging"], spec).code == 0
    staging = json.loads(run_mlx(["show", "models.fraud", "--json", "--env", "staging"], spec).out)
    (spec / "model.bin").write_text("weights-v2")  # the files moved on since staging applied
    promoted = run_mlx(["promote", "--from", "staging", "--to", "prod", "--yes"], spec)
    assert promoted.code == 0, promoted
    prod = json.loads(run_mlx(["show", "models.fraud", "--json", "--env", "prod"], spec).out)
    assert prod["content_hash"] == staging["content_hash"]
    assert prod["outputs"]["fingerprint"] == staging["outputs"]["fingerprint"]
    assert registry_object(spec, "prod")["aliases"] == {"production": 1}
    history = json.loads(run_mlx(["history", "--json", "--env", "prod"], spec).out)
    assert [h["operation"] for h in history] == ["promote"]


def test_promotion_refused_when_source_last_apply_failed(spec: Path) -> None:
    write_spec(
        spec,
        {
            "envs.yaml": "environments:\n  staging: {}\n  prod: {}\n",
            "providers.yaml": (
                "providers:\n  flaky:\n    type: python\n"
                "    factory: tests.support.fake_providers:FlakyProvider\n"
                "    config: {fail: [fraud]}\n"
            ),
            "models.yaml": (
                "models:\n  fraud:\n    artifact: model.bin\n    owner: team-ml\n"
                "    provider: flaky\n"
            ),
        },
    )
    failed = run_mlx(["apply", "--yes", "--env", "staging"], spec)
    assert failed.code == 1 and "HTTP 503" in failed.err, failed
    refused = run_mlx(["promote", "--from", "staging", "--to", "prod", "--yes"], spec)
    assert refused.code == 1
    assert 'the last apply in "staging" (serial 1) failed' in refused.err


# -- lifecycle and targeting ----------------------------------------------------------------------
def test_ignore_changes_and_replace_and_targets(spec: Path) -> None:
    write_spec(
        spec,
        {
            "models.yaml": """
                models:
                  fraud:
                    artifact: model.bin
                    owner: team-ml
                    description: fraud model
                    lifecycle: {ignore_changes: [description]}
            """
        },
    )
    assert run_mlx(["apply", "--yes"], spec).code == 0
    text = (spec / "models.yaml").read_text().replace("fraud model", "edited by hand")
    (spec / "models.yaml").write_text(text)
    assert run_mlx(["plan", "--detailed-exitcode"], spec).code == 0
    replaced = run_mlx(["plan", "--replace", "models.fraud"], spec)
    assert "models.fraud will be registered again (replacement requested with --replace)" in (
        replaced.out
    )
    assert "nothing is deleted" in replaced.out and "0 to destroy" in replaced.out
    targeted = run_mlx(
        [
            "plan",
            "--target",
            "alerts.oncall",
            "--target",
            "datasets.train",
            "--replace",
            "datasets.train",
        ],
        spec,
    )
    assert "datasets.train will be registered again" in targeted.out
    assert "models.fraud" not in targeted.out
    unknown = run_mlx(["plan", "--target", "models.frad"], spec)
    assert unknown.code == 1 and 'did you mean "models.fraud"' in unknown.err
