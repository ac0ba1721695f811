"""The provider contract: the only provider module the engine imports.

A provider manages objects of some sections (models, prompts, alerts, …) in
some system (a local registry, MLflow, S3, a serving gateway). mlx calls, per
resource (the CRUD part every provider has, ``Provider``):

* ``check(desired)`` — problems the plan should report (a missing file), as
  ``Problem(path, message)``; the engine turns ``path`` into file:line.
* ``fingerprint(desired)`` — content hash of what the spec points at
  (artifact bytes, a template file, a dataset): how mlx sees a dataset whose
  bytes changed under an unchanged spec.
* ``planned_outputs(desired)`` — outputs already known at plan time.
* ``read(prior)`` — the object as it is now (``None`` if gone): drift detection.
* ``diff(prior, desired)`` — which changed fields force a replacement.
* ``create`` / ``update`` / ``delete`` — do it; return the outputs to record.
  A ``Result`` may say ``IN_PROGRESS`` (a canary paused for an hour): the
  engine records what to resume and the next apply (or ``mlx rollout run``)
  calls ``update`` again with ``Change.resume`` set.

On top of CRUD a provider declares *capabilities* by inheriting small
interfaces; the engine asks for one with ``capability(provider, Registry)``
and gets a clear error naming the provider when it lacks it:

* ``Registry`` — versions, aliases, materialize (models, prompts, datasets);
* ``Gate`` — judge a candidate without changing anything (evals);
* ``Notifier`` — deliver an alert to a channel;
* ``Serving`` — deploy versions to an endpoint, split and mirror traffic
  between them, read per-variant traffic metrics, retire a version.

Providers reach *other* resources only through ``Context.peers`` (the engine
implements ``Peers``), so no provider imports another.

Every method receives plain data (``Desired``/``Prior``), never engine types,
so a provider is testable on its own and the conformance kit
(``providers.testing``) can drive any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

from annotated_types import Interval

from contract.versions import VersionRef as VersionRef
from contract.versions import version_outputs as version_outputs


class Peers(Protocol):
    """What the engine lets a provider do with *other* resources (implemented by the engine):
    each reaches the provider of that resource through a capability (``Registry``,
    ``Notifier``, ``Serving``). Reading and writing state is not among them: a controller's
    pass records through the ``Ledger`` the engine hands it (``controller.harness``)."""

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

    def released(self, subject: str, gate: str | None = None) -> Released | None:
        """The version of ``subject`` users get now, and what releases it.

        Behind a rollout's alias or endpoint, as recorded when this run started; else
        the last version ``gate`` (or any gate on ``subject``) passed. Never a candidate
        a gate rejected. ``None``: nothing has been released yet (a first release).
        """
        ...

    def serving(self, endpoint: str) -> tuple[Prior, Serving]:
        """The recorded endpoint at ``endpoint`` and its provider's ``Serving`` capability."""
        ...

    def gate(self, address: str) -> Gate:
        """The ``Gate`` capability of the provider of the gate at ``address`` (``evals.x``):
        how a scheduled eval (a ``type: eval`` monitor) re-runs it."""
        ...

    def passed_verdict(self, gate: str, subject_fingerprint: str) -> Mapping[str, Any] | None:
        """``gate``'s latest *passed* verdict on the subject version ``subject_fingerprint``
        (release evidence): ``serial``, ``dataset``, ``dataset_fingerprint``, ``definition``,
        ``subject_outputs`` and the gate's ``outputs`` (its evidence, with the scores)."""
        ...


@dataclass(frozen=True)
class Context:
    """Where a provider runs: the spec dir (relative paths), mlx's data dir, the environment."""

    root: Path
    data_dir: Path
    environment: str = "default"
    log: Callable[[str], None] = field(default=lambda _msg: None, compare=False)
    peers: Peers | None = field(default=None, compare=False)
    #: Directories besides ``root`` whose files the spec may name (``mlx.paths``), absolute.
    allowed_paths: tuple[Path, ...] = ()
    #: The state database's URL (the embedded gateway keeps its route table there).
    state_url: str | None = None
    #: The inference log's URL (serving providers read per-variant traffic from it).
    log_url: str | None = None


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
    #: Fields the spec writes as exactly ``${env.NAME}``, by dotted path (``client.api_key``):
    #: NAME. A provider that hands a secret on to another process (the gateway's route
    #: document) passes where to find it, never the value.
    env_refs: Mapping[str, str] = field(default_factory=dict)

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
    #: The record's status (``ok``, ``in_progress``, ``tainted``, …: state's ``Status`` values).
    status: str = "ok"


@dataclass(frozen=True)
class Change:
    """Why an update is happening: lets a provider skip work (a label edit is not a new version)."""

    behaviour: bool = False
    metadata: bool = False
    content: bool = False
    fields: tuple[str, ...] = ()
    #: Continue an operation that returned ``IN_PROGRESS`` (``prior.outputs`` says where it is).
    resume: bool = False
    #: The update replays an earlier state version (``mlx rollback``): a release going back
    #: to a version it served before moves all traffic at once.
    rollback: bool = False


@dataclass(frozen=True)
class Released:
    """What users get now for a subject: a registered version, and what released it."""

    outputs: Mapping[str, Any]  # version (or revision), fingerprint, uri
    source: str  # "rollouts.fraud (alias production)", "last version evals.x passed"

    @property
    def ref(self) -> VersionRef:
        return VersionRef.of(self.outputs)


@dataclass(frozen=True)
class Problem:
    path: tuple[str | int, ...]
    message: str


class Completion(StrEnum):
    """Whether an operation finished, or continues later (a rollout paused between steps)."""

    DONE = "done"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class Result:
    outputs: dict[str, Any] = field(default_factory=dict)
    #: A gate that ran but did not pass: recorded as evidence, dependents skipped.
    failed: bool = False
    message: str | None = None
    #: ``IN_PROGRESS``: recorded with ``outputs`` (which say what to resume); dependents wait,
    #: and the next apply or controller run calls ``update(prior, desired, Change(resume=True))``.
    completion: Completion = Completion.DONE
    #: For an operation in progress: what happens next, shown by plans ("step 2/3 in 9m").
    next_step: str | None = None
    #: Other resources whose objects this call changed (a rollout moving an endpoint's
    #: traffic): the engine reads them again and records what it finds.
    touched: tuple[str, ...] = ()


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


class DeliveryError(ProviderError):
    """An alert channel could not take a message. ``retryable``: the outbox tries again on a
    later run (a timeout, a refused connection, a 5xx, a 429); otherwise the failure is
    final (another 4xx) — kept and shown, never dropped. ``retry_after``: what the channel
    asked for (seconds, a 429's ``Retry-After``)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


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
    #: Fields that may hold a secret (``${env.X}``), by section: dotted paths, ``*`` matching
    #: one key (``{"alerts": ("url", "headers.*")}``). A secret anywhere else is an error,
    #: since the provider might publish it (a registry tag, a file, a log line).
    secret_fields: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: How many of this provider's calls gain from running at once; ``None``: as many as
    #: ``--parallelism``. A provider whose calls are Python and local I/O says 1: under the
    #: GIL, more threads only contend.
    max_parallel: ClassVar[int | None] = None
    #: The values of a resource's own ``type`` field this provider acts on (``monitor``:
    #: ``{"data_drift"}``); ``None``: every one. Validation refuses the others as "not
    #: available yet" (``engine.load.availability``), as it does a kind with no provider.
    resource_types: ClassVar[frozenset[str] | None] = None

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
        """Outputs known before apply: a restored version's, or the content fingerprint."""
        if desired.restore is not None:
            return dict(desired.restore)
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
    # -- set by the alert lifecycle (``engine.alerting``); a one-shot message leaves them --
    #: the alert's key, ``resource@version/signal`` (PagerDuty's ``dedup_key``)
    key: str | None = None
    status: str = "firing"  # firing | resolved
    #: when the alert started firing / recovered (epoch seconds)
    starts_at: float | None = None
    ends_at: float | None = None
    #: alertname, resource, version, signal, severity, owner (Alertmanager's labels)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: the command to run to look closer (``mlx show monitors.x``)
    investigate: str | None = None
    #: the same on every retry of one delivery: a webhook sends it as ``Idempotency-Key``.
    #: A message that carries one comes from the outbox, which retries on later runs, so a
    #: channel makes one attempt and raises ``DeliveryError`` saying whether to retry.
    idempotency_key: str | None = None

    def record(self, channel: str) -> dict[str, Any]:
        """The message as the JSON every channel sends (a file line, a webhook body, SNS)."""
        from datetime import UTC, datetime

        out = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "channel": channel,
            "title": self.title,
            "text": self.text,
            "severity": self.severity,
            "source": self.source,
            "owner": self.owner,
            "details": dict(self.details),
        }
        if self.key is not None:
            out["alert"] = {
                "key": self.key,
                "status": self.status,
                "labels": dict(self.labels),
                "starts_at": iso(self.starts_at),
                "ends_at": iso(self.ends_at),
                "investigate": self.investigate,
                "idempotency_key": self.idempotency_key,
            }
        return out


def iso(at: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC (what Alertmanager's payload carries)."""
    from datetime import UTC, datetime

    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- capabilities ------------------------------------------------------------------------
class Registry(ABC):
    """Versions of models, prompts and datasets: restore, fetch, and point aliases at them.

    Gates load a baseline's artifact, rollouts move aliases and rollbacks check that an
    old version still exists through these — always via ``Context.peers``.
    """

    #: Set by ``Provider.__init__`` (a registry is always a provider too).
    context: Context

    @abstractmethod
    def has_version(self, section: str, name: str, outputs: Mapping[str, Any]) -> bool:
        """Whether the version described by ``outputs`` can still be restored."""

    @abstractmethod
    def materialize(
        self, section: str, name: str, outputs: Mapping[str, Any], target: Path
    ) -> Path:
        """A local copy of a registered version's content (a file or a directory)."""

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

    @abstractmethod
    def get_alias(self, section: str, name: str, alias: str) -> dict[str, Any] | None:
        """Outputs (version, uri, fingerprint) of the version behind ``alias``, if any."""

    @abstractmethod
    def set_alias(self, section: str, name: str, alias: str, outputs: Mapping[str, Any]) -> None:
        """Point ``alias`` at the version in ``outputs`` (empty outputs: remove the alias)."""


class Gate(ABC):
    """Gate providers (``evals``): judge a candidate without changing anything.

    ``evaluate`` returns ``Result(outputs={"passed": bool, "evidence": {...}},
    failed=not passed, message=why)``; ``create``/``update`` of a gate call it.
    """

    @abstractmethod
    def evaluate(self, desired: Desired) -> Result: ...

    def rerun(self, desired: Desired, pinned: Mapping[str, Mapping[str, Any]]) -> Result:
        """Judge recorded versions again, changing nothing (a scheduled eval): each address in
        ``pinned`` (the released subject, the dataset as last judged) is read at the version
        its outputs describe, never from the spec's files. Same outputs as ``evaluate``; a
        gate that cannot re-run raises ``ProviderError`` saying why."""
        raise ProviderError(f"{type(self).__name__} cannot re-run a gate on recorded versions")


class Watcher(ABC):
    """Monitor providers (``monitors``): one run of a recorded monitor, changing nothing.

    ``watch`` returns the run as JSON-able data: at least ``state`` (one of SPEC.md's fixed
    monitor states: ok, firing, no_data, insufficient_data, error) and ``reason``; the rest
    (per-feature verdicts, slices) is the provider's and is recorded as the run's event.
    A run that cannot read its inputs returns ``state: error``; it does not raise.
    """

    @abstractmethod
    def watch(self, prior: Prior, now: float) -> dict[str, Any]: ...


class Notifier(ABC):
    """Providers of alert channels: deliver one message to a channel."""

    @abstractmethod
    def send(self, channel: Prior, message: AlertMessage) -> None: ...


@dataclass(frozen=True)
class Variant:
    """One version of a model or prompt deployed at an endpoint."""

    name: str  # "v3": unique on its endpoint, stable for the life of the deployment
    subject: str  # models.fraud | prompts.support_answer
    #: The subject version's recorded outputs: version, fingerprint, uri.
    outputs: Mapping[str, Any]
    #: The subject's resolved spec (secrets opened): flavor, a prompt's template and model.
    spec: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> VersionRef:
        return VersionRef.of(self.outputs)

    @property
    def version(self) -> Any:
        return self.ref.version

    @property
    def fingerprint(self) -> str | None:
        value = self.outputs.get("fingerprint")
        return str(value) if value is not None else None


#: A share of requests in whole percent. Constructing a ``Traffic`` checks nothing (a serving
#: provider says what is wrong with a split: ``providers.gateway.routes.checked_traffic``);
#: the bound is for pydantic, which checks it where a route document is parsed (``dataplane``).
Percent = Annotated[int, Interval(ge=0, le=100)]


@dataclass(frozen=True)
class Traffic:
    """How an endpoint's requests are split: a stable variant, maybe one candidate.

    ``weight`` is the share (percent) of requests the candidate answers (canary, A/B);
    ``mirror`` the share copied to it in the background, its answers discarded (shadow).
    Assignment is sticky by key (``x-mlx-key`` or the OpenAI body's ``user``). The one type
    of a split: the controller decides one, serving providers set and read it, and the
    gateway parses the route document's ``traffic`` into it (docs/decisions.md, issue 19).
    """

    stable: str
    candidate: str | None = None
    weight: Percent = 0
    mirror: Percent = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stable": self.stable,
            "candidate": self.candidate,
            "weight": self.weight,
            "mirror": self.mirror,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Traffic:
        return cls(
            str(data["stable"]),
            data.get("candidate"),
            int(data.get("weight") or 0),
            int(data.get("mirror") or 0),
        )


class Role(StrEnum):
    """Which side of a traffic split answered: the ``variant`` field of the inference log."""

    STABLE = "stable"
    CANDIDATE = "candidate"
    SHADOW = "shadow"  # a mirrored copy, never returned to the caller


@dataclass(frozen=True)
class VariantMetrics:
    """Traffic one role of an endpoint served in a time window (what analyses judge).

    ``requests`` counts the answers the role gave (a caller who hung up or timed out, 499,
    is left out: nobody got an answer); ``server_errors`` those with status >= 500,
    ``client_errors`` those with a 4xx status.
    """

    requests: int = 0
    server_errors: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    cost_usd: float = 0.0
    feedback_count: int = 0
    feedback_mean: float | None = None
    client_errors: int = 0


class Serving(ABC):
    """Serve versions of a subject at an endpoint (the embedded gateway, SageMaker, …).

    ``endpoint`` is the endpoint as recorded (its outputs hold the provider's ids).
    ``deploy`` makes a version ready to take traffic without giving it any;
    ``set_traffic`` moves traffic at once; ``retire`` removes a variant that no longer
    takes traffic. An endpoint's own create/update uses them create-before-destroy:
    deploy the new version, move traffic, then retire the old one.
    """

    @abstractmethod
    def deploy(self, endpoint: Prior, variant: Variant) -> None: ...

    @abstractmethod
    def set_traffic(self, endpoint: Prior, traffic: Traffic) -> None: ...

    @abstractmethod
    def traffic(self, endpoint: Prior) -> Traffic | None:
        """The split as it is live now (``None``: the endpoint is gone)."""

    @abstractmethod
    def variant_metrics(
        self, endpoint: Prior, since: float, until: float
    ) -> Mapping[Role, VariantMetrics]:
        """Requests, errors, latency, cost and feedback per role, ``since``..``until`` (epoch s)."""

    @abstractmethod
    def retire(self, endpoint: Prior, variant: str) -> None: ...

    def shadow_pairs(self, endpoint: Prior, since: float, until: float) -> list[dict[str, Any]]:
        """Requests the stable and the shadow both answered in the window: per pair,
        ``primary_status``, ``shadow_status``, ``primary_latency_ms``, ``shadow_latency_ms``,
        ``primary_label``, ``shadow_label``. Default: none (no shadow analysis)."""
        return []


class LogSource(ABC):
    """Endpoints whose traffic is logged where mlx can read it: the read side of serving.

    Monitors (and ``mlx logs``, the dashboard) read an endpoint's inference log through
    this, whichever provider serves it: the embedded gateway answers with the database its
    replicas write (``inference/``'s schema), so a monitor can count a window where the data
    lives instead of loading it.
    """

    @abstractmethod
    def log_url(self, endpoint: Prior) -> str | None:
        """The database URL of ``endpoint``'s inference log (None: this run names none)."""


C = TypeVar("C")


class MissingCapability(ProviderError):
    pass


def capability(provider: Provider, kind: type[C], what: str = "") -> C:
    """``provider`` as a ``kind`` (Registry, Gate, Notifier, Serving, LogSource), or a clear
    error."""
    if isinstance(provider, kind):
        return provider
    name = provider.type_name or type(provider).__name__
    purpose = f" ({what})" if what else ""
    raise MissingCapability(
        f"provider {name!r} ({type(provider).__name__}) has no {kind.__name__} capability{purpose}"
    )
