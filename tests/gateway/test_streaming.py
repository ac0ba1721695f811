"""Streamed chat completions (``stream: true``) through a real ``mlx serve``.

The LLM is ``StreamStub`` (tests/gateway/stream_stub.py), a real streaming server on
127.0.0.1 that writes each event as it goes; the callers are the ``openai`` client (sync and
async), LangChain's ``ChatOpenAI`` and LiteLLM's ``completion``. One server and one stub for
the module. Each record is checked against what the client saw.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import require_extra
from tests.gateway.conftest import log_url, routes, spec_dir
from tests.gateway.stream_stub import StreamStub, prompt_tokens, words
from tests.gateway.support import Served, find_record, llm_client, prompt_variant, route

pytestmark = pytest.mark.slow

PRICING = {"gpt-4o-mini": {"input_per_1k": 1.0, "output_per_1k": 2.0}}


@dataclass
class World:
    server: Served
    stub: StreamStub
    log: str

    def base(self, endpoint: str) -> str:
        return f"{self.server.url}/endpoints/{endpoint}/v1"

    def client(self, endpoint: str) -> Any:
        openai = require_extra("openai", "dev")
        return openai.OpenAI(base_url=self.base(endpoint), api_key="unused", max_retries=0)

    def aclient(self, endpoint: str) -> Any:
        openai = require_extra("openai", "dev")
        return openai.AsyncOpenAI(base_url=self.base(endpoint), api_key="unused", max_retries=0)

    def record(self, endpoint: str, request_id: str, variant: str | None = None) -> Any:
        def find() -> Any:
            return find_record(self.log, endpoint, request_id, variant)

        return self.server.wait_for(find, what=f"record {request_id} of {endpoint}")


_client = llm_client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    stub = StreamStub().start()
    spec = spec_dir(tmp_path_factory.mktemp("gw-stream") / "spec")
    store = routes(spec)

    def put(name: str, variants: list[dict[str, Any]], **kw: Any) -> None:
        kw.setdefault("client", _client(stub.base_url))
        kw.setdefault("pricing", PRICING)
        store.put("default", name, route(name, "prompt", variants, **kw))

    def one(model: str, **kw: Any) -> list[dict[str, Any]]:
        return [prompt_variant("v1", 1, template="{{question}}", model=model, **kw)]

    put("chat", one("gpt-4o-mini"), stable="v1")
    for model in ("gated", "endless", "broken", "error-event", "nousage", "whole"):
        put(model, one(f"{model}-model"), stable="v1")
    put("cached", one("gpt-4o-mini"), stable="v1", cache={"ttl_s": 60})
    put("flaky", one("gpt-4o-mini"), stable="v1", client=_client(stub.base_url, retries=1))
    rules = {"rules": [{"when": "input_tokens < 20", "model": "small-model"}], "default": None}
    put("routed", one("big-model", routing=rules), stable="v1")
    two = [
        prompt_variant("v1", 1, template="{{question}}", model="stable-model"),
        prompt_variant("v2", 2, template="{{question}}", model="candidate-model"),
    ]
    put("split", two, stable="v1", candidate="v2", weight=50)
    put("mirrored", two, stable="v1", candidate="v2", mirror=100)
    server = Served(spec).wait_ready()
    yield World(server, stub, log_url(spec))
    server.stop()
    stub.stop()


def ask(question: str) -> dict[str, Any]:
    return {"variables": {"question": question}}


# -- the openai client --------------------------------------------------------------------------
def test_the_sync_client_streams_the_text_and_the_record_matches_what_it_saw(
    world: World,
) -> None:
    client = world.client("chat")
    t0 = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(
        model="x",
        messages=[],
        stream=True,
        extra_body=ask("where is my parcel"),
        extra_headers={"x-request-id": "s-sync"},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-request-id"] == "s-sync"
    assert raw.headers["x-mlx-variant"] == "stable" and raw.headers["x-mlx-version"] == "1"
    first_token_s = None
    chunks = []
    for chunk in raw.parse():
        chunks.append(chunk)
        if first_token_s is None and chunk.choices and chunk.choices[0].delta.content:
            first_token_s = time.perf_counter() - t0
    total_s = time.perf_counter() - t0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: where is my parcel"
    # the caller did not ask for usage: no usage chunk reached it
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = world.stub.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    rec = world.record("chat", "s-sync")
    assert rec.status == 200 and rec.variant == "stable" and rec.version == "1"
    assert rec.outputs == [text]
    # tokens come from the upstream's usage chunk, which the caller never saw
    assert (rec.input_tokens, rec.output_tokens) == (prompt_tokens(sent), len(words(text)))
    assert rec.cost_usd == pytest.approx((rec.input_tokens * 1.0 + rec.output_tokens * 2.0) / 1000)
    assert first_token_s is not None
    assert 0 < rec.ttft_ms <= first_token_s * 1000.0
    assert rec.ttft_ms < rec.latency_ms <= total_s * 1000.0
    # the stub waited delay_s after each word: the stream took at least that after the first
    assert rec.latency_ms - rec.ttft_ms >= (len(words(text)) - 1) * world.stub.delay_s * 1000


def test_the_async_client_gets_the_usage_chunk_when_it_asks(world: World) -> None:
    async def run() -> list[Any]:
        client = world.aclient("chat")
        stream = await client.chat.completions.create(
            model="x",
            messages=[],
            stream=True,
            stream_options={"include_usage": True},
            extra_body=ask("can I pay by card"),
            extra_headers={"x-request-id": "s-async"},
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: can I pay by card"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    rec = world.record("chat", "s-async")
    assert rec.status == 200 and rec.ttft_ms is not None
    assert (rec.input_tokens, rec.output_tokens) == (
        last.usage.prompt_tokens,
        last.usage.completion_tokens,
    )


def test_chunks_reach_the_caller_before_the_upstream_has_finished(world: World) -> None:
    """The stub holds its answer after the first word until the test has that word: were the
    gateway to buffer, the client would never get it and the stub's wait would run out."""
    world.stub.gate.clear()
    world.stub.released = None
    stream = world.client("gated").chat.completions.create(
        model="x", messages=[], stream=True, extra_body=ask("one two three")
    )
    seen = []
    for chunk in stream:
        content = chunk.choices[0].delta.content if chunk.choices else None
        if content:
            seen.append(content)
            if len(seen) == 1:
                assert world.stub.released is None  # the stub is still waiting
                world.stub.gate.set()
    assert world.stub.released is True
    assert "".join(seen) == "You said: one two three"


def test_an_upstream_without_usage_logs_no_tokens(world: World) -> None:
    stream = world.client("nousage").chat.completions.create(
        model="x",
        messages=[],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=ask("hello"),
        extra_headers={"x-request-id": "s-nousage"},
    )
    chunks = list(stream)
    assert all(c.usage is None for c in chunks)
    rec = world.record("nousage", "s-nousage")
    assert rec.status == 200 and rec.outputs == ["You said: hello"]
    assert rec.input_tokens is None and rec.output_tokens is None and rec.cost_usd is None


def test_an_upstream_that_answers_whole_is_replayed_as_a_stream(world: World) -> None:
    stream = world.client("whole").chat.completions.create(
        model="x",
        messages=[],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=ask("hi there"),
        extra_headers={"x-request-id": "s-whole"},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: hi there" and chunks[-1].usage is not None
    rec = world.record("whole", "s-whole")
    assert rec.status == 200 and rec.output_tokens == chunks[-1].usage.completion_tokens


# -- the caller hangs up --------------------------------------------------------------------------
def test_a_caller_who_hangs_up_is_logged_499_and_the_upstream_is_cancelled(world: World) -> None:
    world.stub.cancelled.clear()
    stream = world.client("endless").chat.completions.create(
        model="x",
        messages=[],
        stream=True,
        extra_body=ask("go on"),
        extra_headers={"x-request-id": "s-gone"},
    )
    got = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            got.append(chunk.choices[0].delta.content)
        if len(got) == 3:
            break
    stream.close()  # the caller hangs up mid-stream
    assert world.stub.cancelled.wait(15), "the upstream never saw its request cancelled"
    assert world.stub.sent_before_cancel < 500  # it stopped long before its end
    rec = world.record("endless", "s-gone")
    assert rec.status == 499 and "hung up" in rec.error
    assert rec.outputs[0].startswith("".join(got))  # the text the gateway had received
    assert rec.input_tokens is None and rec.output_tokens is None  # no usage came: none invented
    assert rec.ttft_ms is not None and rec.ttft_ms <= rec.latency_ms


# -- failures -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error", "logged"),
    [
        (500, "InternalServerError", 502),  # retried once, then a 502
        (429, "RateLimitError", 429),
        (400, "BadRequestError", 400),
        (401, "InternalServerError", 502),  # the gateway's key: never the caller's fault
    ],
)
def test_an_upstream_failing_before_the_first_byte_is_a_json_error(
    world: World, status: int, error: str, logged: int
) -> None:
    openai = require_extra("openai", "dev")
    retried = status in (500, 429)
    world.stub.fail(status, times=2 if retried else 1)
    calls = world.stub.calls
    rid = f"s-fail-{status}"
    with pytest.raises(getattr(openai, error)) as err:
        world.client("flaky").chat.completions.create(
            model="x",
            messages=[],
            stream=True,
            extra_body=ask("hello"),
            extra_headers={"x-request-id": rid},
        )
    assert err.value.status_code == logged
    assert err.value.response.headers["content-type"] == "application/json"
    assert err.value.response.headers["x-mlx-variant"] == "stable"
    assert world.stub.calls == calls + (2 if retried else 1)
    rec = world.record("flaky", rid)
    assert rec.status == logged and f"HTTP {status}" in rec.error and rec.ttft_ms is None


@pytest.mark.parametrize(
    ("endpoint", "said"),
    [("broken", "broke off its stream"), ("error-event", "the model overloaded")],
)
def test_an_upstream_breaking_off_mid_stream_is_an_error_event_and_a_502(
    world: World, endpoint: str, said: str
) -> None:
    openai = require_extra("openai", "dev")
    rid = f"s-{endpoint}"
    stream = world.client(endpoint).chat.completions.create(
        model="x",
        messages=[],
        stream=True,
        extra_body=ask("a b c d"),
        extra_headers={"x-request-id": rid},
    )
    got = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    assert "mid-stream" in str(err.value) or "while it streamed" in str(err.value)
    assert got == ["You", " said:"]  # what came before the break reached the caller
    rec = world.record(endpoint, rid)
    assert rec.status == 502 and said in rec.error
    assert rec.outputs == ["You said:"] and rec.ttft_ms is not None


def test_bad_stream_parameters_are_400s(world: World) -> None:
    cases = [
        ({"stream": "yes"}, '"stream" must be true or false'),
        ({"stream_options": {"include_usage": True}}, 'only allowed with "stream": true'),
        ({"stream": True, "stream_options": {"include_usage": 1}}, "include_usage"),
        ({"stream": True, "stream_options": {"other": True}}, "not other"),
    ]
    calls = world.stub.calls
    for extra, message in cases:
        reply = world.server.post(
            "/endpoints/chat/v1/chat/completions", {**ask("hi"), "messages": [], **extra}
        )
        assert reply.status == 400, extra
        assert message in reply.json()["error"]["message"], extra
    assert world.stub.calls == calls


# -- the cache, the routing rules, the rollout split, the shadow ----------------------------------
def test_a_cache_hit_is_replayed_as_a_stream_and_a_streamed_answer_is_cached(
    world: World,
) -> None:
    client = world.client("cached")
    whole = client.chat.completions.create(
        model="x",
        messages=[],
        extra_body=ask("is it cached"),
        extra_headers={"x-request-id": "c-1"},
    )
    calls = world.stub.calls
    stream = client.chat.completions.create(
        model="x",
        messages=[],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=ask("is it cached"),
        extra_headers={"x-request-id": "c-2"},
    )
    chunks = list(stream)
    assert world.stub.calls == calls  # the upstream was not called
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    hit = world.record("cached", "c-2")
    assert hit.cache_hit is True and hit.status == 200 and hit.cost_usd == 0.0
    assert hit.outputs == [text] and hit.ttft_ms is not None
    # a streamed miss that completes is stored: a whole request and a streamed one then hit
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="x", messages=[], stream=True, extra_body=ask("stream me first")
        )
        if c.choices
    )
    calls = world.stub.calls
    again = client.chat.completions.create(
        model="x",
        messages=[],
        extra_body=ask("stream me first"),
        extra_headers={"x-request-id": "c-3"},
    )
    assert again.choices[0].message.content == streamed == "You said: stream me first"
    assert again.usage.completion_tokens == len(words(streamed))
    replayed = client.chat.completions.create(
        model="x", messages=[], stream=True, extra_body=ask("stream me first")
    )
    assert "".join(c.choices[0].delta.content or "" for c in replayed if c.choices) == streamed
    assert world.stub.calls == calls
    assert world.record("cached", "c-3").cache_hit is True


def test_routing_rules_pick_the_model_of_a_streamed_request(world: World) -> None:
    chunks = list(
        world.client("routed").chat.completions.create(
            model="x",
            messages=[],
            stream=True,
            extra_body=ask("short one"),
            extra_headers={"x-request-id": "r-1"},
        )
    )
    assert {c.model for c in chunks} == {"small-model"}
    assert world.stub.requests[-1]["model"] == "small-model"
    assert world.stub.requests[-1]["stream"] is True
    assert world.record("routed", "r-1").status == 200


def test_the_rollout_split_streams_from_both_variants(world: World) -> None:
    client = world.client("split")
    seen = {}
    for i in range(40):
        raw = client.chat.completions.with_raw_response.create(
            model="x",
            messages=[],
            stream=True,
            user=f"user-{i}",
            extra_body=ask("which one"),
            extra_headers={"x-request-id": f"ab-{i}"},
        )
        models = {c.model for c in raw.parse()}
        seen[f"ab-{i}"] = (raw.headers["x-mlx-variant"], raw.headers["x-mlx-version"], models)
    assert {v for v, _, _ in seen.values()} == {"stable", "candidate"}
    expected = {"stable": ("1", "stable-model"), "candidate": ("2", "candidate-model")}
    for variant, version, models in seen.values():
        assert (version, models) == (expected[variant][0], {expected[variant][1]})
    for rid in ("ab-0", "ab-1", "ab-2", "ab-3"):
        rec = world.record("split", rid)
        assert (rec.variant, rec.version) == seen[rid][:2] and rec.status == 200


def test_the_shadow_copy_of_a_streamed_request_is_a_whole_call(world: World) -> None:
    chunks = list(
        world.client("mirrored").chat.completions.create(
            model="x",
            messages=[],
            stream=True,
            extra_body=ask("mirror me"),
            extra_headers={"x-request-id": "m-1"},
        )
    )
    assert {c.model for c in chunks} == {"stable-model"}
    shadow = world.record("mirrored", "m-1", variant="shadow")
    caller = world.record("mirrored", "m-1", variant="stable")
    assert shadow.status == 200 and shadow.version == "2" and shadow.ttft_ms is None
    assert shadow.outputs == ["You said: mirror me"] and caller.ttft_ms is not None
    sent = [r for r in world.stub.requests if r["model"] == "candidate-model"]
    assert sent and "stream" not in sent[-1]


# -- other clients ---------------------------------------------------------------------------------
def test_langchain_chat_openai_streams(world: World) -> None:
    require_extra("langchain_openai", "dev")
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=world.base("chat"),
        api_key="unused",
        model="x",
        streaming=True,
        max_retries=0,
        extra_body={"variables": {"question": "from langchain"}},
    )
    parts = [chunk.content for chunk in llm.stream("ignored by the prompt")]
    assert len(parts) > 2  # it arrived in pieces
    assert "".join(str(p) for p in parts) == "You said: from langchain"


def test_litellm_completion_streams(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    litellm = require_extra("litellm", "dev")
    response = litellm.completion(
        model="openai/x",
        api_base=world.base("chat"),
        api_key="unused",
        messages=[{"role": "user", "content": "ignored"}],
        stream=True,
        extra_body={"variables": {"question": "from litellm"}},
        max_retries=0,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in response if chunk.choices)
    assert text == "You said: from litellm"


# -- metrics ------------------------------------------------------------------------------------
def _samples(world: World) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{world.server.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_streamed_answer_counts_its_tokens_cost_and_time_to_first_token(world: World) -> None:
    """The streamed path goes through the same counting as a whole answer: tokens from the
    usage chunk, the record's cost, and one time-to-first-token observation."""
    tokens = "mlx_gateway_tokens_total"
    ttft = "mlx_gateway_time_to_first_token_seconds_count"
    labels = {"endpoint": "chat", "variant": "stable", "model": "gpt-4o-mini"}

    def key(name: str, **kw: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return name, tuple(sorted(kw.items()))

    before = _samples(world)
    stream = world.client("chat").chat.completions.create(
        model="x",
        messages=[],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=ask("how long does shipping take"),
        extra_headers={"x-request-id": "s-metrics"},
    )
    usage = next(c.usage for c in stream if c.usage is not None)
    rec = world.record("chat", "s-metrics")
    after = _samples(world)

    def grew(k: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        return after.get(k, 0.0) - before.get(k, 0.0)

    assert grew(key(tokens, **labels, direction="input")) == usage.prompt_tokens
    assert grew(key(tokens, **labels, direction="output")) == usage.completion_tokens
    cost = grew(key("mlx_gateway_cost_usd_total", **labels))
    assert rec.cost_usd is not None and abs(cost - rec.cost_usd) < 1e-12
    assert grew(key(ttft, endpoint="chat", variant="stable")) == 1
