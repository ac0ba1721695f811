"""The provider conformance kit, one suite per capability (as dbt's adapter suites are split).

    from providers.testing import RegistryConformance

    class TestMyModels(RegistryConformance):
        section = "models"
        def make_provider(self, tmp_path): ...
        ...

* ``CrudConformance`` — every provider (``crud``);
* ``RegistryConformance`` — models, prompts, datasets (``registry``);
* ``NotifierConformance`` — alert channels (``notifier``);
* ``GateConformance`` — evals (``gate``);
* ``ServingConformance`` — endpoints (``serving``);
* ``FakePeers`` (``peers``), ``FlakyProxy`` (``flaky``), ``faults.inject`` — the stand-ins
  the suites and a provider's own tests use for the engine and for a failing backend.

Each suite extends the CRUD one, so a registry's tests subclass ``RegistryConformance``
alone. The kit is built on pytest, which is not a runtime dependency of mlx:
``pip install 'mlxctl[testing]'``.
"""

from __future__ import annotations

from typing import Any

try:
    import pytest  # noqa: F401 - the suites are pytest classes
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "providers.testing (the provider conformance kit) needs pytest: "
        "pip install 'mlxctl[testing]'"
    ) from exc

from providers.testing.crud import CrudConformance
from providers.testing.flaky import FlakyProxy
from providers.testing.gate import GateConformance
from providers.testing.notifier import NotifierConformance
from providers.testing.peers import FakePeers
from providers.testing.registry import RegistryConformance

#: The kit's name before it was split by capability: the CRUD suite.
ProviderConformance = CrudConformance

__all__ = [
    "CrudConformance",
    "FakePeers",
    "FlakyProxy",
    "GateConformance",
    "NotifierConformance",
    "ProviderConformance",
    "RegistryConformance",
    "ServingConformance",
]


def __getattr__(name: str) -> Any:
    # loaded on first use: the serving suite imports the serving stack's test doubles
    if name == "ServingConformance":
        from providers.testing.serving import ServingConformance

        return ServingConformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
