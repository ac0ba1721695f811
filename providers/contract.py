"""The provider contract: the only provider module the engine imports.

A provider manages objects of some sections (models, prompts, alerts, …) in
some system (a local registry, MLflow, S3). mlx calls, per resource:

* ``check(desired)`` — problems the plan should report (a missing file), as
  ``Problem(path, message)``; the engine turns ``path`` into file:line.
* ``fingerprint(desired)`` — content hash of what the spec points at
  (artifact bytes, a template file, a dataset): how mlx sees a dataset whose
  bytes changed under an unchanged spec.
* ``planned_outputs(desired, fingerprint)`` — outputs already known at plan time.
* ``read(prior)`` — the object as it is now (``None`` if gone): drift detection.
* ``diff(prior, desired)`` — which changed fields force a replacement.
* ``create`` / ``update`` / ``delete`` — do it; return the outputs to record.

Registries (models, prompts, datasets) may also implement ``has_version``,
``materialize``, ``get_alias`` and ``set_alias``: gates load a baseline's
artifact, rollouts move aliases and rollbacks check that an old version still
exists through them — always via ``Context.peers``, which the engine provides,
so no provider imports another.

Every method receives plain data (``Desired``/``Prior``), never engine types,
so a provider is testable on its own and the conformance kit
(``providers.testing``) can drive any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol


class Peers(Protocol):
    """What the engine lets a provider do with *other* resources (implemented by the engine)."""

    def recorded(self, address: str) -> Prior | None:
        """The state record of ``address`` as it was when this run started."""
        ...

    def spec(self, address: str) -> Mapping[str, Any] | None:
        """The resolved spec (secrets opened) of a declared resource in this run."""
        ...

    def has_version(self, address: str, outputs: Mapping[str, Any]) -> bool: ...

    def materialize(self, address: str, outputs: Mapping[str, Any] | None, target: Path) -> Path:
        """A local copy of a version's content (a file or a directory).

        ``outputs`` describes a registered version; ``None`` means the content the
        spec declares right now (the candidate, before it is registered). The
        returned path may be ``target`` or the declared file itself.
        """
        ...

    def get_alias(self, address: str, alias: str) -> dict[str, Any] | None:
        """Outputs (version, uri, fingerprint) of the version behind ``alias``, if any."""
        ...

    def set_alias(self, address: str, alias: str, outputs: Mapping[str, Any]) -> None: ...

    def notify(self, channel: str, message: AlertMessage) -> None:
        """Send ``message`` to the alert channel at address ``channel``."""
        ...


@dataclass(frozen=True)
class Context:
    """Where a provider runs: the spec dir (relative paths), mlx's data dir, the environment."""

    root: Path
    data_dir: Path
    environment: str = "default"
    log: Callable[[str], None] = field(default=lambda _msg: None, compare=False)
    peers: Peers | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Desired:
    """What the spec asks for, references resolved and secrets opened."""

    address: str
    section: str
    name: str
    spec: Mapping[str, Any]
    fingerprint: str | None = None
    #: Outputs of the resources this one references, by address (for versions, URIs).
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The same, as recorded before this run: "the previous version" of a gate's subject.
    prior_inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Rollback and promotion: the outputs of an earlier version to bring back. A registry
    #: restores that version (by its fingerprint) instead of reading the spec's files,
    #: which may hold newer bytes by now. ``fingerprint`` then equals the restored one.
    restore: Mapping[str, Any] | None = None

    def path(self, root: Path, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else root / p


@dataclass(frozen=True)
class Prior:
    """What mlx recorded after the last successful apply of this resource."""

    address: str
    section: str
    name: str
    attributes: Mapping[str, Any]
    outputs: Mapping[str, Any]
    fingerprint: str | None = None


@dataclass(frozen=True)
class Change:
    """Why an update is happening: lets a provider skip work (a label edit is not a new version)."""

    behaviour: bool = False
    metadata: bool = False
    content: bool = False
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    path: tuple[str | int, ...]
    message: str


@dataclass(frozen=True)
class Result:
    outputs: dict[str, Any] = field(default_factory=dict)
    #: A gate that ran but did not pass: recorded as evidence, dependents skipped.
    failed: bool = False
    message: str | None = None


@dataclass(frozen=True)
class Observed:
    """An object as read from its system; compared with the recorded outputs for drift."""

    outputs: dict[str, Any]
    fingerprint: str | None = None
    #: Human descriptions of differences the provider found itself.
    notes: tuple[str, ...] = ()

    def differences(self, recorded: Mapping[str, Any], fingerprint: str | None = None) -> list[str]:
        """What differs from what mlx recorded: ``key: recorded -> observed`` lines.

        Only keys present on both sides are compared, so a provider may report
        extra facts (aliases, sizes) without them counting as drift.
        """
        out = [
            f"{key}: {recorded[key]!r} -> {value!r}"
            for key, value in sorted(self.outputs.items())
            if key in recorded and recorded[key] != value
        ]
        moved = fingerprint and self.fingerprint and fingerprint != self.fingerprint
        if moved and not any(line.startswith("fingerprint:") for line in out):
            out.append(f"fingerprint: {fingerprint!r} -> {self.fingerprint!r}")
        return out + list(self.notes)


@dataclass(frozen=True)
class DiffResult:
    replace_fields: tuple[str, ...] = ()


class ProviderError(Exception):
    """A provider call failed in a way the user can act on (message is shown as is)."""


class MissingExtra(ProviderError):
    def __init__(self, extra: str, package: str):
        super().__init__(
            f"this provider needs the optional dependency {package!r}: "
            f"pip install 'mlxctl[{extra}]'"
        )


class Provider(ABC):
    """Base class of every provider. Subclasses set ``sections`` and implement CRUD."""

    #: Sections this provider can manage (``{"models", "prompts"}``).
    sections: ClassVar[frozenset[str]] = frozenset()
    #: Optional pydantic model validating the provider's config block into ``self.settings``.
    config_model: ClassVar[Any] = None
    #: The ``type`` it is registered under: filled into a config that does not say it.
    type_name: ClassVar[str | None] = None

    def __init__(self, config: Mapping[str, Any], context: Context):
        self.config = dict(config)
        self.context = context
        self.settings: Any = self._validated_settings()

    def _validated_settings(self) -> Any:
        if self.config_model is None:
            return None
        data = {"type": self.type_name, **self.config} if self.type_name else self.config
        try:
            return self.config_model.model_validate(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            what = self.type_name or type(self).__name__
            raise ProviderError(f"invalid {what} provider config: {exc}") from exc

    # -- planning -----------------------------------------------------------------
    def check(self, desired: Desired) -> list[Problem]:
        return []

    def fingerprint(self, desired: Desired) -> str | None:
        return None

    def planned_outputs(self, desired: Desired) -> dict[str, Any]:
        return {"fingerprint": desired.fingerprint} if desired.fingerprint else {}

    def diff(self, prior: Prior, desired: Desired) -> DiffResult:
        return DiffResult()

    def read(self, prior: Prior) -> Observed | None:
        """The object now, or ``None`` if it is gone. Default: trust the record."""
        return Observed(dict(prior.outputs), prior.fingerprint)

    def plan_inputs(self) -> list[str] | None:
        """Local paths whose stat fully determines what ``check``/``fingerprint`` answered.

        mlx skips re-planning a converged spec while none of these (nor the spec,
        the state or mlx itself) changed. ``None`` — the default — means this
        provider consulted something else (a server) and must be asked every time.
        """
        return None

    # -- applying -----------------------------------------------------------------
    @abstractmethod
    def create(self, desired: Desired) -> Result: ...

    @abstractmethod
    def update(self, prior: Prior, desired: Desired, change: Change) -> Result: ...

    @abstractmethod
    def delete(self, prior: Prior) -> None: ...

    # -- registry capabilities (optional) ---------------------------------------------
    def has_version(self, section: str, name: str, outputs: Mapping[str, Any]) -> bool:
        """Whether the version described by ``outputs`` can still be restored."""
        return True

    def materialize(
        self, section: str, name: str, outputs: Mapping[str, Any], target: Path
    ) -> Path:
        raise ProviderError(f"{type(self).__name__} cannot fetch artifacts")

    def materialize_declared(self, desired: Desired, target: Path) -> Path:
        """The content a spec declares, before it is registered. Default: a local path."""
        spec = desired.spec
        template = spec.get("template")
        value = (
            spec.get("artifact")
            or spec.get("uri")
            or (template.get("file") if isinstance(template, dict) else None)
        )
        if not isinstance(value, str) or "://" in value:
            raise ProviderError(f"{type(self).__name__} cannot fetch {value!r}")
        path = desired.path(self.context.root, value)
        if not path.exists():
            raise ProviderError(f"{desired.address}: {path} does not exist")
        return path

    def get_alias(self, section: str, name: str, alias: str) -> dict[str, Any] | None:
        raise ProviderError(f"{type(self).__name__} has no aliases")

    def set_alias(self, section: str, name: str, alias: str, outputs: Mapping[str, Any]) -> None:
        raise ProviderError(f"{type(self).__name__} has no aliases")

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release clients and connections at the end of a run."""


@dataclass(frozen=True)
class AlertMessage:
    """One alert raised to a channel (by a monitor, a budget or a failed rollout)."""

    title: str
    text: str
    severity: str = "warning"
    source: str | None = None  # the address that raised it
    owner: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def record(self, channel: str) -> dict[str, Any]:
        """The message as the JSON every channel sends (a file line, a webhook body, SNS)."""
        from datetime import UTC, datetime

        return {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "channel": channel,
            "title": self.title,
            "text": self.text,
            "severity": self.severity,
            "source": self.source,
            "owner": self.owner,
            "details": dict(self.details),
        }


class Gate(ABC):
    """Mixin for gate providers (``evals``): judge a candidate without changing anything.

    ``evaluate`` returns ``Result(outputs={"passed": bool, "evidence": {...}},
    failed=not passed, message=why)``; ``create``/``update`` of a gate call it.
    """

    @abstractmethod
    def evaluate(self, desired: Desired) -> Result: ...


class Notifier(ABC):
    """Mixin for providers of alert channels: deliver one message to a channel."""

    @abstractmethod
    def send(self, channel: Prior, message: AlertMessage) -> None: ...
