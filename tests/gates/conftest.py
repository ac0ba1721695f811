"""Fixtures for gate tests: small scikit-learn models, eval CSVs, fake peers, the LLM stub."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contract import AlertMessage, Context, Desired, Prior, ProviderError, Released
from providers.files import FileHasher
from providers.gates.provider import GateProvider
from providers.gates.testing_server import OpenAIStub

SITES = ("north", "south", "east", "tiny")


@dataclass
class FakePeers:
    """The engine's Peers, in memory: declared specs, registered versions, aliases."""

    root: Path
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, str], Path] = field(default_factory=dict)  # (addr, fp) -> file
    aliases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    materialized: list[tuple[str, Any]] = field(default_factory=list)

    def recorded(self, address: str) -> Prior | None:
        return None

    def spec(self, address: str) -> Mapping[str, Any] | None:
        return self.specs.get(address)

    def has_version(self, address: str, outputs: Mapping[str, Any]) -> bool:
        return (address, str(outputs.get("fingerprint"))) in self.versions

    def materialize(self, address: str, outputs: Mapping[str, Any] | None, target: Path) -> Path:
        self.materialized.append((address, None if outputs is None else dict(outputs)))
        if outputs is None:
            spec = self.specs.get(address)
            if spec is None:
                raise ProviderError(f"{address} is not declared")
            path = self.root / (spec.get("artifact") or spec.get("uri"))
            if not path.exists():
                raise ProviderError(f"{address}: {path} does not exist")
            return path
        source = self.versions.get((address, str(outputs.get("fingerprint"))))
        if source is None:
            raise ProviderError(f"{address}: version {outputs.get('version')} is not stored")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def get_alias(self, address: str, alias: str) -> dict[str, Any] | None:
        return self.aliases.get((address, alias))

    def set_alias(self, address: str, alias: str, outputs: Mapping[str, Any]) -> None:
        self.aliases[(address, alias)] = dict(outputs)

    #: what users get now, by subject (``baseline: previous``)
    released_versions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def released(self, subject: str, gate: str | None = None) -> Released | None:
        outputs = self.released_versions.get(subject)
        return Released(outputs, "released (test peers)") if outputs else None

    def notify(self, channel: str, message: AlertMessage) -> None:
        return None


@dataclass
class Bench:
    """A spec dir with an eval CSV and trained models, plus the provider under test."""

    root: Path
    peers: FakePeers
    provider: GateProvider
    hasher: FileHasher

    def register(self, address: str, path: Path, version: int) -> dict[str, Any]:
        """Record ``path`` as a registered version; returns its outputs."""
        fp = self.hasher.digest(path)
        stored = self.root / ".registry" / f"{address}.{version}.bin"
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, stored)
        self.peers.versions[(address, fp)] = stored
        return {"version": version, "fingerprint": fp, "uri": f"local://{address}/{version}"}

    def declare_model(self, address: str, artifact: str) -> None:
        self.peers.specs[address] = {"artifact": artifact, "owner": "t"}

    def desired(
        self,
        spec: dict[str, Any],
        inputs: dict[str, Any] | None = None,
        prior_inputs: dict[str, Any] | None = None,
        name: str = "release",
    ) -> Desired:
        # in these tests "previous" is the version users get now: what peers say is released
        self.peers.released_versions = dict(prior_inputs or {})
        d = Desired(f"evals.{name}", "evals", name, spec, None, inputs or {}, prior_inputs or {})
        return Desired(
            d.address, d.section, d.name, d.spec, self.provider.fingerprint(d),
            d.inputs, d.prior_inputs,
        )  # fmt: skip


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@dataclass(frozen=True)
class CancerData:
    features: list[str]
    x_train: Any
    y_train: Any
    x_eval: Any
    y_eval: Any


@pytest.fixture(scope="session")
def cancer() -> CancerData:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x_tr, x_ev, y_tr, y_ev = train_test_split(
        data.data, 1 - data.target, test_size=0.4, random_state=0, stratify=data.target
    )
    names = [n.replace(" ", "_") for n in data.feature_names]
    return CancerData(names, x_tr, y_tr, x_ev, y_ev)


def train_cancer(cancer: CancerData, path: Path, *, strong: bool = True) -> Path:
    """A good model (all features, scaled logistic regression) or a weaker one (3 features)."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cols = list(range(len(cancer.features))) if strong else [1, 4, 9]  # texture, smoothness, fd
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(cancer.x_train[:, cols], cancer.y_train)
    model.feature_names = [cancer.features[i] for i in cols]  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def site_of(i: int) -> str:
    """Three large sites and one tiny one (5 rows): a slice below min_rows."""
    return "tiny" if i < 5 else SITES[i % 3]


@pytest.fixture
def bench(tmp_path: Path, cancer: CancerData) -> Iterator[Bench]:
    root = tmp_path / "spec"
    rows = [
        [*map(float, x), site_of(i), int(y)]
        for i, (x, y) in enumerate(zip(cancer.x_eval, cancer.y_eval, strict=True))
    ]
    write_csv(root / "data" / "eval.csv", [*cancer.features, "site", "malignant"], rows)
    peers = FakePeers(root)
    peers.specs["datasets.eval"] = {"uri": "data/eval.csv", "format": "csv", "owner": "t"}
    context = Context(root=root, data_dir=root / ".mlx", peers=peers)
    provider = GateProvider({"type": "gate"}, context)
    yield Bench(root, peers, provider, provider.hasher)
    provider.close()


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server
