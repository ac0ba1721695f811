"""Route documents (``docs/gateway.md``) as functions: build, change, read back.

A document is the whole truth about one endpoint's serving: its variants, the traffic split
and its settings. Every change is a new document written in one transaction
(``RouteStore.put``), so a replica reloads either the old or the new one, never a mix.
Functions here never mutate their input: they return the next document.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contract import Traffic

FORMAT = 1
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class TrafficError(ValueError):
    """A split the document cannot take; the message names what is wrong."""


def kind_of(subject: str) -> str:
    """``model`` or ``prompt``: what the gateway does with the subject's versions."""
    return "prompt" if subject.startswith("prompts.") else "model"


def document(
    *,
    endpoint: str,
    address: str,
    environment: str,
    subject: str,
    deployment: str,
    variants: Mapping[str, Mapping[str, Any]],
    traffic: Traffic,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """A complete route document.

    ``deployment`` (not in the served shape; replicas ignore it) identifies the ``create``
    that made the route: a later create of the same endpoint (a replacement) writes a new
    one, so the replaced record's ``delete`` can tell the route is no longer its own.
    """
    return {
        "format": FORMAT,
        "endpoint": endpoint,
        "address": address,
        "environment": environment,
        "kind": kind_of(subject),
        "subject": subject,
        "deployment": deployment,
        "variants": {name: dict(entry) for name, entry in variants.items()},
        "traffic": traffic.as_dict(),
        **settings,
    }


def traffic_of(doc: Mapping[str, Any]) -> Traffic:
    return Traffic.from_dict(doc["traffic"])


def with_settings(doc: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    return {**doc, **settings}


def with_variant(doc: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with one more variant, taking no traffic."""
    return {**doc, "variants": {**doc["variants"], str(entry["name"]): dict(entry)}}


def with_input_schema(
    doc: Mapping[str, Any], name: str, outputs: Mapping[str, Any]
) -> dict[str, Any]:
    """``doc`` with variant ``name`` checking requests by the version's recorded input schema
    (``outputs``: the version's; a spec's ``inputs:`` changes it without a new version)."""
    if "input_schema" not in outputs or doc.get("kind") != "model":
        return dict(doc)
    entry = dict(doc["variants"][name])
    schema = outputs["input_schema"]
    if entry.get("input_schema") == schema:
        return dict(doc)
    if schema is None:
        entry.pop("input_schema", None)
    else:
        entry["input_schema"] = schema
    return with_variant(doc, entry)


def with_traffic(doc: Mapping[str, Any], traffic: Traffic) -> dict[str, Any]:
    return {**doc, "traffic": traffic.as_dict()}


def without_variant(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``doc`` without variant ``name`` (which must take no traffic: see ``retirable``)."""
    traffic = traffic_of(doc)
    if traffic.candidate == name:
        traffic = Traffic(traffic.stable)
    variants = {k: v for k, v in doc["variants"].items() if k != name}
    return {**doc, "variants": variants, "traffic": traffic.as_dict()}


def _percent(what: str, value: Any) -> int:
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral or not 0 <= value <= 100:
        raise TrafficError(f"traffic {what} {value!r} is out of range: a whole percent 0..100")
    return int(value)


def checked_traffic(doc: Mapping[str, Any], traffic: Traffic) -> Traffic:
    """``traffic`` with whole-percent shares, if it names deployed variants; else
    ``TrafficError`` saying what is wrong."""
    traffic = Traffic(
        traffic.stable,
        traffic.candidate or None,
        _percent("weight", traffic.weight),
        _percent("mirror", traffic.mirror),
    )
    deployed = doc["variants"]
    missing = [n for n in (traffic.stable, traffic.candidate) if n and n not in deployed]
    if missing:
        raise TrafficError(
            f"variant {', '.join(missing)} is not deployed "
            f"(deployed: {', '.join(sorted(deployed)) or 'none'})"
        )
    if traffic.candidate == traffic.stable:
        raise TrafficError(f"variant {traffic.stable} cannot be both stable and candidate")
    if traffic.candidate is None and (traffic.weight or traffic.mirror):
        raise TrafficError(
            f"a weight ({traffic.weight}%) or mirror ({traffic.mirror}%) needs a candidate"
        )
    return traffic


def retirable(doc: Mapping[str, Any], name: str) -> str | None:
    """Why variant ``name`` cannot be retired now, or None if it can."""
    traffic = traffic_of(doc)
    if traffic.stable == name:
        return f"{name} is the stable variant; make another variant stable first"
    if traffic.candidate == name and (traffic.weight or traffic.mirror):
        share = f"{traffic.weight}% of requests" if traffic.weight else ""
        copies = f"{traffic.mirror}% mirrored copies" if traffic.mirror else ""
        takes = " and ".join(part for part in (share, copies) if part)
        return f"variant {name} still takes {takes}; move traffic off it first"
    return None


def weights(doc: Mapping[str, Any]) -> dict[str, int]:
    """``{variant: percent of requests}``: every deployed variant, weight-0 ones too.

    Mirrored copies are not requests a variant answers, so ``mirror`` is not a weight.
    """
    traffic = traffic_of(doc)
    out = dict.fromkeys(doc["variants"], 0)
    if traffic.candidate in out:
        out[traffic.candidate] = traffic.weight
        out[traffic.stable] = 100 - traffic.weight
    else:
        out[traffic.stable] = 100
    return out


def outputs(doc: Mapping[str, Any], url: str) -> dict[str, Any]:
    """The endpoint outputs ``doc`` gives (without ``generation``: that is the row's)."""
    traffic = traffic_of(doc)
    variants = doc["variants"]
    stable = variants.get(traffic.stable) or {}
    return {
        "url": url,
        "subject": doc.get("subject"),
        "stable_version": stable.get("version"),
        "fingerprint": stable.get("fingerprint"),
        "weights": weights(doc),
        "variants": {
            name: {"version": entry.get("version"), "fingerprint": entry.get("fingerprint")}
            for name, entry in sorted(variants.items())
        },
        "traffic": traffic.as_dict(),
        "deployment": doc.get("deployment"),
    }


def missing_artifacts(doc: Mapping[str, Any]) -> list[str]:
    """Variants of a model route whose artifact path is no longer there (sorted)."""
    if doc.get("kind") != "model":
        return []
    return [
        str(name)
        for name, entry in sorted(doc["variants"].items())
        if not (isinstance(entry.get("artifact"), str) and os.path.exists(entry["artifact"]))
    ]


def expected_digest(entry: Mapping[str, Any]) -> str | None:
    """What a model variant's artifact bytes must hash to (as ``mlx serve`` checks them)."""
    digest = entry.get("digest")
    if isinstance(digest, str) and digest:
        return digest
    fingerprint = entry.get("fingerprint")
    if isinstance(fingerprint, str) and fingerprint.startswith("sha256:"):
        return fingerprint
    return None


def unverified_artifacts(doc: Mapping[str, Any]) -> dict[str, str]:
    """Variants of a model route whose artifact copy is there but is not the recorded bytes,
    each with what was found (sorted by name). Reads every byte of every copy."""
    from common.digests import digest_path

    if doc.get("kind") != "model":
        return {}
    out: dict[str, str] = {}
    for name, entry in sorted(doc["variants"].items()):
        path, want = entry.get("artifact"), expected_digest(entry)
        if not (isinstance(path, str) and os.path.exists(path)):
            continue  # missing_artifacts says so
        if want is None:
            out[str(name)] = "no digest of its bytes is recorded"
            continue
        try:
            got = digest_path(Path(path))
        except OSError as exc:
            out[str(name)] = f"it cannot be read ({exc.strerror or exc})"
            continue
        if got != want:
            out[str(name)] = f"its bytes hash to {got[:19]}…, not the recorded {want[:19]}…"
    return out


def served_by(doc: Mapping[str, Any], fingerprint: str | None, version: Any) -> str | None:
    """The variant of ``doc`` that runs exactly this version, if any."""
    for name, entry in sorted(doc["variants"].items()):
        if entry.get("fingerprint") == fingerprint and entry.get("version") == version:
            return str(name)
    return None


def variant_name(version: Any, fingerprint: str, taken: Mapping[str, Mapping[str, Any]]) -> str:
    """``v<version>``; another name if that one runs other content on this endpoint."""
    base = f"v{version}"
    if not _NAME_OK.match(base):
        base = "v" + re.sub(r"[^A-Za-z0-9._-]", "-", str(version))[:40].strip("-.")
    held = taken.get(base)
    if held is None or held.get("fingerprint") == fingerprint:
        return base
    digest = fingerprint.split(":", 1)[-1]
    return f"{base[:52]}-{re.sub(r'[^A-Za-z0-9]', '', digest)[:8]}"


def well_formed(doc: Any) -> bool:
    """Whether ``doc`` is a document this provider can change in place (else: rewrite it)."""
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        return False
    variants, traffic = doc.get("variants"), doc.get("traffic")
    if not isinstance(variants, Mapping) or not isinstance(traffic, Mapping):
        return False
    if not all(isinstance(v, Mapping) for v in variants.values()):
        return False
    try:
        split = Traffic.from_dict(traffic)
    except (KeyError, TypeError, ValueError):
        return False
    return split.stable in variants
