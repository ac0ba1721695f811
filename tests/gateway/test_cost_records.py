"""Cost is never silently zero: a real ``mlx serve`` in front of a real upstream on 127.0.0.1
that reports cached prompt tokens, called with the ``openai`` client, whole and streamed.

Each record keeps the raw usage (input, output, cached input tokens), the model asked for and
the one that answered, the rates applied and where they came from; its ``cost_usd`` matches a
hand computation (cached tokens at the cache-read rate, the rest of the prompt at the input
rate). A model nobody prices is ``cost_usd = null`` and ``price_source = null``, never 0, and
counted by ``mlx_gateway_unpriced_total``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import require_extra
from tests.gateway.conftest import log_url, routes, spec_dir
from tests.gateway.support import Served, find_record, llm_client, prompt_variant, route

pytestmark = pytest.mark.slow

#: what the upstream reports for every answer: 1200 prompt tokens of which 1024 were read from
#: the provider's prompt cache, 80 completion tokens
PROMPT, CACHED, COMPLETION = 1200, 1024, 80
#: the model names the upstream answers with (a dated snapshot, as OpenAI does)
ANSWERED = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
HOUSE = {"house-model": {"input_per_1k": 1.0, "output_per_1k": 2.0, "cached_input_per_1k": 0.25}}


class CachingUpstream:
    """An OpenAI-compatible upstream whose usage says part of the prompt came from its cache
    (``prompt_tokens_details.cached_tokens``), whole or streamed with the final usage chunk."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                model = ANSWERED.get(body["model"], body["model"])
                usage = {
                    "prompt_tokens": PROMPT,
                    "completion_tokens": COMPLETION,
                    "total_tokens": PROMPT + COMPLETION,
                    "prompt_tokens_details": {"cached_tokens": CACHED},
                }
                head = {"id": "chatcmpl-c", "created": 1, "model": model}
                if not body.get("stream"):
                    message = {"role": "assistant", "content": "fine"}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    whole = {**head, "object": "chat.completion", "choices": [choice]}
                    self._send(b"application/json", json.dumps({**whole, "usage": usage}).encode())
                    return
                head["object"] = "chat.completion.chunk"
                events = [
                    {**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
                    {**head, "choices": [{"index": 0, "delta": {"content": "fine"}}]},
                    {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                    {**head, "choices": [], "usage": usage},
                ]
                text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                self._send(b"text/event-stream", text.encode())

            def _send(self, kind: bytes, data: bytes) -> None:
                self.send_response(200)
                self.send_header("content-type", kind.decode())
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World:
    server: Served
    log: str

    def client(self, endpoint: str) -> Any:
        openai = require_extra("openai", "dev")
        base = f"{self.server.url}/endpoints/{endpoint}/v1"
        return openai.OpenAI(base_url=base, api_key="unused", max_retries=0)

    def record(self, endpoint: str, request_id: str, variant: str | None = None) -> Any:
        return self.server.wait_for(
            lambda: find_record(self.log, endpoint, request_id, variant),
            what=f"record {request_id}",
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    upstream = CachingUpstream()
    spec = spec_dir(tmp_path_factory.mktemp("gw-cost") / "spec")
    store = routes(spec)
    for name, model, pricing in (
        ("table", "gpt-4o-mini", {}),
        ("house", "house-model", HOUSE),
        ("unknown", "nobody-prices-this-model", {}),
    ):
        variants = [prompt_variant("v1", 1, template="{{q}}", model=model)]
        doc = route(name, "prompt", variants, stable="v1", pricing=pricing)
        doc["client"] = llm_client(upstream.base_url)
        store.put("default", name, doc)
    two = [
        prompt_variant("v1", 1, template="{{q}}", model="house-model"),
        prompt_variant("v2", 2, template="{{q}}", model="gpt-4o-mini"),
    ]
    doc = route("mirrored", "prompt", two, stable="v1", candidate="v2", mirror=100, pricing=HOUSE)
    doc["client"] = llm_client(upstream.base_url)
    store.put("default", "mirrored", doc)
    server = Served(spec).wait_ready()
    yield World(server, log_url(spec))
    server.stop()
    upstream.stop()


def _table_source() -> str:
    import genai_prices

    return f"genai-prices {genai_prices.__version__}"


#: (endpoint, cost by hand, source, rates per 1M: input, output, cached input)
CASES = [
    # genai-prices' gpt-4o-mini: $0.15 input, $0.60 output, $0.075 cached input per 1M tokens
    (
        "table",
        (PROMPT - CACHED) * 0.15e-6 + CACHED * 0.075e-6 + COMPLETION * 0.6e-6,
        "table",
        (0.15, 0.6, 0.075),
    ),
    # the spec's override: $1 / $2 / $0.25 per 1k
    (
        "house",
        (PROMPT - CACHED) * 1.0e-3 + CACHED * 0.25e-3 + COMPLETION * 2.0e-3,
        "spec",
        (1000.0, 2000.0, 250.0),
    ),
]


def _ask(world: World, endpoint: str, request_id: str, stream: bool) -> str:
    client = world.client(endpoint)
    kw: dict[str, Any] = {
        "model": "x",
        "messages": [],
        "extra_body": {"variables": {"q": "hello"}},
        "extra_headers": {"x-request-id": request_id},
    }
    if not stream:
        answer = client.chat.completions.create(**kw)
        assert answer.usage.prompt_tokens_details.cached_tokens == CACHED
        return str(answer.choices[0].message.content)
    chunks = list(
        client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw)
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details.cached_tokens == CACHED
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("endpoint", "cost", "source", "rates"), CASES, ids=["table", "spec"])
def test_the_record_keeps_the_usage_and_the_price_and_the_cost_matches_by_hand(
    world: World,
    endpoint: str,
    cost: float,
    source: str,
    rates: tuple[float, float, float],
    stream: bool,
) -> None:
    request_id = f"{endpoint}-{'s' if stream else 'w'}"
    assert _ask(world, endpoint, request_id, stream) == "fine"
    r = world.record(endpoint, request_id)
    assert (r.input_tokens, r.output_tokens, r.cached_input_tokens) == (PROMPT, COMPLETION, CACHED)
    assert r.cost_usd == pytest.approx(cost, rel=1e-9)
    assert r.price_source == (_table_source() if source == "table" else "spec")
    got = (r.price_input_per_1m, r.price_output_per_1m, r.price_cached_input_per_1m)
    assert got == pytest.approx(rates)
    assert r.requested_model == world_model(endpoint)
    assert r.model == ANSWERED.get(world_model(endpoint), world_model(endpoint))
    # the cached tokens are billed once, cheaper: less than the whole prompt at the input rate
    assert r.cost_usd < (PROMPT * rates[0] + COMPLETION * rates[1]) / 1e6


def world_model(endpoint: str) -> str:
    return {"table": "gpt-4o-mini", "house": "house-model"}.get(
        endpoint, "nobody-prices-this-model"
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_model_nobody_prices_is_null_never_zero_and_counted(world: World, stream: bool) -> None:
    def unpriced() -> float:
        text = world.server.get("/metrics").body.decode()
        line = next(
            (
                ln
                for ln in text.splitlines()
                if ln.startswith("mlx_gateway_unpriced_total{") and 'endpoint="unknown"' in ln
            ),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = unpriced()
    request_id = f"unknown-{'s' if stream else 'w'}"
    assert _ask(world, "unknown", request_id, stream) == "fine"
    r = world.record("unknown", request_id)
    assert (r.input_tokens, r.output_tokens, r.cached_input_tokens) == (PROMPT, COMPLETION, CACHED)
    assert r.cost_usd is None and r.price_source is None
    assert (r.price_input_per_1m, r.price_output_per_1m, r.price_cached_input_per_1m) == (
        None,
        None,
        None,
    )
    assert r.model == "nobody-prices-this-model"
    assert world.server.wait_for(lambda: unpriced() >= before + 1, what="unpriced counter")


def test_a_shadow_copy_is_priced_with_its_own_model(world: World) -> None:
    """The caller's answer (house-model, the spec's price) and its shadow copy (gpt-4o-mini,
    the table's) are each priced as their own model billed them, cached tokens included."""
    assert _ask(world, "mirrored", "m-1", stream=False) == "fine"
    caller = world.record("mirrored", "m-1", "stable")
    shadow = world.record("mirrored", "m-1", "shadow")
    assert caller.price_source == "spec" and caller.cost_usd == pytest.approx(CASES[1][1])
    assert shadow.price_source == _table_source() and shadow.cost_usd == pytest.approx(CASES[0][1])
    assert shadow.cached_input_tokens == CACHED and shadow.requested_model == "gpt-4o-mini"
    assert shadow.model == "gpt-4o-mini-2024-07-18"
