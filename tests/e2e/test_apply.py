"""`mlx apply` end to end: results per resource, failures, confirmation, secrets."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import BASIC, run_mlx, secret_spec, write_spec

FLAKY = """
providers:
  flaky:
    type: python
    factory: tests.support.fake_providers:FlakyProvider
    config: {fail: [%s]}
"""


def _rows(spec: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        return list(conn.execute(sql))


def test_apply_then_plan_converges(basic_spec: Path) -> None:
    before = run_mlx(["plan", "--detailed-exitcode"], basic_spec)
    assert before.code == 2, before
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in before.out
    applied = run_mlx(["apply", "--yes"], basic_spec)
    assert applied.code == 0, applied
    assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in applied.out
    after = run_mlx(["plan", "--detailed-exitcode"], basic_spec)
    assert after.code == 0, after
    assert "No changes." in after.out
    again = run_mlx(["apply", "--yes"], basic_spec)
    assert again.code == 0 and "No changes." in again.out
    assert _rows(basic_spec, "SELECT serial FROM mlx_state_versions") == [(1,)]


def test_failed_create_taints_skips_dependents_and_applies_unrelated(tmp_path: Path) -> None:
    files = dict(BASIC)
    files["providers.yaml"] = FLAKY % "fraud"
    files["models.yaml"] = files["models.yaml"].replace(
        "owner: team-ml", "owner: team-ml\n            provider: flaky"
    )
    files["prompts.yaml"] = """
        prompts:
          explain:
            template: "Explain score {{score}}"
            owner: team-llm
            depends_on: [models.fraud]
    """
    spec = write_spec(tmp_path / "spec", files)
    result = run_mlx(["apply", "--yes"], spec)
    assert result.code == 1, result
    assert "models.fraud: registry refused fraud: HTTP 503" in result.err
    assert "prompts.explain: skipped: depends on models.fraud" in result.out
    status = dict(_rows(spec, "SELECT address, status FROM mlx_resources"))
    assert status == {"alerts.oncall": "ok", "datasets.train": "ok", "models.fraud": "tainted"}
    version = _rows(spec, "SELECT status, message FROM mlx_state_versions")
    assert version[0][0] == "failed" and "HTTP 503" in str(version[0][1])

    replan = run_mlx(["plan"], spec)
    # a registry is never replaced by deleting it: the create is retried and adopts
    assert "models.fraud will be created (tainted by a failed apply)" in replan.out, replan
    assert "a create that failed is retried" in replan.out
    assert "destroy" not in replan.out.split("Plan:")[0]
    assert "prompts.explain will be created" in replan.out
    assert "datasets.train" not in replan.out

    write_spec(spec, {"providers.yaml": FLAKY % ""})
    fixed = run_mlx(["apply", "--yes"], spec)
    assert fixed.code == 0, fixed
    assert run_mlx(["plan", "--detailed-exitcode"], spec).code == 0


def test_apply_asks_and_only_yes_approves(basic_spec: Path) -> None:
    refused = run_mlx(["apply"], basic_spec, stdin="no\n")
    assert refused.code == 1
    assert "Apply cancelled." in refused.err
    assert _rows(basic_spec, "SELECT count(*) FROM mlx_resources") == [(0,)]
    approved = run_mlx(["apply"], basic_spec, stdin="yes\n")
    assert approved.code == 0, approved
    assert "Only 'yes' will be accepted" in approved.out
    assert _rows(basic_spec, "SELECT count(*) FROM mlx_resources") == [(3,)]


def test_parallelism_runs_independent_resources_together(tmp_path: Path) -> None:
    def spec_with(n: int, name: str, factory: str = "SlowProvider") -> Path:
        datasets = "\n".join(
            f"  d{i}:\n    uri: d{i}.csv\n    owner: team\n    provider: slow" for i in range(n)
        )
        files = {
            "main.yaml": (
                "providers:\n  slow:\n    type: python\n"
                f"    factory: tests.support.fake_providers:{factory}\n"
                "    config: {delay: 0.3, trace: trace.jsonl}\n"
                f"datasets:\n{datasets}\n"
            ),
            **{f"d{i}.csv": f"x\n{i}\n" for i in range(n)},
        }
        return write_spec(tmp_path / name, files)

    def max_overlap(spec: Path) -> int:
        events = [json.loads(line) for line in (spec / "trace.jsonl").read_text().splitlines()]
        points = sorted([(e["start"], 1) for e in events] + [(e["end"], -1) for e in events])
        running = best = 0
        for _, delta in points:
            running += delta
            best = max(best, running)
        return best

    wide = spec_with(4, "wide")
    assert run_mlx(["apply", "--yes", "--parallelism", "4"], wide).code == 0
    assert max_overlap(wide) >= 2
    narrow = spec_with(4, "narrow")
    assert run_mlx(["apply", "--yes", "--parallelism", "1"], narrow).code == 0
    assert max_overlap(narrow) == 1
    # a provider whose calls gain nothing from threads (max_parallel = 1) gets one lane
    serial = spec_with(4, "serial", "SerialSlowProvider")
    assert run_mlx(["apply", "--yes", "--parallelism", "4"], serial).code == 0
    assert max_overlap(serial) == 1
    assert len((serial / "trace.jsonl").read_text().splitlines()) == 4
    from_spec = spec_with(4, "from_spec")  # mlx.parallelism is the default for --parallelism
    (from_spec / "settings.yaml").write_text("mlx:\n  parallelism: 1\n")
    assert run_mlx(["apply", "--yes"], from_spec).code == 0
    assert max_overlap(from_spec) == 1


def test_sensitive_values_never_written(tmp_path: Path) -> None:
    secret = "tok-9f8e7d6c5b4a"
    spec = secret_spec(tmp_path / "spec", "MLX_TEST_TOKEN")
    env = {"MLX_TEST_TOKEN": secret}
    plan = run_mlx(["plan"], spec, env=env)
    applied = run_mlx(["apply", "--yes"], spec, env=env)
    show = run_mlx(["show", "alerts.oncall", "--json"], spec, env=env)
    history = run_mlx(["history", "--json"], spec, env=env)
    assert applied.code == 0, applied
    assert "(sensitive)" in plan.out
    for output in (plan, applied, show, history):
        assert secret not in output.out + output.err
    for path in (spec / ".mlx").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    # a changed secret is still noticed (through its keyed digest), without showing it
    changed = run_mlx(["plan"], spec, env={"MLX_TEST_TOKEN": "another-value"})
    assert "alerts.oncall will be updated in place" in changed.out
    assert "another-value" not in changed.out


def test_prevent_destroy_blocks_replacement(basic_spec: Path) -> None:
    write_spec(
        basic_spec,
        {
            "data.yaml": """
                datasets:
                  train:
                    uri: data/train.csv
                    owner: team-data
                    lifecycle: {prevent_destroy: true}
            """
        },
    )
    assert run_mlx(["apply", "--yes"], basic_spec).code == 0
    (basic_spec / "data" / "other.csv").write_text("a\n1\n")
    write_spec(
        basic_spec,
        {
            "data.yaml": """
                datasets:
                  train:
                    uri: data/other.csv
                    owner: team-data
                    lifecycle: {prevent_destroy: true}
            """
        },
    )
    result = run_mlx(["plan"], basic_spec)
    assert result.code == 1
    assert "datasets.train has lifecycle.prevent_destroy set" in result.err
    assert "data.yaml:5:" in result.err


def test_ctrl_c_lets_running_changes_finish_and_starts_none_of_the_queued(tmp_path: Path) -> None:
    """Interrupted, an apply records what it did and stops: changes already queued for a
    worker never start (the pool's queue holds every ready change)."""
    datasets = "\n".join(
        f"  d{i}:\n    uri: d{i}.csv\n    owner: team\n    provider: slow" for i in range(8)
    )
    spec = write_spec(
        tmp_path / "spec",
        {
            "main.yaml": (
                "providers:\n  slow:\n    type: python\n"
                "    factory: tests.support.fake_providers:InterruptingProvider\n"
                "    config: {delay: 0.3, trace: trace.jsonl, interrupt: [d1]}\n"
                f"datasets:\n{datasets}\n"
            ),
            **{f"d{i}.csv": f"x\n{i}\n" for i in range(8)},
        },
    )
    result = run_mlx(["apply", "--yes", "--parallelism", "2"], spec)
    assert result.code == 1 and "Aborted." in result.err, result
    assert "Traceback" not in result.err
    started = [json.loads(line)["name"] for line in (spec / "trace.jsonl").read_text().splitlines()]
    # d0 ran beside d1; at most one more was picked up before the interrupt reached the
    # pool (two workers); the other five never started
    assert "d0" in started and len(started) <= 2, started
    recorded = _rows(spec, "SELECT address FROM mlx_resources WHERE status = 'ok'")
    assert {r[0] for r in recorded} == {f"datasets.{n}" for n in started}
    assert _rows(spec, "SELECT status FROM mlx_state_versions") == [("interrupted",)]
    main = spec / "main.yaml"
    main.write_text(main.read_text().replace(", interrupt: [d1]", ""))
    assert run_mlx(["apply", "--yes"], spec).code == 0  # the next apply does the rest
    recorded = _rows(spec, "SELECT address FROM mlx_resources WHERE status = 'ok'")
    assert len(recorded) == 8
