"""What a caller may set in a chat request: the prompt's ``allow_params`` (SPEC.md, prompts).

The prompt's ``params`` are the contract: a caller may set only the parameters its
``allow_params`` names, each either ``true`` (any value) or capped (``{max: N}``: a number
at most N). Beyond them a caller may always send ``messages`` and ``variables`` (they build
the prompt), ``user`` (the sticky key, passed on), ``stream`` and ``stream_options``, and
``model`` — which the ``openai`` client insists on sending and the gateway ignores: the model
is part of the released version. Anything else is a 400 naming it and what is allowed; a
capped value above its cap, or not a number, is a 400 naming the cap. Nothing is clamped.

A key sent with ``null`` is treated as not sent (OpenAI's API reads ``null`` as "the
default"): it is neither refused nor passed on, so the prompt's own value applies — a
``max_tokens: null`` cannot lift a cap.

``allow_params`` is compiled when the variant loads: a value that is neither ``true``/``false``
nor ``{max: N > 0}`` fails that variant's load (reported unhealthy), never a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from specs.prompts import CALLER_ALWAYS as ALWAYS
from specs.prompts import CALLER_IGNORED as IGNORED

#: Keys ``allow_params`` cannot name: always allowed already, or not the caller's to set.
RESERVED = frozenset((*ALWAYS, *IGNORED))
#: What a cap may hold.
CAP_KEYS = ("max",)


class ParamsError(ValueError):
    """An ``allow_params`` the gateway cannot apply; one line naming the parameter."""


class ParamRefused(ValueError):
    """A caller's parameter this endpoint does not take; one line for the caller."""


@dataclass(frozen=True, slots=True)
class Allowed:
    """The parameters a caller may set: name → cap (``None``: any value)."""

    caps: Mapping[str, float | None]

    @classmethod
    def compile(cls, raw: Mapping[str, Any] | None) -> Allowed:
        caps: dict[str, float | None] = {}
        for name, rule in (raw or {}).items():
            cap = _cap(str(name), rule)
            if rule is not False:
                caps[str(name)] = cap
        return cls(caps)

    def describe(self) -> str:
        """``temperature, max_tokens (max 512)``, or ``none``."""
        parts = [n if c is None else f"{n} (max {c:g})" for n, c in sorted(self.caps.items())]
        return ", ".join(parts) or "none"

    def forwarded(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The caller's parameters the upstream gets (``user`` and the allowed ones), in the
        body's order; ``ParamRefused`` names the first problem."""
        refused = sorted(k for k in body if k not in RESERVED and k not in self.caps)
        refused = [k for k in refused if body[k] is not None]
        if refused:
            raise ParamRefused(
                f"this endpoint does not take {', '.join(refused)} from callers; "
                f"a caller may set: {self.describe()} "
                f"(and always {', '.join(ALWAYS)})"
            )
        out: dict[str, Any] = {}
        for key, value in body.items():
            if value is None or (key in RESERVED and key != "user"):
                continue
            cap = self.caps.get(key)
            if cap is not None:
                _within(key, value, cap)
            out[key] = value
        return out


def _cap(name: str, rule: Any) -> float | None:
    """The cap of one ``allow_params`` entry (``None``: any value, or not allowed: ``false``)."""
    if name in RESERVED:
        why = "always allowed" if name in ALWAYS else "part of the prompt version"
        raise ParamsError(f"allow_params.{name}: {name} is {why}; remove it")
    if isinstance(rule, bool):
        return None
    if isinstance(rule, Mapping):
        unknown = sorted(str(k) for k in rule if k not in CAP_KEYS)
        if unknown:
            raise ParamsError(
                f"allow_params.{name}: unknown cap key(s) {', '.join(unknown)} "
                f"(a cap is {{max: N}})"
            )
        cap = rule.get("max")
        if _number(cap) and cap > 0:
            return float(cap)
        raise ParamsError(f"allow_params.{name}.max: must be a number > 0, not {cap!r}")
    raise ParamsError(
        f"allow_params.{name}: expected true, false or a cap such as {{max: 512}}, not {rule!r}"
    )


def _within(name: str, value: Any, cap: float) -> None:
    if not _number(value):
        raise ParamRefused(
            f"{name} must be a number (this endpoint takes at most {cap:g}), not {value!r}"
        )
    if value > cap:
        raise ParamRefused(f"{name} {value!r} is over this endpoint's cap: at most {cap:g}")


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
