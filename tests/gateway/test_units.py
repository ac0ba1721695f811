"""The gateway's pure parts, in-process: routing, rules, inputs, auth, cache, pricing, control."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from common.pricing import cost_usd
from contract import Traffic
from dataplane.route import Price, RouteError, parse
from gateway import routing
from gateway.auth import AuthConfigError, Bearer, configured_token, is_loopback
from gateway.cache import ResponseCache, key
from gateway.inputs import Column, ColumnType, InputError, InputSchema, align, checked
from gateway.inputs import parse as parse_input
from gateway.rules import RuleError, compile_condition, compile_mapping, estimate_tokens
from tests.gateway.support import model_variant, prompt_variant, route


# -- routing -------------------------------------------------------------------------------------
def test_assignment_is_deterministic_and_raising_a_weight_keeps_candidates() -> None:
    keys = [f"k{i}" for i in range(2000)]
    at10 = {k for k in keys if routing.choose("ep", 10, k, "rid") is routing.Role.CANDIDATE}
    at50 = {k for k in keys if routing.choose("ep", 50, k, "rid") is routing.Role.CANDIDATE}
    assert at10 <= at50
    assert 0.08 < len(at10) / len(keys) < 0.12 and 0.46 < len(at50) / len(keys) < 0.54
    # another endpoint splits the same keys differently
    other = {k for k in keys if routing.choose("ep2", 50, k, "rid") is routing.Role.CANDIDATE}
    assert other != at50
    assert routing.choose("ep", 0, "k", "r") is routing.Role.STABLE
    assert routing.choose("ep", 100, "k", "r") is routing.Role.CANDIDATE
    # the same on every machine: a fixed value of the hash
    assert routing.bucket("mlx-split", "ep\x00k1") == routing.bucket("mlx-split", "ep\x00k1")
    assert routing.key_hash("alice") == routing.key_hash("alice") != routing.key_hash("bob")
    assert "alice" not in (routing.key_hash("alice") or "")


def test_mirror_and_payload_sampling_follow_their_shares() -> None:
    ids = [f"r{i}" for i in range(4000)]
    assert 0.17 < sum(routing.mirrored("ep", 20, r) for r in ids) / len(ids) < 0.23
    assert 0.07 < sum(routing.sampled(0.1, r) for r in ids) / len(ids) < 0.13
    assert not routing.mirrored("ep", 0, "r") and routing.sampled(1.0, "r")


# -- rules ---------------------------------------------------------------------------------------
def test_conditions_compile_and_evaluate() -> None:
    (t,) = compile_condition("input_tokens <= 200")
    assert t.holds(200, {}) and not t.holds(201, {})
    _, b = compile_condition('input_tokens > 5 and variables.user.plan == "free"')
    assert b.holds(0, {"user": {"plan": "free"}}) and not b.holds(0, {"user": {}})
    (ne,) = compile_condition("variables.tier != 'pro'")
    assert ne.holds(0, {"tier": "free"}) and not ne.holds(0, {})  # a missing variable: false
    assert [x.op for x in compile_mapping({"input_tokens": {"lt": 9, ">=": 2}})] == ["<", ">="]
    for bad in ("tokens < 3", "input_tokens < 3 or x", "variables.x > 2", "input_tokens < 1.5"):
        with pytest.raises(RuleError, match="unknown condition"):
            compile_condition(bad)
    with pytest.raises(RuleError):
        compile_mapping({"variables.x": {"<": 3}})
    assert estimate_tokens([{"role": "user", "content": "x" * 41}]) == 11


# -- inputs --------------------------------------------------------------------------------------
def test_inputs_parse_every_format_and_name_bad_columns() -> None:
    split = parse_input({"dataframe_split": {"columns": ["b", "a"], "data": [[2, 1]]}})
    floats = InputSchema(
        (Column("a", ColumnType.FLOAT, False), Column("b", ColumnType.FLOAT, False)), "sklearn"
    )
    assert align(split, floats) == (["a", "b"], [[1, 2]])
    assert parse_input({"inputs": {"a": 1, "b": 2}}).rows == [[1, 2]]
    assert parse_input({"instances": [5, 6]}).rows == [[5], [6]]
    with pytest.raises(InputError, match=r"dataframe_records\[1\] lacks column 'b'"):
        parse_input({"dataframe_records": [{"a": 1, "b": 2}, {"a": 1}]})
    with pytest.raises(InputError, match=r"inputs\['b'\] has 1 values"):
        parse_input({"inputs": {"a": [1, 2], "b": [3]}})
    with pytest.raises(InputError, match=r"column 'b' must be a number, but row 1 has string 'no'"):
        checked(parse_input({"dataframe_records": [{"a": 1, "b": 2}, {"a": 1, "b": "no"}]}), floats)
    with pytest.raises(InputError, match="must be a JSON object"):
        parse_input([1, 2])


# -- auth ----------------------------------------------------------------------------------------
def test_tokens_come_from_the_environment_or_a_secret_setting() -> None:
    assert configured_token({"MLX_GATEWAY_TOKEN": "t1"}, "${env.X}") == "t1"
    assert configured_token({"X": "t2"}, "${env.X}") == "t2"
    assert configured_token({}, None) is None
    with pytest.raises(AuthConfigError, match="not a literal"):
        configured_token({}, "literal")
    with pytest.raises(AuthConfigError, match="X is not set"):
        configured_token({}, "${env.X}")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("::")
    bearer = Bearer("abc")
    assert bearer.allows("Bearer abc") and bearer.allows("bearer abc")
    assert not bearer.allows("Bearer abd") and not bearer.allows(None) and not bearer.allows("abc")
    assert Bearer(None).allows(None)


# -- cache and pricing ----------------------------------------------------------------------------
def test_the_cache_expires_and_evicts() -> None:
    now = [0.0]
    cache = ResponseCache(max_entries=2, clock=lambda: now[0])
    k1, k2, k3 = (key("ep", "v1", "fp", {"m": i}) for i in range(3))
    assert key("ep", "v1", "fp", {"a": 1, "b": 2}) == key("ep", "v1", "fp", {"b": 2, "a": 1})
    assert key("ep", "v1", "fp", {"a": 1}) != key("ep", "v2", "fp", {"a": 1})
    cache.put(k1, 10, b"one", "m", 1, 1, None)
    now[0] = 9.9
    assert cache.get(k1) is not None
    now[0] = 10.0
    assert cache.get(k1) is None
    for k in (k1, k2, k3):
        cache.put(k, 100, b"x", "m", 1, 1, None)
    assert cache.get(k1) is None and cache.get(k3) is not None and len(cache) == 2


def test_prices_come_from_the_override_then_the_bundled_table() -> None:
    over = {"mine": Price(input_per_1k=1.0, output_per_1k=2.0)}
    assert cost_usd(over, "mine", None, 1000, 500, 0) == pytest.approx(2.0)
    table = cost_usd({}, "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 1_000_000, 0, 1.78e9)
    assert table == pytest.approx(0.15)  # the bundled table's $0.15 per 1M input tokens
    assert cost_usd({}, "no-such-model-anywhere", None, 10, 10, 0) is None
    assert cost_usd({}, "gpt-4o-mini", None, None, None, 0) is None


# -- route documents and the control loop -----------------------------------------------------
def test_the_route_split_is_contract_traffic_in_whole_percents(tmp_path: Path) -> None:
    """``traffic`` parses into the one split type; ``10.0`` (a float that is a whole percent)
    reads as 10, and unknown keys are ignored like everywhere in the document."""
    variants = [model_variant(n, i, tmp_path / "m.joblib") for i, n in ((1, "v1"), (2, "v2"))]
    doc = route("ep", "model", variants, stable="v1", candidate="v2")
    doc["traffic"] = {**doc["traffic"], "weight": 10.0, "mirror": 5, "later": True}
    split = parse("ep", doc).traffic
    assert split == Traffic("v1", "v2", 10, 5)
    assert type(split.weight) is int
    assert Traffic.from_dict(doc["traffic"]) == split  # as the control plane reads it back


def test_route_documents_that_cannot_be_served_are_refused_in_one_line(tmp_path: Path) -> None:
    good = route("ep", "model", [model_variant("v1", 1, tmp_path / "m.joblib")], stable="v1")
    assert parse("ep", good).traffic.stable == "v1"
    with pytest.raises(RouteError, match="format 2 is newer"):
        parse("ep", {**good, "format": 2})
    with pytest.raises(RouteError, match=r"traffic\.stable names variant 'v7'"):
        parse("ep", {**good, "traffic": {"stable": "v7"}})
    with pytest.raises(RouteError, match=r"traffic\.weight"):
        parse("ep", {**good, "traffic": {"stable": "v1", "weight": 130}})
    with pytest.raises(RouteError, match=r"traffic\.mirror: .*fractional part"):
        parse("ep", {**good, "traffic": {"stable": "v1", "mirror": 12.5}})
    prompt = route("p", "prompt", [prompt_variant("v1", 1, template="x", model="m")], stable="v1")
    with pytest.raises(RouteError, match="a model endpoint's variant needs `artifact`"):
        parse("p", {**prompt, "kind": "model"})


def test_control_swaps_snapshots_and_keeps_the_last_good_view(tmp_path: Path) -> None:
    from gateway.control import Control, RouteSource, State
    from tests.gateway.conftest import routes, spec_dir, train

    spec = spec_dir(tmp_path / "spec")
    train(tmp_path / "m.joblib")
    store = routes(spec)
    control = Control(RouteSource(store, "default"), spec)
    v1 = model_variant("v1", 1, tmp_path / "m.joblib")
    store.put("default", "ep", route("ep", "model", [v1], stable="v1"))
    assert control.poll_once()
    first = control.snapshot
    assert first.endpoints["ep"].stable is not None and not control.poll_once()  # nothing moved
    loaded = first.endpoints["ep"].stable
    store.put("default", "ep", route("ep", "model", [v1], stable="v1", log={"payloads": 0.5}))
    control.poll_once()
    assert control.snapshot.endpoints["ep"].stable is loaded  # loaded once per version
    assert first.endpoints["ep"].route.log.payloads == 1.0  # the old snapshot never changes
    store.put("default", "ep", {**route("ep", "model", [v1], stable="v1"), "format": 9})
    control.poll_once()
    view = control.snapshot.endpoints["ep"]
    assert view.stable is loaded and not view.healthy and "format 9" in view.problems[0]
    bad = model_variant("v2", 2, tmp_path / "missing.joblib")
    store.put("default", "ep", route("ep", "model", [v1, bad], stable="v2"))
    control.poll_once()
    view = control.snapshot.endpoints["ep"]
    assert view.stable is loaded
    assert [(h.name, h.state) for h in view.health] == [("v2", State.FAILED), ("v1", State.READY)]
    store.put("default", "new", {"kind": "model"})
    store.delete("default", "ep")
    control.poll_once()
    assert "ep" not in control.snapshot.endpoints and "new" in control.snapshot.broken


def test_the_upstream_client_retries_and_maps_failures(tmp_path: Path) -> None:
    from gateway import llm
    from providers.gates.testing_server import OpenAIStub

    async def call(stub: OpenAIStub, retries: int) -> Any:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        async with llm.new_client() as http:
            return await llm.chat(
                http,
                stub.base_url,
                "k",
                body,
                attempt_timeout=5.0,
                deadline=time.monotonic() + 10,
                retries=retries,
                backoff_s=0.01,
            )

    with OpenAIStub() as stub:
        stub.fail(503, times=2)
        answer = asyncio.run(call(stub, retries=2))
        assert answer.attempts == 3 and answer.usage == (1, 3)
        stub.fail(429, times=2, retry_after=0.01)
        with pytest.raises(llm.UpstreamError) as err:
            asyncio.run(call(stub, retries=1))
        assert err.value.status == 429 and err.value.attempts == 2
        stub.fail(401)
        with pytest.raises(llm.UpstreamError) as err:
            asyncio.run(call(stub, retries=3))
        assert err.value.status == 502 and err.value.attempts == 1 and "api_key" in str(err.value)
    with pytest.raises(llm.UpstreamError) as err:  # nothing listens there any more
        asyncio.run(call(stub, retries=0))
    assert err.value.status == 502 and "cannot reach" in str(err.value)


def test_model_failures_reach_stderr_at_most_once_per_version_every_ten_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gateway.invocations import ModelErrorLog

    now = [0.0]
    notes = ModelErrorLog(every_s=10.0, clock=lambda: now[0])
    with caplog.at_level("ERROR", logger="mlx.gateway"):
        said = [notes.note("fraud", "3", "the model failed: ValueError: x") for _ in range(5)]
        assert notes.note("fraud", "4", "the model failed: KeyError: y")  # another version
        now[0] = 10.0
        assert notes.note("fraud", "3", "the model failed: ValueError: z")
    assert said == [True, False, False, False, False]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "mlx serve: endpoint fraud version 3: the model failed: ValueError: x",
        "mlx serve: endpoint fraud version 4: the model failed: KeyError: y",
        "mlx serve: endpoint fraud version 3: the model failed: ValueError: z "
        "(and 4 more since the last line)",
    ]
