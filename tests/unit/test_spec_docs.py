"""Every YAML block in docs/spec.md (which holds SPEC.md's examples) passes `mlx validate`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_mlx

BLOCKS = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "spec.md").read_text(), re.S)


def test_the_page_has_the_spec_examples() -> None:
    assert len(BLOCKS) >= 5
    assert any("fraud_release" in b and "max_drop" in b for b in BLOCKS)
    assert any("strategy: canary" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_validates(index: int, tmp_path: Path) -> None:
    (tmp_path / "example.yaml").write_text(BLOCKS[index])
    result = run_mlx(
        ["validate"],
        tmp_path,
        env={"SLACK_WEBHOOK_URL": "https://hooks.example/x", "OPENAI_API_KEY": "sk-test"},
    )
    assert result.code == 0, f"block {index}:\n{BLOCKS[index]}\n{result}"


def test_schema_command_prints_a_schema_editors_can_use(tmp_path: Path) -> None:
    import json

    import jsonschema
    import yaml

    result = run_mlx(["schema"], tmp_path)
    schema = json.loads(result.out)
    assert schema["title"] == "mlx spec file"
    validator = jsonschema.Draft202012Validator(schema)
    for block in BLOCKS:
        assert not list(validator.iter_errors(yaml.safe_load(block))), block
    bad = {"models": {"fraud": {"artifact": "m.bin", "owner": "x", "artifcat": "typo"}}}
    assert list(validator.iter_errors(bad))
