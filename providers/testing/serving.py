"""The conformance suite of ``Serving`` providers (the embedded gateway, SageMaker, …).

Subclass ``ServingConformance`` in a test module and fill the hooks; pytest
collects the inherited cases::

    class TestMyServing(ServingConformance):
        def make_provider(self, tmp_path, peers): ...        # a Provider that is also Serving
        def record_traffic(self, provider, endpoint, role, variant,
                           requests, errors, latencies_ms): ...  # inject traffic for metrics
        def edit_weights(self, provider, endpoint, weights): ...  # change the split behind mlx

Everything goes through the public contract (``create``/``update``/``read``/
``delete`` and ``Serving``), as the engine and rollouts use it. Versions of the
served model come from ``FakePeers``: a minimal stand-in for the engine's peers
that hands out each version's artifact (``write_artifact``, overridable: a
gateway that loads models writes a real one).

What the suite checks:

* create serves one variant with every request on it (``weights`` {name: 100});
* an update to a new version is create-before-destroy: observed around every
  ``deploy``/``set_traffic``/``retire`` the update makes, the live split names
  deployed variants and some variant takes requests; afterwards only the new
  one is left;
* deploy + ``set_traffic(weight=10)`` reads back as 90/10; back to 0, retire;
* weights changed behind mlx's back show in ``read()`` as drift, and an
  update repairs them;
* delete is idempotent; gone endpoints read as ``None``;
* ``variant_metrics`` returns the injected traffic per role: requests and
  server errors exactly, latency percentiles as ``latency_accuracy`` says;
* a split naming an undeployed variant, an out-of-range weight, or retiring a
  variant that still takes requests is refused with a ``ProviderError``
  naming it; shadow (``mirror``) works, or is refused, as ``supports_mirror`` says.

Endpoint outputs the suite relies on (SPEC.md): ``url``, ``stable_version``,
and ``weights`` — ``{variant: percent of requests}``, one entry per deployed
variant (weight-0 ones too).
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from contract import (
    AlertMessage,
    Change,
    Desired,
    Gate,
    Prior,
    Provider,
    ProviderError,
    Released,
    Result,
    Role,
    Serving,
    Traffic,
    Variant,
)

SUBJECT = "models.fraud"
ENDPOINT = "endpoints.fraud"


class LatencyAccuracy(StrEnum):
    """How exactly a provider reports latency percentiles of the traffic it served."""

    #: Within ``latency_tolerance_ms`` of the nearest-rank percentile (computed from records).
    EXACT = "exact"
    #: Bounds only: p50 within the latencies' range; p95 and p99 at least the true value and
    #: at most the maximum (a metrics backend that returns no percentiles, e.g. moto's
    #: CloudWatch: the provider reports the mean and the maximum).
    BOUNDS = "bounds"


def tree_digest(path: Path) -> str:
    """``sha256:…`` of a file, or of a directory's relative paths and bytes."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
    else:
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            digest.update(item.read_bytes())
    return f"sha256:{digest.hexdigest()}"


class FakePeers:
    """The part of ``Peers`` serving needs: versions' content, declared specs, records.

    ``materialize`` copies a registered version's artifact; ``spec`` and
    ``recorded`` answer from dicts. Everything else raises, so a provider that
    reaches further than serving needs is caught.
    """

    def __init__(self) -> None:
        self.artifacts: dict[str, Path] = {}  # fingerprint -> file or directory
        self.specs: dict[str, Mapping[str, Any]] = {}
        self.records: dict[str, Prior] = {}
        #: (address, fingerprint) of every materialize call, in order
        self.fetched: list[tuple[str, str]] = []

    def register(self, address: str, version: int, source: Path) -> dict[str, Any]:
        """Make ``source`` version ``version`` of ``address``; its outputs (as a registry's)."""
        fingerprint = tree_digest(source)
        self.artifacts[fingerprint] = source
        return {
            "version": version,
            "fingerprint": fingerprint,
            "uri": f"fake://{address}/{version}",
        }

    def recorded(self, address: str) -> Prior | None:
        return self.records.get(address)

    def spec(self, address: str) -> Mapping[str, Any] | None:
        return self.specs.get(address)

    def materialize(self, address: str, outputs: Mapping[str, Any] | None, target: Path) -> Path:
        if outputs is None:
            raise NotImplementedError("serving fetches registered versions, not declared content")
        fingerprint = str(outputs.get("fingerprint"))
        source = self.artifacts.get(fingerprint)
        if source is None:
            raise ProviderError(f"{address}: no version with fingerprint {fingerprint}")
        self.fetched.append((address, fingerprint))
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
        return target

    def _unsupported(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"the serving conformance peers do not {what}")

    def has_version(self, address: str, outputs: Mapping[str, Any]) -> bool:
        raise self._unsupported("look up versions")

    def get_alias(self, address: str, alias: str) -> dict[str, Any] | None:
        raise self._unsupported("read aliases")

    def set_alias(self, address: str, alias: str, outputs: Mapping[str, Any]) -> None:
        raise self._unsupported("move aliases")

    def notify(self, channel: str, message: AlertMessage) -> None:
        raise self._unsupported("send alerts")

    def released(self, subject: str, gate: str | None = None) -> Released | None:
        raise self._unsupported("know releases")

    def serving(self, endpoint: str) -> tuple[Prior, Serving]:
        raise self._unsupported("reach other endpoints")

    def gate(self, address: str) -> Gate:
        raise self._unsupported("run gates")

    def passed_verdict(self, gate: str, subject_fingerprint: str) -> Mapping[str, Any] | None:
        raise self._unsupported("know verdicts")


@dataclass
class Kit:
    """One test's provider, peers and scratch directory."""

    provider: Any  # a Provider that is also Serving
    peers: FakePeers
    tmp_path: Path


def _recorded(desired: Desired, result: Result) -> Prior:
    return Prior(
        desired.address,
        desired.section,
        desired.name,
        dict(desired.spec),
        dict(result.outputs),
        desired.fingerprint,
    )


def nearest_rank(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class ServingConformance:
    #: Whether ``Traffic.mirror`` (shadow) is served; if not, it must be refused clearly.
    supports_mirror: bool = False
    latency_accuracy: LatencyAccuracy = LatencyAccuracy.EXACT
    #: For ``EXACT``: the latencies injected are 1 ms apart, so any usual percentile
    #: definition (nearest rank, interpolation) lands within 1 ms of the nearest rank.
    latency_tolerance_ms: float = 1.0

    # -- hooks ---------------------------------------------------------------------------
    def make_provider(self, tmp_path: Path, peers: FakePeers) -> Provider:
        """A fresh provider (``Provider`` and ``Serving``) whose ``context.peers`` is ``peers``."""
        raise NotImplementedError

    def record_traffic(
        self,
        provider: Any,
        endpoint: Prior,
        role: Role,
        variant: str,
        requests: int,
        errors: int,
        latencies_ms: Sequence[float],
    ) -> None:
        """Make ``variant`` (in ``role``) appear to have served this traffic just now.

        ``requests`` counts every request, the ``errors`` server errors among them;
        ``latencies_ms`` has one entry per request.
        """
        raise NotImplementedError

    def edit_weights(self, provider: Any, endpoint: Prior, weights: Mapping[str, float]) -> None:
        """Set the variants' weights directly in the serving system, behind mlx's back."""
        raise NotImplementedError

    def write_artifact(self, version: int, target_dir: Path) -> Path:
        """Version ``version``'s artifact under ``target_dir`` (a file or a directory)."""
        target_dir.mkdir(parents=True, exist_ok=True)
        path = target_dir / "model.bin"
        path.write_bytes(f"fraud model weights, version {version}\n".encode())
        return path

    def subject_spec(self) -> dict[str, Any]:
        """The served model's resolved spec (what ``peers.spec(SUBJECT)`` returns)."""
        return {"artifact": "model.bin", "owner": "team-ml"}

    def endpoint_desired(self, version_outputs: Mapping[str, Any]) -> Desired:
        """The endpoint serving the version whose outputs are ``version_outputs``."""
        spec = {"serves": SUBJECT, "owner": "team-ml"}
        return Desired(
            ENDPOINT, "endpoints", "fraud", spec, inputs={SUBJECT: dict(version_outputs)}
        )

    # -- helpers ---------------------------------------------------------------------------
    @pytest.fixture
    def kit(self, tmp_path: Path) -> Iterator[Kit]:
        peers = FakePeers()
        peers.specs[SUBJECT] = self.subject_spec()
        provider = self.make_provider(tmp_path, peers)
        assert isinstance(provider, Provider) and isinstance(provider, Serving)
        yield Kit(provider, peers, tmp_path)
        provider.close()

    def version(self, kit: Kit, n: int) -> dict[str, Any]:
        source = self.write_artifact(n, kit.tmp_path / "artifacts" / f"v{n}")
        return kit.peers.register(SUBJECT, n, source)

    def _desired(self, kit: Kit, outputs: Mapping[str, Any]) -> Desired:
        desired = self.endpoint_desired(outputs)
        return replace(desired, fingerprint=kit.provider.fingerprint(desired))

    def create(self, kit: Kit, n: int = 1) -> Prior:
        desired = self._desired(kit, self.version(kit, n))
        assert kit.provider.check(desired) == [], "check() reported problems for a valid endpoint"
        result = kit.provider.create(desired)
        assert not result.failed
        prior = _recorded(desired, result)
        kit.peers.records[ENDPOINT] = prior
        return prior

    def variant(self, kit: Kit, n: int, name: str | None = None) -> Variant:
        return Variant(name or f"v{n}", SUBJECT, self.version(kit, n), self.subject_spec())

    @staticmethod
    def rerecorded(kit: Kit, prior: Prior) -> Prior:
        """``prior`` with the outputs ``read()`` sees now (what the engine records after a step)."""
        observed = kit.provider.read(prior)
        assert observed is not None
        return replace(prior, outputs=dict(observed.outputs))

    @staticmethod
    def weights(kit: Kit, prior: Prior) -> dict[str, float]:
        observed = kit.provider.read(prior)
        assert observed is not None, "read() found nothing for a live endpoint"
        return dict(observed.outputs["weights"])

    # -- create, update ----------------------------------------------------------------------
    def test_create_serves_one_variant_all_stable(self, kit: Kit) -> None:
        prior = self.create(kit)
        out = prior.outputs
        assert out["url"], "an endpoint has a URL"
        assert out["stable_version"] == 1
        traffic = kit.provider.traffic(prior)
        assert traffic is not None
        assert (traffic.candidate, traffic.weight, traffic.mirror) == (None, 0, 0)
        assert out["weights"] == {traffic.stable: 100}
        observed = kit.provider.read(prior)
        assert observed is not None
        assert observed.differences(prior.outputs, prior.fingerprint) == []

    def test_update_to_new_version_is_create_before_destroy(
        self, kit: Kit, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        prior = self.create(kit)
        old = kit.provider.traffic(prior).stable
        steps: list[tuple[str, Traffic | None, dict[str, float]]] = []

        def look(label: str) -> None:
            steps.append((label, kit.provider.traffic(prior), self.weights(kit, prior)))

        for method in ("deploy", "set_traffic", "retire"):
            original = getattr(kit.provider, method)

            def watched(*args: Any, _original: Any = original, _m: str = method) -> Any:
                look(f"before {_m}")
                answer = _original(*args)
                look(f"after {_m}")
                return answer

            monkeypatch.setattr(kit.provider, method, watched)
        desired = self._desired(kit, self.version(kit, 2))
        result = kit.provider.update(prior, desired, Change(behaviour=True))
        monkeypatch.undo()
        look("after update")
        for label, traffic, weights in steps:
            assert traffic is not None, f"{label}: the endpoint was gone"
            assert traffic.stable in weights, f"{label}: stable {traffic.stable} is not deployed"
            if traffic.candidate:
                assert traffic.candidate in weights, f"{label}: candidate is not deployed"
            named = weights[traffic.stable] + (
                weights[traffic.candidate] if traffic.candidate else 0
            )
            assert named == 100, f"{label}: {traffic} does not account for {weights}"
        labels = [label for label, _t, _w in steps]
        if "before retire" in labels and "after deploy" in labels:
            assert labels.index("after deploy") < labels.index("before retire"), labels
        final = steps[-1]
        assert final[1] is not None and final[1].stable != old
        assert final[2] == {final[1].stable: 100}, "the old variant was not retired"
        assert result.outputs["stable_version"] == 2
        observed = kit.provider.read(_recorded(desired, result))
        assert observed is not None
        assert observed.differences(result.outputs) == []

    def test_update_with_the_same_version_moves_nothing(self, kit: Kit) -> None:
        prior = self.create(kit)
        same = self._desired(kit, self.version(kit, 1))
        again = kit.provider.update(prior, same, Change())
        assert again.outputs["weights"] == prior.outputs["weights"]
        assert again.outputs["stable_version"] == 1
        relabeled = replace(same, spec={**same.spec, "owner": "team-risk"})
        meta = kit.provider.update(prior, relabeled, Change(metadata=True, fields=("owner",)))
        assert meta.outputs["weights"] == prior.outputs["weights"]
        assert meta.outputs["stable_version"] == 1

    # -- traffic ---------------------------------------------------------------------------
    def test_canary_split_reads_back_then_retires(self, kit: Kit) -> None:
        prior = self.create(kit)
        stable = kit.provider.traffic(prior).stable
        kit.provider.deploy(prior, self.variant(kit, 2))
        dark = kit.provider.traffic(prior)
        assert dark is not None and dark.stable == stable and dark.weight == 0
        assert self.weights(kit, prior) == {stable: 100, "v2": 0}
        kit.provider.set_traffic(prior, Traffic(stable, "v2", 10))
        assert kit.provider.traffic(prior) == Traffic(stable, "v2", 10, 0)
        assert self.weights(kit, prior) == {stable: 90, "v2": 10}
        kit.provider.set_traffic(prior, Traffic(stable, "v2", 0))
        assert self.weights(kit, prior) == {stable: 100, "v2": 0}
        kit.provider.retire(prior, "v2")
        assert kit.provider.traffic(prior) == Traffic(stable)
        assert self.weights(kit, prior) == {stable: 100}
        kit.provider.retire(prior, "v2")  # already retired: nothing to do

    def test_deploy_is_idempotent(self, kit: Kit) -> None:
        prior = self.create(kit)
        stable = kit.provider.traffic(prior).stable
        variant = self.variant(kit, 2)
        kit.provider.deploy(prior, variant)
        kit.provider.deploy(prior, variant)
        assert self.weights(kit, prior) == {stable: 100, "v2": 0}

    def test_traffic_naming_an_undeployed_variant_is_refused(self, kit: Kit) -> None:
        prior = self.create(kit)
        stable = kit.provider.traffic(prior).stable
        kit.provider.deploy(prior, self.variant(kit, 2))
        with pytest.raises(ProviderError, match="v9"):
            kit.provider.set_traffic(prior, Traffic(stable, "v9", 10))
        with pytest.raises(ProviderError, match="v9"):
            kit.provider.set_traffic(prior, Traffic("v9"))
        with pytest.raises(ProviderError, match="150"):
            kit.provider.set_traffic(prior, Traffic(stable, "v2", 150))
        assert kit.provider.traffic(prior) == Traffic(stable)  # nothing moved
        assert self.weights(kit, prior) == {stable: 100, "v2": 0}

    def test_retire_refuses_a_variant_that_takes_requests(self, kit: Kit) -> None:
        prior = self.create(kit)
        stable = kit.provider.traffic(prior).stable
        kit.provider.deploy(prior, self.variant(kit, 2))
        kit.provider.set_traffic(prior, Traffic(stable, "v2", 10))
        with pytest.raises(ProviderError, match="v2"):
            kit.provider.retire(prior, "v2")
        with pytest.raises(ProviderError, match=stable):
            kit.provider.retire(prior, stable)
        assert self.weights(kit, prior) == {stable: 90, "v2": 10}

    def test_mirror(self, kit: Kit) -> None:
        prior = self.create(kit)
        stable = kit.provider.traffic(prior).stable
        kit.provider.deploy(prior, self.variant(kit, 2))
        shadow = Traffic(stable, "v2", 0, 20)
        if self.supports_mirror:
            kit.provider.set_traffic(prior, shadow)
            assert kit.provider.traffic(prior) == shadow
            return
        with pytest.raises(ProviderError, match=r"(?i)shadow|mirror"):
            kit.provider.set_traffic(prior, shadow)
        assert kit.provider.traffic(prior) == Traffic(stable)

    # -- drift, delete ----------------------------------------------------------------------
    def test_weights_edited_outside_mlx_are_drift_and_repaired(self, kit: Kit) -> None:
        prior = self.create(kit)
        stable = kit.provider.traffic(prior).stable
        kit.provider.deploy(prior, self.variant(kit, 2))
        prior = self.rerecorded(kit, prior)
        self.edit_weights(kit.provider, prior, {stable: 50, "v2": 50})
        observed = kit.provider.read(prior)
        assert observed is not None
        drift = observed.differences(prior.outputs, prior.fingerprint)
        assert any(line.startswith("weights:") for line in drift), drift
        desired = self._desired(kit, self.version(kit, 1))
        repaired = kit.provider.update(prior, desired, Change(behaviour=True))
        assert repaired.outputs["weights"] == {stable: 100, "v2": 0}
        observed = kit.provider.read(prior)
        assert observed is not None
        assert observed.differences(prior.outputs, prior.fingerprint) == []

    def test_delete_is_idempotent(self, kit: Kit) -> None:
        prior = self.create(kit)
        kit.provider.delete(prior)
        assert kit.provider.read(prior) is None
        assert kit.provider.traffic(prior) is None
        kit.provider.delete(prior)  # already gone: fine

    # -- metrics ---------------------------------------------------------------------------
    def test_variant_metrics_per_role(self, kit: Kit) -> None:
        prior = self.create(kit)
        stable = kit.provider.traffic(prior).stable
        kit.provider.deploy(prior, self.variant(kit, 2))
        kit.provider.set_traffic(prior, Traffic(stable, "v2", 20))
        injected = {
            Role.STABLE: (stable, 180, 2, [20.0 + i for i in range(180)]),
            Role.CANDIDATE: ("v2", 50, 4, [100.0 + i for i in range(50)]),
        }
        since = time.time() - 60
        for role, (variant, requests, errors, latencies) in injected.items():
            self.record_traffic(kit.provider, prior, role, variant, requests, errors, latencies)
        until = time.time() + 60
        metrics = kit.provider.variant_metrics(prior, since, until)
        for role, (_variant, requests, errors, latencies) in injected.items():
            got = metrics[role]
            assert (got.requests, got.server_errors) == (requests, errors), role
            self._check_latency(role, latencies, got.latency_p50_ms, 50)
            self._check_latency(role, latencies, got.latency_p95_ms, 95)
            self._check_latency(role, latencies, got.latency_p99_ms, 99)
        assert metrics.get(Role.SHADOW) is None or metrics[Role.SHADOW].requests == 0
        earlier = kit.provider.variant_metrics(prior, since - 7200, since - 3600)
        assert all(m.requests == 0 for m in earlier.values()), earlier

    def _check_latency(
        self, role: Role, latencies: Sequence[float], got: float | None, pct: int
    ) -> None:
        assert got is not None, f"{role}: no p{pct} latency"
        true = nearest_rank(latencies, pct)
        slack = self.latency_tolerance_ms + 1e-9
        if self.latency_accuracy is LatencyAccuracy.EXACT:
            assert abs(got - true) <= slack, f"{role} p{pct}: {got} ms, expected {true} ms"
        elif pct == 50:
            assert min(latencies) - slack <= got <= max(latencies) + slack, (role, pct, got)
        else:
            assert true - slack <= got <= max(latencies) + slack, (role, pct, got, true)
