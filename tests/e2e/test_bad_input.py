"""Bad input: a clear error with file:line, exit code 1, and the state left untouched.

Each case starts from an applied, valid spec, breaks it in one way, and runs
`mlx plan` and `mlx apply --yes`.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_mlx, write_spec

MODELS = """
models:
  fraud:
    artifact: model.bin
    owner: team-ml
    description: fraud model
    lineage:
      data: ["${datasets.train}"]
"""

CASES: dict[str, tuple[dict[str, str], str, str]] = {
    # name: (files to write, expected "file:line" in stderr, expected message fragment)
    "malformed_yaml": (
        {"models.yaml": "models:\n  fraud:\n    artifact: model.bin\n    owner: [team-ml\n"},
        r"models\.yaml:[45]:",
        "invalid YAML",
    ),
    "unknown_top_level_key": (
        {"extra.yaml": "modles:\n  other:\n    artifact: model.bin\n"},
        r"extra\.yaml:1:1",
        'unknown top-level key "modles" (did you mean "models"?)',
    ),
    "unknown_field": (
        {"models.yaml": MODELS.replace("    artifact:", "    artifcat:")},
        r"models\.yaml:3:5",
        'unknown field "artifcat" in models.fraud (did you mean "artifact"?)',
    ),
    "wrong_type": (
        {"models.yaml": MODELS + "      seed: not-a-number\n"},
        r"models\.yaml:8:",
        "models.fraud.lineage.seed",
    ),
    "invalid_name": (
        {"models.yaml": MODELS.replace("  fraud:", "  Fraud_Model:")},
        r"models\.yaml:2:3",
        'invalid name "Fraud_Model"',
    ),
    "dangling_reference": (
        {"models.yaml": MODELS.replace("datasets.train", "datasets.trian")},
        r"models\.yaml:7:",
        'datasets.trian, which is not declared (did you mean "datasets.train"?)',
    ),
    "unknown_attribute": (
        {
            "alerts.yaml": (
                "alerts:\n  oncall:\n    type: file\n    path: alerts.jsonl\n"
                '    description: "model ${models.fraud.verison}"\n'
            )
        },
        r"alerts\.yaml:5:",
        'have no attribute "verison" (did you mean "version"?)',
    ),
    "cycle_across_two_files": (
        {
            "models.yaml": MODELS + "    depends_on: [alerts.oncall]\n",
            "alerts.yaml": (
                "alerts:\n  oncall:\n    type: file\n    path: alerts.jsonl\n"
                "    depends_on: [models.fraud]\n"
            ),
        },
        r"alerts\.yaml:5:",
        "dependency cycle",
    ),
    "same_address_in_two_files": (
        {"extra.yaml": "datasets:\n  train:\n    uri: data/train.csv\n    owner: someone\n"},
        r"extra\.yaml:2:3",
        "datasets.train is defined twice (in data.yaml and extra.yaml)",
    ),
    "missing_owner": (
        {"models.yaml": MODELS.replace("    owner: team-ml\n", "")},
        r"models\.yaml:2:3",
        "models.fraud has no owner",
    ),
    "missing_artifact_file": (
        {"models.yaml": MODELS.replace("model.bin", "missing.joblib")},
        r"models\.yaml:3:",
        "artifact not found",
    ),
    "unset_env": (
        {
            "alerts.yaml": (
                "alerts:\n  oncall:\n    type: file\n"
                '    path: "${env.MLX_TEST_SURELY_UNSET}/alerts.jsonl"\n'
            )
        },
        r"alerts\.yaml:4:",
        "${env.MLX_TEST_SURELY_UNSET} is not set",
    ),
    "unquoted_reference_in_flow_list": (
        {"models.yaml": MODELS.replace('["${datasets.train}"]', "[${datasets.train}]")},
        r"models\.yaml:7:",
        "quote it",
    ),
}


def _alias_bomb(levels: int = 10) -> str:
    """The "billion laughs" in a free-form map: 1 KB of YAML, 9**10 nodes expanded."""
    lines = ["      params:", "        a0: &a0 [" + ",".join(["lol"] * 9) + "]"]
    for i in range(1, levels):
        lines.append(f"        a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return MODELS + "\n".join(lines) + "\n"


CASES.update(
    {
        "alias_bomb_in_free_form_params": (
            {"models.yaml": _alias_bomb()},
            r"models\.yaml:15:18",  # a6: the first alias past 1,000,000 expanded nodes
            "YAML aliases expand to more than 1,000,000 nodes",
        ),
        "flow_nesting_500_deep": (
            {"models.yaml": MODELS + "      params: {x: " + "[" * 500 + "]" * 500 + "}\n"},
            r"models\.yaml:8:",
            "nested deeper than 64 levels",
        ),
        "artifact_outside_the_spec_dir": (
            {"models.yaml": MODELS.replace("model.bin", "/etc/passwd")},
            r"models\.yaml:3:",
            "artifact /etc/passwd is outside the spec directory",
        ),
        "variable_default_with_a_reference": (
            {
                "vars.yaml": (
                    "variables:\n  region: {default: eu}\n"
                    '  bucket:\n    default: "data-${var.region}"\n'
                )
            },
            r"vars\.yaml:4:",
            "variables.bucket: a default cannot reference other values",
        ),
    }
)


def _state_snapshot(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        rows: list[tuple[object, ...]] = []
        for table in ("mlx_workspaces", "mlx_state_versions", "mlx_resources", "mlx_locks"):
            rows.extend(conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
        return rows


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    spec = write_spec(
        tmp_path / "spec",
        {
            "data.yaml": "datasets:\n  train:\n    uri: data/train.csv\n    owner: team-data\n",
            "models.yaml": MODELS,
            "alerts.yaml": "alerts:\n  oncall:\n    type: file\n    path: alerts.jsonl\n",
            "data/train.csv": "a,b\n1,2\n",
            "model.bin": "weights",
        },
    )
    first = run_mlx(["apply", "--yes"], spec)
    assert first.code == 0, first
    return spec


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_reported_with_place_and_state_untouched(applied: Path, case: str) -> None:
    files, where, fragment = CASES[case]
    db = applied / ".mlx" / "state.db"
    before = _state_snapshot(db)
    write_spec(applied, files)
    for command in (["plan"], ["apply", "--yes"]):
        result = run_mlx(command, applied)
        assert result.code == 1, result
        assert re.search(where, result.err), f"expected {where} in stderr\n{result}"
        assert fragment in result.err, result
        assert "Traceback" not in result.err, result
        assert result.out == "" or "Apply" not in result.out, result
    assert _state_snapshot(db) == before


def test_all_errors_of_a_run_are_reported_together(applied: Path) -> None:
    write_spec(
        applied,
        {
            "models.yaml": MODELS.replace("    artifact:", "    artifcat:"),
            "extra.yaml": "modles: {}\n",
        },
    )
    result = run_mlx(["validate"], applied)
    assert result.code == 1
    assert "models.yaml:3:5" in result.err and "extra.yaml:1:1" in result.err, result


TWO_ROLLOUTS = {
    "endpoints.yaml": (
        "endpoints:\n  fraud:\n    serves: ${models.fraud}\n    owner: team-ml\n"
        "rollouts:\n  canary:\n    subject: ${models.fraud}\n    endpoint: ${endpoints.fraud}\n"
        "    strategy: canary\n    steps: [{weight: 25, pause: 10m}, {weight: 100}]\n"
        "    owner: team-ml\n"
    ),
    "direct.yaml": (
        "rollouts:\n  direct:\n    owner: team-ml\n    subject: ${models.fraud}\n"
        "    endpoint: ${endpoints.fraud}\n"
    ),
}


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["apply", "--yes"]])
def test_two_rollouts_on_one_endpoint_are_refused_naming_both(
    applied: Path, command: list[str]
) -> None:
    """Issue 18, item 4: a canary and a direct rollout on one endpoint fought over it."""
    db = applied / ".mlx" / "state.db"
    before = _state_snapshot(db)
    write_spec(applied, TWO_ROLLOUTS)
    result = run_mlx(command, applied)
    assert result.code == 1, result
    assert (
        "rollouts.direct and rollouts.canary both drive endpoints.fraud: "
        "an endpoint has at most one rollout"
    ) in result.err, result
    # the second one read (files in name order) at its `endpoint:`, the first one beside it
    assert "--> endpoints.yaml:8:5" in result.err, result
    assert "rollouts.direct names it --> direct.yaml:5:5" in result.err, result
    assert "Traceback" not in result.err and "Apply" not in result.out, result
    assert _state_snapshot(db) == before


def test_two_rollouts_moving_one_alias_are_refused(applied: Path) -> None:
    write_spec(
        applied,
        {
            "rollouts.yaml": (
                "rollouts:\n  a:\n    subject: ${models.fraud}\n    alias: production\n"
                "    owner: team-ml\n  b:\n    subject: ${models.fraud}\n"
                "    alias: production\n    owner: team-ml\n"
                "  staging:\n    subject: ${models.fraud}\n    alias: staging\n"
                "    owner: team-ml\n"
            )
        },
    )
    result = run_mlx(["validate"], applied)
    assert result.code == 1, result
    assert "rollouts.a and rollouts.b both drive alias 'production' of models.fraud" in result.err
    assert "--> rollouts.yaml:8:5" in result.err and "rollouts.staging" not in result.err, result


def test_validate_refuses_a_secret_in_a_published_field_as_plan_does(applied: Path) -> None:
    """Issue 18, item 24: `mlx validate` said "Success!" to a secret in a model's labels."""
    write_spec(
        applied,
        {
            "models.yaml": MODELS + '    labels: {build: "${env.MLX_TEST_TOKEN}"}\n',
            "hooks.yaml": (
                "variables:\n  token: {sensitive: true, default: s3cr3t}\n"
                "alerts:\n  hook:\n    type: webhook\n"
                '    url: "https://hooks.example/${var.token}"\n'
                '    description: "token ${var.token}"\n'
            ),
        },
    )
    env = {"MLX_TEST_TOKEN": "s3cr3t-token-value"}
    refused = {
        "models.fraud.labels.build holds a secret": "models.yaml:8:",
        "alerts.hook.description holds a secret": "hooks.yaml:7:",
    }
    for command in (["validate"], ["plan"]):
        result = run_mlx(command, applied, env=env)
        assert result.code == 1, result
        for message, where in refused.items():
            assert f"Error: {message}" in result.err, result
            assert re.search(re.escape(message) + r".*\n  --> " + re.escape(where), result.err)
        assert "alerts.hook.url" not in result.err, "a webhook keeps its url secret"
        assert "s3cr3t" not in result.err + result.out, result
