"""Which variant answers a request, whether it is mirrored, whether its payload is kept.

Pure functions of their arguments. Every decision is a deterministic hash, never process-local
randomness, so that every replica decides the same for the same request: a sticky key (the
``x-mlx-key`` header or the OpenAI body's ``user``) lands on the same variant on every replica,
and the same request id is mirrored (or sampled) by all or none of them.

A decision hashes its input to one of 10,000 buckets (0.01 % steps). The candidate takes the
buckets below ``weight x 100``: raising a canary's weight from 10 to 50 keeps every key that was
on the candidate there (the buckets only grow), and lowering it moves keys back to stable.
"""

from __future__ import annotations

import hashlib

from contract import Role

BUCKETS = 10_000


def bucket(salt: str, value: str) -> int:
    """``value`` hashed with ``salt`` into ``[0, BUCKETS)``; the same on every machine."""
    digest = hashlib.blake2b(
        value.encode("utf-8", "surrogatepass"), digest_size=8, person=salt.encode()[:16]
    ).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def _below(percent: float, b: int) -> bool:
    return b < percent * (BUCKETS / 100)


def choose(endpoint: str, weight: float, key: str | None, request_id: str) -> Role:
    """``CANDIDATE`` for ``weight`` percent of keys (of request ids when there is no key)."""
    if weight <= 0:
        return Role.STABLE
    if weight >= 100:
        return Role.CANDIDATE
    sticky = key if key is not None else "\x00rid:" + request_id
    return (
        Role.CANDIDATE
        if _below(weight, bucket("mlx-split", endpoint + "\x00" + sticky))
        else Role.STABLE
    )


def mirrored(endpoint: str, mirror: float, request_id: str) -> bool:
    """Whether a request the stable variant answered is copied to the candidate (shadow)."""
    if mirror <= 0:
        return False
    if mirror >= 100:
        return True
    return _below(mirror, bucket("mlx-mirror", endpoint + "\x00" + request_id))


def sampled(share: float, request_id: str) -> bool:
    """Whether a request's inputs/outputs are kept (``log.payloads``, a share in 0..1)."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    return _below(share * 100, bucket("mlx-payloads", request_id))


def key_hash(key: str | None) -> str | None:
    """What the log keeps of a sticky key: a hash of it, never the key (32 hex digits)."""
    if key is None:
        return None
    return hashlib.blake2b(
        key.encode("utf-8", "surrogatepass"), digest_size=16, person=b"mlx-key"
    ).hexdigest()
