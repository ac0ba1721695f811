"""What a reviewer should look at twice, and the review a protected environment requires.

``review_warnings`` are shown next to a change (text and Markdown plans); ``check_reviews``
refuses a plan that ships a ``card.risk: high`` model to a protected environment without
a recorded review (``card.review.approved_by`` and ``approved_at``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from common.diagnostics import Diagnostic, MlxError, Source
from engine.plan.model import Action, Reason
from engine.plan.planned import Planned
from specs.introspect import kind_info


def review_warnings(p: Planned) -> list[str]:
    """What a reviewer should look at twice (shown in text and Markdown plans)."""
    out = []
    if (p.body.get("lifecycle") or {}).get("prevent_destroy"):
        out.append("has lifecycle.prevent_destroy: it changes here, but is never destroyed")
    card = p.body.get("card") or {}
    review = card.get("review") or {}
    info = kind_info(p.section)
    if info.reviewed and card.get("risk") == "high" and not review.get("approved_by"):
        out.append("card.risk is high and card.review names no approver")
    if info.data and Reason.CONTENT_CHANGED in p.reasons:
        out.append("its bytes changed while its spec did not: everything built on it is flagged")
    return out


def check_reviews(
    planned: Iterable[Planned], environment: str | None, source: Callable[..., Source]
) -> None:
    """A protected environment takes no ``risk: high`` model without a recorded review."""
    diags = []
    for p in planned:
        if not kind_info(p.section).reviewed or p.action is Action.NOOP:
            continue
        card = p.body.get("card") or {}
        review = card.get("review") or {}
        if card.get("risk") == "high" and not (
            review.get("approved_by") and review.get("approved_at")
        ):
            diags.append(
                Diagnostic(
                    f"{p.address} has card.risk: high; environment "
                    f'"{environment}" is protected and needs card.review '
                    "(approved_by and approved_at) before it can ship",
                    source(p.address, "card", "risk"),
                )
            )
    if diags:
        raise MlxError(diags)
