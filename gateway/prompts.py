"""A prompt variant: turning an OpenAI chat request into the upstream's request.

The caller sends an OpenAI chat-completions body plus ``variables`` (an object). The upstream
gets, in order: the prompt's ``system`` text (rendered), its ``template`` (rendered, as the
user message), then the caller's own ``messages`` if any (a conversation continuing from the
prompt). The model is the prompt version's, or the one its ``routing`` rules pick; the caller's
``model`` field is ignored (the ``openai`` client insists on sending one), since the model is
part of the released version. Parameters: the endpoint client's ``params``, under the
prompt's ``params``, under what the caller may set (``user``, and what the prompt's
``allow_params`` allows: ``gateway.params``); anything else a caller sends is a 400.
``stream: true`` asks for server-sent events (``gateway.streaming``): the upstream is then
always asked for its final usage chunk (``stream_options: {include_usage: true}``) — the log
needs the tokens — and the caller gets that chunk only if its own ``stream_options`` asked.
``Prepared.body`` is the request without the stream fields (the response cache's key, so a
streamed and a whole answer share entries); ``Prepared.upstream`` is what is sent.

Rendering is ``common.templates`` (``{{name}}``, ``{{a.b}}``), the eval gates' too, so a prompt
renders the same in a gate and in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.templates import MissingVariables, render
from dataplane.route import ClientDoc, RouteError, VariantDoc
from gateway.inputs import InputError
from gateway.params import Allowed, ParamRefused, ParamsError
from gateway.rules import Rule, RuleError, compile_rules, estimate_tokens, pick


@dataclass(frozen=True, slots=True)
class Prepared:
    body: dict[str, Any]  # what is sent upstream, without the stream fields
    model: str
    input_tokens_estimate: int
    rule: int | None  # index of the routing rule that picked the model
    stream: bool = False  # the caller asked for server-sent events
    include_usage: bool = False  # ... and for the final usage chunk

    @property
    def upstream(self) -> dict[str, Any]:
        """What is sent upstream: a streamed request always asks for the usage chunk."""
        if not self.stream:
            return self.body
        return {**self.body, "stream": True, "stream_options": {"include_usage": True}}


@dataclass(frozen=True)
class PromptVariant:
    name: str
    template: str
    system: str | None
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    retrieval_version: str | None = None
    allowed: Allowed = field(default_factory=lambda: Allowed({}))

    @classmethod
    def build(cls, endpoint: str, variant: VariantDoc, client: ClientDoc | None) -> PromptVariant:
        prompt = variant.prompt
        if prompt is None:  # the route check refuses this already
            raise RouteError(f"endpoint {endpoint!r} variant {variant.name!r} has no prompt")
        routing = prompt.routing
        model = (
            (routing.default if routing else None)
            or prompt.model
            or (client.model if client else None)
        )
        if not model:
            raise RouteError(
                f"endpoint {endpoint!r} variant {variant.name!r} names no model "
                "(prompt.model, routing.default or client.model)"
            )
        try:
            rules = compile_rules(routing.rules) if routing else ()
            allowed = Allowed.compile(prompt.allow_params)
        except (RuleError, ParamsError) as exc:
            raise RouteError(f"endpoint {endpoint!r} variant {variant.name!r}: {exc}") from None
        params = {**(client.params if client else {}), **prompt.params}
        rv = prompt.retrieval_version
        return cls(
            variant.name,
            prompt.template,
            prompt.system,
            model,
            params,
            rules,
            None if rv is None else str(rv),
            allowed,
        )

    def prepare(self, body: Any) -> Prepared:
        """The upstream request for an OpenAI chat body; ``InputError`` says what is wrong."""
        if not isinstance(body, dict):
            raise InputError("the body must be a JSON object (an OpenAI chat-completions request)")
        stream, include_usage = _streaming(body)
        variables = body.get("variables")
        if variables is None:
            variables = {}
        elif not isinstance(variables, dict):
            raise InputError(f'"variables" must be an object, got {type(variables).__name__}')
        extra = body.get("messages")
        if extra is None:
            extra = []
        elif not isinstance(extra, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in extra
        ):
            raise InputError('"messages" must be a list of objects with a "role"')
        try:
            caller = self.allowed.forwarded(body)
        except ParamRefused as exc:
            raise InputError(str(exc)) from None
        messages = self._render(variables)
        messages.extend(extra)
        estimate = estimate_tokens(messages)
        picked, rule = pick(self.rules, estimate, variables) if self.rules else (None, None)
        model = picked or self.model
        out = {**self.params, **caller}
        out["model"] = model
        out["messages"] = messages
        return Prepared(out, model, estimate, rule, stream, include_usage)

    def _render(self, variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            out: list[dict[str, Any]] = []
            if self.system:
                out.append({"role": "system", "content": render(self.system, variables)})
            out.append({"role": "user", "content": render(self.template, variables)})
            return out
        except MissingVariables as exc:
            text = exc.say("the prompt needs variable(s)")
            raise InputError(f'{text}: send them in "variables"') from None


def _streaming(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """``(stream, include_usage)`` as the caller asked; ``InputError`` for values OpenAI's API
    refuses too (a non-boolean, ``stream_options`` without ``stream``)."""
    stream = body.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InputError(f'"stream" must be true or false, not {stream!r}')
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not stream:
        raise InputError('"stream_options" is only allowed with "stream": true')
    if not isinstance(options, dict):
        raise InputError('"stream_options" must be an object such as {"include_usage": true}')
    unknown = sorted(str(k) for k in options if k not in _STREAM_OPTIONS)
    if unknown:
        raise InputError(
            f'"stream_options" takes {", ".join(_STREAM_OPTIONS)}; not {", ".join(unknown)}'
        )
    usage = options.get("include_usage")
    if usage is None:
        usage = False
    if not isinstance(usage, bool):
        raise InputError(f'"stream_options.include_usage" must be true or false, not {usage!r}')
    return stream, usage


#: The ``stream_options`` keys OpenAI's API documents (``include_obfuscation`` pads chunks
#: against side channels; the gateway passes the upstream's chunks as they are, so it accepts
#: and ignores it).
_STREAM_OPTIONS = ("include_usage", "include_obfuscation")
