"""A SageMaker endpoint as it is live: variants, weights, models, and mlx's tags.

``describe`` reads ``DescribeEndpoint`` (variants and their current weights),
the endpoint's current ``DescribeEndpointConfig`` (which model each variant
runs, on what instances) and its tags. mlx keeps the roles it gave variants
(``Traffic``: stable, candidate, weight) in the endpoint's own tags, so the
split can be read back — and repaired — from SageMaker alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from contract import ProviderError, Traffic
from providers.aws.session import aws_error, error_code

TAG_ADDRESS = "mlx:address"
TAG_OWNER = "mlx:owner"
TAG_SUBJECT = "mlx:subject"
TAG_STABLE = "mlx:stable"
TAG_CANDIDATE = "mlx:candidate"
TAG_WEIGHT = "mlx:weight"
TAG_LABEL = "mlx:label:"
TAG_VERSION = "mlx:version"
TAG_FINGERPRINT = "mlx:fingerprint"
TAG_ENDPOINT = "mlx:endpoint"

#: Statuses an endpoint does not leave by waiting.
UNHEALTHY = {"Failed", "OutOfService", "RollingBack", "SystemUpdating"}
_GOALS = {"endpoint_in_service": "become InService", "endpoint_deleted": "be deleted"}
_GONE_CODES = {"ValidationException", "ResourceNotFound", "ResourceNotFoundException"}
_GONE_WORDS = ("could not find", "does not exist", "not found")
_MESSAGE_MAX = 300
_TAG_VALUE_MAX = 256


def is_missing(exc: BaseException) -> bool:
    """SageMaker's "no such endpoint/config/model" (a ``ValidationException`` saying so)."""
    if error_code(exc) not in _GONE_CODES:
        return False
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
    return any(word in message for word in _GONE_WORDS)


def fail(exc: BaseException, what: str) -> ProviderError:
    """``aws_error`` on one line, cut to a readable length (moto lists every instance type)."""
    if isinstance(exc, ProviderError):
        return exc
    text = " ".join(str(aws_error(exc, what)).split())
    if len(text) > _MESSAGE_MAX:
        text = text[: _MESSAGE_MAX - 1].rstrip() + "…"
    return ProviderError(text)


def tag_value(text: str) -> str:
    """A tag value SageMaker accepts: letters, digits, spaces and ``_.:/=+-@``."""
    cleaned = "".join(c if c.isalnum() or c.isspace() or c in "_.:/=+-@" else "_" for c in text)
    return cleaned[:_TAG_VALUE_MAX]


def percent(weight: float, total: float) -> float | int:
    """A variant's share of requests, in percent (an int when whole)."""
    value = round(100 * weight / total, 2) if total > 0 else 0
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class LiveVariant:
    name: str
    weight: float
    instance_count: int | None
    model_name: str | None = None
    instance_type: str | None = None


@dataclass(frozen=True)
class LiveEndpoint:
    name: str
    arn: str
    status: str
    config_name: str
    variants: tuple[LiveVariant, ...]
    tags: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None
    #: The endpoint's current config was deleted behind mlx's back (models unknown).
    config_missing: bool = False

    def variant(self, name: str) -> LiveVariant | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variants]

    def percents(self) -> dict[str, float | int]:
        total = sum(v.weight for v in self.variants)
        return {v.name: percent(v.weight, total) for v in self.variants}

    def tagged_traffic(self) -> Traffic | None:
        """The split mlx last set (``set_traffic``), if its stable variant is still here."""
        stable = self.tags.get(TAG_STABLE)
        if not stable or self.variant(stable) is None:
            return None
        candidate = self.tags.get(TAG_CANDIDATE) or None
        weight = int(self.tags.get(TAG_WEIGHT) or 0)
        if candidate is None or self.variant(candidate) is None:
            return Traffic(stable)
        return Traffic(stable, candidate, weight)

    def traffic(self, recorded: Traffic | None = None) -> Traffic:
        """The live split, roles named by mlx's tags (else the record, else the weights).

        A variant mlx gave no role that takes requests anyway (edited by hand) is
        reported as the candidate, so the split stays visible.
        """
        if not self.variants:
            raise ProviderError(f"SageMaker endpoint {self.name} has no production variants")
        roles = self.tagged_traffic()
        if roles is None and recorded is not None and self.variant(recorded.stable):
            roles = recorded
        shares = self.percents()
        if roles is None:
            heaviest = max(self.variants, key=lambda v: v.weight)
            roles = Traffic(heaviest.name)
        candidate = roles.candidate if roles.candidate in shares else None
        if candidate is None:
            others = [n for n, share in shares.items() if n != roles.stable and share > 0]
            candidate = others[0] if len(others) == 1 else None
        if candidate is None:
            return Traffic(roles.stable)
        return Traffic(roles.stable, candidate, round(shares[candidate]))


def _weight(variant: dict[str, Any]) -> float:
    # moto leaves out a weight of 0; AWS always reports CurrentWeight once InService
    value = variant.get("CurrentWeight", variant.get("DesiredWeight"))
    return float(value or 0)


def describe(client: Any, name: str) -> LiveEndpoint | None:
    """The endpoint now, or ``None`` if SageMaker has no endpoint by that name."""
    try:
        found = client.describe_endpoint(EndpointName=name)
    except Exception as exc:
        if is_missing(exc):
            return None
        raise fail(exc, f"cannot describe SageMaker endpoint {name}") from exc
    config_name = str(found.get("EndpointConfigName", ""))
    configured: dict[str, dict[str, Any]] = {}
    config_missing = False
    try:
        config = client.describe_endpoint_config(EndpointConfigName=config_name)
        configured = {str(v["VariantName"]): v for v in config.get("ProductionVariants", [])}
    except Exception as exc:
        if not is_missing(exc):
            raise fail(exc, f"cannot describe endpoint config {config_name}") from exc
        config_missing = True
    variants = []
    for v in found.get("ProductionVariants", []):
        spec = configured.get(str(v["VariantName"]), {})
        count = v.get("CurrentInstanceCount", v.get("DesiredInstanceCount"))
        variants.append(
            LiveVariant(
                name=str(v["VariantName"]),
                weight=_weight(v),
                instance_count=int(count) if count is not None else None,
                model_name=spec.get("ModelName"),
                instance_type=spec.get("InstanceType"),
            )
        )
    arn = str(found["EndpointArn"])
    return LiveEndpoint(
        name=name,
        arn=arn,
        status=str(found.get("EndpointStatus", "")),
        config_name=config_name,
        variants=tuple(variants),
        tags=list_tags(client, arn),
        failure_reason=found.get("FailureReason"),
        config_missing=config_missing,
    )


def list_tags(client: Any, arn: str) -> dict[str, str]:
    """A resource's tags (the last value wins, as moto keeps repeated keys)."""
    tags: dict[str, str] = {}
    token: str | None = None
    try:
        while True:
            page = client.list_tags(ResourceArn=arn, **({"NextToken": token} if token else {}))
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
            token = page.get("NextToken")
            if not token:
                return tags
    except Exception as exc:
        raise fail(exc, f"cannot read the tags of {arn}") from exc


def wait_for(client: Any, waiter: str, name: str, timeout: float, address: str = "") -> None:
    """boto3's ``endpoint_in_service``/``endpoint_deleted`` waiter, bounded by ``timeout`` s.

    Polls every 30 s (AWS takes minutes per change; moto is done at once). A
    timeout, a ``Failed`` endpoint, or one that is gone while waiting for
    ``InService`` is a ``ProviderError``.
    """
    from botocore.exceptions import WaiterError

    delay = max(1, int(min(30.0, timeout)))
    config = {"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout / delay))}
    try:
        client.get_waiter(waiter).wait(EndpointName=name, WaiterConfig=config)
    except WaiterError as exc:
        live = describe(client, name)
        if live is None:
            if waiter == "endpoint_deleted":
                return
            where = f"{address}: " if address else ""
            raise ProviderError(f"{where}SageMaker endpoint {name} does not exist") from exc
        reason = f": {live.failure_reason}" if live.failure_reason else ""
        if live.status in UNHEALTHY:
            raise ProviderError(f"SageMaker endpoint {name} is {live.status}{reason}") from exc
        raise ProviderError(
            f"SageMaker endpoint {name} did not {_GOALS.get(waiter, waiter)} within "
            f"{timeout:g}s (status {live.status}); apply again to continue"
        ) from exc
    except Exception as exc:
        raise fail(exc, f"cannot wait for SageMaker endpoint {name}") from exc
