"""Release evidence: which gates a release requires, and whether they passed for exactly it.

The invariant (SPEC.md, fixed): a version reaches users only if every gate it
requires has a *passed* verdict bound to exactly its fingerprints — the
subject's, the dataset's and the gate definition's. ``Judged`` is that binding;
its ``key`` indexes ``mlx_evidence``. The planner asks whether a gate is due
(no passed verdict for the key it would judge now); the applier refuses to
release (move an alias, give endpoint traffic) without one, whatever the plan,
``--target`` or an interrupted apply left behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.diagnostics import MlxError
from specs.introspect import kind_info

Fingerprint = Callable[[str], "str | None"]


def address_in(value: Any) -> str | None:
    """``models.x`` from ``${models.x}`` (a raw body) or ``models.x`` (a resolved one)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1].strip()
    parts = text.split(".")
    return text if len(parts) == 2 and all(parts) else None


def releases(section: str) -> str | None:
    """The field naming what a kind releases to users (``subject``, ``serves``), if any."""
    return kind_info(section).release_field


def released_subject(section: str, body: Mapping[str, Any]) -> str | None:
    field = releases(section)
    return address_in(body.get(field)) if field else None


def required_gates(decls: Mapping[str, Any], address: str, body: Mapping[str, Any]) -> list[str]:
    """The gates a release of ``address`` requires: ``requires``, else every gate on its subject.

    ``decls`` maps addresses to declarations (``.section``, ``.body``): the spec being applied.
    """
    section = address.split(".", 1)[0]
    subject = released_subject(section, body)
    if subject is None:
        return []
    requires = body.get("requires")
    if requires is not None:
        return sorted({a for a in (address_in(r) for r in requires) if a})
    return gates_on(decls, subject)


def gates_on(decls: Mapping[str, Any], subject: str) -> list[str]:
    """Every declared gate whose subject is ``subject``."""
    return sorted(
        a
        for a, d in decls.items()
        if kind_info(d.section).is_gate and address_in(d.body.get("subject")) == subject
    )


def opted_out(decls: Mapping[str, Any], address: str, body: Mapping[str, Any]) -> bool:
    """Whether the release's ``requires`` is explicit and leaves out a gate (or is ``[]``)."""
    section = address.split(".", 1)[0]
    subject = released_subject(section, body)
    if subject is None or body.get("requires") is None:
        return False
    return not body["requires"] or bool(skipped_gates(decls, address, body))


def skipped_gates(decls: Mapping[str, Any], address: str, body: Mapping[str, Any]) -> list[str]:
    """Gates on the subject that an explicit ``requires`` leaves out (``[]``: all of them).

    The release does not wait for their pass; a *failed* verdict of one of them for exactly
    the version released still refuses it (``refusing``).
    """
    section = address.split(".", 1)[0]
    subject = released_subject(section, body)
    if subject is None or body.get("requires") is None:
        return []
    required = set(required_gates(decls, address, body))
    return [g for g in gates_on(decls, subject) if g not in required]


def opt_out_warning(decls: Mapping[str, Any], address: str, body: Mapping[str, Any]) -> str | None:
    """What a plan says about a release that skips gates on its subject, if it does."""
    if not opted_out(decls, address, body):
        return None
    subject = released_subject(address.split(".", 1)[0], body)
    skipped = skipped_gates(decls, address, body)
    if not skipped:
        return f"requires: [] and no gate judges {subject}: it is released without any verdict"
    how = "requires: []" if not body["requires"] else "its requires"
    return (
        f"{how} skips {', '.join(skipped)} (on {subject}): the release does not wait for "
        f"{'its' if len(skipped) == 1 else 'their'} pass, though a failed verdict for "
        "exactly the version released still refuses it"
    )


def definition(spec_hash: str | None, content_hash: str | None) -> str | None:
    """A gate definition's identity: its behaviour fields and its own files (cases, …)."""
    if spec_hash is None:
        return None
    return f"{spec_hash}+{content_hash or '-'}"


@dataclass(frozen=True)
class Judged:
    """What one gate verdict is bound to."""

    gate: str
    definition: str
    subject: str
    subject_fingerprint: str
    dataset: str | None = None
    dataset_fingerprint: str | None = None

    @property
    def key(self) -> str:
        doc = [
            self.gate,
            self.definition,
            self.subject,
            self.subject_fingerprint,
            self.dataset,
            self.dataset_fingerprint,
        ]
        return "sha256:" + hashlib.sha256(json.dumps(doc).encode()).hexdigest()

    def describe(self, version: Any = None) -> str:
        shown = f" v{version}" if version is not None else ""
        text = f"{self.subject}{shown} ({_short(self.subject_fingerprint)})"
        if self.dataset:
            text += f" on {self.dataset} ({_short(self.dataset_fingerprint)})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "gate": self.gate,
            "definition": self.definition,
            "subject": self.subject,
            "subject_fingerprint": self.subject_fingerprint,
            "dataset": self.dataset,
            "dataset_fingerprint": self.dataset_fingerprint,
        }


def judged(
    gate: str,
    body: Mapping[str, Any],
    spec_hash: str | None,
    content_hash: str | None,
    fingerprint: Fingerprint,
) -> Judged | None:
    """The binding a gate judges now, or ``None`` while a fingerprint is not known yet."""
    subject = address_in(body.get("subject"))
    definition_id = definition(spec_hash, content_hash)
    if subject is None or definition_id is None:
        return None
    subject_fp = fingerprint(subject)
    if subject_fp is None:
        return None
    dataset = address_in(body.get("dataset"))
    dataset_fp = fingerprint(dataset) if dataset else None
    if dataset and dataset_fp is None:
        return None
    return Judged(gate, definition_id, subject, subject_fp, dataset, dataset_fp)


def _short(fp: str | None) -> str:
    if not fp:
        return "no fingerprint"
    return fp[:19] + "…" if len(fp) > 19 else fp


class ReleaseRefused(MlxError):
    """A release was asked for a version some required gate has not passed."""
