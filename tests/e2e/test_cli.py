"""The smaller commands, end to end: validate, graph, show, state list/show/rm, errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_mlx


def test_validate_touches_no_state(basic_spec: Path) -> None:
    result = run_mlx(["validate"], basic_spec)
    assert result.code == 0
    assert "Success! The spec is valid: 3 resources in 3 file(s), 1 dependencies." in result.out
    assert not (basic_spec / ".mlx" / "state.db").exists()


def test_chdir_flag_before_or_after_the_command(basic_spec: Path, tmp_path: Path) -> None:
    assert run_mlx(["-C", str(basic_spec), "validate"], tmp_path).code == 0
    assert run_mlx(["validate", "-C", str(basic_spec)], tmp_path).code == 0
    missing = run_mlx(["-C", str(tmp_path / "nope"), "plan"], tmp_path)
    assert missing.code == 1 and "does not exist" in missing.err


def test_graph_formats(basic_spec: Path) -> None:
    dot = run_mlx(["graph"], basic_spec).out
    assert dot.startswith("digraph mlx {") and '"datasets.train" -> "models.fraud";' in dot
    mermaid = run_mlx(["graph", "--format", "mermaid"], basic_spec).out
    assert mermaid.startswith("graph LR") and "datasets__train --> models__fraud" in mermaid


def test_show_and_state_commands(basic_spec: Path) -> None:
    assert run_mlx(["apply", "--yes"], basic_spec).code == 0
    listed = run_mlx(["state", "list"], basic_spec).out.split()
    assert listed == ["alerts.oncall", "datasets.train", "models.fraud"]
    record = json.loads(run_mlx(["state", "show", "models.fraud"], basic_spec).out)
    assert record["outputs"]["version"] == 1 and record["status"] == "ok"
    overview = run_mlx(["show"], basic_spec).out
    assert "models.fraud  version 1" in overview
    version = run_mlx(["show", "--serial", "1"], basic_spec).out
    assert "State version 1: apply (complete)" in version and "create   models.fraud" in version
    gone = run_mlx(["state", "show", "models.frad"], basic_spec)
    assert gone.code == 1 and 'did you mean "models.fraud"' in gone.err

    removed = run_mlx(["state", "rm", "alerts.oncall"], basic_spec)
    assert removed.code == 0 and "the object itself was not touched" in removed.out
    assert (basic_spec / ".mlx" / "alerts" / "oncall.json").exists()
    history = json.loads(run_mlx(["history", "--json"], basic_spec).out)
    assert [h["operation"] for h in history] == ["apply", "state-rm"]
    assert "alerts.oncall will be created" in run_mlx(["plan"], basic_spec).out


def test_no_traceback_for_a_broken_state_url(basic_spec: Path) -> None:
    result = run_mlx(["plan", "--state", "postgresql://nobody@127.0.0.1:1/none"], basic_spec)
    assert result.code == 1
    assert "cannot open state at postgresql+psycopg://nobody@127.0.0.1:1/none" in result.err
    assert "Traceback" not in result.err


def test_usage_errors_exit_1_not_2(basic_spec: Path) -> None:
    result = run_mlx(["plan", "--no-such-flag"], basic_spec)
    assert result.code == 1 and "No such option" in result.err
