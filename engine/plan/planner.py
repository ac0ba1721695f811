"""Spec + state → ``Plan``. Reads state, never writes it.

For every resource, in dependency order: resolve its references, ask its
provider for problems and a content fingerprint, hash the behaviour fields and
the metadata fields apart, and compare with the recorded hashes. Only
resources whose hashes differ are deep-diffed.

``Planner`` coordinates; each concern is a module of its own: ``lookups`` (what the plan
knows of an address), ``gate_facts`` (gates and releases), ``decide`` (the decision),
``details`` (its explanation), ``reviews``, ``schema_warnings``, ``restore``, ``ignore``
(``lifecycle.ignore_changes``), ``deletes`` (and ``prevent_destroy``), ``scope``
(``--target``), ``changes`` (the plan's values) and ``resolved_spec``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from common.diagnostics import Diagnostic, MlxError
from common.field_diff import paths_differ
from contract import Desired, Prior, Provider, Registry
from engine.apply.heartbeat import Heartbeat
from engine.load import availability, secrets
from engine.load.resolve import Resolver
from engine.load.spec_set import Decl
from engine.plan import changes
from engine.plan.decide import Facts, decide
from engine.plan.deletes import check_prevent_destroy, deletes
from engine.plan.details import KEEPS_HISTORY, Explainer, version_label
from engine.plan.gate_facts import gate_facts, release_pending, releases_through_rollout, run_gates
from engine.plan.hashes import split_hashes
from engine.plan.ignore import keep_recorded
from engine.plan.lookups import Lookups
from engine.plan.model import Action, Pin, Plan, PlanOptions, PlanValues, Reason, ResourceChange
from engine.plan.plan_values import plan_values
from engine.plan.planned import Planned
from engine.plan.resolved_spec import resolved_spec
from engine.plan.restore import local_copy_differs
from engine.plan.reviews import check_reviews, review_warnings
from engine.plan.schema_warnings import input_schema_warnings
from engine.plan.scope import scope as target_scope
from engine.plugins import ProviderSet, prior_of
from engine.policy import evidence
from engine.session import Session
from engine.values import redact, reveal, secret_paths
from specs.introspect import kind_info
from state.status import Status
from state.store import IndexRow, Record, StateReader

__all__ = ["Planned", "Planner"]


class Planner:
    def __init__(
        self,
        session: Session,
        options: PlanOptions | None = None,
        *,
        salt: str | None = None,
        drift: list[dict[str, Any]] | None = None,
        reader: StateReader | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.session = session
        self.options = options or PlanOptions(environment=session.workspace)
        self.spec = session.spec
        self.graph = session.graph
        #: shared with the run's providers, so each record is read once
        self.reader = reader or session.reader()
        #: key of secret digests: the state's; a saved plan's own when re-checking it
        self.salt = salt or self.reader.salt or session.plan_salt
        self.planned: dict[str, Planned] = {}
        self.lookups = Lookups(self.reader, self.graph, self.planned)
        self.diags: list[Diagnostic] = []
        self.plan_warnings: list[str] = []
        #: live drift (``--refresh``); otherwise what the last ``mlx refresh`` recorded
        self._drift = drift
        #: heartbeats for slow checks (hashing a large file, asking a registry), on stderr
        self.beat = Heartbeat(progress) if progress is not None else None

    @property
    def index(self) -> dict[str, IndexRow]:
        """Every recorded resource's index row, as this plan read it."""
        return self.lookups.index

    # -- entry point ----------------------------------------------------------------
    def build(
        self,
        *,
        providers: ProviderSet | None = None,
        with_spec: bool = False,
        with_values: bool = False,
    ) -> Plan:
        """``with_values``: also read every record and keep the declarations (the JSON plan's
        ``prior_state``, ``planned_values``, ``configuration``)."""
        own = providers is None
        self.providers = providers or ProviderSet.for_session(self.session, self._record)
        try:
            return self._build(with_spec, with_values)
        finally:
            if self.beat is not None:
                self.beat.close()
            if own:
                self.providers.close()

    def _build(self, with_spec: bool, with_values: bool) -> Plan:
        timestamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        self.lookups.read_index()
        lineage, serial = self.reader.lineage, self.reader.serial
        scope = target_scope(self.options.targets, self.spec.decls, self.graph.graph, self.index)
        self._prefetch(self.lookups.attribute_targets())
        self._plan_all(scope)
        self._check_prices()
        self._refine_changed()
        if self.options.run_evals:
            run_gates(self.planned.values(), self.beat)
        removed = deletes(self.index, self.spec.decls, scope, self._record, self._prefetch)
        check_prevent_destroy(removed, self.planned.values(), self.spec.source)
        if self.session.protected:
            check_reviews(self.planned.values(), self.session.environment, self.spec.source)
        shown = [p for p in self.planned.values() if p.action is not Action.NOOP or p.flagged_by]
        all_changes = [self._change(p) for p in shown] + removed
        all_changes.sort(key=lambda c: c.address)
        unchanged = sorted(
            p.address for p in self.planned.values() if p.action is Action.NOOP and not p.flagged_by
        )
        return Plan(
            workspace=self.session.workspace,
            lineage=lineage,
            prior_serial=serial,
            spec_digest=self.spec.digest,
            changes=all_changes,
            unchanged=unchanged,
            options=self.options,
            warnings=self._warnings(),
            resolved_spec=self.resolved_spec() if with_spec else {},
            salt=self.salt,
            drift=self._drift_items(),
            timestamp=timestamp,
            values=self._values() if with_values else None,
        )

    def _values(self) -> PlanValues:
        return plan_values(self.spec, self.index, self.planned, self._record, self._prefetch)

    def _plan_all(self, scope: set[str] | None) -> None:
        """Plan every address in scope, in dependency order; raise with every problem found."""
        resolver = Resolver(self.spec, self.graph, self.session.inputs)
        left_out = set(availability.missing(self.spec, scope))
        for address in self.graph.order:
            if scope is not None and address not in scope:
                continue
            if address in left_out:  # a kind mlx cannot act on yet: said, never planned
                self.plan_warnings.append(availability.warning(self.spec, address))
                continue
            try:
                if self.beat is None:
                    self._plan_one(address, resolver)
                else:
                    with self.beat.watch(address, "Still reading"):
                        self._plan_one(address, resolver)
            except MlxError as exc:
                self.diags.extend(exc.diagnostics)
        if self.diags:
            raise MlxError(self.diags)

    # -- one resource ------------------------------------------------------------------
    def _plan_one(self, address: str, resolver: Resolver) -> None:
        decl = self.spec.decls[address]
        body, marked = resolver.resolve_marked(address, self._lookup)
        key = self.providers.key_for(decl.section, body)
        provider = self.providers.get(key, address)
        self.providers.check_section(key, provider, decl.section, address)
        if marked and not self._secrets_allowed(address, body, key, provider):
            return
        inputs, prior_inputs = self._inputs(address)
        pin = self.options.pins.get(address)
        desired = Desired(
            address,
            decl.section,
            decl.name,
            reveal(body) if marked else body,
            None,
            inputs,
            prior_inputs,
            restore=pin.outputs if pin else None,
            env_refs=resolver.env_refs(address),
        )
        found = self._pinned(desired, provider, pin) if pin else self._checked(desired, provider)
        if found is None:
            return
        fingerprint, unrestorable = found
        desired = replace(desired, fingerprint=fingerprint)
        self.providers.specs[address] = desired.spec
        redacted, spec_hash, meta_hash = self._hashed(decl, body, marked)
        planned = Planned(
            address,
            decl.section,
            decl.name,
            key,
            provider,
            body,
            desired,
            redacted,
            spec_hash,
            meta_hash,
            fingerprint,
        )
        planned.unrestorable = unrestorable
        self.planned[address] = planned
        self._decide(planned, self.index.get(address))
        self._add_warnings(planned)

    def _checked(self, desired: Desired, provider: Provider) -> tuple[str | None, None] | None:
        """The provider's problems with ``desired`` (reported: None), else its fingerprint."""
        problems = provider.check(desired)
        for problem in problems:
            self.diags.append(
                Diagnostic(
                    f"{desired.address}: {problem.message}",
                    self.spec.source(desired.address, *problem.path, key=False),
                )
            )
        if problems:
            return None
        return provider.fingerprint(desired), None

    def _pinned(
        self, desired: Desired, provider: Provider, pin: Pin
    ) -> tuple[str | None, str | None] | None:
        """A restore: the pinned fingerprint and why the local copy cannot be restored (if it
        cannot), or None (reported) when the registry no longer holds that version."""
        # the spec's files may hold other bytes by now: the registry must still hold these
        if not (
            isinstance(provider, Registry)
            and provider.has_version(desired.section, desired.name, pin.outputs)
        ):
            self.diags.append(
                Diagnostic(
                    f"{desired.address}: version {version_label(pin.outputs)} "
                    f"({pin.content_hash}) is no longer available in its registry, "
                    "so it cannot be restored; nothing was changed"
                )
            )
            return None
        prior = self.index.get(desired.address)
        why = local_copy_differs(provider, desired, pin.content_hash, self.session.root, prior)
        return pin.content_hash, why

    def _hashed(
        self, decl: Decl, body: dict[str, Any], marked: bool
    ) -> tuple[dict[str, Any], str | None, str]:
        """The body as recorded (secrets as digests, ignored fields as recorded) and its
        spec and metadata hashes."""
        redacted = redact(body, self.salt) if marked else body
        static = decl.hashes is not None  # its hashes were computed when it was parsed
        ignore = (body.get("lifecycle") or {}).get("ignore_changes") or []
        if decl.address in self.index and ignore:
            rec = self._record(decl.address)
            if rec is not None:
                redacted = keep_recorded(redacted, rec.attributes, ignore)
            static = False
        if static:
            spec_hash, meta_hash = decl.hashes  # type: ignore[misc]
        else:
            spec_hash, meta_hash = split_hashes(decl.section, redacted, maybe_unknown=marked)
        return redacted, spec_hash, meta_hash

    def _add_warnings(self, planned: Planned) -> None:
        """What the plan says next to this change, or (for a no-op) on its own."""
        unrestorable = planned.unrestorable
        if unrestorable and planned.action is Action.NOOP:
            self.plan_warnings.append(f"{planned.address}: {unrestorable}")
        elif unrestorable:
            planned.warnings.append(unrestorable)
        if planned.action is not Action.NOOP:
            planned.warnings.extend(review_warnings(planned))
            planned.warnings.extend(input_schema_warnings(planned, self.lookups))
        if planned.changes_behaviour and kind_info(planned.section).release_field:
            opt_out = evidence.opt_out_warning(self.spec.decls, planned.address, planned.body)
            if opt_out:
                planned.warnings.append(opt_out)

    def _secrets_allowed(
        self, address: str, body: dict[str, Any], key: str, provider: Provider
    ) -> bool:
        """A secret may reach a provider only through a field it declares secret."""
        section = address.split(".", 1)[0]
        allowed = tuple(provider.secret_fields.get(section, ()))
        bad = secrets.exposed(self.spec, address, secret_paths(body), key, allowed)
        self.diags.extend(bad)
        return not bad

    def _decide(self, p: Planned, prior: IndexRow | None) -> None:
        upstream = self._upstream(p)
        decision = decide(self._facts(p, prior, upstream))
        p.action, p.reasons = decision.action, list(decision.reasons)
        p.behaviour_changed = decision.behaviour_changed
        p.flagged_by = list(decision.flagged_by)
        p.details.extend(Explainer(self).explain(p, prior, upstream))

    def _upstream(self, p: Planned) -> tuple[str, ...]:
        """Dependencies whose behaviour changes in this plan (ordering-only edges aside)."""
        return tuple(
            sorted(
                dep
                for dep in self.graph.graph.predecessors(p.address)
                if dep in self.planned
                and self.planned[dep].changes_behaviour
                and (dep, p.address) not in self.graph.ordering
            )
        )

    def _facts(self, p: Planned, prior: IndexRow | None, upstream: tuple[str, ...]) -> Facts:
        info = kind_info(p.section)
        status = None
        if prior is not None:
            status = Status(self.options.drift.get(p.address, prior.status))
        behaviour = prior is not None and (p.spec_hash is None or p.spec_hash != prior.spec_hash)
        content = prior is not None and p.content_hash != prior.content_hash
        return Facts(
            status=status,
            is_gate=info.is_gate,
            keeps_history=info.keeps_history,
            created=self._created(p.address, status),
            replace_requested=p.address in self.options.replace,
            provider_changed=prior is not None and prior.provider != p.provider_key,
            behaviour=behaviour,
            unknown_inputs=p.spec_hash is None,
            content=content,
            meta=prior is not None and p.meta_hash != prior.meta_hash,
            restoring=p.desired.restore is not None,
            unrestorable=p.unrestorable is not None,
            upstream=upstream,
            follows_upstream=info.follows_upstream
            and not (info.release_field and self._releases_through_rollout(p)),
            rerun_gates=self.options.rerun_gates,
            **(self._gate_facts(p, status) if info.is_gate else {}),
            release_pending=bool(info.release_field) and self._release_pending(p, prior),
        )

    def _created(self, address: str, status: Status | None) -> bool:
        """A tainted record with no outputs: its create never completed."""
        if status is not Status.TAINTED:
            return True
        rec = self._record(address)
        return bool(rec and rec.outputs)

    def _refine_changed(self) -> None:
        """Replace-forcing fields, looked up only for resources that change."""
        changed = [
            p for p in self.planned.values() if p.action is Action.UPDATE and p.behaviour_changed
        ]
        self._prefetch(p.address for p in changed)
        for p in changed:
            prior = self._record(p.address)
            if prior is None:
                continue
            forced = paths_differ(prior.attributes, p.redacted, kind_info(p.section).replace_fields)
            forced += list(p.provider.diff(self._prior(prior), p.desired).replace_fields)
            if forced:
                p.action = Action.REPLACE
                p.reasons = [Reason.REPLACE_FIELD]
                p.details.append("cannot update in place: " + ", ".join(sorted(set(forced))))
                if kind_info(p.section).keeps_history:
                    p.details.append(KEEPS_HISTORY)

    # -- gates and releases (engine.plan.gate_facts) -------------------------------------
    def fingerprint_now(self, address: str) -> str | None:
        """The fingerprint ``address`` will have once this plan is applied (None: unknown)."""
        return self.lookups.fingerprint_now(address)

    def version_now(self, address: str) -> Any:
        return self.lookups.version_now(address)

    def _gate_facts(self, p: Planned, status: Status | None) -> dict[str, bool]:
        log = self.reader.evidence()
        return gate_facts(p, status, log, self._record, self.fingerprint_now)

    def _release_pending(self, p: Planned, prior: IndexRow | None) -> bool:
        """What users get (the record) differs from the subject's version now."""
        pending, warning = release_pending(
            p,
            prior,
            through_rollout=lambda: self._releases_through_rollout(p),
            record=self._record,
            fingerprint_now=self.fingerprint_now,
            planned=self.planned,
        )
        if warning is not None:
            self.plan_warnings.append(warning)
        return pending

    def _releases_through_rollout(self, p: Planned) -> bool:
        return releases_through_rollout(self.spec.decls, self.graph.graph, p.address)

    # -- lookups (engine.plan.lookups) -----------------------------------------------------
    def _lookup(self, address: str, attr: str) -> Any:
        return self.lookups.lookup(address, attr)

    def _inputs(self, address: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        return self.lookups.inputs(address)

    def recorded(self, address: str) -> Record | None:
        """A resource's record as this plan read it (``None``: not recorded)."""
        return self._record(address)

    def _record(self, address: str) -> Record | None:
        return self.lookups.record(address)

    def _prefetch(self, addresses: Iterable[str]) -> None:
        self.lookups.prefetch(addresses)

    @staticmethod
    def _prior(rec: Record) -> Prior:
        return prior_of(rec)

    def _drift_items(self) -> list[dict[str, Any]]:
        if self._drift is not None:
            return self._drift
        from engine.apply.drift import recorded

        return [d.as_dict() for d in recorded(self.reader, self.index)]

    def _check_prices(self) -> None:
        """Models served prompts name that the gateway could not price: warnings, or errors
        with ``--strict-prices`` (``engine.plan.price_warnings``)."""
        from engine.plan.price_warnings import price_errors, price_warnings

        resolved = {address: p.body for address, p in self.planned.items()}
        if self.options.strict_prices:
            errors = price_errors(self.spec, resolved)
            if errors:
                raise MlxError(errors)
            return
        self.plan_warnings.extend(price_warnings(self.spec, resolved))

    def _warnings(self) -> list[str]:
        return list(self.plan_warnings)

    # -- plan values (engine.plan.changes) -------------------------------------------------
    def _change(self, p: Planned) -> ResourceChange:
        deps = sorted(self.graph.graph.predecessors(p.address))
        rec = self._record(p.address) if p.action is not Action.NOOP else None
        return changes.change(p, deps, self.index.get(p.address), rec)

    def resolved_spec(self) -> dict[str, Any]:
        """What a state version stores: enough for rollback, diff and show."""
        return resolved_spec(self.session, self.planned)
