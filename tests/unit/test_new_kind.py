"""Adding a kind is a spec module, a provider and entry points: a kind defined only in the
tests (tests/support/kinds_plugin: ``features``) is validated, planned, applied, shown in
the schema and destroyed by the real `mlx`, with no file of mlx changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import REPO, run_mlx, write_spec

PLUGIN = REPO / "tests" / "support" / "kinds_plugin"
ENV = {"PYTHONPATH": os.pathsep.join([str(REPO), str(PLUGIN)])}

SPEC = {
    "mlx.yaml": "mlx: {}\n",
    "features.yaml": """
        features:
          customer:
            table: warehouse.customer_features
            columns: [age, tenure]
            owner: team-data
    """,
}


def test_a_kind_from_a_plugin_is_a_section_like_any_other(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", SPEC)
    assert run_mlx(["validate"], spec, env=ENV).code == 0
    plan = run_mlx(["plan"], spec, env=ENV)
    assert "+ features.customer" in plan.out, plan
    applied = run_mlx(["apply", "--yes"], spec, env=ENV)
    assert applied.code == 0, applied
    stored = json.loads((spec / ".mlx/features/customer.json").read_text())
    assert stored["columns"] == ["age", "tenure"]
    assert "No changes." in run_mlx(["plan"], spec, env=ENV).out
    schema = json.loads(run_mlx(["schema"], spec, env=ENV).out)
    assert "features" in schema["properties"]
    # the kind's own rules hold: owner required (OwnedResource), its provider's check
    (spec / "features.yaml").write_text(
        "features:\n  customer:\n    table: t\n    columns: [a, a]\n"
    )
    bad = run_mlx(["plan"], spec, env=ENV)
    assert bad.code == 1 and "owner" in bad.err, bad
    (spec / "features.yaml").unlink()
    removed = run_mlx(["apply", "--yes"], spec, env=ENV)
    assert removed.code == 0 and "1 destroyed" in removed.out, removed
    assert not (spec / ".mlx/features/customer.json").exists()


def test_without_the_plugin_the_section_is_unknown(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", SPEC)
    result = run_mlx(["validate"], spec)
    assert result.code == 1 and 'unknown top-level key "features"' in result.err
