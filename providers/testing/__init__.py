"""The provider conformance kit: ``from providers.testing import ProviderConformance``."""

from providers.testing.conformance import ProviderConformance

__all__ = ["ProviderConformance"]
