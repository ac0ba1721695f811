"""The CRUD suite: what every provider must do, whatever it manages.

Subclass it (or one of the capability suites built on it: ``RegistryConformance``,
``NotifierConformance``, ``GateConformance``) and implement the hooks in
``providers.testing.base``, plus::

    def tamper(self, provider, prior): ...   # change the object behind mlx's back

Class attributes a suite may set:

* ``replace_fields`` — fields whose change forces a replacement (``diff``);
  the ``"replace"`` variant changes them. Empty: nothing forces one.
* ``drifts`` — ``False`` for objects that live only in mlx's state (a gate's
  verdict): ``read()`` trusts the record and ``tamper`` is not needed.
* ``delete_keeps_object`` — ``delete`` forgets the object but leaves it in its
  system (referenced S3 objects, a registry's kept versions) or there is
  nothing outside state: ``read()`` afterwards still finds it, unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from contract import Change, DiffResult, Prior, Provider
from providers.testing import opened
from providers.testing.base import BEHAVIOUR, METADATA, Conformance


class CrudConformance(Conformance):
    replace_fields: ClassVar[tuple[str, ...]] = ()
    drifts: ClassVar[bool] = True
    delete_keeps_object: ClassVar[bool] = False

    def tamper(self, provider: Provider, prior: Prior) -> None:
        """Change the object behind mlx's back (move an alias, edit a config, delete a version)."""
        raise NotImplementedError("the suite needs tamper(provider, prior), or drifts = False")

    # -- create and read -------------------------------------------------------------------
    def test_create_then_read_matches(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        assert provider.read(prior) is not None, "read() found nothing right after create()"
        assert self.drift(provider, prior) == []

    def test_create_again_after_a_crash_adopts(self, provider: Provider, tmp_path: Path) -> None:
        """mlx crashed after ``create`` but before recording it (or the create is retried
        after a failure): ``create`` again must adopt what is there, not fail or duplicate."""
        first = self.create(provider, tmp_path)
        again = self.create(provider, tmp_path)
        assert self.version(again) == self.version(first)
        assert self.drift(provider, again) == []

    # -- planning --------------------------------------------------------------------------
    def test_fingerprint_is_stable_and_follows_content(
        self, provider: Provider, tmp_path: Path
    ) -> None:
        a = provider.fingerprint(self.desired(tmp_path, "v1"))
        b = provider.fingerprint(self.desired(tmp_path, "v1"))
        assert a == b, "the same content fingerprinted differently"
        other = provider.fingerprint(self.desired(tmp_path, "v2"))
        if a is not None:
            assert other is not None and other != a, "different content, same fingerprint"

    def test_check_rejects_a_bad_spec(self, provider: Provider, tmp_path: Path) -> None:
        assert provider.check(self.desired(tmp_path, "v1")) == []
        problems = provider.check(self.desired(tmp_path, "bad"))
        assert problems, "check() accepted the 'bad' variant"
        for problem in problems:
            assert isinstance(problem.path, tuple), problem
            assert problem.message.strip() and "\n" not in problem.message, problem

    def test_planning_has_no_side_effects(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        variants = [self.desired(tmp_path, v) for v in ("v2", "meta", "v1")]
        drift_before = self.drift(provider, prior)
        files_before = _files(tmp_path)
        for desired in variants:
            provider.check(desired)
            planned = replace(desired, fingerprint=provider.fingerprint(desired))
            provider.planned_outputs(planned)
            provider.diff(prior, planned)
        assert _files(tmp_path) == files_before, "planning wrote files"
        assert self.drift(provider, prior) == drift_before, "planning changed the object"

    def test_diff_forces_replacement_only_for_its_fields(
        self, provider: Provider, tmp_path: Path
    ) -> None:
        prior = self.create(provider, tmp_path)
        for variant in ("v1", "meta"):
            got = provider.diff(prior, self.planned(provider, tmp_path, variant))
            assert isinstance(got, DiffResult)
            assert got.replace_fields == (), f"{variant!r} must not force a replacement"
        if self.replace_fields:
            got = provider.diff(prior, self.planned(provider, tmp_path, "replace"))
            assert set(got.replace_fields) == set(self.replace_fields)
        else:
            v2 = provider.diff(prior, self.planned(provider, tmp_path, "v2"))
            assert v2.replace_fields == (), "a behaviour change forced an undeclared replacement"

    def test_plan_inputs_are_honest(self, tmp_path: Path, _kit_peers: Any) -> None:
        """``plan_inputs()`` lists every local file planning read (the plan memo trusts it),
        and an edit of one changes a listed file's stamp."""
        first = self.desired(tmp_path, "v1")
        fresh = self.make_provider(tmp_path)
        try:
            with opened.reading() as seen:
                problems = fresh.check(first)
                fingerprint = fresh.fingerprint(first)
            inputs = fresh.plan_inputs()
        finally:
            fresh.close()
        assert problems == []
        if inputs is None:
            return  # "ask me again every plan": honest by definition
        listed = {os.path.abspath(p) for p in inputs}
        root = os.path.abspath(tmp_path) + os.sep
        data = os.path.abspath(tmp_path / ".mlx") + os.sep
        read_here = {p for p in seen if p.startswith(root) and not p.startswith(data)}
        missing = sorted(read_here - listed)
        assert not missing, f"planning read {missing} but plan_inputs() does not list them"
        stamps = {p: _stamp(p) for p in listed}
        second = self.desired(tmp_path, "v2")
        if second.spec != first.spec:
            return  # the spec itself changed: the memo sees that without plan_inputs
        other = self.make_provider(tmp_path)
        try:
            moved = other.fingerprint(second) != fingerprint or other.check(second) != problems
        finally:
            other.close()
        if moved:
            assert any(_stamp(p) != stamps[p] for p in listed), (
                "the content changed under an unchanged spec, yet no file plan_inputs() "
                "listed changed: the plan memo would keep a stale plan"
            )

    # -- updates ---------------------------------------------------------------------------
    def test_noop_update_changes_nothing(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        after = self.update(provider, prior, tmp_path, "v1", Change())
        assert self.version(after) == self.version(prior)
        assert self.drift(provider, after) == []
        assert self.drift(provider, prior) == [], "a no-op update changed the object"

    def test_behaviour_update(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        after = self.update(provider, prior, tmp_path, "v2", BEHAVIOUR)
        if self.version_key:
            assert self.version(after) is not None
            assert self.version(after) != self.version(prior), "new content, same version"
        assert self.drift(provider, after) == []

    def test_metadata_update_keeps_version(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        after = self.update(provider, prior, tmp_path, "meta", METADATA)
        assert self.version(after) == self.version(prior), "a metadata edit made a version"
        assert provider.read(after) is not None
        assert self.drift(provider, after) == [], "read() disagrees with the metadata update"

    # -- delete ----------------------------------------------------------------------------
    def test_delete_forgets_the_object(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        provider.delete(prior)
        if self.delete_keeps_object:
            assert self.drift(provider, prior) == [], "delete changed an object it must keep"
        else:
            assert provider.read(prior) is None, "read() still finds a deleted object"

    def test_delete_is_idempotent(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        provider.delete(prior)
        provider.delete(prior)  # a retried delete, or one after the object vanished
        if not self.delete_keeps_object:
            assert provider.read(prior) is None

    # -- drift -----------------------------------------------------------------------------
    def test_drift_is_detected_and_repaired(self, provider: Provider, tmp_path: Path) -> None:
        prior = self.create(provider, tmp_path)
        if not self.drifts:
            # the object lives only in mlx's state: read() must not invent differences
            assert self.drift(provider, prior) == []
            return
        self.tamper(provider, prior)
        observed = provider.read(prior)
        drift = self.drift(provider, prior)
        assert drift, "a change made behind mlx's back was not visible through read()"
        desired = self.planned(provider, tmp_path, "v1")
        if observed is None:
            result = provider.create(desired)
        else:
            result = provider.update(prior, desired, BEHAVIOUR)
        repaired = self.recorded(desired, self.ok(result, "repair", "v1"))
        assert provider.read(repaired) is not None
        assert self.drift(provider, repaired) == []

    # -- secrets ---------------------------------------------------------------------------
    def test_secrets_never_reach_outputs(self, provider: Provider, tmp_path: Path) -> None:
        """Values in ``secret_fields`` stay out of outputs (state) and of mlx's data dir."""
        declared = type(provider).secret_fields
        assert set(declared) <= set(provider.sections), "secret_fields names unknown sections"
        for paths in declared.values():
            assert all(isinstance(p, str) and p and not p.startswith(".") for p in paths)
        desired = self.desired(tmp_path, "v1")
        secrets = [
            v
            for path in declared.get(self.section, ())
            for v in _values_at(desired.spec, path.split("."))
            if isinstance(v, str) and len(v) >= 6
        ]
        prior = self.create(provider, tmp_path)
        stored = json.dumps(prior.outputs, default=str) + _text_under(tmp_path / ".mlx")
        for secret in secrets:
            assert secret not in stored, "a secret field's value reached outputs or .mlx/"


def _values_at(value: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [value]
    if not isinstance(value, Mapping):
        return []
    head, rest = parts[0], parts[1:]
    children = list(value.values()) if head == "*" else [value.get(head)]
    return [found for child in children if child is not None for found in _values_at(child, rest)]


def _text_under(directory: Path) -> str:
    out = []
    for path in sorted(directory.rglob("*")) if directory.exists() else []:
        if path.is_file() and path.stat().st_size < 1 << 20:
            out.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


def _files(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def _stamp(path: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
