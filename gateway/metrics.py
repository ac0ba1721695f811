"""``/metrics``: Prometheus text, from a registry of the gateway's own (not the global one).

Series (all prefixed ``mlx_gateway_``; every ``…_total`` is a counter, ``rate()`` works):

* ``requests_total{endpoint, variant, status}`` and ``request_duration_seconds{endpoint,
  variant}`` (histogram): every request an endpoint answered; shadow calls under ``shadow``
* ``time_to_first_token_seconds{endpoint, variant}`` (histogram): for answers that record a
  time to first token (streamed chat answers)
* ``tokens_total{endpoint, variant, model, direction}``: the tokens of prompt answers as the
  upstream's ``usage`` reported them (``direction``: ``input``, ``output``); a cache hit adds
  none (the upstream did no work)
* ``cost_usd_total{endpoint, variant, model}``: the same answers' cost, as logged
  (``common.pricing``); ``unpriced_total{endpoint, model}``: answers no price was found for
  (no ``usage``, or a model neither the route's pricing nor the price table knows) — they add
  nothing to ``cost_usd_total`` rather than a silent 0
* ``model`` is the model that answered (the upstream's ``model``, else the one asked for),
  never a caller's text; at most ``MAX_MODELS`` distinct values per endpoint, later ones are
  counted as ``other`` (and ``unknown`` when there is none)
* ``upstream_errors_total{endpoint, variant, status, upstream_status}``: LLM upstream calls
  that failed for good; ``status`` is what the caller got, ``upstream_status`` what the
  upstream last answered (``"429"``, ``"503"``, ``"401"``, ``"200"`` for an unreadable 200) or
  ``none`` when it gave no HTTP status (unreachable, timed out, broke off)
* ``upstream_retries_total{endpoint}``: attempts beyond the first
* ``cache_hits_total{endpoint}`` / ``cache_misses_total{endpoint}``
* ``shadow_total{endpoint, outcome}``: ``sent``, ``dropped`` (too many in flight), ``failed``
* ``rejected_total{reason}``: ``unauthorized``, ``unknown_endpoint`` (no endpoint label: a
  caller must not be able to create series)
* ``log_records_total{state}``: the inference-log writer's running totals (``accepted``,
  ``written``, ``dropped``, ``rejected``, ``lost``), read at scrape time;
  ``log_records_pending``: records accepted and not yet written (a gauge)
* ``log_writable``: 1 while the log is being written, 0 while writes fail or after its file
  vanished (``/healthz`` and ``/readyz`` then say why)
* ``log_unconfirmed_total{endpoint}``: with ``--log-durability sync``, answers sent before
  their record was written (the log failed for longer than the endpoint's timeout)
* ``connections_closed_total{reason}``: connections the server closed on a slow or oversized
  caller before a request was read (``header_timeout``, ``header_too_large``)
* ``variant_healthy{endpoint, variant, version, role}``: 1 if it loaded, 0 if it failed
* ``route_generation{endpoint}``: the generation served
* ``predict_batches_total`` / ``predict_batched_requests_total``: model ``predict`` calls
  that answered more than one request, and the requests they answered (``gateway.batching``)

No ``…_created`` series: they double the series count and nothing here reads them
(``prometheus_client.disable_created_metrics``, process-wide: the gateway's process is its own).
Children are cached per label tuple so the request path does one dict lookup per series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.control import State

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Distinct ``model`` label values per endpoint; later models are counted as ``other``.
MAX_MODELS = 50
#: The writer's running totals (``log_records_total``); ``pending`` is a gauge of its own.
LOG_TOTALS = ("accepted", "written", "dropped", "rejected", "lost")
_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class _State(Collector):
    def __init__(
        self,
        writer_stats: Callable[[], Any],
        snapshot: Callable[[], Any],
        log_health: Callable[[], Any] | None,
    ):
        self.writer_stats, self.snapshot, self.log_health = writer_stats, snapshot, log_health

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.writer_stats()
        records = CounterMetricFamily(
            "mlx_gateway_log_records",
            "Inference-log records, by what became of them (running totals)",
            labels=["state"],
        )
        for name in LOG_TOTALS:
            records.add_metric([name], float(getattr(stats, name)))
        yield records
        yield GaugeMetricFamily(
            "mlx_gateway_log_records_pending",
            "Inference-log records accepted and not yet written",
            value=float(stats.pending),
        )
        if self.log_health is not None:
            yield GaugeMetricFamily(
                "mlx_gateway_log_writable",
                "1 while the inference log is being written, 0 while it cannot be",
                value=1.0 if self.log_health().ok else 0.0,
            )
        snap = self.snapshot()
        healthy = GaugeMetricFamily(
            "mlx_gateway_variant_healthy",
            "1 if the variant loaded and can serve, 0 if it failed",
            labels=["endpoint", "variant", "version", "role"],
        )
        generation = GaugeMetricFamily(
            "mlx_gateway_route_generation", "Route generation served", labels=["endpoint"]
        )
        for name, view in snap.endpoints.items():
            generation.add_metric([name], float(view.generation))
            for h in view.health:
                healthy.add_metric(
                    [name, h.name, h.version, h.role or ""], 1.0 if h.state is State.READY else 0.0
                )
        for name, broken in snap.broken.items():
            generation.add_metric([name], float(broken.generation))
        yield healthy
        yield generation


class _Batches(Collector):
    def __init__(self, counts: Callable[[], tuple[int, int]]):
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        batches, requests = self.counts()
        yield CounterMetricFamily(
            "mlx_gateway_predict_batches",
            "Model predict calls that answered more than one request",
            value=float(batches),
        )
        yield CounterMetricFamily(
            "mlx_gateway_predict_batched_requests",
            "Requests answered by a predict call shared with others",
            value=float(requests),
        )


class Metrics:
    def __init__(
        self,
        writer_stats: Callable[[], Any],
        snapshot: Callable[[], Any],
        log_health: Callable[[], Any] | None = None,
    ):
        disable_created_metrics()  # before any child exists: it is read when one is made
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mlx_gateway_requests",
            "Requests answered",
            ["endpoint", "variant", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mlx_gateway_request_duration_seconds",
            "Time to answer, from arrival to the answer being ready",
            ["endpoint", "variant"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "mlx_gateway_time_to_first_token_seconds",
            "Time from arrival to the answer's first token (streamed answers)",
            ["endpoint", "variant"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "mlx_gateway_tokens",
            "Tokens of prompt answers, as the upstream's usage reported them",
            ["endpoint", "variant", "model", "direction"],
            registry=r,
        )
        self.cost = Counter(
            "mlx_gateway_cost_usd",
            "Cost of prompt answers in US dollars, as logged",
            ["endpoint", "variant", "model"],
            registry=r,
        )
        self.unpriced = Counter(
            "mlx_gateway_unpriced",
            "Prompt answers no price was found for (no usage, or an unknown model)",
            ["endpoint", "model"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "mlx_gateway_upstream_errors",
            "LLM upstream calls that failed for good, by the caller's and the upstream's status",
            ["endpoint", "variant", "status", "upstream_status"],
            registry=r,
        )
        self.upstream_retries = Counter(
            "mlx_gateway_upstream_retries",
            "LLM upstream attempts beyond the first",
            ["endpoint"],
            registry=r,
        )
        self.cache_hits = Counter(
            "mlx_gateway_cache_hits", "Response-cache hits", ["endpoint"], registry=r
        )
        self.cache_misses = Counter(
            "mlx_gateway_cache_misses", "Response-cache misses", ["endpoint"], registry=r
        )
        self.shadow = Counter(
            "mlx_gateway_shadow", "Shadow calls", ["endpoint", "outcome"], registry=r
        )
        self.rejected = Counter(
            "mlx_gateway_rejected",
            "Requests refused before any endpoint answered",
            ["reason"],
            registry=r,
        )
        self.log_unconfirmed = Counter(
            "mlx_gateway_log_unconfirmed",
            "Answers sent before their record was written (--log-durability sync)",
            ["endpoint"],
            registry=r,
        )
        self.closed = Counter(
            "mlx_gateway_connections_closed",
            "Connections closed on a caller too slow or too large before a request was read",
            ["reason"],
            registry=r,
        )
        r.register(_State(writer_stats, snapshot, log_health))
        self._children: dict[tuple[Any, ...], Any] = {}
        self._models: dict[str, set[str]] = {}

    def watch_batches(self, counts: Callable[[], tuple[int, int]]) -> None:
        self.registry.register(_Batches(counts))

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def answered(self, endpoint: str, variant: str, status: int, seconds: float) -> None:
        self._child(self.requests, endpoint, variant, str(status)).inc()
        self._child(self.latency, endpoint, variant).observe(seconds)

    def first_token(self, endpoint: str, variant: str, seconds: float) -> None:
        self._child(self.ttft, endpoint, variant).observe(seconds)

    def usage(
        self,
        endpoint: str,
        variant: str,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost_usd: float | None,
    ) -> None:
        """One prompt answer's tokens and cost (``None``: not known, nothing added)."""
        label = self._model(endpoint, model)
        for direction, n in (("input", input_tokens), ("output", output_tokens)):
            if n is not None:
                self._child(self.tokens, endpoint, variant, label, direction).inc(n)
        if cost_usd is None:
            self._child(self.unpriced, endpoint, label).inc()
        else:
            self._child(self.cost, endpoint, variant, label).inc(cost_usd)

    def _model(self, endpoint: str, model: str | None) -> str:
        """The ``model`` label: at most ``MAX_MODELS`` values per endpoint, then ``other``."""
        if not model:
            return "unknown"
        seen = self._models.setdefault(endpoint, set())
        if model in seen:
            return model
        if len(seen) >= MAX_MODELS:
            return "other"
        seen.add(model)
        return model

    def upstream_failed(
        self, endpoint: str, variant: str, status: int, upstream_status: int | None = None
    ) -> None:
        self._child(
            self.upstream_errors, endpoint, variant, str(status), upstream_label(upstream_status)
        ).inc()

    def retried(self, endpoint: str, n: int) -> None:
        if n > 0:
            self._child(self.upstream_retries, endpoint).inc(n)

    def cache(self, endpoint: str, hit: bool) -> None:
        self._child(self.cache_hits if hit else self.cache_misses, endpoint).inc()

    def shadowed(self, endpoint: str, outcome: str) -> None:
        self._child(self.shadow, endpoint, outcome).inc()

    def refused(self, reason: str) -> None:
        self._child(self.rejected, reason).inc()

    def unconfirmed(self, endpoint: str) -> None:
        self._child(self.log_unconfirmed, endpoint).inc()

    def connection_closed(self, reason: str) -> None:
        self._child(self.closed, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def upstream_label(status: int | None) -> str:
    """``upstream_status``: the HTTP status as three digits, ``none`` when the upstream gave
    none (unreachable, timed out, broke off), ``other`` for a number HTTP does not define."""
    if status is None:
        return "none"
    return str(status) if 100 <= status <= 599 else "other"
