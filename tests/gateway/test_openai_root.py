"""One OpenAI base URL (``<gateway>/v1``) for every prompt endpoint, and no retry amplification.

A real ``mlx serve`` with a bearer token, called by the official ``openai`` client (and once by
LiteLLM) with ``base_url=<gateway>/v1``; the LLM upstreams are OpenAI-compatible stubs on
127.0.0.1 that count the calls they get: one answers, the others always fail (503, 401, 429).
The pure parts (which failures get ``x-should-retry: false``, reading ``model``) are tables.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from gateway.http import Fail
from gateway.openai_root import model_named, replay
from gateway.retry_advice import caller_should_not_retry
from providers.gates.testing_server import OpenAIStub, support_bot
from tests.conftest import require_extra
from tests.gateway.conftest import log_url, routes, spec_dir, train
from tests.gateway.support import Served, http, model_variant, prompt_variant, records, route

TOKEN = "gw-root-token-7"
DEPLOYED = "2026-11-30T08:00:00+00:00"
QUESTION = {"variables": {"question": "Where is my parcel?"}}
ALWAYS = 100_000  # "the next N requests fail": every request of the test


# -- the pure parts --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "attempts", "retries", "upstream", "no_retry", "why"),
    [
        (502, 3, 2, 503, True, "5xx retried by the gateway"),
        (502, 3, 2, None, True, "unreachable, retried by the gateway"),
        (504, 2, 1, None, True, "timed out, retried by the gateway"),
        (429, 3, 2, 429, True, "still rate-limited after the gateway's retries"),
        (502, 2, 2, 401, True, "a 401 after a retried 503"),
        (502, 1, 2, 401, True, "bad key, never retried"),
        (502, 1, 2, 403, True, "forbidden key"),
        (502, 1, 2, 404, True, "wrong base_url or model"),
        (502, 1, 0, 401, True, "bad key, with gateway retries off"),
        (502, 1, 0, 200, True, "an answer too large or not JSON, retries off"),
        (400, 1, 2, 400, True, "the upstream refused the request"),
        (400, 1, 0, None, True, "a caller-facing 400, upstream status unknown"),
        (502, 1, 2, None, True, "not retried though allowed: final, or past the deadline"),
        (429, 1, 2, 429, True, "a 429 whose Retry-After passes the deadline"),
        (502, 1, 0, 503, False, "a 5xx with gateway retries off: the caller's to retry"),
        (502, 1, 0, None, False, "unreachable with gateway retries off"),
        (504, 1, 0, None, False, "timed out with gateway retries off"),
        (429, 1, 0, 429, False, "rate-limited with gateway retries off"),
    ],
)
def test_which_upstream_failures_tell_the_caller_not_to_retry(
    status: int, attempts: int, retries: int, upstream: int | None, no_retry: bool, why: str
) -> None:
    assert caller_should_not_retry(status, attempts, retries, upstream) is no_retry, why


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"model": "support", "messages": []}', None, "support"),
        (b'{"messages": []}', 400, "`model` is required"),
        (b'{"model": null}', 400, "`model` is required"),
        (b'{"model": ""}', 400, "`model` is required"),
        (b'{"model": 3}', 400, "must be a string"),
        (b'{"model": ["a"]}', 400, "got list"),
        (b'["support"]', 400, "must be a JSON object"),
        (b"{", 400, "malformed JSON"),
    ],
)
def test_model_is_read_from_the_body(body: bytes, status: int | None, words: str) -> None:
    if status is None:
        assert model_named(body) == words
        return
    with pytest.raises(Fail) as err:
        model_named(body)
    assert err.value.status == status and words in err.value.message
    assert not err.value.logged


def test_replay_gives_the_body_then_the_callers_messages() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def twice() -> list[Any]:
        again = replay(b'{"model": "x"}', receive)
        return [await again(), await again()]

    first, then = asyncio.run(twice())
    assert first == {"type": "http.request", "body": b'{"model": "x"}', "more_body": False}
    assert then == {"type": "http.disconnect"}


# -- through a real gateway ------------------------------------------------------------------------
@dataclass
class World:
    server: Served
    ok: OpenAIStub
    down: OpenAIStub  # always 503
    badkey: OpenAIStub  # always 401
    limited: OpenAIStub  # always 429, Retry-After: 0.01
    log: str

    @property
    def base(self) -> str:
        return f"{self.server.url}/v1"

    def client(self, **kw: Any) -> Any:
        openai = require_extra("openai", "dev")
        return openai.OpenAI(base_url=self.base, api_key=TOKEN, **kw)

    def record(self, endpoint: str, request_id: str) -> Any:
        def find() -> Any:
            found = (r for r in records(self.log, endpoint) if r.request_id == request_id)
            return next(found, None)

        return self.server.wait_for(find, what=f"record {request_id} of {endpoint}")


def _client(base_url: str, **kw: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": base_url, "timeout_s": 5, "backoff_s": 0.01, **kw}


def _prompt(version: int, model: str) -> dict[str, Any]:
    variant = prompt_variant(f"v{version}", version, template="Question: {{question}}", model=model)
    variant["deployed_at"] = DEPLOYED
    return variant


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    stubs = [OpenAIStub(support_bot).start() for _ in range(4)]
    ok, down, badkey, limited = stubs
    down.fail(503, times=ALWAYS)
    badkey.fail(401, times=ALWAYS)
    limited.fail(429, times=ALWAYS, retry_after=0.01)
    root = tmp_path_factory.mktemp("gw-openai-root")
    spec = spec_dir(root / "spec")
    store = routes(spec)

    def put(name: str, variants: list[dict[str, Any]], client: dict[str, Any], **kw: Any) -> None:
        kw.setdefault("stable", "v1")
        store.put("default", name, route(name, "prompt", variants, client=client, **kw))

    put("support", [_prompt(1, "gpt-4o-mini")], _client(ok.base_url))
    put(
        "abp",
        [_prompt(1, "gpt-4o-mini"), _prompt(2, "gpt-4.1-nano")],
        _client(ok.base_url),
        candidate="v2",
        weight=50,
    )
    put("down", [_prompt(1, "m")], _client(down.base_url, retries=2))
    put("down-noretry", [_prompt(1, "m")], _client(down.base_url, retries=0))
    put("badkey", [_prompt(1, "m")], _client(badkey.base_url, retries=2))
    put("badkey-noretry", [_prompt(1, "m")], _client(badkey.base_url, retries=0))
    put("limited", [_prompt(1, "m")], _client(limited.base_url, retries=1))
    train(root / "fraud.joblib")
    fraud = model_variant("v1", 1, root / "fraud.joblib")
    store.put("default", "fraud", route("fraud", "model", [fraud], stable="v1"))
    server = Served(spec, env={"MLX_GATEWAY_TOKEN": TOKEN}).wait_ready()
    yield World(server, ok, down, badkey, limited, log_url(spec))
    server.stop()
    for stub in stubs:
        stub.stop()


PROMPTS = ["abp", "badkey", "badkey-noretry", "down", "down-noretry", "limited", "support"]


@pytest.mark.slow
def test_model_names_the_prompt_endpoint_that_answers(world: World) -> None:
    calls = world.ok.calls
    raw = world.client(max_retries=0).chat.completions.with_raw_response.create(
        model="support", messages=[], extra_body=QUESTION, extra_headers={"x-request-id": "root-1"}
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "You said: Where is my parcel?"
    # the prompt version decides the upstream model: `model` named the endpoint, not a model
    assert world.ok.calls == calls + 1
    assert world.ok.requests[-1]["model"] == "gpt-4o-mini" == answer.model
    assert world.ok.requests[-1]["messages"] == [
        {"role": "user", "content": "Question: Where is my parcel?"}
    ]
    assert raw.headers["x-request-id"] == "root-1"
    assert raw.headers["x-mlx-variant"] == "stable" and raw.headers["x-mlx-version"] == "1"
    assert "x-should-retry" not in raw.headers
    rec = world.record("support", "root-1")
    assert (rec.status, rec.variant, rec.version) == (200, "stable", "1")
    assert rec.input_tokens == answer.usage.prompt_tokens
    assert rec.output_tokens == answer.usage.completion_tokens
    # the same request through the endpoint's own route gets the same answer
    own = world.server.post(
        "/endpoints/support/v1/chat/completions",
        {"model": "anything", "messages": [], **QUESTION},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert own.status == 200
    assert own.json()["choices"] == raw.http_response.json()["choices"]


@pytest.mark.slow
def test_both_variants_of_a_rollout_answer_through_the_root_route(world: World) -> None:
    client = world.client(max_retries=0)
    seen: dict[str, set[str]] = {}
    for i in range(40):
        raw = client.chat.completions.with_raw_response.create(
            model="abp", messages=[], user=f"user-{i}", extra_body=QUESTION
        )
        variant = raw.headers["x-mlx-variant"]
        seen.setdefault(variant, set()).add(raw.parse().model)
        rec = world.record("abp", raw.headers["x-request-id"])
        assert (rec.variant, rec.version) == (variant, raw.headers["x-mlx-version"])
    assert seen == {"stable": {"gpt-4o-mini"}, "candidate": {"gpt-4.1-nano"}}


@pytest.mark.slow
def test_models_lists_the_prompt_endpoints(world: World) -> None:
    client = world.client(max_retries=0)
    listed = client.models.list()
    assert [m.id for m in listed.data] == PROMPTS  # not the model endpoint "fraud"
    created = int(datetime.fromisoformat(DEPLOYED).timestamp())
    for m in listed.data:
        assert (m.object, m.owned_by, m.created) == ("model", "mlx", created)
    assert client.models.retrieve("support").id == "support"
    openai = require_extra("openai", "dev")
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("nope")
    assert err.value.code == "model_not_found"
    raw = world.server.get("/v1/models", headers={"authorization": f"Bearer {TOKEN}"})
    assert raw.json()["object"] == "list"
    assert set(raw.json()["data"][0]) == {"id", "object", "created", "owned_by"}


@pytest.mark.slow
def test_unknown_or_wrong_models_are_openai_errors_and_reach_no_upstream(world: World) -> None:
    openai = require_extra("openai", "dev")
    client = world.client(max_retries=0)
    calls = world.ok.calls
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="suport", messages=[], extra_body=QUESTION)
    message = err.value.message
    assert "'suport' does not exist" in message and "did you mean 'support'?" in message
    assert "prompt endpoints: " + ", ".join(PROMPTS) in message
    assert err.value.code == "model_not_found" and err.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="fraud", messages=[])
    assert "POST /endpoints/fraud/invocations" in bad.value.message
    assert "POST /v2/models/fraud/infer" in bad.value.message
    auth = {"authorization": f"Bearer {TOKEN}"}
    missing = world.server.post("/v1/chat/completions", {"messages": []}, headers=auth)
    assert missing.status == 400 and "`model` is required" in missing.json()["error"]["message"]
    number = world.server.post("/v1/chat/completions", {"model": 7}, headers=auth)
    assert number.status == 400 and "must be a string" in number.json()["error"]["message"]
    wrong_type = world.server.post(
        "/v1/chat/completions", raw=b"model=support", headers={**auth, "content-type": "text/plain"}
    )
    assert wrong_type.status == 415
    assert world.ok.calls == calls
    # the endpoint's own checks still apply: a missing template variable is its 400
    with pytest.raises(openai.BadRequestError) as var:
        client.chat.completions.create(model="support", messages=[])
    assert "question" in var.value.message


@pytest.mark.slow
def test_the_bearer_token_guards_the_root_routes(world: World) -> None:
    openai = require_extra("openai", "dev")
    calls = world.ok.calls
    stranger = openai.OpenAI(base_url=world.base, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="support", messages=[], extra_body=QUESTION)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()
    assert http("GET", f"{world.base}/models").status == 401
    assert world.ok.calls == calls


@pytest.mark.slow
def test_litellm_completion_through_the_root_route(world: World) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
    litellm = require_extra("litellm", "dev")
    calls = world.ok.calls
    answer = litellm.completion(
        model="openai/support",  # LiteLLM's prefix for an OpenAI-compatible server
        api_base=world.base,
        api_key=TOKEN,
        messages=[{"role": "user", "content": "and my refund?"}],
        extra_body=QUESTION,
    )
    # the caller's messages follow the prompt's; the stub answers the last user message
    assert answer.choices[0].message.content == "You said: and my refund?"
    assert world.ok.calls == calls + 1
    assert world.ok.requests[-1]["messages"] == [
        {"role": "user", "content": "Question: Where is my parcel?"},
        {"role": "user", "content": "and my refund?"},
    ]
    assert world.ok.requests[-1]["model"] == "gpt-4o-mini"


# -- retry amplification ---------------------------------------------------------------------------
def _upstream_calls(world: World, stub: OpenAIStub, endpoint: str, cls: str) -> tuple[int, Any]:
    """What one call of the ``openai`` client (default ``max_retries``: 2) cost the upstream,
    and the gateway's answer."""
    openai = require_extra("openai", "dev")
    client = world.client()
    assert client.max_retries == 2  # the client's default: it would retry twice
    before = stub.calls
    with pytest.raises(getattr(openai, cls)) as err:
        client.chat.completions.create(model=endpoint, messages=[], extra_body=QUESTION)
    return stub.calls - before, err.value.response


@pytest.mark.slow
def test_a_5xx_the_gateway_retried_is_not_retried_by_the_client(world: World) -> None:
    calls, response = _upstream_calls(world, world.down, "down", "InternalServerError")
    assert calls == 3  # the gateway's 1 + 2 retries, not 3 x 3
    assert response.status_code == 502 and response.headers["x-should-retry"] == "false"
    assert "gave up after 3 attempts" in response.json()["error"]["message"]
    rec = world.record("down", response.headers["x-request-id"])
    assert rec.status == 502


@pytest.mark.slow
def test_an_upstream_401_is_one_call(world: World) -> None:
    calls, response = _upstream_calls(world, world.badkey, "badkey", "InternalServerError")
    assert calls == 1
    assert response.status_code == 502 and response.headers["x-should-retry"] == "false"
    assert "credentials (HTTP 401)" in response.json()["error"]["message"]
    # with gateway retries off too: the upstream's own 401 says no retry can help
    calls, response = _upstream_calls(world, world.badkey, "badkey-noretry", "InternalServerError")
    assert calls == 1 and response.headers["x-should-retry"] == "false"


@pytest.mark.slow
def test_a_429_the_gateway_gave_up_on_keeps_retry_after_but_is_final(world: World) -> None:
    calls, response = _upstream_calls(world, world.limited, "limited", "RateLimitError")
    assert calls == 2  # 1 + client.retries (1)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0.01"
    assert response.headers["x-should-retry"] == "false"


@pytest.mark.slow
def test_without_gateway_retries_the_client_retries_as_it_would(world: World) -> None:
    calls, response = _upstream_calls(world, world.down, "down-noretry", "InternalServerError")
    assert calls == 3  # client.retries: 0, so the openai client's own 1 + 2 retries
    assert "x-should-retry" not in response.headers


@pytest.mark.slow
def test_the_gateways_own_failures_carry_no_retry_advice(world: World) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    unknown = world.server.post("/v1/chat/completions", {"model": "nope"}, headers=auth)
    assert unknown.status == 404 and "x-should-retry" not in unknown.headers
    listed = world.server.get("/v1/nothing", headers=auth)
    assert listed.status == 404 and "POST /v1/chat/completions" in listed.json()["error"]["message"]


@pytest.mark.slow
def test_a_stream_through_the_root_route_is_the_endpoints_stream(world: World) -> None:
    """``stream: true`` at the one base URL: the events of the endpoint the model names, and
    its record (with time to first token)."""
    raw = world.client(max_retries=0).chat.completions.with_raw_response.create(
        model="support",
        messages=[],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=QUESTION,
        extra_headers={"x-request-id": "root-stream"},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: Where is my parcel?"
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    rec = world.record("support", "root-stream")
    assert (rec.status, rec.variant, rec.version) == (200, "stable", "1")
    assert (rec.input_tokens, rec.output_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert rec.ttft_ms is not None and rec.ttft_ms <= rec.latency_ms


@pytest.mark.slow
def test_a_streamed_request_the_gateway_retried_is_not_retried_by_the_client(
    world: World,
) -> None:
    """The retry advice holds for a stream that failed before its first byte too."""
    openai = require_extra("openai", "dev")
    before = world.down.calls
    with pytest.raises(openai.InternalServerError) as err:
        world.client().chat.completions.create(
            model="down", messages=[], stream=True, extra_body=QUESTION
        )
    assert world.down.calls - before == 3  # the gateway's 1 + 2, not 3 x 3
    assert err.value.response.headers["x-should-retry"] == "false"
