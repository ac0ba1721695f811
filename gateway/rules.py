"""A prompt's ``routing`` rules: send easy requests to a cheaper model.

A rule is ``{"when": CONDITION, "model": NAME}``; the first rule whose condition holds picks
the model, else ``routing.default``, else the prompt's own model. A condition is one or more
comparisons joined by ``and``::

    input_tokens < 200                 # also <=, >, >=, ==, !=; N an integer
    variables.tier == "free"           # also !=; a JSON literal: "text", 'text', 3, true, null
    input_tokens <= 500 and variables.tier == "free"

``input_tokens`` is an estimate made without a tokenizer: the characters of the rendered
messages divided by four, rounded up (OpenAI's rule of thumb for English). A comparison on a
variable the request does not send is false (``==`` and ``!=`` alike).

The mapping form says the same: ``{"input_tokens": {"<": 200}, "variables.tier": "free"}``
(a bare value means ``==``; operators may also be spelled ``lt``, ``le``, ``gt``, ``ge``,
``eq``, ``ne``).

Conditions are compiled when a route loads: anything else is a ``RuleError`` then (the variant
is refused and reported unhealthy), never a surprise per request.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class RuleError(ValueError):
    """A condition this gateway does not understand; one line naming it."""


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_LITERAL = r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|-?\d+(?:\.\d+)?|true|false|null'
_TOKENS = re.compile(r"\s*input_tokens\s*(<=|>=|==|!=|<|>)\s*(\d+)\s*")
_VARIABLE = re.compile(rf"\s*variables\.([A-Za-z_]\w*(?:\.\w+)*)\s*(==|!=)\s*({_LITERAL})\s*")
_AND = re.compile(r"and\b\s*")
SUPPORTED = (
    'input_tokens < N (or <=, >, >=, ==, !=), variables.NAME == "value" (or !=), joined by and'
)


@dataclass(frozen=True, slots=True)
class Test:
    subject: str  # "input_tokens", or a variable's path ("tier", "user.plan") when ``variable``
    op: str
    value: Any
    variable: bool = False

    def holds(self, input_tokens: int, variables: Mapping[str, Any]) -> bool:
        if not self.variable:
            return _OPS[self.op](input_tokens, self.value)
        node: Any = variables
        for part in self.subject.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return False
            node = node[part]
        return _OPS[self.op](node, self.value)


@dataclass(frozen=True, slots=True)
class Rule:
    when: str
    model: str
    tests: tuple[Test, ...]

    def holds(self, input_tokens: int, variables: Mapping[str, Any]) -> bool:
        return all(t.holds(input_tokens, variables) for t in self.tests)


def compile_condition(text: str) -> tuple[Test, ...]:
    tests: list[Test] = []
    pos = 0
    while True:
        m = _TOKENS.match(text, pos)
        if m is not None:
            tests.append(Test("input_tokens", m.group(1), int(m.group(2))))
        else:
            m = _VARIABLE.match(text, pos)
            if m is None:
                raise RuleError(f"unknown condition {text!r} (supported: {SUPPORTED})")
            tests.append(Test(m.group(1), m.group(2), _literal(m.group(3)), variable=True))
        pos = m.end()
        if pos == len(text):
            return tuple(tests)
        m = _AND.match(text, pos)
        if m is None:
            raise RuleError(f"unknown condition {text!r} (supported: {SUPPORTED})")
        pos = m.end()


_NAMED = {
    "lt": "<",
    "le": "<=",
    "lte": "<=",
    "gt": ">",
    "ge": ">=",
    "gte": ">=",
    "eq": "==",
    "ne": "!=",
}
_SUBJECT = re.compile(r"^(input_tokens|variables\.[A-Za-z_]\w*(?:\.\w+)*)$")


def compile_mapping(when: Mapping[str, Any]) -> tuple[Test, ...]:
    """The mapping form of a condition (see the module docstring)."""
    tests: list[Test] = []
    for subject, spec in when.items():
        if not isinstance(subject, str) or _SUBJECT.match(subject) is None:
            raise RuleError(f"unknown condition subject {subject!r} (supported: {SUPPORTED})")
        pairs = spec.items() if isinstance(spec, Mapping) else [("==", spec)]
        for op, value in pairs:
            op = _NAMED.get(str(op), str(op))
            name = subject.removeprefix("variables.")
            if subject == "input_tokens":
                if op not in _OPS or not isinstance(value, int) or isinstance(value, bool):
                    raise RuleError(
                        f"unknown condition input_tokens {op} {value!r} (supported: {SUPPORTED})"
                    )
            elif op not in ("==", "!="):
                raise RuleError(
                    f"unknown condition {subject} {op} {value!r} (supported: {SUPPORTED})"
                )
            tests.append(Test(name, op, value, variable=subject != "input_tokens"))
    if not tests:
        raise RuleError("an empty condition")
    return tuple(tests)


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1]
    return json.loads(text)


def compile_rules(rules: Sequence[Any]) -> tuple[Rule, ...]:
    """``rules``: objects with ``when`` and ``model``; ``RuleError`` names the bad one."""
    out = []
    for i, rule in enumerate(rules):
        try:
            when = rule.when
            tests = compile_mapping(when) if isinstance(when, Mapping) else compile_condition(when)
            out.append(Rule(str(when), rule.model, tests))
        except RuleError as exc:
            raise RuleError(f"routing rule {i + 1}: {exc}") from None
    return tuple(out)


def pick(
    rules: Sequence[Rule], input_tokens: int, variables: Mapping[str, Any]
) -> tuple[str | None, int | None]:
    """The model of the first rule that holds and its 0-based index, or ``(None, None)``."""
    for i, rule in enumerate(rules):
        if rule.holds(input_tokens, variables):
            return rule.model, i
    return None, None


def estimate_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """≈ tokens of ``messages``: their characters / 4, rounded up (no tokenizer)."""
    chars = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif content is not None:
            chars += len(json.dumps(content, ensure_ascii=False))
    return math.ceil(chars / 4)
