"""Fault injection for backends without a network in between (a database, a directory).

``inject(obj, attr, after)`` replaces ``obj.attr`` — a client, a registry
object, a module's function — for the duration of a ``with`` block by a proxy whose methods work
``after`` times, then raise (``ConnectionResetError`` by default: what a
provider sees when its backend goes away half-way through a call)::

    with inject(provider, "_client", after=3):
        provider.update(prior, desired, change)   # the fourth client call fails

Only calls made through the proxy count; what the real object does inside one
call is not interrupted. For a backend behind HTTP, ``FlakyProxy`` is the
real thing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any


def _default_error() -> BaseException:
    return ConnectionResetError("injected fault: the backend went away")


class FaultBudget:
    """How many calls still succeed; shared by every proxy made from it."""

    def __init__(self, after: int, error: Callable[[], BaseException] = _default_error):
        self.left = after
        self.error = error
        self.calls = 0
        self.failed = 0
        self._lock = threading.Lock()

    def spend(self) -> None:
        with self._lock:
            self.calls += 1
            if self.left <= 0:
                self.failed += 1
                raise self.error()
            self.left -= 1


class Faulty:
    """A stand-in for ``target`` whose method calls spend ``budget`` first."""

    def __init__(self, target: Any, budget: FaultBudget):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_budget", budget)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        budget = self._budget

        def call(*args: Any, **kwargs: Any) -> Any:
            budget.spend()
            return value(*args, **kwargs)

        return call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A function stand-in (``inject(module, "save", after)``)."""
        self._budget.spend()
        return self._target(*args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)


@contextlib.contextmanager
def inject(
    obj: Any,
    attr: str,
    after: int,
    error: Callable[[], BaseException] = _default_error,
) -> Iterator[FaultBudget]:
    """``obj.attr`` fails from its ``after``-th call on, until the block exits."""
    original = getattr(obj, attr)
    budget = FaultBudget(after, error)
    setattr(obj, attr, Faulty(original, budget))
    try:
        yield budget
    finally:
        setattr(obj, attr, original)
