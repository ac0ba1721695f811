"""What MLflow's model registry and prompt registry share: finding a version, and aliases.

Both registries have numbered versions tagged with mlx's fingerprint, and
aliases that mlx also records as ``mlx.alias.<alias>`` tags (so a move made by
hand is drift). They differ only in the client calls, which subclasses name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from contract import ProviderError
from providers.mlflow import tags as T
from providers.mlflow.client import as_int, ignore_missing, is_not_found


class AliasedRegistry(ABC):
    #: "models" or "prompts", for messages.
    kind: ClassVar[str]

    def __init__(self, client: Any):
        self.client = client

    # -- the client calls that differ ------------------------------------------------------
    @abstractmethod
    def _get_version(self, name: str, version: int) -> Any: ...

    @abstractmethod
    def _get_by_alias(self, name: str, alias: str) -> Any: ...

    @abstractmethod
    def _by_fingerprint(self, name: str, fingerprint: str | None) -> Any: ...

    @abstractmethod
    def _point_alias(self, name: str, alias: str, version: int) -> None: ...

    @abstractmethod
    def _drop_alias(self, name: str, alias: str) -> None: ...

    @abstractmethod
    def _set_tag(self, name: str, key: str, value: str) -> None: ...

    @abstractmethod
    def _drop_tag(self, name: str, key: str) -> None: ...

    @abstractmethod
    def _object_tags(self, name: str) -> dict[str, str] | None:
        """Tags of the registered model / prompt itself; ``None`` if it is gone."""

    # -- shared ------------------------------------------------------------------------------
    def _version(self, name: str, version: int | None) -> Any:
        if version is None:
            return None
        try:
            return self._get_version(name, version)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def find(self, name: str, outputs: Mapping[str, Any]) -> Any:
        """The version ``outputs`` describe: by number if its content still matches, else by
        content (the version was deleted and registered again)."""
        fingerprint = outputs.get("fingerprint")
        found = self._version(name, as_int(outputs.get("version")))
        if found is not None and (not fingerprint or found.tags.get(T.FINGERPRINT) == fingerprint):
            return found
        return self._by_fingerprint(name, fingerprint)

    def by_alias(self, name: str, alias: str) -> Any:
        # read the alias itself: search results do not carry aliases on every store
        try:
            return self._get_by_alias(name, alias)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def set_alias(self, name: str, alias: str, outputs: Mapping[str, Any]) -> None:
        """Point ``alias`` at the version ``outputs`` describe (no version: remove it)."""
        if outputs.get("version") is None:
            ignore_missing(self._drop_alias, name, alias)
            ignore_missing(self._drop_tag, name, T.alias_tag(alias))
            return
        found = self.find(name, outputs)
        if found is None:
            raise ProviderError(
                f"{self.kind}.{name}: version {outputs.get('version')} "
                f"({outputs.get('fingerprint')}) is not in MLflow any more"
            )
        self._point_alias(name, alias, as_int(found.version) or 0)
        value = T.alias_value(as_int(found.version) or 0, found.tags.get(T.FINGERPRINT))
        self._set_tag(name, T.alias_tag(alias), value)

    def alias_drift(self, name: str, tags: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
        def version_of(alias: str) -> int | None:
            found = self.by_alias(name, alias)
            return None if found is None else as_int(found.version)

        return T.alias_drift(tags, version_of)

    # -- retiring: a registry object is never deleted ---------------------------------------
    def retire(self, name: str) -> None:
        """What ``delete`` does: drop the aliases mlx set and tag the object retired.

        Every version, its run and its tags stay (a rollback across the delete can still
        restore one); ``read()`` reports a retired object as gone, and a later create of
        the same name adopts it (``unretire``).
        """
        tags = self._object_tags(name)
        if tags is None or tags.get(T.RETIRED) == "true":
            return  # gone, or retired already
        for key in sorted(tags):
            if key.startswith(T.ALIAS):
                ignore_missing(self._drop_alias, name, key.removeprefix(T.ALIAS))
                ignore_missing(self._drop_tag, name, key)
        from datetime import UTC, datetime

        self._set_tag(name, T.RETIRED_AT, datetime.now(UTC).isoformat(timespec="seconds"))
        self._set_tag(name, T.RETIRED, "true")

    def unretire(self, name: str, tags: Mapping[str, str]) -> None:
        for key in (T.RETIRED, T.RETIRED_AT):
            if key in tags:
                ignore_missing(self._drop_tag, name, key)

    @staticmethod
    def retired(tags: Mapping[str, str]) -> bool:
        return tags.get(T.RETIRED) == "true"

    def restore_aliases(self, name: str) -> None:
        """Point every alias mlx set back where mlx set it (repairs drift on apply)."""
        tags = self._object_tags(name)
        if tags is None:
            return
        for alias, want in T.read_alias_tags(tags).items():
            found = self.find(name, want)
            if found is None:
                continue  # its version is gone for good: refresh keeps reporting it
            current = self.by_alias(name, alias)
            if current is None or as_int(current.version) != as_int(found.version):
                self._point_alias(name, alias, as_int(found.version) or 0)
            if as_int(found.version) != as_int(want.get("version")):
                value = T.alias_value(as_int(found.version) or 0, want.get("fingerprint"))
                self._set_tag(name, T.alias_tag(alias), value)
