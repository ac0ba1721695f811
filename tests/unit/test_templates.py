"""``common.templates``: the renderer the eval gates and the gateway share, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from common.templates import MissingVariables, render


@pytest.mark.parametrize(
    ("template", "variables", "text"),
    [
        ("Question: {{q}}", {"q": "where?"}, "Question: where?"),
        ("{{ q }}|{{q}}", {"q": "x"}, "x|x"),  # spaces inside the braces
        ("{{a.b}}", {"a": {"b": "deep"}}, "deep"),
        ("{{n}} {{flag}} {{obj}}", {"n": 3, "flag": True, "obj": {"k": "é"}}, '3 true {"k": "é"}'),
        ("no placeholders", {}, "no placeholders"),
        ("{{ 1bad }} {{}}", {}, "{{ 1bad }} {{}}"),  # not placeholders: left as written
    ],
)
def test_render_replaces_every_placeholder(
    template: str, variables: dict[str, Any], text: str
) -> None:
    assert render(template, variables) == text


@pytest.mark.parametrize(
    ("template", "variables", "names"),
    [
        ("{{q}}", {}, ("q",)),
        ("{{b}} {{a}} {{b}}", {}, ("a", "b")),  # sorted, once each
        ("{{a.b}}", {"a": "not a dict"}, ("a.b",)),
        ("{{a.c}}", {"a": {"b": 1}}, ("a.c",)),
    ],
)
def test_a_missing_variable_is_an_error_naming_it_never_empty_text(
    template: str, variables: dict[str, Any], names: tuple[str, ...]
) -> None:
    with pytest.raises(MissingVariables) as err:
        render(template, variables)
    assert err.value.names == names
    assert str(err.value) == f"the template needs var(s) {', '.join(names)}"  # the gate's words
    said = err.value.say("the prompt needs variable(s)")  # the gateway's
    assert said == f"the prompt needs variable(s) {', '.join(names)}"
