"""When each change of an apply runs, and where.

Deletes go first, dependents before what they depend on (``delete_order``). Then every
other change starts as soon as every planned change it waits for is done and recorded
(``waits_for``, ``ReadyQueue``); one whose wait did not apply is skipped, and says why
(``Blocked``). A change runs in the shared pool or in its provider's narrower lane
(``Lanes``).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import networkx as nx

from contract import Provider
from engine.apply.failures import skip_message
from engine.plan.model import Action, ResourceChange


def delete_order(deletes: Mapping[str, ResourceChange]) -> list[str]:
    """The order of the deletes: a resource once nothing still pending depends on it (by
    address within a round; a cycle is broken by taking the rest in address order)."""
    pending = dict(deletes)
    order: list[str] = []
    while pending:
        ready = [
            a for a in pending if not any(a in pending[o].depends_on for o in pending if o != a)
        ] or list(pending)
        for address in sorted(ready):
            pending.pop(address)
            order.append(address)
    return order


def waits_for(graph: nx.DiGraph, address: str, changes: Collection[str]) -> set[str]:
    """Planned changes ``address`` must wait for: its ancestors that change.

    Transitive, because a no-op in between (a model whose dataset failed to update) must
    not let a gate downstream run as if nothing happened.
    """
    return {a for a in nx.ancestors(graph, address) if a in changes}


def blocked_by(
    waits: Mapping[str, set[str]], view: nx.DiGraph | None, changes: Collection[str]
) -> dict[str, set[str]]:
    """What a failure of which skips each change: its waits, less those it only runs after
    (``view``: the graph without those edges, ``SpecGraph.dependency_view``, when the spec
    has any — a gate a release's ``requires`` leaves out)."""
    if view is None:
        return dict(waits)
    return {a: waits_for(view, a, changes) for a in waits}


class ReadyQueue:
    """Changes whose waits are all done, in plan order: a heap, not a rescan."""

    def __init__(self, order: Sequence[str], waits: Mapping[str, Collection[str]]):
        self._position = {a: i for i, a in enumerate(order)}
        self._pending = {a: len(waits[a]) for a in order}
        self._dependents: dict[str, list[str]] = {a: [] for a in order}
        for address in order:
            for before in waits[address]:
                self._dependents[before].append(address)
        self._ready = [(self._position[a], a) for a in order if not self._pending[a]]
        heapq.heapify(self._ready)

    def __bool__(self) -> bool:
        return bool(self._ready)

    def pop(self) -> str:
        """The first ready change in plan order."""
        return heapq.heappop(self._ready)[1]

    def finished(self, address: str) -> None:
        """``address`` is over (done, failed or skipped): what waited only for it is ready."""
        for d in self._dependents[address]:
            self._pending[d] -= 1
            if not self._pending[d]:
                heapq.heappush(self._ready, (self._position[d], d))


class Blocked:
    """Changes that did not apply (failed, in progress, skipped), and what each skipped
    change says about them. Safe across the apply's threads."""

    def __init__(self) -> None:
        self._blocked: set[str] = set()
        self._in_progress: set[str] = set()
        #: a no-op change skipped for its dependencies: what it was skipped for
        self._passed_through: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def block(self, address: str, *, in_progress: bool = False) -> None:
        """``address`` did not apply (``in_progress``: it continues later), so what waits
        for it is skipped."""
        with self._lock:
            self._blocked.add(address)
            if in_progress:
                self._in_progress.add(address)

    def among(self, addresses: Collection[str]) -> list[str]:
        """Those of ``addresses`` that did not apply."""
        with self._lock:
            return [a for a in addresses if a in self._blocked]

    def skip(self, change: ResourceChange, because: Collection[str]) -> str | None:
        """Skip ``change`` since ``because`` did not apply: block it in turn, and say why
        (``None`` for a no-op: it only passes the reason on to what waits for it)."""
        with self._lock:
            self._blocked.add(change.address)
            # a dependency that had nothing to do was only passed through: name what it
            # waited on instead (the failed gate, not the unchanged endpoint in between)
            named = sorted({c for a in because for c in self._passed_through.get(a, [a])})
            if change.action is Action.NOOP:
                self._passed_through[change.address] = named
                return None
            return skip_message(named, self._in_progress)


class Lanes:
    """Where a change runs: the shared pool, or a narrower lane of its provider's.

    A provider says how many of its calls gain from running at once (``max_parallel``):
    the local registry's calls are Python and small local writes, and under the GIL more
    threads only contend (an apply of 10,000 local resources spent more time in futex
    calls than in its work). The rest share ``--parallelism`` threads.
    """

    def __init__(self, pool: ThreadPoolExecutor, parallelism: int):
        self.pool, self.parallelism = pool, parallelism
        self._lanes: dict[str, ThreadPoolExecutor] = {}

    def lane(self, key: str, provider: Provider | None) -> ThreadPoolExecutor:
        limit = getattr(provider, "max_parallel", None)
        if limit is None or limit >= self.parallelism:
            return self.pool
        if key not in self._lanes:
            self._lanes[key] = ThreadPoolExecutor(
                max_workers=max(1, limit), thread_name_prefix=f"mlx-apply-{key}"
            )
        return self._lanes[key]

    def cancel(self) -> None:
        """Drop every change queued and not started, in the pool and in every lane."""
        for executor in (self.pool, *self._lanes.values()):
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for lane in self._lanes.values():
            lane.shutdown(wait=True)
