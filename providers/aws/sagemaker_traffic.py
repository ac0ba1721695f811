"""Traffic splits on a SageMaker endpoint: checks, target weights, and mlx's role tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract import ProviderError, Traffic
from providers.aws.sagemaker_live import TAG_CANDIDATE, TAG_STABLE, TAG_WEIGHT, LiveEndpoint


def validate(address: str, traffic: Traffic) -> None:
    """Refuse a split SageMaker (as mapped here) cannot serve, before touching anything."""
    if traffic.mirror:
        raise ProviderError(
            f"{address}: shadow traffic (mirror {traffic.mirror}%) is not supported by the "
            "sagemaker provider (SageMaker shadow variants are not mapped); use canary or ab"
        )
    if not 0 <= traffic.weight <= 100:
        raise ProviderError(
            f"{address}: a candidate's weight is 0..100 percent, not {traffic.weight}"
        )
    if traffic.candidate == traffic.stable:
        raise ProviderError(f"{address}: {traffic.stable} cannot be stable and candidate at once")
    if traffic.weight and not traffic.candidate:
        raise ProviderError(f"{address}: weight {traffic.weight}% needs a candidate variant")


def expected_percents(live: LiveEndpoint, traffic: Traffic) -> dict[str, float | int]:
    """Each live variant's share under ``traffic``: stable 100 - weight, candidate weight, 0."""
    weight = traffic.weight if traffic.candidate else 0
    want: dict[str, float | int] = {v.name: 0 for v in live.variants}
    want[traffic.stable] = 100 - weight
    if traffic.candidate:
        want[traffic.candidate] = weight
    return want


def role_tags(traffic: Traffic) -> dict[str, str]:
    """The endpoint tags ``LiveEndpoint.tagged_traffic`` reads back."""
    return {
        TAG_STABLE: traffic.stable,
        TAG_CANDIDATE: traffic.candidate or "",
        TAG_WEIGHT: str(traffic.weight if traffic.candidate else 0),
    }


def recorded(outputs: Mapping[str, Any]) -> Traffic | None:
    """The split an endpoint's recorded outputs hold, if any."""
    data = outputs.get("traffic")
    return Traffic.from_dict(data) if isinstance(data, Mapping) and data.get("stable") else None
