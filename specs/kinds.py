"""Kinds of resources: each declares itself once, in its own spec module.

A kind is a top-level section of the spec (``models``, ``endpoints``, …): the
pydantic model of one entry, the provider type it uses when none is named, and
the few facts the engine needs about it. Everything else the engine knows about
a kind is read from its model (``specs.introspect``). Kinds are found through
the ``mlx.kinds`` entry-point group — the built-in ones register there exactly
as a plugin's would — so adding a kind is a spec module, a provider and two
entry points (``mlx.kinds`` and ``mlx.providers``); no list in the engine names
sections. See docs/providers.md, "Adding a kind".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

GROUP = "mlx.kinds"


@dataclass(frozen=True)
class Kind:
    section: str
    #: The pydantic model of one entry (or an annotated union of models, discriminated).
    model: Any
    #: The provider ``type`` used when an entry names no ``provider``; ``None``: the
    #: entry's own ``type`` field says it (alerts: ``type: slack``).
    default_provider: str | None = None
    #: Where plans and ``mlx schema`` list it (lower first).
    order: int = 100
    #: The output that numbers its versions (``version``; datasets: ``revision``).
    version_output: str | None = None
    #: ``card.risk: high`` needs ``card.review`` before a protected environment takes it.
    reviewed: bool = False
    #: Its content is data others are built from: new bytes under an unchanged spec (no
    #: retraining, no edit anyone reviewed) get a warning in the plan.
    data: bool = False


class KindError(Exception):
    pass


@cache
def kinds() -> dict[str, Kind]:
    """Every registered kind, by section, in display order."""
    found: dict[str, Kind] = {}
    for ep in entry_points(group=GROUP):
        try:
            kind = ep.load()
        except Exception as exc:  # a broken plugin names itself, and breaks nothing else
            raise KindError(f"kind {ep.name!r} ({ep.value}) could not be loaded: {exc}") from exc
        if not isinstance(kind, Kind) or kind.section != ep.name:
            raise KindError(f"entry point {ep.name!r} in {GROUP} is not an mlx Kind for {ep.name}")
        found[kind.section] = kind
    if not found:
        raise KindError(
            "no resource kinds are registered: is mlx installed (pip install -e .)? "
            f"The {GROUP} entry points are missing"
        )
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def kind(section: str) -> Kind:
    return kinds()[section]


def sections() -> tuple[str, ...]:
    return tuple(kinds())
