"""Finding providers: the ``mlx.providers`` entry-point group, loaded lazily by ``type``.

One broken plugin breaks nothing else: only the types a spec uses are imported.
A resource that names no provider gets the embedded default for its kind. The types
mlx's own controllers answer for (``rollout``) are built in: ``controller.ADAPTERS``,
looked up before the entry points.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from common.diagnostics import Diagnostic, MlxError, did_you_mean
from contract import Change, Context, Desired, MissingExtra, Prior, Provider, Result
from controller import ADAPTERS
from engine.load.spec_set import SpecSet
from specs.introspect import kind_info

GROUP = "mlx.providers"

#: Extras that provide a type, for a helpful message when it is missing.
EXTRAS = {"mlflow": "mlflow", "s3": "aws", "sns": "aws", "sagemaker": "aws", "gateway": "serve"}


def _default_types() -> set[str]:
    """Provider types some kind uses when a resource names none."""
    from specs.kinds import kinds

    return {k.default_provider for k in kinds().values() if k.default_provider}


@cache
def available_types() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def known_types() -> list[str]:
    """Every provider type there is: the controllers' adapters and the installed plugins."""
    return sorted(set(ADAPTERS) | set(available_types()))


def load_class(type_name: str) -> type[Provider]:
    if type_name == "python":
        raise MlxError("the `python` provider type is built from its `factory` setting")
    if type_name in ADAPTERS:  # a controller's adapter: mlx's own, not a plugin
        return import_factory(ADAPTERS[type_name])
    ep = available_types().get(type_name)
    if ep is None:
        raise _UnknownType(type_name)
    try:
        cls = ep.load()
    except ImportError as exc:
        extra = EXTRAS.get(type_name, type_name)
        raise MlxError(
            f"provider type {type_name!r} could not be loaded ({exc}); "
            f"if it needs an optional dependency: pip install 'mlxctl[{extra}]'"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise MlxError(f"entry point {type_name!r} in {GROUP} is not an mlx Provider ({cls!r})")
    return cls


def import_factory(spec: str) -> type[Provider]:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise MlxError(f"cannot import provider factory {spec!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Provider)):
        raise MlxError(f"provider factory {spec!r} is not an mlx Provider class")
    return obj


def provider_key(section: str, body: Mapping[str, Any]) -> str:
    """A resource's provider as recorded in state: a configured name or ``default:<type>``."""
    named = body.get("provider")
    if named:
        return str(named)
    default = kind_info(section).default_provider
    return f"default:{default if default is not None else body.get('type')}"


@cache
def missing_default_types() -> frozenset[str]:
    """Default provider types of registered kinds that no installed provider offers (kinds
    not built yet: monitors, budgets)."""
    return frozenset(t for t in _default_types() if t not in known_types())


def missing_default_type(key: str) -> str | None:
    """The type a ``default:<type>`` key names when no provider of it is installed;
    ``None`` for every other key."""
    if not key.startswith("default:"):
        return None
    type_name = key.split(":", 1)[1]
    return type_name if type_name in missing_default_types() else None


def provider_class(key: str, configs: Mapping[str, Mapping[str, Any]]) -> type[Provider] | None:
    """The class behind a provider key, imported but not created; ``None`` if it cannot be
    found or loaded (the plan, which builds it, says why)."""
    try:
        if key.startswith("default:"):
            return load_class(key.split(":", 1)[1])
        config = configs.get(key)
        if config is None:
            return None
        if config.get("type") == "python":
            return import_factory(str(config.get("factory")))
        return load_class(str(config.get("type")))
    except MlxError:
        return None


class _UnknownType(MlxError):
    def __init__(self, type_name: str):
        known = known_types()
        super().__init__(
            f"unknown provider type {type_name!r}{did_you_mean(type_name, known)}; "
            f"installed types: {', '.join(known)}"
        )
        self.type_name = type_name


class Unsupported(Provider):
    """Stands in for a kind whose provider has not been installed or written yet."""

    def __init__(self, type_name: str, context: Context):
        super().__init__({}, context)
        self.missing_type = type_name

    def plan_inputs(self) -> list[str] | None:
        return []

    def _refuse(self, address: str) -> Result:
        from contract import ProviderError

        raise ProviderError(
            f"{address}: not yet supported by this provider "
            f"(no provider of type {self.missing_type!r} is installed)"
        )

    def create(self, desired: Desired) -> Result:
        return self._refuse(desired.address)

    def update(self, prior: Prior, desired: Desired, change: Change) -> Result:
        return self._refuse(desired.address)

    def delete(self, prior: Prior) -> None:
        return None


class ProviderSet:
    """The provider instances of one run, created on first use and closed at the end."""

    def __init__(
        self,
        spec: SpecSet,
        configs: Mapping[str, Mapping[str, Any]],
        context: Context,
        record: Callable[[str], Any] | None = None,
        declared: Callable[[str], Mapping[str, Any] | None] | None = None,
        released: Callable[[str, str | None], Any] | None = None,
        recorded_configs: Callable[[str], Mapping[str, Any] | None] | None = None,
        passed: Callable[[str, str], Mapping[str, Any] | None] | None = None,
    ):
        from engine.peers import EnginePeers

        self.spec, self.configs = spec, configs
        #: ``address -> state.store.Record | None``, as of the start of the run.
        self._record = record or (lambda _address: None)
        #: ``address -> resolved spec`` of this run; set by the planner and the applier.
        self.specs: dict[str, Mapping[str, Any]] = {}
        self._declared = declared
        #: provider configs a state version recorded, for deleting what lost its provider
        self._recorded_configs = recorded_configs or (lambda _name: None)
        peers = EnginePeers(self.provider_for, self._prior, self._spec_of, released, passed)
        self.context = replace(context, peers=peers)
        self._instances: dict[str, Provider] = {}
        self._lock = threading.RLock()

    @classmethod
    def for_session(cls, session: Any, record: Callable[[str], Any] | None = None) -> ProviderSet:
        """The providers of ``session``'s spec; ``record`` reads state as of the run's start."""
        from engine.alerting import through_outbox
        from engine.load.resolve import (
            declared_specs,
            recorded_provider_configs,
            resolve_provider_configs,
        )
        from engine.peers import EnginePeers
        from engine.policy.released import passed_finder, released_finder

        reader = session.reader()
        record = record or reader.record
        made = cls(
            session.spec,
            resolve_provider_configs(session),
            session.provider_context(),
            record,
            declared_specs(session, record),
            released_finder(reader, record),
            recorded_provider_configs(session),
            passed_finder(reader),
        )
        if isinstance(made.context.peers, EnginePeers):
            made.context.peers.outbox = through_outbox(session.store.engine, session.workspace)
        return made

    def _spec_of(self, address: str) -> Mapping[str, Any] | None:
        if address in self.specs:
            return self.specs[address]
        return self._declared(address) if self._declared is not None else None

    def provider_for(self, address: str) -> tuple[str, Provider]:
        """The provider of a declared (or recorded) resource, by address."""
        decl = self.spec.decls.get(address)
        if decl is not None:
            key = self.key_for(decl.section, decl.body)
        else:
            rec = self._record(address)
            if rec is None:
                raise MlxError(f"{address} is neither declared nor recorded in the state")
            key = rec.provider
        return key, self.get(key, address)

    def _prior(self, address: str) -> Prior | None:
        rec = self._record(address)
        return prior_of(rec) if rec is not None else None

    def key_for(self, section: str, body: Mapping[str, Any]) -> str:
        return provider_key(section, body)

    def get(self, key: str, address: str | None = None) -> Provider:
        with self._lock:
            return self._get(key, address)

    def _get(self, key: str, address: str | None) -> Provider:
        if key in self._instances:
            return self._instances[key]
        if key.startswith("default:"):
            type_name = key.split(":", 1)[1]
            config: Mapping[str, Any] = {"type": type_name}
        else:
            recorded = None if key in self.configs else self._recorded_configs(key)
            if recorded is not None:
                self._instances[key] = self._build(key, str(recorded["type"]), recorded)
                return self._instances[key]
            if key not in self.configs:
                src = self.spec.source(address, "provider", key=False) if address else None
                raise MlxError(
                    Diagnostic(
                        f"{address or 'a resource'} names provider {key!r}, which is not "
                        f"declared under `providers:`{did_you_mean(key, self.configs)}",
                        src,
                    )
                )
            config = self.configs[key]
            type_name = str(config["type"])
        self._instances[key] = self._build(key, type_name, config)
        return self._instances[key]

    def _build(self, key: str, type_name: str, config: Mapping[str, Any]) -> Provider:
        try:
            if type_name == "python":
                cls = import_factory(str(config["factory"]))
                return cls(dict(config.get("config", {})), self.context)
            cls = load_class(type_name)
            return cls(dict(config), self.context)
        except _UnknownType as exc:
            if key.startswith("default:") and type_name in _default_types():
                return Unsupported(type_name, self.context)
            src = (
                None if key.startswith("default:") else self.spec.source(f"providers.{key}", "type")
            )
            raise MlxError(Diagnostic(exc.diagnostics[0].summary, src)) from None
        except MissingExtra as exc:
            raise MlxError(f"provider {key!r}: {exc}") from exc

    def check_section(self, key: str, provider: Provider, section: str, address: str) -> None:
        if isinstance(provider, Unsupported):
            return
        if provider.sections and section not in provider.sections:
            raise MlxError(
                Diagnostic(
                    f"{address}: provider {key!r} ({type(provider).__name__}) cannot manage "
                    f"{section}; it manages {', '.join(sorted(provider.sections))}",
                    self.spec.source(address, "provider", key=False),
                )
            )

    def plan_inputs(self) -> list[str] | None:
        """Files behind every answer the providers gave while planning, or ``None``."""
        import inspect

        out: list[str] = []
        for provider in self._instances.values():
            paths = provider.plan_inputs()
            if paths is None:
                return None
            out.extend(paths)
            out.append(inspect.getfile(type(provider)))  # a plugin upgrade invalidates too
        return sorted(set(out))

    def close(self) -> None:
        for provider in self._instances.values():
            with contextlib.suppress(Exception):  # closing must not mask the run's result
                provider.close()


def prior_of(rec: Any, outputs: Mapping[str, Any] | None = None) -> Prior:
    """What a provider is told about a recorded resource (``state.store.Record``)."""
    return Prior(
        rec.address,
        rec.section,
        rec.name,
        rec.attributes,
        rec.outputs if outputs is None else outputs,
        rec.content_hash,
        rec.status,
    )
