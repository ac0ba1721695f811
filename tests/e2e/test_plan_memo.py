"""The plan memo: a converged spec is not re-planned — until anything it depends on changes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_mlx, secret_spec

HIT = "nothing the plan depends on changed (plan memo)"


def _age_memo(spec: Path) -> None:
    """Move the memo's "written at" past the racy-stat window instead of sleeping through it.

    (A file changed within RACY_NS of the memo is not trusted: this says the memo was
    written that much later than the files it checks, which is what waiting would do.)
    """
    from engine.plan.memo import RACY_NS, memo_file

    path = memo_file(spec / ".mlx", "default")
    memo = json.loads(path.read_text())
    memo["written_ns"] += RACY_NS + 1_000_000_000
    path.write_text(json.dumps(memo))


@pytest.fixture
def converged(tmp_path: Path) -> Path:
    spec = secret_spec(tmp_path / "spec", "MLX_TEST_TOKEN")
    env = {"MLX_TEST_TOKEN": "a"}
    assert run_mlx(["apply", "--yes"], spec, env=env).code == 0
    first = run_mlx(["plan", "--debug"], spec, env=env)
    assert "No changes." in first.out and HIT not in first.err, first
    _age_memo(spec)
    second = run_mlx(["plan", "--debug"], spec, env=env)
    assert "No changes." in second.out and HIT in second.err, second
    return spec


def test_same_size_bytes_with_copied_mtime_are_seen(converged: Path) -> None:
    data = converged / "data" / "train.csv"
    twin = converged / "twin.csv"
    twin.write_text("a,b\n9,9\n")  # same size as the original, other bytes
    shutil.copystat(data, twin)  # same mtime, as cp -p or rsync -t would leave it
    os.replace(twin, data)
    result = run_mlx(["plan", "--debug"], converged, env={"MLX_TEST_TOKEN": "a"})
    assert HIT not in result.err
    assert (
        "datasets.train will be updated in place (content changed outside the spec)" in result.out
    )


def test_a_changed_environment_value_is_seen(converged: Path) -> None:
    result = run_mlx(["plan", "--debug"], converged, env={"MLX_TEST_TOKEN": "b"})
    assert HIT not in result.err
    assert "alerts.oncall will be updated in place" in result.out


def test_an_edited_spec_is_seen(converged: Path) -> None:
    text = (converged / "models.yaml").read_text().replace("fraud model", "fraud model v2")
    (converged / "models.yaml").write_text(text)
    result = run_mlx(["plan", "--debug"], converged, env={"MLX_TEST_TOKEN": "a"})
    assert HIT not in result.err
    assert '~ description = "fraud model" -> "fraud model v2"' in result.out


def test_a_state_change_is_seen(converged: Path) -> None:
    assert run_mlx(["state", "rm", "alerts.oncall"], converged).code == 0
    result = run_mlx(["plan", "--debug"], converged, env={"MLX_TEST_TOKEN": "a"})
    assert HIT not in result.err
    assert "alerts.oncall will be created" in result.out
