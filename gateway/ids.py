"""Which request ids this gateway process answered under: reuse on the request path, feedback.

SPEC.md: a caller's ``x-request-id`` that was already used is answered under a fresh id (the
caller's is kept as the record's ``client_request_id``), and feedback for a request id never
answered is a 404. Both ask "was this id answered?", and the request path must not wait for a
database to know. ``RecentIds`` remembers the newest ``capacity`` ids this process claimed, per
endpoint, in O(1) (a set for membership, a deque for age; about 130 bytes an id). Feedback
whose id it does not hold is looked up in the log (``LogStore.answered``, through the index on
``request_id``): that covers older ids and the ids other replicas answered.

What it does not cover, by design: a caller reusing an id on *another* replica, or after this
replica's last ``capacity`` requests, is answered under that id again (the request path asks no
database). docs/gateway.md says so.
"""

from __future__ import annotations

from collections import deque

#: ids remembered per gateway process (all endpoints together): ~13 MB
DEFAULT_CAPACITY = 100_000


class RecentIds:
    """The newest ``capacity`` (endpoint, request id) pairs this process answered under."""

    __slots__ = ("_order", "_seen", "capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._order: deque[str] = deque()
        self._seen: set[str] = set()

    @staticmethod
    def _key(endpoint: str, request_id: str) -> str:
        return f"{endpoint}/{request_id}"  # an endpoint name has no "/"

    def claim(self, endpoint: str, request_id: str) -> bool:
        """Remember ``request_id`` for ``endpoint``; False if it was already remembered."""
        key = self._key(endpoint, request_id)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())
        return True

    def holds(self, endpoint: str, request_id: str) -> bool:
        return self._key(endpoint, request_id) in self._seen

    def __len__(self) -> int:
        return len(self._order)
