"""What is served now: an immutable ``Snapshot`` of every endpoint, swapped atomically.

The poller thread reads the route table's generations every ``poll_s`` seconds (one small
query) and rebuilds only the endpoints whose generation moved. A new variant is loaded (its
model read by flavor, its prompt's rules compiled) *before* the new snapshot takes traffic;
requests meanwhile keep reading the old snapshot, which never changes. The request path reads
``control.snapshot`` — one attribute read — and takes no lock.

Faults, and what keeps serving:

* a variant that fails to load is reported unhealthy (``/healthz``, ``/metrics``) with its
  error; as stable, the last stable variant that loaded keeps serving; as candidate, it takes no
  traffic and no mirror (stable answers everything);
* a route document that cannot be served (a newer format, a missing field) keeps the previous
  view of that endpoint serving, reported unhealthy; with no previous view, its requests get 503;
* the state database being unreachable keeps the whole snapshot serving; polling goes on;
* a model whose artifact bytes are not the ones recorded (``digest``) fails to load before
  any of them is unpickled (``gateway.models.load``): it is never served. Its health error
  names the version and the kind of failure; the path is only on stderr.

A variant is loaded once per version (cached by endpoint, name, fingerprint, artifact, digest
and input schema), so a route change that only moves weights reloads nothing. Failed loads
are retried when the endpoint's route moves again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from contract import Role
from dataplane.route import Kind, RouteDoc, RouteError, VariantDoc, parse
from gateway.keys import UpstreamKey
from gateway.models import LoadError, Servable, load, one_line
from gateway.prompts import PromptVariant

log = logging.getLogger("mlx.gateway")


class State(StrEnum):
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Loaded:
    """A variant ready to answer."""

    name: str
    version: str
    fingerprint: str | None
    model: Servable | None = None
    prompt: PromptVariant | None = None
    flavor: str | None = None
    artifact: str | None = None  # a model's file or directory, absolute
    digest: str | None = None  # what a model's artifact bytes hash to (checked at every load)
    input_schema: dict[str, Any] | None = None  # a model's recorded input schema


@dataclass(frozen=True, slots=True)
class VariantHealth:
    name: str
    version: str
    role: Role | None  # what the route asks of it: stable, candidate or None (deployed only)
    state: State
    error: str | None = None
    serving: Role | None = None  # the role it actually answers as now


@dataclass(frozen=True)
class EndpointView:
    name: str
    route: RouteDoc
    generation: int
    stable: Loaded | None
    candidate: Loaded | None
    health: tuple[VariantHealth, ...] = ()
    problems: tuple[str, ...] = ()  # route-level: a refused newer generation, a key not resolved
    api_key: str | None = field(default=None, repr=False)
    #: why every request is refused (503) though the endpoint loaded: its upstream key is
    #: declared but not resolved here (``gateway.keys``); it is never called without it
    refusal: str | None = None

    @property
    def weight(self) -> float:
        return float(self.route.traffic.weight) if self.candidate is not None else 0.0

    @property
    def mirror(self) -> float:
        return float(self.route.traffic.mirror) if self.candidate is not None else 0.0

    @property
    def healthy(self) -> bool:
        return (
            self.stable is not None
            and not any(h.state is State.FAILED for h in self.health)
            and not self.problems
        )


@dataclass(frozen=True)
class Broken:
    """An endpoint whose route could never be served (no earlier view to keep)."""

    name: str
    generation: int
    error: str


@dataclass(frozen=True)
class Snapshot:
    endpoints: dict[str, EndpointView] = field(default_factory=dict)
    broken: dict[str, Broken] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    loaded_at: float = 0.0

    def names(self) -> list[str]:
        return sorted({*self.endpoints, *self.broken})


class RouteSource:
    """What the poller reads: ``dataplane.table.RouteStore`` for one workspace."""

    def __init__(self, store: Any, workspace: str):
        self.store, self.workspace = store, workspace

    def generations(self) -> dict[str, int]:
        return dict(self.store.generations(self.workspace))

    def get(self, endpoint: str) -> tuple[int, Any] | None:
        route = self.store.get(self.workspace, endpoint)
        return None if route is None else (route.generation, route.doc)


#: the upstream key of a prompt route (``gateway.keys.KeyResolver.resolve``)
KeyLookup = Callable[[RouteDoc], UpstreamKey]


class Control:
    def __init__(
        self,
        source: RouteSource,
        root: Path,
        *,
        keys: KeyLookup | None = None,
        begin_round: Callable[[], None] | None = None,
        poll_s: float = 1.0,
        on_swap: Callable[[Snapshot], None] | None = None,
    ):
        self.source = source
        self.root = root
        self.keys = keys or (lambda _route: UpstreamKey())
        self.begin_round = begin_round or (lambda: None)
        self.poll_s = poll_s
        self.on_swap = on_swap
        self.snapshot = Snapshot()
        #: endpoints applied but not in the snapshot yet: their first version is loading (a
        #: replica is not ready until they serve, ``GatewayCore._not_ready``)
        self.loading: frozenset[str] = frozenset()
        self._cache: dict[tuple[Any, ...], Loaded] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Load what the routes say now (before serving), then poll in the background."""
        self.poll_once()
        self.start_polling()

    def start_polling(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlx-gateway-routes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll_once()

    # -- one poll -------------------------------------------------------------------------
    def poll_once(self) -> bool:
        """Reload what moved; True if the snapshot was swapped. Never raises."""
        try:
            generations = self.source.generations()
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "mlx serve: cannot read routes (%s); serving the last ones", one_line(exc)
                )
            self._failing = True
            return False
        if self._failing:
            log.warning("mlx serve: reading routes again")
            self._failing = False
        current = self.snapshot
        moved = [e for e, g in generations.items() if current.generations.get(e) != g]
        gone = [e for e in current.generations if e not in generations]
        if not moved and not gone:
            return False
        self.loading = frozenset(n for n in moved if n not in current.endpoints)
        try:
            return self._round(current, moved, gone)
        finally:
            self.loading = frozenset()

    def _round(self, current: Snapshot, moved: list[str], gone: list[str]) -> bool:
        """Load what moved, drop what is gone, and swap the snapshot."""
        self.begin_round()
        endpoints = dict(current.endpoints)
        broken = dict(current.broken)
        seen = dict(current.generations)
        for name in gone:
            endpoints.pop(name, None)
            broken.pop(name, None)
            seen.pop(name, None)
        for name in moved:
            try:
                got = self.source.get(name)
            except Exception as exc:
                log.warning("mlx serve: cannot read the route of %s (%s)", name, one_line(exc))
                continue
            if got is None:  # deleted between the two queries
                endpoints.pop(name, None)
                broken.pop(name, None)
                seen.pop(name, None)
                continue
            generation, doc = got
            seen[name] = generation
            result = self._build(name, generation, doc, current.endpoints.get(name))
            if isinstance(result, Broken):
                broken[name] = result
                endpoints.pop(name, None)
            else:
                endpoints[name] = result
                broken.pop(name, None)
        snapshot = Snapshot(endpoints, broken, seen, time.time())
        self.snapshot = snapshot  # the swap: one reference assignment
        self._evict(snapshot)
        if self.on_swap is not None:
            self.on_swap(snapshot)
        return True

    def _build(
        self, name: str, generation: int, doc: Any, previous: EndpointView | None
    ) -> EndpointView | Broken:
        try:
            route = parse(name, doc)
        except RouteError as exc:
            log.warning("mlx serve: %s", exc)
            if previous is not None:  # keep serving what was served, and say why
                return _with_problem(previous, f"generation {generation} refused: {exc}")
            return Broken(name, generation, str(exc))
        key = self.keys(route) if route.kind is Kind.PROMPT else UpstreamKey()
        stable_name = route.traffic.stable
        candidate_name = route.candidate_name()
        health: list[VariantHealth] = []
        stable, error = self._load(route, route.variants[stable_name])
        health.append(_health(route.variants[stable_name], Role.STABLE, error))
        if stable is None and previous is not None and previous.stable is not None:
            stable = previous.stable  # the last good stable keeps serving
        candidate = None
        if candidate_name is not None:
            candidate, error = self._load(route, route.variants[candidate_name])
            health.append(_health(route.variants[candidate_name], Role.CANDIDATE, error))
        serving = {stable.name: Role.STABLE} if stable else {}
        if candidate is not None:
            serving[candidate.name] = Role.CANDIDATE
        health = [
            VariantHealth(h.name, h.version, h.role, h.state, h.error, serving.get(h.name))
            for h in health
        ]
        if stable is not None and stable.name not in {h.name for h in health}:
            health.append(
                VariantHealth(stable.name, stable.version, None, State.READY, None, Role.STABLE)
            )
        problems = (key.problem,) if key.problem else ()
        for h in health:
            if h.error:
                log.warning("mlx serve: endpoint %s variant %s: %s", name, h.name, h.error)
        return EndpointView(
            name,
            route,
            generation,
            stable,
            candidate,
            tuple(health),
            problems,
            key.value,
            key.refusal,
        )

    def _load(self, route: RouteDoc, variant: VariantDoc) -> tuple[Loaded | None, str | None]:
        key = _cache_key(route, variant)
        hit = self._cache.get(key)
        if hit is not None:
            return hit, None
        try:
            if route.kind is Kind.MODEL:
                loaded = self._load_model(variant)
            else:
                prompt = PromptVariant.build(route.endpoint, variant, route.client)
                loaded = Loaded(
                    variant.name, variant.version_text, variant.fingerprint, prompt=prompt
                )
        except RouteError as exc:
            return None, str(exc)
        except LoadError as exc:
            # callers and /healthz read the version and the kind of failure; the path and
            # the exception's own words are the operator's (stderr)
            if exc.detail != str(exc):
                log.warning(
                    "mlx serve: endpoint %s version %s: %s",
                    route.endpoint,
                    variant.version_text,
                    exc.detail,
                )
            return None, f"version {variant.version_text}: {exc}"
        except Exception as exc:  # a model whose unpickling runs code can raise anything
            log.warning(
                "mlx serve: endpoint %s version %s: cannot load: %s",
                route.endpoint,
                variant.version_text,
                one_line(exc),
            )
            return None, f"version {variant.version_text}: cannot load it ({type(exc).__name__})"
        self._cache[key] = loaded
        return loaded, None

    def _load_model(self, variant: VariantDoc) -> Loaded:
        """A model variant, from bytes that match its recorded digest (``LoadError`` if not)."""
        assert variant.artifact is not None  # checked by the route's validation
        path = Path(variant.artifact.removeprefix("file://"))
        path = path if path.is_absolute() else self.root / path
        digest = variant.expected_digest
        servable = load(variant.flavor, str(path), self.root, digest, variant.input_schema)
        return Loaded(
            variant.name,
            variant.version_text,
            variant.fingerprint,
            model=servable,
            flavor=variant.flavor,
            artifact=str(path),
            digest=digest,
            input_schema=variant.input_schema,
        )

    def _evict(self, snapshot: Snapshot) -> None:
        live = set()
        for view in snapshot.endpoints.values():
            for loaded in (view.stable, view.candidate):
                if loaded is not None:
                    live.add(id(loaded))
        for key in [k for k, v in self._cache.items() if id(v) not in live]:
            del self._cache[key]


def _cache_key(route: RouteDoc, variant: VariantDoc) -> tuple[Any, ...]:
    if route.kind is Kind.MODEL:
        return (
            route.endpoint,
            variant.name,
            variant.fingerprint,
            variant.flavor,
            variant.artifact,
            variant.expected_digest,
            orjson.dumps(variant.input_schema, option=orjson.OPT_SORT_KEYS),
        )
    client = route.client.model_dump_json() if route.client else None
    return (
        route.endpoint,
        variant.name,
        variant.fingerprint,
        variant.prompt.model_dump_json() if variant.prompt else None,
        client,
    )


def _health(variant: VariantDoc, role: Role, error: str | None) -> VariantHealth:
    state = State.FAILED if error else State.READY
    return VariantHealth(variant.name, variant.version_text, role, state, error)


def _with_problem(view: EndpointView, problem: str) -> EndpointView:
    from dataclasses import replace

    return replace(
        view, problems=(*[p for p in view.problems if not p.startswith("generation ")], problem)
    )
