"""`mlx show` text: a version's input schema nested in a rollout's outputs is one line."""

from __future__ import annotations

from cli.render.inspect import _outputs_lines

SCHEMA = {
    "source": "sklearn",
    "columns": [{"name": f"f{i}", "type": "float", "nullable": False} for i in range(30)],
}


def test_a_nested_input_schema_is_one_line_and_the_models_own_is_whole() -> None:
    version = {"version": 5, "fingerprint": "sha256:ab", "input_schema": SCHEMA}
    lines = _outputs_lines(
        {"stable": version, "released_before": [version], "input_schema": SCHEMA}
    )
    text = "\n".join(lines)
    brief = '"input_schema": "30 column(s): f0 float, f1 float, f2 float, ..."'
    assert next(x for x in lines if x.startswith("    stable = ")).count(brief) == 1
    assert next(x for x in lines if x.startswith("    released_before = ")).count(brief) == 1
    own = next(x for x in lines if x.startswith("    input_schema = "))
    assert '"name": "f29"' in own  # the model's own record is shown in full
    assert text.count('"name": "f29"') == 1
