"""The CI examples run the documented commands (they are copied by users as they are)."""

from __future__ import annotations

from pathlib import Path

import yaml

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"


def _scripts(node: object) -> list[str]:
    if isinstance(node, dict):
        return [
            s
            for k, v in node.items()
            for s in (
                [v]
                if k in ("run", "script") and isinstance(v, str)
                else v
                if k == "script" and isinstance(v, list)
                else _scripts(v)
            )
        ]
    if isinstance(node, list):
        return [s for item in node for s in _scripts(item)]
    return []


def test_github_workflow_plans_on_pull_requests_and_applies_the_saved_plan() -> None:
    doc = yaml.safe_load((CI / "github-actions.yml").read_text())
    plan_steps = " ".join(_scripts(doc["jobs"]["plan"]))
    apply_steps = " ".join(_scripts(doc["jobs"]["apply"]))
    assert "mlx -C ml plan --detailed-exitcode -o plan.bin --markdown" in plan_steps
    assert "gh pr comment" in plan_steps
    assert "mlx -C ml apply plan.bin" in apply_steps
    assert doc["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"
    assert doc["jobs"]["apply"]["if"] == "github.event_name == 'push'"


def test_gitlab_pipeline_plans_then_applies_the_saved_plan() -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    plan = " ".join(doc["plan"]["script"])
    assert "plan --detailed-exitcode -o plan.bin --markdown" in plan
    assert "plan.bin" in doc["plan"]["artifacts"]["paths"]
    assert doc["apply"]["needs"] == ["plan"]
    assert any("apply plan.bin" in line for line in doc["apply"]["script"])


def _install_lines() -> list[tuple[str, str]]:
    """(file, command) for every pip install in the CI examples."""
    out = []
    for name in ("github-actions.yml", "gitlab-ci.yml", "github-refresh.yml"):
        doc = yaml.safe_load((CI / name).read_text())
        scripts = _scripts(doc)
        for key in ("before_script",):
            scripts += [
                s for job in doc.values() if isinstance(job, dict) for s in job.get(key, [])
            ]
        out += [(name, s) for s in scripts if "pip install" in s]
    return out


def test_ci_examples_install_mlx_from_a_source_pip_can_reach() -> None:
    """mlxctl is not on PyPI: `pip install mlxctl…` would fail in a user's pipeline."""
    lines = _install_lines()
    assert len(lines) == 4, lines
    for name, line in lines:
        assert 'pip install "$MLX_INSTALL"' in line, (name, line)
        doc = yaml.safe_load((CI / name).read_text())
        spec = (doc.get("env") or doc.get("variables"))["MLX_INSTALL"]
        assert spec.startswith("mlxctl[postgres] @ git+https://"), spec


def test_the_scheduled_refresh_runs_hourly_and_fails_on_drift() -> None:
    doc = yaml.safe_load((CI / "github-refresh.yml").read_text())
    triggers = doc[True]  # YAML 1.1 reads the key `on` as a boolean
    (cron,) = [entry["cron"] for entry in triggers["schedule"]]
    minute, hour, *rest = cron.split()
    assert minute.isdigit() and hour == "*" and rest == ["*", "*", "*"]
    steps = doc["jobs"]["refresh"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    # no `|| true`, no `set +e`: exit 2 (drift) and 1 (error) fail the job
    assert "mlx -C ml refresh --detailed-exitcode" in runs
    assert all("|| true" not in r and "set +e" not in r for r in runs)
    alerts = [s for s in steps if s.get("run") == "mlx -C ml alerts"]
    assert alerts and alerts[0]["if"] == "always()"
