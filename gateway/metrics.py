"""``/metrics``: Prometheus text, from a registry of the gateway's own (not the global one).

Series (all prefixed ``mlx_gateway_``):

* ``requests_total{endpoint, variant, status}`` and ``request_duration_seconds{endpoint,
  variant}`` (histogram): every request an endpoint answered; shadow calls under ``shadow``
* ``upstream_errors_total{endpoint, variant, status}``: LLM upstream calls that failed for good
* ``upstream_retries_total{endpoint}``: attempts beyond the first
* ``cache_hits_total{endpoint}`` / ``cache_misses_total{endpoint}``
* ``shadow_total{endpoint, outcome}``: ``sent``, ``dropped`` (too many in flight), ``failed``
* ``rejected_total{reason}``: ``unauthorized``, ``unknown_endpoint`` (no endpoint label: a
  caller must not be able to create series)
* ``log_records{state}``: the inference-log writer's counters (accepted, written, dropped,
  rejected, lost, pending), read at scrape time
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

Children are cached per label tuple so the request path does one dict lookup per series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.control import State

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.writer_stats()
        records = GaugeMetricFamily(
            "mlx_gateway_log_records", "Inference-log writer counters", labels=["state"]
        )
        for name in ("accepted", "written", "dropped", "rejected", "lost", "pending"):
            records.add_metric([name], float(getattr(stats, name)))
        yield records
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
        self.upstream_errors = Counter(
            "mlx_gateway_upstream_errors",
            "LLM upstream calls that failed for good",
            ["endpoint", "variant", "status"],
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

    def upstream_failed(self, endpoint: str, variant: str, status: int) -> None:
        self._child(self.upstream_errors, endpoint, variant, str(status)).inc()

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
