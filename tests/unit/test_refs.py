"""engine.load.references: the ${…} grammar."""

from __future__ import annotations

import pytest

from engine.load.references import Ref, RefSyntaxError, find_templates, parse_template


def test_parts_and_escapes() -> None:
    assert parse_template("${models.fraud}") == [Ref("models", "fraud")]
    assert parse_template("v${models.fraud.version}-x") == [
        "v",
        Ref("models", "fraud", "version"),
        "-x",
    ]
    assert parse_template("${var.k} ${env.TOKEN}") == [Ref("var", "k"), " ", Ref("env", "TOKEN")]
    assert parse_template("cost $${not.a.ref}") == ["cost ${not.a.ref}"]


@pytest.mark.parametrize(
    "bad", ["${models}", "${Models.x}", "${models.X}", "${env.}", "${a.b.c.d}"]
)
def test_malformed_references(bad: str) -> None:
    with pytest.raises(RefSyntaxError, match="is not a reference"):
        parse_template(bad)


def test_find_templates_reports_paths() -> None:
    body = {"a": "x", "b": ["${datasets.x}", "y"], "c": {"d": "pre ${var.v}"}}
    assert find_templates(body) == [(("b", 0), "${datasets.x}"), (("c", "d"), "pre ${var.v}")]
