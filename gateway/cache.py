"""The exact-match response cache of prompt endpoints (``cache: {ttl: 10m}``).

The key is a hash of everything that decides the answer: the endpoint, the variant (name and
fingerprint) and the exact upstream request (model, rendered messages, parameters), so a new
prompt version or a routing rule that picks another model never reuses an old answer. Only
successful answers are kept, for the route's ``cache.ttl_s``. The cache is per process
(replicas do not share it) and bounded: the least recently used entries go first.

Used from the event loop only, so it needs no lock.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Entry:
    expires: float
    body: bytes  # the upstream's answer as sent to the caller
    model: str
    input_tokens: int | None
    output_tokens: int | None
    outputs: Any  # what the log keeps as outputs when the payload is sampled


def key(endpoint: str, variant: str, fingerprint: str | None, upstream_body: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(f"{endpoint}\x00{variant}\x00{fingerprint}\x00".encode())
    h.update(orjson.dumps(upstream_body, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


class ResponseCache:
    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ):
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, k: str) -> Entry | None:
        entry = self._items.get(k)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            del self._items[k]
            return None
        self._items.move_to_end(k)
        return entry

    def put(
        self,
        k: str,
        ttl_s: float,
        body: bytes,
        model: str,
        input_tokens: int | None,
        output_tokens: int | None,
        outputs: Any,
    ) -> None:
        self._items[k] = Entry(
            self.clock() + ttl_s, body, model, input_tokens, output_tokens, outputs
        )
        self._items.move_to_end(k)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
