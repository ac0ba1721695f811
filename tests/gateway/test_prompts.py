"""Prompt endpoints through a real ``mlx serve``, with the OpenAI-compatible stub as the LLM.

The official ``openai`` client calls the gateway; the gateway calls the stub. One server and
one stub for the module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.routing import key_hash
from providers.gates.testing_server import OpenAIStub, support_bot
from tests.conftest import require_extra
from tests.gateway.conftest import log_url, routes, spec_dir
from tests.gateway.support import Served, find_record, llm_client, prompt_variant, route

pytestmark = pytest.mark.slow

KEY = "sk-test-gateway-123"
SPEC = """
prompts:
  support:
    template: "Question: {{question}}"
    system: You are terse.
    model: gpt-4o-mini
    owner: team-llm
endpoints:
  support:
    owner: team-llm
    serves: ${prompts.support}
    client: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${env.GW_TEST_LLM_KEY}"}
"""


def responder(request: Mapping[str, Any]) -> str:
    model = request["model"]
    if model == "hang-model":
        time.sleep(10)
    elif model == "sleepy-model":
        time.sleep(2)
    return support_bot(request)


@dataclass
class World:
    spec: Path
    server: Served
    stub: OpenAIStub
    log: str

    def client(self, endpoint: str, **kw: Any) -> Any:
        openai = require_extra("openai", "dev")
        return openai.OpenAI(
            base_url=f"{self.server.url}/endpoints/{endpoint}/v1",
            api_key="unused",
            max_retries=0,
            **kw,
        )

    def chat(self, endpoint: str, body: dict[str, Any] | None, **kw: Any) -> Any:
        return self.server.post(f"/endpoints/{endpoint}/v1/chat/completions", body, **kw)

    def record(self, endpoint: str, request_id: str, variant: str | None = None) -> Any:
        def find() -> Any:
            return find_record(self.log, endpoint, request_id, variant)

        return self.server.wait_for(find, what=f"record {request_id} of {endpoint}")


_client = llm_client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    stub = OpenAIStub(responder).start()
    root = tmp_path_factory.mktemp("gw-prompts")
    spec = spec_dir(root / "spec", SPEC)
    base = stub.base_url
    support = prompt_variant(
        "v1",
        1,
        template="Question: {{question}}",
        system="You are terse.",
        model="gpt-4o-mini",
        params={"temperature": 0.1},
    )
    store = routes(spec)

    def put(name: str, variants: list[dict[str, Any]], **kw: Any) -> None:
        kw.setdefault("client", _client(base))
        store.put("default", name, route(name, "prompt", variants, **kw))

    put("support", [support], stable="v1", cache={"ttl_s": 60})
    put(
        "priced",
        [prompt_variant("v1", 1, template="Question: {{question}}", model="house-model")],
        stable="v1",
        pricing={"house-model": {"input_per_1k": 1.0, "output_per_1k": 2.0}},
    )
    rules = {
        "rules": [
            {"when": "input_tokens < 20", "model": "small-model"},
            {"when": 'variables.tier == "free"', "model": "free-model"},
        ],
        "default": None,
    }
    put(
        "routed",
        [prompt_variant("v1", 1, template="{{question}}", model="big-model", routing=rules)],
        stable="v1",
    )
    bad_rules = {"rules": [{"when": "input_tokens ~ 3", "model": "x"}], "default": None}
    put(
        "badrule",
        [prompt_variant("v1", 1, template="{{q}}", model="m", routing=bad_rules)],
        stable="v1",
    )
    put(
        "flaky",
        [prompt_variant("v1", 1, template="{{question}}", model="gpt-4o-mini")],
        stable="v1",
        client=_client(base, retries=2),
    )
    put(
        "slow",
        [prompt_variant("v1", 1, template="{{question}}", model="sleepy-model")],
        stable="v1",
        client=_client(base, timeout_s=0.3, retries=1),
        timeout_s=4,
    )
    put(
        "shadowp",
        [
            prompt_variant("v1", 1, template="{{question}}", model="gpt-4o-mini"),
            prompt_variant("v2", 2, template="{{question}}", model="hang-model"),
        ],
        stable="v1",
        candidate="v2",
        mirror=100,
        timeout_s=1,
    )
    put(
        "abp",
        [
            prompt_variant("v1", 1, template="{{question}}", model="gpt-4o-mini"),
            prompt_variant("v2", 2, template="{{question}}", model="gpt-4.1-nano"),
        ],
        stable="v1",
        candidate="v2",
        weight=50,
    )
    server = Served(spec, env={"GW_TEST_LLM_KEY": KEY}).wait_ready()
    yield World(spec, server, stub, log_url(spec))
    server.stop()
    stub.stop()


def test_the_openai_client_calls_a_prompt_endpoint(world: World) -> None:
    client = world.client("support")
    raw = client.chat.completions.with_raw_response.create(
        model="anything",
        messages=[],
        extra_body={"variables": {"question": "How do I reset my password?"}},
        extra_headers={"x-request-id": "chat-1"},
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "You said: How do I reset my password?"
    assert raw.headers["x-mlx-variant"] == "stable" and raw.headers["x-mlx-version"] == "1"
    assert raw.headers["x-request-id"] == "chat-1"
    assert answer.usage.prompt_tokens == 10 and answer.usage.completion_tokens == 8
    sent = world.stub.requests[-1]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0.1
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Question: How do I reset my password?"},
    ]
    headers = {k.lower(): v for k, v in world.stub.headers[-1].items()}
    assert headers["authorization"] == f"Bearer {KEY}"  # resolved from the spec's ${env.…}


def test_usage_tokens_and_cost_are_logged(world: World) -> None:
    from genai_prices import Usage, calc_price

    client = world.client("support")
    client.chat.completions.create(
        model="x",
        messages=[],
        extra_body={"variables": {"question": "Where is my parcel today?"}},
        extra_headers={"x-request-id": "chat-cost"},
    )
    rec = world.record("support", "chat-cost")
    assert rec.input_tokens == 9 and rec.output_tokens == 7 and rec.cache_hit is False
    expected = float(calc_price(Usage(input_tokens=9, output_tokens=7), "gpt-4o-mini").total_price)
    assert rec.cost_usd == pytest.approx(expected) and rec.cost_usd > 0
    assert rec.prompt_version == "1" and rec.subject == "prompts.support"
    assert rec.inputs == {"variables": {"question": "Where is my parcel today?"}, "messages": []}
    assert rec.outputs == ["You said: Where is my parcel today?"]
    # the route's pricing overrides the table
    world.client("priced").chat.completions.create(
        model="x",
        messages=[],
        extra_body={"variables": {"question": "one two three"}},
        extra_headers={"x-request-id": "chat-priced"},
    )
    priced = world.record("priced", "chat-priced")
    assert (priced.input_tokens, priced.output_tokens) == (4, 5)
    assert priced.cost_usd == pytest.approx((4 * 1.0 + 5 * 2.0) / 1000)


def test_an_identical_request_is_answered_from_the_cache(world: World) -> None:
    body = {"model": "x", "messages": [], "variables": {"question": "Can I pay by card?"}}
    first = world.chat("support", body, headers={"x-request-id": "cache-1"})
    calls = world.stub.calls
    second = world.chat("support", body, headers={"x-request-id": "cache-2"})
    assert second.status == 200 and world.stub.calls == calls  # the upstream was not called
    assert second.json() == first.json()
    hit = world.record("support", "cache-2")
    assert hit.cache_hit is True and hit.cost_usd == 0.0
    assert world.record("support", "cache-1").cache_hit is False
    other = world.chat("support", {**body, "variables": {"question": "Can I pay by cash?"}})
    assert other.status == 200 and world.stub.calls == calls + 1
    metrics = world.server.get("/metrics").body.decode()
    assert 'mlx_gateway_cache_hits_total{endpoint="support"} 1.0' in metrics


def test_routing_rules_send_easy_requests_to_a_cheaper_model(world: World) -> None:
    long = "please explain in detail " * 10
    cases = [
        ({"question": "short one"}, "small-model"),
        ({"question": long, "tier": "free"}, "free-model"),
        ({"question": long, "tier": "paid"}, "big-model"),
        ({"question": long}, "big-model"),
    ]
    for variables, model in cases:
        reply = world.chat("routed", {"messages": [], "variables": variables})
        assert reply.status == 200, reply.body
        assert reply.json()["model"] == model, variables
        assert world.stub.requests[-1]["model"] == model


def test_an_unknown_routing_condition_is_refused_when_the_route_loads(world: World) -> None:
    health = world.server.get("/healthz").json()["endpoints"]["badrule"]
    assert health["healthy"] is False
    assert "unknown condition 'input_tokens ~ 3'" in health["variants"]["v1"]["error"]
    calls = world.stub.calls
    reply = world.chat("badrule", {"messages": [], "variables": {"q": "x"}})
    assert reply.status == 503 and "no version that can serve" in reply.json()["error"]["message"]
    assert world.stub.calls == calls


def test_bad_chat_requests_are_400s(world: World) -> None:
    openai = require_extra("openai", "dev")
    with pytest.raises(openai.BadRequestError) as err:
        world.client("support").chat.completions.create(
            model="x", messages=[], extra_body={"variables": {}}
        )
    assert "the prompt needs variable(s) question" in str(err.value)
    bad_stream = {"variables": {"question": "x"}, "stream_options": {"include_usage": True}}
    assert world.chat("support", bad_stream).status == 400  # stream_options without stream
    assert world.chat("support", {"variables": ["question"]}).status == 400
    malformed = world.chat("support", raw=b"{", body=None)
    assert malformed.status == 400 and "malformed JSON" in malformed.json()["error"]["message"]


def test_upstream_5xx_is_retried_then_a_502_logged_with_the_error(world: World) -> None:
    body = {"messages": [], "variables": {"question": "hello"}}
    world.stub.fail(500, times=3)
    calls = world.stub.calls
    reply = world.chat("flaky", body, headers={"x-request-id": "flaky-502"})
    assert reply.status == 502, reply.body
    assert world.stub.calls == calls + 3  # 1 attempt + 2 retries
    message = reply.json()["error"]["message"]
    assert "HTTP 500" in message and "gave up after 3 attempts" in message
    rec = world.record("flaky", "flaky-502")
    assert rec.status == 502 and "HTTP 500" in rec.error
    # a 429 with Retry-After is waited out and retried
    world.stub.fail(429, times=1, retry_after=0.05)
    ok = world.chat("flaky", body)
    assert ok.status == 200 and ok.json()["choices"][0]["message"]["content"] == "You said: hello"
    metrics = world.server.get("/metrics").body.decode()
    assert (
        'mlx_gateway_upstream_errors_total{endpoint="flaky",status="502",'
        'upstream_status="500",variant="stable"} 1.0' in metrics
    )
    assert 'mlx_gateway_upstream_retries_total{endpoint="flaky"} 3.0' in metrics


def test_upstream_timeout_is_a_504_logged_with_the_error(world: World) -> None:
    calls = world.stub.calls
    reply = world.chat(
        "slow",
        {"messages": [], "variables": {"question": "hi"}},
        headers={"x-request-id": "slow-1"},
    )
    assert reply.status == 504, reply.body
    assert "timed out" in reply.json()["error"]["message"]
    assert world.stub.calls == calls + 2
    rec = world.record("slow", "slow-1")
    assert rec.status == 504 and "timed out after 0.3s" in rec.error


def test_a_hanging_shadow_upstream_never_delays_the_answer(world: World) -> None:
    ids = [f"pshadow-{i}" for i in range(4)]
    for rid in ids:
        reply = world.chat(
            "shadowp",
            {"messages": [], "variables": {"question": "ping"}},
            headers={"x-request-id": rid},
            timeout=5,
        )
        assert reply.status == 200 and reply.headers["x-mlx-variant"] == "stable"
        assert reply.json()["model"] == "gpt-4o-mini"
    for rid in ids:
        shadow = world.record("shadowp", rid, variant="shadow")
        caller = world.record("shadowp", rid, variant="stable")
        assert shadow.status == 504 and shadow.version == "2" and "timed out" in shadow.error
        assert caller.status == 200 and caller.latency_ms < 1000  # under the shadow's timeout


def test_the_sticky_key_may_be_the_openai_user_field(world: World) -> None:
    seen = set()
    for i in range(5):
        reply = world.chat(
            "abp",
            {"messages": [], "user": "user-7", "variables": {"question": "q"}},
            headers={"x-request-id": f"abp-{i}"},
        )
        seen.add((reply.headers["x-mlx-variant"], reply.json()["model"]))
    assert len(seen) == 1
    assert world.record("abp", "abp-0").key_hash == key_hash("user-7")
    assert world.stub.requests[-1]["user"] == "user-7"
    variants = {
        world.chat(
            "abp", {"messages": [], "user": f"u{i}", "variables": {"question": "q"}}
        ).headers["x-mlx-variant"]
        for i in range(40)
    }
    assert variants == {"stable", "candidate"}


def test_an_endpoint_the_spec_does_not_declare_sends_no_key(world: World) -> None:
    reply = world.chat("flaky", {"messages": [], "variables": {"question": "no key?"}})
    assert reply.status == 200
    headers = {k.lower() for k in world.stub.headers[-1]}
    assert "authorization" not in headers
