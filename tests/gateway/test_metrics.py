"""``/metrics`` as Prometheus reads it, from a real ``mlx serve``.

The traffic (the ``openai`` client on prompt endpoints against the OpenAI-compatible stub,
invocations of a scikit-learn model, a cache hit, shadow copies, upstream failures, the
log's writes) is sent once; then the scrape is checked by Debian's ``promtool check metrics``
and read with ``prometheus_client``'s own parser, and every counter is compared with what
the client saw or the log holds. The unit tests at the end cover ``gateway.metrics``'s
decisions (the ``model`` cap, the ``upstream_status`` label) in process.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contract import Role
from gateway.routing import choose
from providers.gates.testing_server import OpenAIStub
from tests.conftest import require_extra
from tests.gateway.conftest import log_url, routes, spec_dir, train, training_frame
from tests.gateway.support import (
    Served,
    llm_client,
    model_variant,
    prompt_variant,
    records,
    route,
    wait_records,
)

#: the tests that scrape a live gateway start a process (``make test-fast`` leaves them out)
live = pytest.mark.slow
PROMTOOL = Path("/usr/bin/promtool")
PRICES = {
    "house-small": {"input_per_1k": 1.0, "output_per_1k": 2.0},
    "house-large": {"input_per_1k": 5.0, "output_per_1k": 15.0},
}
#: not in the route's pricing nor in genai-prices' table: answers are unpriced
MYSTERY = "mystery-model-x9"
PROMPT_ENDPOINTS = ("chat", "cached", "mirror", "flaky", "down")


@dataclass
class Scrape:
    text: str
    families: dict[str, Any]
    log: str
    seen_usage: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    seen_variants: Counter[str] = field(default_factory=Counter)
    invocations: int = 0

    def samples(self, name: str, **labels: str) -> list[Any]:
        return [
            s
            for f in self.families.values()
            for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.samples(name, **labels))


_client = llm_client


def _ids(endpoint: str, weight: float, each: int) -> list[str]:
    """Request ids the split sends ``each`` to either variant (it hashes the id)."""
    got: dict[Role, list[str]] = {Role.STABLE: [], Role.CANDIDATE: []}
    i = 0
    while min(len(v) for v in got.values()) < each:
        rid = f"{endpoint}-{i}"
        role = choose(endpoint, weight, None, rid)
        if len(got[role]) < each:
            got[role].append(rid)
        i += 1
    return got[Role.STABLE] + got[Role.CANDIDATE]


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrape]:
    openai = require_extra("openai", "dev")
    parser = require_extra("prometheus_client.parser", "serve")
    stub = OpenAIStub().start()
    root = tmp_path_factory.mktemp("gw-metrics")
    spec = spec_dir(root / "spec")
    store = routes(spec)
    base = stub.base_url

    def put(name: str, variants: list[dict[str, Any]], **kw: Any) -> None:
        kw.setdefault("client", _client(base, retries=0))
        store.put("default", name, route(name, "prompt", variants, pricing=PRICES, **kw))

    def small(v: str, n: int, model: str = "house-small") -> dict[str, Any]:
        return prompt_variant(v, n, template="Question: {{question}}", model=model)

    put(
        "chat",
        [small("v1", 1), small("v2", 2, "house-large")],
        stable="v1",
        candidate="v2",
        weight=50,
    )
    put("cached", [small("v1", 1)], stable="v1", cache={"ttl_s": 60})
    put(
        "mirror", [small("v1", 1), small("v2", 2, MYSTERY)], stable="v1", candidate="v2", mirror=100
    )
    put("flaky", [small("v1", 1)], stable="v1")
    put("down", [small("v1", 1)], stable="v1", client=_client("http://127.0.0.1:9/v1", retries=0))
    art = root / "artifacts" / "a" / "model.joblib"
    train(art, seed=0)
    store.put(
        "default", "fraud", route("fraud", "model", [model_variant("v1", 1, art)], stable="v1")
    )
    server = Served(spec).wait_ready()
    got = Scrape("", {}, log_url(spec))
    try:

        def ask(endpoint: str, question: str, rid: str) -> Any:
            client = openai.OpenAI(
                base_url=f"{server.url}/endpoints/{endpoint}/v1", api_key="unused", max_retries=0
            )
            return client.chat.completions.with_raw_response.create(
                model="ignored",
                messages=[],
                extra_body={"variables": {"question": question}},
                extra_headers={"x-request-id": rid},
            )

        def saw(endpoint: str, raw: Any, cached: bool = False) -> None:
            answer, variant = raw.parse(), raw.headers["x-mlx-variant"]
            got.seen_variants[f"{endpoint}/{variant}"] += 1
            if not cached:  # a hit's usage is the stored answer's: the upstream did no work
                key = (endpoint, variant, answer.model)
                got.seen_usage[(*key, "input")] += answer.usage.prompt_tokens
                got.seen_usage[(*key, "output")] += answer.usage.completion_tokens

        for i, rid in enumerate(_ids("chat", 50, 3)):
            saw("chat", ask("chat", "how do I reset my password " * (i + 1), rid))
        saw("cached", ask("cached", "can I pay by card", "cache-1"))
        saw("cached", ask("cached", "can I pay by card", "cache-2"), cached=True)
        for i in range(2):
            saw("mirror", ask("mirror", f"where is parcel {i}", f"mirror-{i}"))
        # the shadow copies call the stub too: they must be done before failures are injected
        wait_records(got.log, "mirror", 4)
        failures = [("flaky", 503), ("flaky", 401), ("flaky", 429), ("down", None)]
        for i, (endpoint, status) in enumerate(failures):
            if status is not None:
                stub.fail(status)
            with pytest.raises(openai.APIStatusError):
                ask(endpoint, "hello", f"fail-{i}")
        rows, _ = training_frame(seed=7)
        split = {"columns": list(rows.columns), "data": rows.head(3).values.tolist()}
        for _ in range(3):
            reply = server.post("/endpoints/fraud/invocations", {"dataframe_split": split})
            assert reply.status == 200, reply.body
            got.invocations += 1
        # every record written (two shadow copies included) before the scrape
        expected = {"chat": 6, "cached": 2, "mirror": 4, "flaky": 3, "down": 1, "fraud": 3}
        for endpoint, n in expected.items():
            wait_records(got.log, endpoint, n)

        def settled() -> str | None:
            text = server.get("/metrics").body.decode()
            families = {f.name: f for f in parser.text_string_to_metric_families(text)}
            pending = families["mlx_gateway_log_records_pending"].samples[0].value
            return text if pending == 0 else None

        got.text = server.wait_for(settled, what="the log's pending records written")
        got.families = {f.name: f for f in parser.text_string_to_metric_families(got.text)}
        yield got
    finally:
        server.stop()
        stub.stop()


# -- the scrape, as Prometheus's tools read it ------------------------------------------------
@live
def test_promtool_check_metrics_is_clean(scrape: Scrape) -> None:
    if not PROMTOOL.exists():
        if os.environ.get("MLX_TEST_REQUIRE_EXTRAS") == "1":
            pytest.fail("promtool is missing (Debian's prometheus package; .ci/run installs it)")
        pytest.skip("promtool is not installed (Debian's prometheus package)")
    checked = subprocess.run(
        [str(PROMTOOL), "check", "metrics"],
        input=scrape.text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0 and checked.stdout.strip() == "", checked.stdout + checked.stderr


@live
def test_series_have_the_types_rate_and_histogram_quantile_need(scrape: Scrape) -> None:
    types = {name: f.type for name, f in scrape.families.items()}
    expected = {
        "mlx_gateway_requests": "counter",
        "mlx_gateway_request_duration_seconds": "histogram",
        "mlx_gateway_time_to_first_token_seconds": "histogram",
        "mlx_gateway_tokens": "counter",
        "mlx_gateway_cost_usd": "counter",
        "mlx_gateway_unpriced": "counter",
        "mlx_gateway_upstream_errors": "counter",
        "mlx_gateway_log_records": "counter",
        "mlx_gateway_log_records_pending": "gauge",
        "mlx_gateway_log_writable": "gauge",
        "mlx_gateway_variant_healthy": "gauge",
        "mlx_gateway_predict_batches": "counter",
    }
    assert {name: types.get(name) for name in expected} == expected
    # the old gauge of running totals is gone: its totals are a counter, pending a gauge
    assert "mlx_gateway_log_records{" not in scrape.text
    assert {s.labels["state"] for s in scrape.samples("mlx_gateway_log_records_total")} == {
        "accepted",
        "written",
        "dropped",
        "rejected",
        "lost",
    }


@live
def test_no_created_series(scrape: Scrape) -> None:
    names = {s.name for f in scrape.families.values() for s in f.samples}
    assert not [n for n in names if n.endswith("_created")]
    assert "_created" not in scrape.text


# -- the counters equal the traffic -----------------------------------------------------------
@live
def test_requests_per_variant_are_what_the_client_was_told(scrape: Scrape) -> None:
    for key, n in scrape.seen_variants.items():
        endpoint, variant = key.split("/")
        got = scrape.value(
            "mlx_gateway_requests_total", endpoint=endpoint, variant=variant, status="200"
        )
        assert got == n, key
    assert scrape.seen_variants["chat/stable"] == scrape.seen_variants["chat/candidate"] == 3
    # the two mirrored requests were answered again by the candidate, counted as "shadow"
    assert scrape.value("mlx_gateway_requests_total", endpoint="mirror", variant="shadow") == 2
    assert scrape.value("mlx_gateway_requests_total", endpoint="fraud", status="200") == 3
    assert scrape.value("mlx_gateway_request_duration_seconds_count", endpoint="fraud") == 3


@live
def test_tokens_are_the_upstreams_usage_summed(scrape: Scrape) -> None:
    counted = {
        (s.labels["endpoint"], s.labels["variant"], s.labels["model"], s.labels["direction"]): (
            s.value
        )
        for s in scrape.samples("mlx_gateway_tokens_total")
    }
    # the caller's answers: what the openai client read in each answer's usage
    for key, n in scrape.seen_usage.items():
        assert counted.get(key) == n, key
    assert counted[("chat", "candidate", "house-large", "input")] > 0
    # the cache hit added nothing: the cached endpoint counts one answer's usage
    assert scrape.value("mlx_gateway_tokens_total", endpoint="cached") == sum(
        n for k, n in scrape.seen_usage.items() if k[0] == "cached"
    )
    # the shadow copies: no client saw them; the log's records hold the upstream's usage
    shadows = [r for r in records(scrape.log, "mirror") if r.variant == "shadow"]
    assert len(shadows) == 2
    for direction, attr in (("input", "input_tokens"), ("output", "output_tokens")):
        key = ("mirror", "shadow", MYSTERY, direction)
        assert counted[key] == sum(getattr(r, attr) for r in shadows) > 0
    # nothing else: failures and model endpoints add no tokens
    assert {k[0] for k in counted} == {"chat", "cached", "mirror"}


@live
def test_cost_is_the_logged_cost_summed(scrape: Scrape) -> None:
    by_variant: defaultdict[tuple[str, str], float] = defaultdict(float)
    unpriced: Counter[str] = Counter()
    for endpoint in PROMPT_ENDPOINTS:
        for r in records(scrape.log, endpoint):
            if r.status != 200:
                continue
            if r.cost_usd is None:
                unpriced[endpoint] += 1
            else:
                by_variant[(endpoint, r.variant)] += r.cost_usd
    counted: defaultdict[tuple[str, str], float] = defaultdict(float)
    for s in scrape.samples("mlx_gateway_cost_usd_total"):
        counted[(s.labels["endpoint"], s.labels["variant"])] += s.value
    assert set(counted) == set(by_variant)
    for key, cost in by_variant.items():
        assert counted[key] == pytest.approx(cost), key
    assert (
        counted[("chat", "candidate")] > counted[("chat", "stable")] > 0
    )  # house-large costs more
    # the mystery model's shadow answers have no price: counted, not added as 0
    assert unpriced == {"mirror": 2}
    assert scrape.value("mlx_gateway_unpriced_total", endpoint="mirror", model=MYSTERY) == 2
    assert not scrape.samples("mlx_gateway_cost_usd_total", model=MYSTERY)


@live
def test_upstream_errors_carry_the_upstreams_own_status(scrape: Scrape) -> None:
    got = {
        (s.labels["endpoint"], s.labels["status"], s.labels["upstream_status"]): s.value
        for s in scrape.samples("mlx_gateway_upstream_errors_total")
    }
    assert got == {
        ("flaky", "502", "503"): 1.0,  # a 5xx: the caller gets 502
        ("flaky", "502", "401"): 1.0,  # the gateway's key refused: still 502 to the caller
        ("flaky", "429", "429"): 1.0,
        ("down", "502", "none"): 1.0,  # nothing listening: no HTTP status at all
    }


@live
def test_log_record_totals_are_the_log(scrape: Scrape) -> None:
    written = sum(len(records(scrape.log, e)) for e in (*PROMPT_ENDPOINTS, "fraud"))
    assert scrape.value("mlx_gateway_log_records_total", state="written") == written == 19
    assert scrape.value("mlx_gateway_log_records_total", state="accepted") == written
    for state in ("dropped", "rejected", "lost"):
        assert scrape.value("mlx_gateway_log_records_total", state=state) == 0
    assert scrape.value("mlx_gateway_log_records_pending") == 0


# -- gateway.metrics's decisions, in process ---------------------------------------------------
def _metrics() -> Any:
    from gateway.metrics import Metrics

    stats = SimpleNamespace(accepted=3, written=2, dropped=0, rejected=0, lost=1, pending=0)
    snapshot = SimpleNamespace(endpoints={}, broken={})
    return Metrics(lambda: stats, lambda: snapshot)


def _parsed(metrics: Any) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}


def test_model_labels_are_capped_per_endpoint() -> None:
    from gateway.metrics import MAX_MODELS

    m = _metrics()
    for i in range(MAX_MODELS + 5):
        m.usage("a", "stable", f"model-{i}", 1, 1, 0.5)
    m.usage("a", "stable", "model-0", 1, 1, 0.5)  # a model already counted keeps its label
    m.usage("b", "stable", f"model-{MAX_MODELS + 1}", 1, 1, 0.5)  # another endpoint: its own cap
    m.usage("a", "stable", None, 1, 1, None)
    samples = _parsed(m)["mlx_gateway_tokens"].samples
    models = {(s.labels["endpoint"], s.labels["model"]) for s in samples}
    assert len({model for endpoint, model in models if endpoint == "a"}) == MAX_MODELS + 2
    assert ("a", "other") in models and ("a", "unknown") in models
    assert ("b", f"model-{MAX_MODELS + 1}") in models
    other = [
        s for s in samples if s.labels["model"] == "other" and s.labels["direction"] == "input"
    ]
    assert [s.value for s in other] == [5.0]
    zero = [
        s for s in samples if s.labels["model"] == "model-0" and s.labels["direction"] == "input"
    ]
    assert [s.value for s in zero] == [2.0]


@pytest.mark.parametrize(
    ("tokens", "cost", "counted_cost", "unpriced"),
    [
        ((10, 5), 0.25, 0.25, 0.0),  # priced
        ((10, 5), None, None, 1.0),  # unknown model: unpriced, no cost sample at all
        ((None, None), None, None, 1.0),  # no usage in the answer
        ((0, 0), 0.0, 0.0, 0.0),  # a cache hit: free, priced at 0
    ],
)
def test_cost_or_unpriced(
    tokens: tuple[int | None, int | None],
    cost: float | None,
    counted_cost: float | None,
    unpriced: float,
) -> None:
    m = _metrics()
    m.usage("e", "stable", "gpt-x", *tokens, cost)
    families = _parsed(m)
    costs = [s.value for s in families["mlx_gateway_cost_usd"].samples]
    assert costs == ([] if counted_cost is None else [counted_cost])
    assert sum(s.value for s in families["mlx_gateway_unpriced"].samples) == unpriced
    tokens_counted = {
        s.labels["direction"]: s.value for s in families["mlx_gateway_tokens"].samples
    }
    assert tokens_counted == {
        d: float(n) for d, n in zip(("input", "output"), tokens, strict=True) if n is not None
    }


@pytest.mark.parametrize(
    ("status", "label"),
    [(None, "none"), (429, "429"), (503, "503"), (401, "401"), (200, "200"), (999, "other")],
)
def test_upstream_status_label(status: int | None, label: str) -> None:
    from gateway.metrics import upstream_label

    assert upstream_label(status) == label


def test_time_to_first_token_is_a_histogram_in_seconds() -> None:
    m = _metrics()
    m.first_token("e", "stable", 0.02)
    m.first_token("e", "stable", 3.0)
    family = _parsed(m)["mlx_gateway_time_to_first_token_seconds"]
    assert family.type == "histogram"
    by = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert by[("mlx_gateway_time_to_first_token_seconds_count", None)] == 2
    assert by[("mlx_gateway_time_to_first_token_seconds_sum", None)] == pytest.approx(3.02)
    assert by[("mlx_gateway_time_to_first_token_seconds_bucket", "0.025")] == 1
    assert by[("mlx_gateway_time_to_first_token_seconds_bucket", "5.0")] == 2


def test_log_totals_are_a_counter_and_pending_a_gauge() -> None:
    families = _parsed(_metrics())
    records_ = families["mlx_gateway_log_records"]
    assert records_.type == "counter"
    assert {s.labels["state"]: s.value for s in records_.samples} == {
        "accepted": 3.0,
        "written": 2.0,
        "dropped": 0.0,
        "rejected": 0.0,
        "lost": 1.0,
    }
    assert families["mlx_gateway_log_records_pending"].type == "gauge"
