"""The prompt path's pure decisions, table-driven: what a caller may set (``allow_params``),
which upstream key an endpoint gets (or why it is refused) — from the route document's
reference, or from the spec where only the spec can say —, what the log keeps of a payload,
and which route settings count as changed outside mlx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.spec_keys import SpecDirectoryKeys
from dataplane.route import parse
from gateway.keys import KeyResolver, UpstreamKey
from gateway.params import Allowed, ParamRefused, ParamsError
from inference.store import PAYLOAD_LIMIT_BYTES, payload_json

CAPPED = {"temperature": True, "max_tokens": {"max": 512}, "seed": False}


# -- allow_params, compiled when a variant loads ----------------------------------------------
@pytest.mark.parametrize(
    ("raw", "caps"),
    [
        (None, {}),
        ({}, {}),
        ({"temperature": True}, {"temperature": None}),
        ({"temperature": False}, {}),
        ({"max_tokens": {"max": 512}}, {"max_tokens": 512.0}),
        ({"top_p": {"max": 0.5}}, {"top_p": 0.5}),
    ],
)
def test_allow_params_compiles(raw: Any, caps: dict[str, Any]) -> None:
    assert dict(Allowed.compile(raw).caps) == caps


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"model": True}, "allow_params.model: model is part of the prompt version"),
        ({"messages": True}, "allow_params.messages: messages is always allowed"),
        ({"user": {"max": 3}}, "user is always allowed"),
        ({"max_tokens": {"maxx": 5}}, "unknown cap key(s) maxx"),
        ({"max_tokens": {"max": 0}}, "allow_params.max_tokens.max: must be a number > 0"),
        ({"max_tokens": {"max": -1}}, "must be a number > 0, not -1"),
        ({"max_tokens": {"max": True}}, "must be a number > 0, not True"),
        ({"max_tokens": {}}, "must be a number > 0, not None"),
        ({"n": "yes"}, "allow_params.n: expected true, false or a cap"),
        ({"n": 3}, "expected true, false or a cap such as {max: 512}, not 3"),
    ],
)
def test_a_bad_allow_params_fails_the_load_naming_the_entry(raw: Any, fragment: str) -> None:
    with pytest.raises(ParamsError) as err:
        Allowed.compile(raw)
    assert fragment in str(err.value)


# -- a caller's parameters, checked per request ------------------------------------------------
@pytest.mark.parametrize(
    ("body", "forwarded"),
    [
        ({"messages": [], "variables": {}, "model": "x"}, {}),
        ({"user": "u1", "stream": False, "stream_options": {}}, {"user": "u1"}),
        ({"temperature": 1.5}, {"temperature": 1.5}),
        ({"temperature": "any value: no cap"}, {"temperature": "any value: no cap"}),
        ({"max_tokens": 512}, {"max_tokens": 512}),
        ({"max_tokens": 0.5}, {"max_tokens": 0.5}),
        ({"max_tokens": None, "n": None, "tools": None}, {}),  # null: not sent
    ],
)
def test_what_a_caller_may_set_is_passed_on(body: dict[str, Any], forwarded: Any) -> None:
    assert Allowed.compile(CAPPED).forwarded(body) == forwarded


@pytest.mark.parametrize(
    ("allow", "body", "fragment"),
    [
        (CAPPED, {"n": 50}, "does not take n from callers; a caller may set: max_tokens (max 512)"),
        (CAPPED, {"tools": [], "n": 2}, "does not take n, tools from callers"),
        (CAPPED, {"seed": 1}, "does not take seed"),  # false: not allowed
        ({}, {"temperature": 0}, "a caller may set: none (and always messages, variables"),
        (CAPPED, {"max_tokens": 513}, "max_tokens 513 is over this endpoint's cap: at most 512"),
        (CAPPED, {"max_tokens": "9"}, "max_tokens must be a number"),
        (CAPPED, {"max_tokens": True}, "max_tokens must be a number"),
    ],
)
def test_what_a_caller_may_not_set_is_refused_naming_it(
    allow: dict[str, Any], body: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ParamRefused) as err:
        Allowed.compile(allow).forwarded(body)
    assert fragment in str(err.value)


# -- the upstream key ----------------------------------------------------------------------------
SPEC = """
prompts:
  p:
    template: "{{q}}"
    owner: me
endpoints:
  keyed:
    owner: me
    serves: ${prompts.p}
    client: {type: openai, api_key: "${env.C_KEY_A}"}
  joined:
    owner: me
    serves: ${prompts.p}
    client: {type: openai, api_key: "${env.C_KEY_A}-${env.C_KEY_B}"}
  literal:
    owner: me
    serves: ${prompts.p}
    client: {type: openai, api_key: sk-literal}
  keyless:
    owner: me
    serves: ${prompts.p}
    client: {type: openai, base_url: "http://127.0.0.1:9/v1"}
"""


@pytest.mark.parametrize(
    ("environ", "address", "value", "refused_naming"),
    [
        ({"C_KEY_A": "a1"}, "endpoints.keyed", "a1", None),
        ({}, "endpoints.keyed", None, "C_KEY_A"),
        ({"C_KEY_A": ""}, "endpoints.keyed", None, "C_KEY_A"),  # empty: not a key
        ({"C_KEY_A": "a1", "C_KEY_B": "b2"}, "endpoints.joined", "a1-b2", None),
        ({"C_KEY_A": "a1"}, "endpoints.joined", None, "C_KEY_B"),
        ({}, "endpoints.literal", "sk-literal", None),
        ({}, "endpoints.keyless", None, None),
        ({}, "endpoints.undeclared", None, None),
    ],
)
def test_a_key_only_the_spec_can_resolve_is_resolved_or_the_endpoint_refused(
    tmp_path: Path,
    environ: dict[str, str],
    address: str,
    value: str | None,
    refused_naming: str | None,
) -> None:
    (tmp_path / "mlx.yaml").write_text("mlx:\n  state: sqlite:///.mlx/state.db\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    key = SpecDirectoryKeys(tmp_path, None, environ).resolve(address)
    assert key.value == value
    if refused_naming is None:
        assert key.refusal is None and key.problem is None
    else:
        assert key.refusal is not None and refused_naming in key.refusal
        assert "not set where mlx serve runs" in key.refusal
        assert key.problem == key.refusal
        assert not [name for name, v in environ.items() if v and name in key.refusal]


def _route(api_key: Any = "absent", client: bool = True) -> Any:
    """A prompt route whose client holds ``api_key`` (``"absent"``: a document written before
    the reference existed)."""
    doc: dict[str, Any] = {
        "kind": "prompt",
        "variants": {"v1": {"name": "v1", "version": 1, "prompt": {"template": "{{q}}"}}},
        "traffic": {"stable": "v1"},
    }
    if client:
        doc["client"] = {"type": "openai"} | ({} if api_key == "absent" else {"api_key": api_key})
    return parse("support", doc)


class FromSpec:
    """A ``SpecKeys`` that says what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.rounds = 0

    def begin_round(self) -> None:
        self.rounds += 1

    def resolve(self, address: str) -> UpstreamKey:
        self.asked.append(address)
        return UpstreamKey(value="from-the-spec")


@pytest.mark.parametrize(
    ("route", "environ", "value", "refused_naming", "spec_asked"),
    [
        (_route({"env": "C_KEY_A"}), {"C_KEY_A": "a1"}, "a1", None, False),
        (_route({"env": "C_KEY_A"}), {}, None, "C_KEY_A", False),
        (_route({"env": "C_KEY_A"}), {"C_KEY_A": ""}, None, "C_KEY_A", False),  # empty: no key
        (_route(None), {"C_KEY_A": "a1"}, None, None, False),  # declares none: a local upstream
        (_route({"spec": True}), {}, "from-the-spec", None, True),  # literal, var, joined
        (_route(), {}, "from-the-spec", None, True),  # written by the previous release
        (_route(client=False), {}, "from-the-spec", None, True),
    ],
)
def test_a_routes_key_reference_is_resolved_from_this_replicas_environment(
    route: Any,
    environ: dict[str, str],
    value: str | None,
    refused_naming: str | None,
    spec_asked: bool,
) -> None:
    spec = FromSpec()
    keys = KeyResolver(environ, spec)
    keys.begin_round()
    key = keys.resolve(route)
    assert key.value == value
    assert spec.asked == (["endpoints.support"] if spec_asked else [])
    assert spec.rounds == 1
    if refused_naming is None:
        assert key.refusal is None and key.problem is None
    else:
        assert key.refusal is not None and refused_naming in key.refusal
        assert "not set where mlx serve runs" in key.refusal
        assert key.problem == key.refusal


def test_without_the_spec_a_key_written_otherwise_is_refused_and_an_old_route_gets_none() -> None:
    keys = KeyResolver({})
    key = keys.resolve(_route({"spec": True}))
    assert key.value is None and key.refusal is not None and "does not resolve" in key.refusal
    assert key.problem is not None and "reads no spec" in key.problem
    assert keys.resolve(_route()) == UpstreamKey()


@pytest.mark.parametrize(
    "api_key", [{}, {"env": ""}, {"env": "X", "spec": True}, {"spec": False}, "sk-a-value"]
)
def test_a_key_reference_the_gateway_cannot_read_refuses_the_route(api_key: Any) -> None:
    from dataplane.route import RouteError

    with pytest.raises(RouteError, match=r"route of endpoint 'support': client\.api_key"):
        _route(api_key)


# -- what the log keeps of a payload -------------------------------------------------------------
def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (None, True),
        ({"a": [1, 2, 3]}, True),
        ("x" * (PAYLOAD_LIMIT_BYTES - 2), True),  # its JSON (quotes included) is at the limit
        ("x" * (PAYLOAD_LIMIT_BYTES - 1), False),
        ("é" * (PAYLOAD_LIMIT_BYTES // 2), False),  # counted in UTF-8 bytes, not characters
        ("é" * (PAYLOAD_LIMIT_BYTES // 2 - 1), True),
        ([{"row": i} for i in range(10_000)], False),
    ],
)
def test_the_log_keeps_a_payload_up_to_its_limit_then_a_marker(value: Any, kept: bool) -> None:
    text = payload_json(value)
    if value is None:
        assert text is None
        return
    assert text is not None
    if kept:
        assert json.loads(text) == value
    else:
        marker = {"$truncated": True, "bytes": _size(value), "limit": PAYLOAD_LIMIT_BYTES}
        assert json.loads(text) == marker


def test_a_record_row_keeps_markers_for_its_large_payloads() -> None:
    from inference.records import InferenceRecord
    from inference.store import RECORD_COLUMNS, record_values

    big = {"dataframe_records": [{"amount": float(i)} for i in range(20_000)]}
    rec = InferenceRecord(
        request_id="r", endpoint="e", variant="stable", status=200, latency_ms=1.0,
        inputs=big, outputs=[1.0] * 3,
    )  # fmt: skip
    row = dict(zip(RECORD_COLUMNS, record_values(rec), strict=True))
    assert json.loads(row["inputs"]) == {
        "$truncated": True,
        "bytes": _size(big),
        "limit": PAYLOAD_LIMIT_BYTES,
    }
    assert json.loads(row["outputs"]) == [1.0, 1.0, 1.0]


# -- route settings written before max_response_bytes existed --------------------------------------
def test_a_route_without_max_response_bytes_is_not_reported_as_changed_outside_mlx() -> None:
    from providers.gateway.settings import edited, settings

    spec = {"client": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}}
    live = settings(spec)
    older = {
        **live,
        "client": {k: v for k, v in live["client"].items() if k != "max_response_bytes"},
    }
    assert edited(older, spec) == []
    smaller = {**live, "client": {**live["client"], "max_response_bytes": 10}}
    assert edited(smaller, spec) == ["client"]


# -- the key's reference, as the control plane writes it ---------------------------------------
@pytest.mark.parametrize(
    ("api_key", "env_refs", "ref"),
    [
        ("the-value", {"client.api_key": "C_KEY_A"}, {"env": "C_KEY_A"}),  # ${env.C_KEY_A}
        ("", {"client.api_key": "C_KEY_A"}, {"env": "C_KEY_A"}),  # set but empty at apply
        ("sk-literal", {}, {"spec": True}),
        ("a1-b2", {}, {"spec": True}),  # ${env.A}-${env.B}: only the spec can say
        (None, {}, None),
        ("", {}, None),
    ],
)
def test_the_document_holds_where_the_key_is_never_the_key(
    api_key: str | None, env_refs: dict[str, str], ref: Any
) -> None:
    from providers.gateway.settings import settings

    client: dict[str, Any] = {"type": "openai"}
    if api_key is not None:
        client["api_key"] = api_key
    written = settings({"client": client}, env_refs)
    assert written["client"]["api_key"] == ref
    if api_key:
        assert api_key not in json.dumps(written)


def test_the_keys_reference_is_not_reported_as_changed_outside_mlx() -> None:
    """The record holds the key redacted, which cannot say how it was written; a document of
    the previous release has no reference at all."""
    from providers.gateway.settings import edited, settings

    spec = {"client": {"type": "openai", "api_key": "v"}}
    live = settings(spec, {"client.api_key": "C_KEY_A"})
    recorded = {"client": {"type": "openai", "api_key": {"$sensitive": "hmac-sha256:ab"}}}
    assert edited(live, recorded) == []
    older = {**live, "client": {k: v for k, v in live["client"].items() if k != "api_key"}}
    assert edited(older, recorded) == []
    moved = {**live, "client": {**live["client"], "base_url": "http://elsewhere/v1"}}
    assert edited(moved, recorded) == ["client"]


# -- the response cache is bounded in bytes too ----------------------------------------------
@pytest.mark.parametrize(
    ("sizes", "kept", "held"),
    [
        ([40, 40], [0, 1], 80),  # within the budget
        ([40, 40, 40], [1, 2], 80),  # the least recently used goes first
        ([60, 60], [1], 60),
        ([40, 101], [0], 40),  # larger than the whole budget: not kept, nothing evicted
        ([100], [0], 100),
    ],
)
def test_the_response_cache_holds_at_most_its_byte_budget(
    sizes: list[int], kept: list[int], held: int
) -> None:
    from gateway.cache import ResponseCache, key

    cache = ResponseCache(max_entries=10, max_bytes=100, clock=lambda: 0.0)
    keys = [key("ep", "v1", "fp", {"i": i}) for i in range(len(sizes))]
    for k, size in zip(keys, sizes, strict=True):
        cache.put(k, 60, b"x" * size, "m", 1, 1, None)
    assert [i for i, k in enumerate(keys) if cache.get(k) is not None] == kept
    assert cache.size_bytes == held


def test_replacing_or_expiring_an_entry_gives_its_bytes_back() -> None:
    from gateway.cache import ResponseCache

    now = [0.0]
    cache = ResponseCache(max_entries=10, max_bytes=100, clock=lambda: now[0])
    cache.put("a", 10, b"x" * 70, "m", 1, 1, None)
    cache.put("a", 10, b"x" * 30, "m", 1, 1, None)
    assert cache.size_bytes == 30 and len(cache) == 1
    cache.put("b", 10, b"x" * 70, "m", 1, 1, None)
    assert cache.get("a") is not None and cache.size_bytes == 100
    now[0] = 11.0
    assert cache.get("a") is None and cache.size_bytes == 70


# -- an upstream failure's two texts -------------------------------------------------------------
def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.mark.parametrize(
    ("base_url", "public"),
    [
        ("http://[::1/v1", "upstream address is not a valid URL"),
        (_closed_port_url(), "upstream unreachable (gave up after 1 attempt)"),
        ("ftp://10.0.0.7/v1", "upstream unreachable"),
    ],
)
def test_an_upstream_failure_tells_the_caller_the_kind_and_the_log_the_address(
    base_url: str, public: str
) -> None:
    import asyncio
    import time
    from urllib.parse import urlsplit

    from gateway import llm

    async def call() -> None:
        async with llm.new_client() as http:
            await llm.chat(
                http,
                base_url,
                None,
                {"model": "m", "messages": []},
                attempt_timeout=2.0,
                deadline=time.monotonic() + 5,
                retries=0,
                backoff_s=0.0,
            )

    with pytest.raises(llm.UpstreamError) as err:
        asyncio.run(call())
    assert err.value.status == 502 and err.value.public.startswith(public)
    assert base_url in str(err.value)
    host = urlsplit(base_url.replace("[::1", "[::1]")).hostname or ""
    assert base_url not in err.value.public and host not in err.value.public
