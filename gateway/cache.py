"""The exact-match response cache of prompt endpoints (``cache: {ttl: 10m}``).

The key is a hash of everything that decides the answer: the endpoint, the variant (name and
fingerprint) and the exact upstream request (model, rendered messages, parameters), so a new
prompt version or a routing rule that picks another model never reuses an old answer. Only
successful answers are kept, for the route's ``cache.ttl_s``. The cache is per process
(replicas do not share it) and bounded in entries and in bytes (an upstream answer may be up
to its endpoint's ``client.max_response_bytes``, 8 MiB by default: ten thousand of those would
not fit any gateway): the least recently used entries go first, and an answer larger than the
whole byte budget is not kept.

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
#: The most bytes of answers the cache holds (the answers' bodies; entries cost a little more).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


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
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._items: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0  # the bodies' bytes held

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, k: str) -> Entry | None:
        entry = self._items.get(k)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            self._drop(k)
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
        self._drop(k)
        if len(body) > self.max_bytes:
            return
        self._items[k] = Entry(
            self.clock() + ttl_s, body, model, input_tokens, output_tokens, outputs
        )
        self._bytes += len(body)
        while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def _drop(self, k: str) -> None:
        entry = self._items.pop(k, None)
        if entry is not None:
            self._bytes -= len(entry.body)
