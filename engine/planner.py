"""Spec + state → ``Plan``. Reads state, never writes it.

For every resource, in dependency order: resolve its references, ask its
provider for problems and a content fingerprint, hash the behaviour fields and
the metadata fields apart, and compare with the recorded hashes. Only
resources whose hashes differ are deep-diffed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from engine.diagnostics import Diagnostic, MlxError, did_you_mean
from engine.fielddiff import field_changes, flatten, paths_differ
from engine.hashing import split_hashes
from engine.plan import Action, Change, FieldChange, Plan, PlanOptions, Reason
from engine.plugins import ProviderSet, Unsupported
from engine.resolve import Resolver
from engine.session import Session
from engine.values import UNKNOWN, redact, reveal
from providers.contract import Desired, Prior, Provider
from specs.introspect import kind_info
from state.store import IndexRow, Record, StateReader


@dataclass
class Planned:
    """The planner's working view of one resource (not part of the plan value)."""

    address: str
    section: str
    name: str
    provider_key: str
    provider: Provider
    body: dict[str, Any]  # resolved, secrets as Secret
    desired: Desired
    redacted: dict[str, Any]
    spec_hash: str | None
    meta_hash: str
    content_hash: str | None
    action: Action = Action.NOOP
    reasons: list[Reason] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    flagged_by: list[str] = field(default_factory=list)
    behaviour_changed: bool = False
    warnings: list[str] = field(default_factory=list)
    gate: dict[str, Any] | None = None

    @property
    def changes_behaviour(self) -> bool:
        return self.action in (Action.CREATE, Action.REPLACE, Action.RUN) or (
            self.action is Action.UPDATE and self.behaviour_changed
        )


class _LazyOutputs(Mapping[str, Any]):
    """``{address: recorded outputs}``, read from state only when a key is looked up."""

    def __init__(self, addresses: list[str], record: Callable[[str], Record | None]):
        self._addresses = addresses
        self._record = record

    def __getitem__(self, address: str) -> Any:
        if address not in self._addresses:
            raise KeyError(address)
        rec = self._record(address)
        if rec is None:
            raise KeyError(address)
        return rec.outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self._addresses)

    def __len__(self) -> int:
        return len(self._addresses)


def _review_warnings(p: Planned) -> list[str]:
    """What a reviewer should look at twice (shown in text and Markdown plans)."""
    out = []
    if (p.body.get("lifecycle") or {}).get("prevent_destroy"):
        out.append("has lifecycle.prevent_destroy: it changes here, but is never destroyed")
    card = p.body.get("card") or {}
    review = card.get("review") or {}
    if p.section == "models" and card.get("risk") == "high" and not review.get("approved_by"):
        out.append("card.risk is high and card.review names no approver")
    if p.section == "datasets" and Reason.CONTENT_CHANGED in p.reasons:
        out.append("its bytes changed while its spec did not: everything built on it is flagged")
    return out


def _version_label(outputs: Mapping[str, Any]) -> str:
    number = outputs.get("version", outputs.get("revision"))
    return str(number) if number is not None else "?"


def _field_default(section: str, attr: str) -> Any:
    for variant in kind_info(section).variants:
        for name, f in variant.model_fields.items():
            if (f.alias or name) == attr and not f.is_required():
                return f.get_default(call_default_factory=True)
    return None


def _at(value: Any, dotted: str) -> tuple[bool, Any]:
    node = value
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def _put(value: dict[str, Any], dotted: str, new: Any) -> None:
    parts = dotted.split(".")
    node = value
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node[parts[-1]] = new


class Planner:
    def __init__(
        self,
        session: Session,
        options: PlanOptions | None = None,
        *,
        salt: str | None = None,
        drift: list[dict[str, Any]] | None = None,
        reader: StateReader | None = None,
    ):
        self.session = session
        self.options = options or PlanOptions(environment=session.workspace)
        self.spec = session.spec
        self.graph = session.graph
        #: shared with the run's providers, so each record is read once
        self.reader = reader or session.reader()
        #: key of secret digests: the state's; a saved plan's own when re-checking it
        self.salt = salt or self.reader.salt or session.plan_salt
        self.index: dict[str, IndexRow] = {}
        self.planned: dict[str, Planned] = {}
        self.diags: list[Diagnostic] = []
        self.plan_warnings: list[str] = []
        #: live drift (``--refresh``); otherwise what the last ``mlx refresh`` recorded
        self._drift = drift

    # -- entry point ----------------------------------------------------------------
    def build(self, *, providers: ProviderSet | None = None, with_spec: bool = False) -> Plan:
        own = providers is None
        self.providers = providers or ProviderSet.for_session(self.session, self._record)
        try:
            return self._build(with_spec)
        finally:
            if own:
                self.providers.close()

    def _build(self, with_spec: bool) -> Plan:
        self.index = self.reader.index()
        lineage, serial = self.reader.lineage, self.reader.serial
        scope = self._scope()
        self._prefetch(self._attribute_targets())
        resolver = Resolver(self.spec, self.graph, self.session.inputs)
        for address in self.graph.order:
            if scope is not None and address not in scope:
                continue
            try:
                self._plan_one(address, resolver)
            except MlxError as exc:
                self.diags.extend(exc.diagnostics)
        if self.diags:
            raise MlxError(self.diags)
        self._refine_changed()
        if self.options.run_evals:
            self._run_gates()
        deletes = self._deletes(scope)
        self._check_prevent_destroy(deletes)
        if self.session.protected:
            self._check_reviews()
        shown = [p for p in self.planned.values() if p.action is not Action.NOOP or p.flagged_by]
        changes = [self._change(p) for p in shown] + deletes
        changes.sort(key=lambda c: c.address)
        unchanged = sorted(
            p.address for p in self.planned.values() if p.action is Action.NOOP and not p.flagged_by
        )
        plan = Plan(
            workspace=self.session.workspace,
            lineage=lineage,
            prior_serial=serial,
            spec_digest=self.spec.digest,
            changes=changes,
            unchanged=unchanged,
            options=self.options,
            warnings=self._warnings(),
            resolved_spec=self.resolved_spec() if with_spec else {},
            salt=self.salt,
            drift=self._drift_items(),
        )
        return plan

    # -- one resource ------------------------------------------------------------------
    def _plan_one(self, address: str, resolver: Resolver) -> None:
        decl = self.spec.decls[address]
        body, marked = resolver.resolve_marked(address, self._lookup)
        key = self.providers.key_for(decl.section, body)
        provider = self.providers.get(key, address)
        self.providers.check_section(key, provider, decl.section, address)
        inputs, prior_inputs = self._inputs(address)
        static = decl.hashes is not None  # its hashes were computed when it was parsed
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
        )
        if pin is not None:
            # the spec's files may hold other bytes by now: the registry must still hold these
            if not provider.has_version(decl.section, decl.name, pin.outputs):
                self.diags.append(
                    Diagnostic(
                        f"{address}: version {_version_label(pin.outputs)} "
                        f"({pin.content_hash}) is no longer available in its registry, "
                        "so it cannot be restored; nothing was changed"
                    )
                )
                return
            fingerprint = pin.content_hash
        else:
            problems = provider.check(desired)
            for problem in problems:
                self.diags.append(
                    Diagnostic(
                        f"{address}: {problem.message}",
                        self.spec.source(address, *problem.path, key=False),
                    )
                )
            if problems:
                return
            fingerprint = provider.fingerprint(desired)
        desired = Desired(
            address,
            decl.section,
            decl.name,
            desired.spec,
            fingerprint,
            inputs,
            prior_inputs,
            desired.restore,
        )
        self.providers.specs[address] = desired.spec
        redacted = redact(body, self.salt) if marked else body
        prior = self.index.get(address)
        ignore = (body.get("lifecycle") or {}).get("ignore_changes") or []
        if prior is not None and ignore:
            redacted = self._apply_ignore(address, redacted, ignore)
            static = False
        if static:
            spec_hash, meta_hash = decl.hashes  # type: ignore[misc]
        else:
            spec_hash, meta_hash = split_hashes(decl.section, redacted, maybe_unknown=marked)
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
        if isinstance(provider, Unsupported):
            self.plan_warnings.append(
                f"no provider for {decl.section} is installed yet: applying {address} will fail"
            )
        self.planned[address] = planned
        self._decide(planned, prior)
        if planned.action is not Action.NOOP:
            planned.warnings.extend(_review_warnings(planned))

    def _apply_ignore(
        self, address: str, redacted: dict[str, Any], paths: list[str]
    ) -> dict[str, Any]:
        """``lifecycle.ignore_changes``: keep the recorded value of these fields."""
        prior = self._record(address)
        if prior is None:
            return redacted
        out = dict(redacted)
        for path in paths:
            found, old = _at(prior.attributes, path)
            if found:
                _put(out, path, old)
        return out

    def _decide(self, p: Planned, prior: IndexRow | None) -> None:
        is_gate = kind_info(p.section).is_gate
        upstream = [
            dep
            for dep in self.graph.graph.predecessors(p.address)
            if dep in self.planned and self.planned[dep].changes_behaviour
        ]
        if prior is None:
            p.action, p.reasons = (Action.RUN if is_gate else Action.CREATE), [Reason.NEW]
            return
        status = self.options.drift.get(p.address, prior.status)
        if status == "tainted":
            p.action, p.reasons = (Action.RUN if is_gate else Action.REPLACE), [Reason.TAINTED]
            return
        if status == "missing":
            p.action = Action.RUN if is_gate else Action.CREATE
            p.reasons = [Reason.DELETED_OUTSIDE]
            return
        if status == "drifted":
            # restored to what was recorded: the provider repairs it (the applier says so),
            # but its dependents see the same version as before and are not re-run
            p.action = Action.RUN if is_gate else Action.UPDATE
            p.reasons = [Reason.DRIFTED]
            return
        if p.address in self.options.replace:
            p.action, p.reasons = (Action.RUN if is_gate else Action.REPLACE), [Reason.REQUESTED]
            return
        if prior.provider != p.provider_key:
            p.action, p.reasons = Action.REPLACE, [Reason.PROVIDER_CHANGED]
            p.details.append(f"provider: {prior.provider} -> {p.provider_key}")
            return
        behaviour = p.spec_hash is None or p.spec_hash != prior.spec_hash
        content = p.content_hash != prior.content_hash
        meta = p.meta_hash != prior.meta_hash
        if is_gate:
            if behaviour or content:
                p.action, p.reasons = Action.RUN, [Reason.SPEC_CHANGED]
            elif upstream:
                p.action, p.reasons = Action.RUN, [Reason.GATE_INPUTS_CHANGED]
                p.details.append("changed inputs: " + ", ".join(sorted(upstream)))
            elif prior.status == "failed":
                p.action, p.reasons = Action.RUN, [Reason.GATE_NOT_PASSED]
            elif meta:
                p.action, p.reasons = Action.UPDATE, [Reason.METADATA_CHANGED]
            return
        p.flagged_by = sorted(upstream)
        reasons: list[Reason] = []
        if behaviour:
            reasons.append(Reason.UNKNOWN_INPUTS if p.spec_hash is None else Reason.SPEC_CHANGED)
        if content and p.desired.restore is not None:
            reasons.append(Reason.RESTORED)
            p.details.append(
                f"back to version {_version_label(p.desired.restore)} ({p.content_hash})"
            )
        elif content:
            reasons.append(Reason.CONTENT_CHANGED)
            p.details.append(self._content_detail(p, prior))
        if meta:
            reasons.append(Reason.METADATA_CHANGED)
        if upstream and kind_info(p.section).follows_upstream:
            reasons.append(Reason.UPSTREAM_CHANGED)
            p.details.append("changed dependencies: " + ", ".join(sorted(upstream)))
            behaviour = True
        if reasons:
            p.action, p.reasons = Action.UPDATE, reasons
            p.behaviour_changed = behaviour or content
            if reasons == [Reason.METADATA_CHANGED]:
                p.details.append("metadata only: updated in place, no new version, no gate re-run")

    def _content_detail(self, p: Planned, prior: IndexRow) -> str:
        field_name = kind_info(p.section).content_field
        found, value = _at(p.body, field_name) if field_name else (False, None)
        where = f" {value}:" if found and isinstance(value, str) else ""
        old = (prior.content_hash or "none")[:19]
        new = (p.content_hash or "none")[:19]
        return f"bytes changed under an unchanged spec —{where} {old}… -> {new}…"

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

    def _run_gates(self) -> None:
        """``--run-evals``: judge each gate this plan would run, changing nothing."""
        from providers.contract import Gate, ProviderError

        for p in self.planned.values():
            if p.action is not Action.RUN or not isinstance(p.provider, Gate):
                continue
            try:
                result = p.provider.evaluate(p.desired)
            except ProviderError as exc:
                p.gate = {"passed": False, "message": str(exc), "report": str(exc)}
                continue
            p.gate = {
                "passed": not result.failed,
                "message": result.message,
                "report": result.outputs.get("report"),
                "evidence": result.outputs.get("evidence"),
            }

    # -- lookups -----------------------------------------------------------------------
    def _lookup(self, address: str, attr: str) -> Any:
        p = self.planned.get(address)
        if p is None:  # outside a --target scope: take the recorded value
            rec = self._record(address)
            if rec is None:
                return UNKNOWN
            return rec.outputs.get(attr, rec.attributes.get(attr))
        if attr in kind_info(p.section).field_names:
            if attr in p.body:
                return p.body[attr]
            return _field_default(p.section, attr)
        if p.changes_behaviour:
            known = p.provider.planned_outputs(p.desired)
            return known.get(attr, UNKNOWN)
        rec = self._record(address)
        return rec.outputs.get(attr) if rec else UNKNOWN

    def _inputs(self, address: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        """Outputs of dependencies: as they will be (where known), and as recorded.

        Lazy: most providers never look at them while planning, and fetching them
        for every resource would cost a query each.
        """
        deps = [d for d in self.graph.graph.predecessors(address) if d in self.index]
        unchanged = [d for d in deps if d in self.planned and not self.planned[d].changes_behaviour]
        return _LazyOutputs(unchanged, self._record), _LazyOutputs(deps, self._record)

    def _record(self, address: str) -> Record | None:
        return self.reader.record(address) if address in self.index else None

    def _attribute_targets(self) -> set[str]:
        """Resources whose attributes other resources reference (``${x.y.version}``)."""
        from engine.refs import Ref

        out = set()
        for templates in self.graph.templates.values():
            for parts in templates.values():
                for part in parts:
                    if isinstance(part, Ref) and part.is_resource and part.attr:
                        out.add(part.address)
        return out

    def _prefetch(self, addresses: Iterable[str]) -> None:
        self.reader.remember(a for a in addresses if a in self.index)

    @staticmethod
    def _prior(rec: Record) -> Prior:
        return Prior(
            rec.address, rec.section, rec.name, rec.attributes, rec.outputs, rec.content_hash
        )

    # -- scope, deletes, checks --------------------------------------------------------
    def _scope(self) -> set[str] | None:
        if not self.options.targets:
            return None
        scope: set[str] = set()
        for target in self.options.targets:
            if target in self.spec.decls:
                scope.add(target)
                scope |= nx.ancestors(self.graph.graph, target)
            elif target in self.index:
                scope.add(target)  # a resource removed from the spec: target its deletion
            else:
                known = list(self.spec.decls) + list(self.index)
                raise MlxError(f"--target {target}: no such resource{did_you_mean(target, known)}")
        return scope

    def _deletes(self, scope: set[str] | None) -> list[Change]:
        gone = [a for a in self.index if a not in self.spec.decls]
        if scope is not None:
            gone = [a for a in gone if a in scope]
        self._prefetch(gone)
        out = []
        for address in gone:
            rec = self._record(address)
            row = self.index[address]
            before = rec.attributes if rec else None
            out.append(
                Change(
                    address=address,
                    section=row.section,
                    name=address.split(".", 1)[1],
                    provider=row.provider,
                    action=Action.DELETE,
                    reasons=[Reason.REMOVED],
                    before=before,
                    after=None,
                    fields=[],
                    depends_on=rec.dependencies if rec else [],
                    prior_serial=row.serial,
                )
            )
        return out

    def _check_prevent_destroy(self, deletes: list[Change]) -> None:
        diags = []
        for change in deletes:
            life = (change.before or {}).get("lifecycle") or {}
            if life.get("prevent_destroy"):
                diags.append(
                    Diagnostic(
                        f"{change.address} has lifecycle.prevent_destroy set, but this plan would "
                        "destroy it (it was removed from the spec)",
                        detail="Put it back, or first apply with prevent_destroy: false, "
                        "then remove it.",
                    )
                )
        for p in self.planned.values():
            if p.action is Action.REPLACE and (p.body.get("lifecycle") or {}).get(
                "prevent_destroy"
            ):
                diags.append(
                    Diagnostic(
                        f"{p.address} has lifecycle.prevent_destroy set, but this plan must "
                        f"replace it ({', '.join(r.value for r in p.reasons)})",
                        self.spec.source(p.address, "lifecycle", "prevent_destroy"),
                    )
                )
        if diags:
            raise MlxError(diags)

    def _drift_items(self) -> list[dict[str, Any]]:
        if self._drift is not None:
            return self._drift
        from engine.refresh import recorded

        return [d.as_dict() for d in recorded(self.reader, self.index)]

    def _check_reviews(self) -> None:
        """A protected environment takes no ``risk: high`` model without a recorded review."""
        diags = []
        for p in self.planned.values():
            if p.section != "models" or p.action is Action.NOOP:
                continue
            card = p.body.get("card") or {}
            review = card.get("review") or {}
            if card.get("risk") == "high" and not (
                review.get("approved_by") and review.get("approved_at")
            ):
                diags.append(
                    Diagnostic(
                        f"{p.address} has card.risk: high; environment "
                        f'"{self.session.environment}" is protected and needs card.review '
                        "(approved_by and approved_at) before it can ship",
                        self.spec.source(p.address, "card", "risk"),
                    )
                )
        if diags:
            raise MlxError(diags)

    def _warnings(self) -> list[str]:
        return list(self.plan_warnings)

    # -- plan values --------------------------------------------------------------------
    def _change(self, p: Planned) -> Change:
        deps = sorted(self.graph.graph.predecessors(p.address))
        row = self.index.get(p.address)
        base: dict[str, Any] = dict(
            address=p.address,
            section=p.section,
            name=p.name,
            provider=p.provider_key,
            action=p.action,
            reasons=p.reasons,
            details=p.details,
            flagged_by=p.flagged_by,
            depends_on=deps,
            spec_hash=p.spec_hash,
            meta_hash=p.meta_hash,
            content_hash=p.content_hash,
            prior_serial=row.serial if row else None,
            warnings=p.warnings,
            restore=dict(p.desired.restore) if p.desired.restore is not None else None,
            gate=p.gate,
        )
        if p.action is Action.NOOP:
            return Change.model_construct(**base, before=None, after=None, fields=[])
        rec = self._record(p.address)
        before = dict(rec.attributes) if rec else None
        after = dict(p.redacted)
        fields = (
            field_changes(before, after)
            if before is not None
            else [
                FieldChange(path=k, before=None, after=v, kind="add")
                for k, v in sorted(flatten(after))
            ]
        )
        fields += self._output_changes(p, rec)
        return Change(**base, before=before, after=after, fields=fields)

    def _output_changes(self, p: Planned, rec: Record | None) -> list[FieldChange]:
        """Computed attributes (version, uri, fingerprint) as the plan expects them to move."""
        if not (p.changes_behaviour or rec is None):
            return []
        known = p.provider.planned_outputs(p.desired)
        old = rec.outputs if rec else {}
        out = []
        for name in kind_info(p.section).plan_outputs:
            new = known.get(name, {"$unknown": True})
            if rec is not None and old.get(name) == new:
                continue
            out.append(
                FieldChange(
                    path=name,
                    before=old.get(name),
                    after=new,
                    kind="add" if rec is None else "change",
                )
            )
        return out

    def resolved_spec(self) -> dict[str, Any]:
        """What a state version stores: enough for rollback, diff and show."""
        resources = {}
        for address, decl in self.spec.decls.items():
            p = self.planned.get(address)
            resources[address] = {
                "section": decl.section,
                "file": decl.file,
                "body": decl.body,
                "resolved": p.redacted if p else None,
                "content_hash": p.content_hash if p else None,
                "provider": p.provider_key if p else None,
            }
        return {
            "format": 1,
            "environment": self.session.workspace,
            "variable_decls": self.spec.variables,
            "environments": self.spec.environments,
            "variables": redact(
                {
                    k: v
                    for k, v in self.session.inputs.variables.items()
                    if k not in self.session.inputs.sensitive_vars
                }
            ),
            "providers": self.spec.providers,
            "settings": self.spec.settings,
            "resources": resources,
        }
