"""Where the kit lived before it was split by capability: ``ProviderConformance`` is the
CRUD suite (``providers.testing.crud``). New code imports from ``providers.testing``."""

from providers.testing.crud import CrudConformance as ProviderConformance

__all__ = ["ProviderConformance"]
