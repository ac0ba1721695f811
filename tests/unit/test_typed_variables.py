"""Found while adding the quickstart's monitor (issue 21): a ``${var.x}`` cannot fill a typed
field. The loader validates the declared text before it substitutes variables, so a duration
or a number written as a variable is refused — SPEC.md's own example (``canary_first_step``,
a canary weight) among them. A strict xfail until the loader validates typed fields after
substitution (or lets a whole-field template through to be checked once resolved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BASIC, run_mlx, write_spec


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="engine.load validates `window: ${var.w}` as the text '${var.w}' (not a duration)",
)
def test_a_variable_can_set_a_duration_field(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec",
        {
            **BASIC,
            "mlx.yaml": """
                variables:
                  monitor_window: {default: 1h}
            """,
            "monitors.yaml": """
                datasets:
                  ref: {uri: data/train.csv, owner: team-data, description: reference}
                endpoints:
                  fraud: {serves: "${models.fraud}", owner: team-ml, log: {payloads: 1.0}}
                monitors:
                  live:
                    type: data_drift
                    target: ${endpoints.fraud}
                    reference: ${datasets.ref}
                    window: ${var.monitor_window}
                    owner: team-ml
            """,
        },
    )
    result = run_mlx(["validate"], spec, env={"MLX_VAR_monitor_window": "10s"})
    assert result.code == 0, result
