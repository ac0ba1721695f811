"""mlx-dirstore: an example third-party mlx provider (see docs/providers.md)."""

from mlx_dirstore.provider import DirStoreConfig, DirStoreProvider

__all__ = ["DirStoreConfig", "DirStoreProvider"]
