"""Writing what an operation that finishes later did, step by step: shared by the applier
(a rollout's first pass) and the rollout driver (every pass after it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from contract import ProviderError
from engine.plugins import ProviderSet, prior_of
from state.status import Status
from state.store import Record, StateWriter


def base_of(rec: Record) -> dict[str, Any]:
    """Everything ``StateWriter.put`` needs but the outputs and the status, from a record."""
    return {
        "address": rec.address,
        "section": rec.section,
        "name": rec.name,
        "provider": rec.provider,
        "spec_hash": rec.spec_hash,
        "meta_hash": rec.meta_hash,
        "content_hash": rec.content_hash,
        "attributes": dict(rec.attributes),
        "dependencies": list(rec.dependencies),
    }


def checkpoint(
    writer: StateWriter, base: Mapping[str, Any], outputs: Mapping[str, Any], note: str
) -> None:
    """Record a step about to be taken (status in progress), with what it is."""
    writer.put(
        **base,
        action="step",
        status=Status.IN_PROGRESS,
        outputs=dict(outputs),
        error=note,
    )


def record_touched(writer: StateWriter, providers: ProviderSet, addresses: Iterable[str]) -> None:
    """Read again the objects another resource's operation changed; record what they are.

    (A rollout moved an endpoint's traffic: the endpoint's record must say so, or the next
    refresh would call the rollout's own split drift.)
    """
    for address in addresses:
        rec = writer.records([address]).get(address)
        if rec is None:
            continue
        provider = providers.get(rec.provider, address)
        prior = prior_of(rec)
        try:
            observed = provider.read(prior)
        except (ProviderError, OSError):
            continue  # the next refresh reports it
        if observed is None:
            continue
        outputs = {**rec.outputs, **observed.outputs}
        if outputs == rec.outputs:
            continue
        writer.put(
            **base_of(rec),
            action="observed",
            status=rec.status,
            outputs=outputs,
            error="re-read after a change another resource made",
        )
