"""Checking one answer against one assertion. Definitions: ``docs/evals.md``.

``not_<type>`` passes exactly when ``<type>`` fails (and reports why). An
assertion that cannot be checked because the gate is misconfigured (no
``jsonschema`` package, an unreachable embeddings endpoint) raises
``ProviderError``: the gate fails closed rather than guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contract import ProviderError
from providers.gates.llm import text
from specs.evals import Assertion

SIMILAR_THRESHOLD = 0.75
GROUNDED_THRESHOLD = 0.8


@dataclass(frozen=True)
class Answer:
    output: str
    latency_ms: float
    cost_usd: float | None
    cost_note: str = ""  # why the cost is unknown


@dataclass(frozen=True)
class Checked:
    type: str
    passed: bool
    reason: str
    weight: float
    score: float | None = None  # similarity, grounded fraction

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "passed": self.passed, "reason": self.reason}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        if self.weight != 1.0:
            out["weight"] = self.weight
        return out


#: ``similarity(output, reference) -> cosine``: local lexical, or an embeddings endpoint.
Similarity = Callable[[str, str], float]


def check(a: Assertion, answer: Answer, variables: Mapping[str, Any], sim: Similarity) -> Checked:
    negate = a.type.startswith("not_")
    base = a.type.removeprefix("not_")
    passed, reason, score = _CHECKS[base](a, answer, variables, sim)
    if negate:
        passed, reason = not passed, f"negated: {reason}"
    return Checked(a.type, passed, reason, a.weight, score)


Result = tuple[bool, str, float | None]


def _clip(value: str, n: int = 60) -> str:
    return repr(value if len(value) <= n else value[: n - 1] + "…")


def _equals(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    out = ans.output.strip()
    if isinstance(a.value, dict | list):
        try:
            same = json.loads(out) == a.value
        except ValueError:
            return False, "expected JSON equal to the value; the output is not JSON", None
        return same, "JSON equals the value" if same else "JSON differs from the value", None
    want = str(a.value).strip()
    ok = out == want
    return ok, f"output equals {_clip(want)}" if ok else f"got {_clip(out)}", None


def _values(a: Assertion) -> list[str]:
    return [str(v) for v in a.value] if isinstance(a.value, list) else [str(a.value)]


def _contains(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    missing = [v for v in _values(a) if v not in ans.output]
    return _contain_result(missing, "")


def _icontains(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    out = ans.output.casefold()
    missing = [v for v in _values(a) if v.casefold() not in out]
    return _contain_result(missing, " (ignoring case)")


def _contain_result(missing: list[str], how: str) -> Result:
    if missing:
        return False, f"missing {', '.join(_clip(m, 40) for m in missing)}{how}", None
    return True, f"contains every value{how}", None


def _regex(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    found = re.search(str(a.value), ans.output)
    return bool(found), f"/{a.value}/ {'matches' if found else 'does not match'}", None


def _parse_json(output: str) -> tuple[Any, str | None]:
    try:
        return json.loads(output.strip()), None
    except ValueError as exc:
        return None, f"not JSON: {exc}"


def _schema_errors(instance: Any, schema: Any) -> str | None:
    try:
        import jsonschema
    except ImportError:
        raise ProviderError(
            "json_schema assertions need the jsonschema package: pip install jsonschema"
        ) from None
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path)
        return f"schema violation{' at ' + path if path else ''}: {exc.message}"
    except jsonschema.SchemaError as exc:
        raise ProviderError(
            f"invalid JSON Schema in a json_schema assertion: {exc.message}"
        ) from None
    return None


def _is_json(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    data, error = _parse_json(ans.output)
    if error:
        return False, error, None
    if isinstance(a.value, dict):
        problem = _schema_errors(data, a.value)
        if problem:
            return False, problem, None
    return True, "valid JSON", None


def _json_schema(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    data, error = _parse_json(ans.output)
    if error:
        return False, error, None
    problem = _schema_errors(data, a.value)
    return (False, problem, None) if problem else (True, "matches the schema", None)


def _similar(a: Assertion, ans: Answer, _v: Mapping[str, Any], sim: Similarity) -> Result:
    threshold = a.threshold if a.threshold is not None else SIMILAR_THRESHOLD
    best = max(sim(ans.output, ref) for ref in _values(a))
    ok = best >= threshold
    return ok, f"similarity {best:.3f} {'>=' if ok else '<'} {threshold:g}", best


def _context(a: Assertion, variables: Mapping[str, Any]) -> tuple[str | None, str]:
    names = a.value if isinstance(a.value, list) else [a.value or "context"]
    parts: list[str] = []
    for name in names:
        if name not in variables:
            return None, f"the case has no var {name!r} holding the context"
        value = variables[name]
        if isinstance(value, list):
            parts.extend(v if isinstance(v, str) else json.dumps(v) for v in value)
        else:
            parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts), ""


def _grounded(a: Assertion, ans: Answer, variables: Mapping[str, Any], _s: Similarity) -> Result:
    context, problem = _context(a, variables)
    if context is None:
        return False, problem, None
    threshold = a.threshold if a.threshold is not None else GROUNDED_THRESHOLD
    g = text.grounding(ans.output, context)
    ok = g.fraction >= threshold
    reason = f"{g.supported}/{g.claims} claims supported by the context (need {threshold:g})"
    if g.unsupported:
        reason += f"; unsupported: {_clip(g.unsupported[0], 80)}"
    return ok, reason, g.fraction


def _refuses(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    refused = text.is_refusal(ans.output)
    return refused, "the answer refuses" if refused else "the answer does not refuse", None


def _limit(a: Assertion) -> float:
    return float(a.value if a.value is not None else a.threshold)  # type: ignore[arg-type]


def _latency(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    limit = _limit(a)
    ok = ans.latency_ms <= limit
    return ok, f"latency {ans.latency_ms:.0f} ms {'<=' if ok else '>'} {limit:g} ms", None


def _cost(a: Assertion, ans: Answer, _v: Mapping[str, Any], _s: Similarity) -> Result:
    limit = _limit(a)
    if ans.cost_usd is None:
        return False, f"cost unknown: {ans.cost_note or 'no price for this model'}", None
    ok = ans.cost_usd <= limit
    return ok, f"cost ${ans.cost_usd:.6f} {'<=' if ok else '>'} ${limit:g}", None


_CHECKS: dict[str, Callable[[Assertion, Answer, Mapping[str, Any], Similarity], Result]] = {
    "equals": _equals,
    "contains": _contains,
    "icontains": _icontains,
    "regex": _regex,
    "is_json": _is_json,
    "json_schema": _json_schema,
    "similar": _similar,
    "grounded": _grounded,
    "refuses": _refuses,
    "latency_ms": _latency,
    "cost_usd": _cost,
}
