"""What the composition root reads live for a read model: an endpoint's traffic split, asked
of its provider (``readmodels`` read state only; they get this as a function)."""

from __future__ import annotations

from typing import Any

from common.diagnostics import MlxError
from contract import ProviderError, Serving, capability
from engine.plugins import ProviderSet, prior_of
from engine.session import Session
from readmodels.rollout import LiveTraffic
from state.store import Record, StateReader


def live_traffic(session: Session, reader: StateReader) -> LiveTraffic:
    """``readmodels.rollout.LiveTraffic`` through the endpoint's ``Serving`` provider."""

    def live(rec: Record) -> dict[str, Any] | None:
        providers = ProviderSet.for_session(session, reader.record)
        try:
            serving = capability(providers.get(rec.provider, rec.address), Serving, "read traffic")
            traffic = serving.traffic(prior_of(rec))
        except (ProviderError, MlxError, OSError) as exc:
            return {"error": str(exc)}
        finally:
            providers.close()
        return traffic.as_dict() if traffic is not None else None

    return live
