"""Spec + state → ``Plan``. Reads state, never writes it.

For every resource, in dependency order: resolve its references, ask its
provider for problems and a content fingerprint, hash the behaviour fields and
the metadata fields apart, and compare with the recorded hashes. Only
resources whose hashes differ are deep-diffed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from common.diagnostics import Diagnostic, MlxError, did_you_mean
from common.field_diff import field_changes, flatten, paths_differ
from contract import Desired, Prior, Provider, ProviderError, Registry
from engine.apply.heartbeat import Heartbeat
from engine.load import availability, secrets
from engine.load.resolve import Resolver
from engine.plan.decide import Facts, decide
from engine.plan.details import KEEPS_HISTORY, Explainer
from engine.plan.hashes import split_hashes
from engine.plan.model import Action, FieldChange, Plan, PlanOptions, Reason, ResourceChange
from engine.plan.schema_change import changes as schema_changes
from engine.plugins import ProviderSet, prior_of
from engine.policy import evidence
from engine.session import Session
from engine.values import UNKNOWN, redact, reveal, secret_paths
from specs.introspect import kind_info
from state.status import Status
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
    #: Gates: what the gate would judge now; the passed verdict reused, if any.
    judged: evidence.Judged | None = None
    reused: dict[str, Any] | None = None
    #: A restore whose local file holds other bytes, which mlx cannot rewrite: why.
    unrestorable: str | None = None

    @property
    def changes_behaviour(self) -> bool:
        return self.action in (Action.CREATE, Action.REPLACE, Action.RUN) or (
            self.action is Action.UPDATE and self.behaviour_changed
        )


class _LazyOutputs(Mapping[str, Any]):
    """``{address: outputs}``, computed only when a key is looked up.

    ``outputs`` answers for one address: as recorded, or (for a dependency that
    changes in this plan) the outputs known at plan time.
    """

    def __init__(self, addresses: list[str], outputs: Callable[[str], Mapping[str, Any] | None]):
        self._addresses = addresses
        self._outputs = outputs

    def __getitem__(self, address: str) -> Any:
        if address not in self._addresses:
            raise KeyError(address)
        found = self._outputs(address)
        if found is None:
            raise KeyError(address)
        return found

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
    info = kind_info(p.section)
    if info.reviewed and card.get("risk") == "high" and not review.get("approved_by"):
        out.append("card.risk is high and card.review names no approver")
    if info.data and Reason.CONTENT_CHANGED in p.reasons:
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
        self.index: dict[str, IndexRow] = {}
        self.planned: dict[str, Planned] = {}
        self.diags: list[Diagnostic] = []
        self.plan_warnings: list[str] = []
        #: live drift (``--refresh``); otherwise what the last ``mlx refresh`` recorded
        self._drift = drift
        #: heartbeats for slow checks (hashing a large file, asking a registry), on stderr
        self.beat = Heartbeat(progress) if progress is not None else None

    # -- entry point ----------------------------------------------------------------
    def build(self, *, providers: ProviderSet | None = None, with_spec: bool = False) -> Plan:
        own = providers is None
        self.providers = providers or ProviderSet.for_session(self.session, self._record)
        try:
            return self._build(with_spec)
        finally:
            if self.beat is not None:
                self.beat.close()
            if own:
                self.providers.close()

    def _build(self, with_spec: bool) -> Plan:
        self.index = self.reader.index()
        lineage, serial = self.reader.lineage, self.reader.serial
        scope = self._scope()
        self._prefetch(self._attribute_targets())
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
        if marked and not self._secrets_allowed(address, body, key, provider):
            return
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
            env_refs=resolver.env_refs(address),
        )
        if pin is not None:
            # the spec's files may hold other bytes by now: the registry must still hold these
            if not (
                isinstance(provider, Registry)
                and provider.has_version(decl.section, decl.name, pin.outputs)
            ):
                self.diags.append(
                    Diagnostic(
                        f"{address}: version {_version_label(pin.outputs)} "
                        f"({pin.content_hash}) is no longer available in its registry, "
                        "so it cannot be restored; nothing was changed"
                    )
                )
                return
            fingerprint = pin.content_hash
            unrestorable = self._local_copy_differs(provider, desired, pin.content_hash)
        else:
            unrestorable = None
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
            desired.env_refs,
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
        planned.unrestorable = unrestorable
        self.planned[address] = planned
        self._decide(planned, prior)
        if unrestorable and planned.action is Action.NOOP:
            self.plan_warnings.append(f"{address}: {unrestorable}")
        elif unrestorable:
            planned.warnings.append(unrestorable)
        if planned.action is not Action.NOOP:
            planned.warnings.extend(_review_warnings(planned))
            planned.warnings.extend(self._input_schema_warnings(planned))
        if planned.changes_behaviour and kind_info(decl.section).release_field:
            opt_out = evidence.opt_out_warning(self.spec.decls, address, planned.body)
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

    def _local_copy_differs(
        self, provider: Provider, desired: Desired, restored: str | None
    ) -> str | None:
        """A restore (rollback, promotion) of content that lives in a local file holding
        other bytes: mlx restores its registry's record, never the user's files. Why, or None.
        """
        field_name = kind_info(desired.section).content_field
        found, path = _at(desired.spec, field_name) if field_name else (False, None)
        if not found or not isinstance(path, str) or "://" in path or restored is None:
            return None
        try:
            now = provider.fingerprint(replace(desired, restore=None))
        except (ProviderError, OSError):
            now = ""  # unreadable
        if now is None and not desired.path(self.session.root, path).exists():
            now = ""  # gone (a provider fingerprints a missing file as None)
        if now is None or now == restored:  # None: the provider does not fingerprint it
            return None
        prior = self.index.get(desired.address)
        if not now:
            what = f"{path} is missing or unreadable"
        elif prior is not None and prior.content_hash == restored:
            what = f"its bytes at {path} changed outside mlx"
        else:
            version = _version_label(desired.restore or {})
            what = f"{path} holds other bytes than version {version} ({now[:19]}…)"
        return (
            f"{what}; mlx cannot restore local files: restore {path} yourself (recorded {restored})"
        )

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
        info = kind_info(p.section)
        upstream = tuple(
            sorted(
                dep
                for dep in self.graph.graph.predecessors(p.address)
                if dep in self.planned
                and self.planned[dep].changes_behaviour
                and (dep, p.address) not in self.graph.ordering
            )
        )
        status = None
        if prior is not None:
            status = Status(self.options.drift.get(p.address, prior.status))
        behaviour = prior is not None and (p.spec_hash is None or p.spec_hash != prior.spec_hash)
        content = prior is not None and p.content_hash != prior.content_hash
        facts = Facts(
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
        decision = decide(facts)
        p.action, p.reasons = decision.action, list(decision.reasons)
        p.behaviour_changed = decision.behaviour_changed
        p.flagged_by = list(decision.flagged_by)
        p.details.extend(Explainer(self).explain(p, prior, upstream))

    def _created(self, address: str, status: Status | None) -> bool:
        """A tainted record with no outputs: its create never completed."""
        if status is not Status.TAINTED:
            return True
        rec = self._record(address)
        return bool(rec and rec.outputs)

    # -- input schemas -----------------------------------------------------------------
    def _input_schema_warnings(self, p: Planned) -> list[str]:
        """A new version whose input schema differs from the released one's: what callers
        would feel, for the reviewer (a kind with an ``input_schema`` output: models)."""
        if "input_schema" not in kind_info(p.section).computed or not p.changes_behaviour:
            return []
        now = self._outputs_now(p.address) or {}
        if "input_schema" not in now:
            return []  # not known before apply (this provider does not read it at plan time)
        return schema_changes(self._released_schema(p.address), now["input_schema"])

    def _released_schema(self, address: str) -> Any:
        """The input schema of the version users get now: behind its release, else the
        version recorded last (None: nothing recorded, or it recorded none)."""
        from engine.policy.released import released_finder

        rec = self._record(address)
        if rec is None:
            return None
        released = released_finder(self.reader, self._record)(address, None)
        fingerprint = released.outputs.get("fingerprint") if released is not None else None
        if fingerprint is None or fingerprint == rec.outputs.get("fingerprint"):
            return rec.outputs.get("input_schema")
        for event in reversed(self.reader.events(address=address)):
            outputs = event.get("outputs") or {}
            if outputs.get("fingerprint") == fingerprint and "input_schema" in outputs:
                return outputs["input_schema"]
        return rec.outputs.get("input_schema")

    # -- gates and releases ------------------------------------------------------------
    def fingerprint_now(self, address: str) -> str | None:
        """The fingerprint ``address`` will have once this plan is applied (None: unknown)."""
        p = self.planned.get(address)
        if p is not None and p.changes_behaviour:
            if p.desired.restore is not None:
                value = p.desired.restore.get("fingerprint")
            else:
                value = p.provider.planned_outputs(p.desired).get("fingerprint")
            return value if isinstance(value, str) else None
        rec = self._record(address)
        if rec is None:
            return None
        value = rec.outputs.get("fingerprint") or rec.content_hash
        return value if isinstance(value, str) else None

    def version_now(self, address: str) -> Any:
        p = self.planned.get(address)
        if p is not None and p.changes_behaviour:
            if p.desired.restore is not None:
                return evidence.version_of(p.desired.restore)
            return evidence.version_of(p.provider.planned_outputs(p.desired))
        rec = self._record(address)
        return evidence.version_of(rec.outputs) if rec else None

    def _gate_facts(self, p: Planned, status: Status | None) -> dict[str, bool]:
        p.judged = evidence.judged(
            p.address, p.body, p.spec_hash, p.content_hash, self.fingerprint_now
        )
        if p.judged is None:
            return {}
        log = self.reader.evidence()
        passed = log.passed(p.judged.key)
        if passed is not None:
            p.reused = {
                "key": passed.key,
                "serial": passed.serial,
                "at": passed.created_at.isoformat(timespec="seconds")
                if hasattr(passed.created_at, "isoformat")
                else str(passed.created_at),
                "version": passed.subject_version,
            }
            rec = self._record(p.address) if status is not None else None
            recorded = ((rec.outputs.get("judged") or {}).get("key") if rec else None) == (
                p.judged.key
            )
            return {"evidence_passed": True, "evidence_recorded": recorded}
        latest = log.latest(p.judged.key)
        return {"evidence_failed": latest is not None and not latest.passed}

    def _release_pending(self, p: Planned, prior: IndexRow | None) -> bool:
        """What users get (the record) differs from the subject's version now."""
        if prior is None or prior.status == Status.IN_PROGRESS:
            return False
        subject = evidence.released_subject(p.section, p.body)
        if subject is None or self._releases_through_rollout(p):
            return False
        rec = self._record(p.address)
        recorded = rec.outputs.get("fingerprint") if rec else None
        now = self.fingerprint_now(subject)
        if rec is not None and now is not None and rec.outputs.get("aborted_fingerprint") == now:
            self.plan_warnings.append(
                f"{p.address} aborted the release of {subject} ({now[:19]}…): "
                f"{rec.outputs.get('message') or 'see mlx rollout status'}; "
                f"`mlx rollout retry {p.name}` starts it again"
            )
            return False
        if now is None:
            sub = self.planned.get(subject)
            return bool(sub and sub.changes_behaviour)
        return now != recorded

    def _releases_through_rollout(self, p: Planned) -> bool:
        """A release another release drives (an endpoint a rollout names) waits for it."""
        from engine.policy.released import driver_of

        return driver_of(self.spec.decls, self.graph.graph, p.address) is not None

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

    def _run_gates(self) -> None:
        """``--run-evals``: judge each gate this plan would run, changing nothing."""
        from contract import Gate, ProviderError

        for p in self.planned.values():
            if p.action is not Action.RUN or not isinstance(p.provider, Gate):
                continue
            try:
                if self.beat is None:
                    result = p.provider.evaluate(p.desired)
                else:
                    with self.beat.watch(p.address, "Still running"):
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
        deps = list(self.graph.graph.predecessors(address))
        recorded = [d for d in deps if d in self.index]
        return (
            _LazyOutputs(deps, self._outputs_now),
            _LazyOutputs(recorded, self._recorded_outputs),
        )

    def _recorded_outputs(self, address: str) -> Mapping[str, Any] | None:
        rec = self._record(address)
        return rec.outputs if rec else None

    def _outputs_now(self, address: str) -> Mapping[str, Any] | None:
        """A dependency's outputs as they will be: recorded, or known at plan time if it changes."""
        p = self.planned.get(address)
        if p is not None and p.changes_behaviour:
            if p.desired.restore is not None:
                return dict(p.desired.restore)
            return p.provider.planned_outputs(p.desired)
        return self._recorded_outputs(address)

    def recorded(self, address: str) -> Record | None:
        """A resource's record as this plan read it (``None``: not recorded)."""
        return self._record(address)

    def _record(self, address: str) -> Record | None:
        return self.reader.record(address) if address in self.index else None

    def _attribute_targets(self) -> set[str]:
        """Resources whose attributes other resources reference (``${x.y.version}``)."""
        from engine.load.references import Ref

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
        return prior_of(rec)

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

    def _deletes(self, scope: set[str] | None) -> list[ResourceChange]:
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
                ResourceChange(
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

    def _check_prevent_destroy(self, deletes: list[ResourceChange]) -> None:
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
        from engine.apply.drift import recorded

        return [d.as_dict() for d in recorded(self.reader, self.index)]

    def _check_reviews(self) -> None:
        """A protected environment takes no ``risk: high`` model without a recorded review."""
        diags = []
        for p in self.planned.values():
            if not kind_info(p.section).reviewed or p.action is Action.NOOP:
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
    def _change(self, p: Planned) -> ResourceChange:
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
            evidence=(
                {"judged": p.judged.as_dict(), "reused": p.reused} if p.judged is not None else None
            ),
        )
        if p.action is Action.NOOP:
            return ResourceChange.model_construct(**base, before=None, after=None, fields=[])
        rec = self._record(p.address)
        before = dict(rec.attributes) if rec else None
        after = dict(p.redacted)
        fields = (
            field_changes(before, after)
            if before is not None
            else [
                FieldChange.model_construct(path=k, before=None, after=v, kind="add")
                for k, v in sorted(flatten(after))
            ]
        )
        fields += self._output_changes(p, rec)
        # built from the planner's own typed values: validating 10,000 changes and their
        # fields again cost a second of a large plan
        return ResourceChange.model_construct(**base, before=before, after=after, fields=fields)

    def _output_changes(self, p: Planned, rec: Record | None) -> list[FieldChange]:
        """Computed attributes (version, uri, fingerprint) as the plan expects them to move."""
        if not (p.changes_behaviour or rec is None):
            return []
        known = {"passed": True} if p.reused else p.provider.planned_outputs(p.desired)
        old = rec.outputs if rec else {}
        out = []
        for name in kind_info(p.section).plan_outputs:
            new = known.get(name, {"$unknown": True})
            if rec is not None and old.get(name) == new:
                continue
            out.append(
                FieldChange.model_construct(
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
