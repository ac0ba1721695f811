"""A registered version as the rest of mlx passes it: ``VersionRef``.

A registry kind records a version in its outputs (``{"version": 3, "fingerprint": …,
"uri": …}``; a dataset says ``revision`` for the same thing). The provider that writes those
outputs owns their keys; everything else — the engine, the controller, gates, read models —
reads them through ``VersionRef.of`` rather than ``outputs.get("version", …)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The output keys that name a version, in the order they are read (``revision``: datasets').
VERSION_KEYS = ("version", "revision")


def version_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``outputs`` that describes the version (``version`` or ``revision``,
    ``fingerprint``, ``uri``), keys as recorded: what a release records of what it released."""
    return {k: outputs[k] for k in (*VERSION_KEYS, "fingerprint", "uri") if k in outputs}


@dataclass(frozen=True)
class VersionRef:
    """One registered version: its number (or a registry's id), fingerprint and uri.

    The values are the recorded ones, unconverted (a version may be an int or a string: an
    S3 snapshot id), so what is shown or recorded from them is byte for byte what it was.
    """

    version: int | str | None = None
    fingerprint: str | None = None
    uri: str | None = None

    @classmethod
    def of(cls, outputs: Mapping[str, Any] | None) -> VersionRef:
        """The version ``outputs`` record: ``version`` if the key is there (even null), else
        ``revision``; an empty ref for no outputs."""
        if not outputs:
            return cls()
        version = outputs["version"] if "version" in outputs else outputs.get("revision")
        return cls(version, outputs.get("fingerprint"), outputs.get("uri"))

    @property
    def known(self) -> bool:
        """Whether a version is named (a version 0 is one)."""
        return self.version is not None

    @property
    def label(self) -> str | None:
        """``v3``: the version's name as a variant of an endpoint; None without a version."""
        return f"v{self.version}" if self.version is not None else None

    @property
    def number(self) -> int:
        """The version as an integer (a numbered registry's); ``ValueError`` if it is not one."""
        if self.version is None:
            raise ValueError("no version")
        return int(self.version)

    def known_fields(self) -> dict[str, Any]:
        """``version``, ``fingerprint``, ``uri``: those that are not null, in that order."""
        fields = (("version", self.version), ("fingerprint", self.fingerprint), ("uri", self.uri))
        return {k: v for k, v in fields if v is not None}

    def same_as(self, other: VersionRef) -> bool:
        """Whether both name the same bytes: by fingerprint when both have one, else by version."""
        if self.fingerprint and other.fingerprint:
            return bool(self.fingerprint == other.fingerprint)
        return self.version is not None and self.version == other.version
