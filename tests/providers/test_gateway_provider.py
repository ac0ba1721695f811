"""The embedded gateway's serving provider: route documents in a real state database.

Everything is real: the route table is ``dataplane.table`` on SQLite (and once on PostgreSQL),
the inference log is ``inference.store`` on SQLite, artifacts are files the fake peers
materialize. The provider runs the shared ``ServingConformance`` and ``CrudConformance``
suites, plus the gateway's own cases.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contract import (
    Change,
    Context,
    Desired,
    LogSource,
    Prior,
    ProviderError,
    Role,
    Traffic,
    Variant,
    capability,
)
from dataplane.table import Route, RouteStore
from inference.records import Feedback, InferenceRecord
from inference.store import open_log
from providers.gateway.artifacts import MANIFEST
from providers.gateway.provider import GatewayProvider
from providers.testing import CrudConformance
from providers.testing.base import BEHAVIOUR
from providers.testing.serving import (
    ENDPOINT,
    SUBJECT,
    FakePeers,
    LatencyAccuracy,
    ServingConformance,
)

ENV = "default"
PROMPT = "prompts.support"
SECRET = "sk-test-9f8e7d6c5b4a-never-in-a-document"


def urls(tmp_path: Path) -> tuple[str, str]:
    data = tmp_path / ".mlx"
    data.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data / 'state.db'}", f"sqlite:///{data / 'inference.db'}"


def make(
    tmp_path: Path,
    peers: Any,
    *,
    state_url: str | None = None,
    environment: str = ENV,
    **config: Any,
) -> GatewayProvider:
    state, log = urls(tmp_path)
    logs: list[str] = []
    ctx = Context(
        root=tmp_path,
        data_dir=tmp_path / ".mlx",
        environment=environment,
        peers=peers,
        log=logs.append,
        state_url=state_url or state,
        log_url=log,
    )
    provider = GatewayProvider(config, ctx)
    provider.logs = logs  # type: ignore[attr-defined]
    return provider


def live(provider: GatewayProvider, name: str = "fraud") -> Route | None:
    """The route as a replica sees it: a store of its own, not the provider's."""
    assert provider.context.state_url is not None
    store = RouteStore.open(provider.context.state_url)
    try:
        return store.get(provider.context.environment, name)
    finally:
        store.engine.dispose()


def hand_edit(provider: GatewayProvider, name: str, edit: Any) -> None:
    """Change the route document behind mlx's back (an operator with SQL access)."""
    assert provider.context.state_url is not None
    store = RouteStore.open(provider.context.state_url)
    try:
        route = store.get(provider.context.environment, name)
        assert route is not None
        doc = json.loads(json.dumps(route.doc))
        edit(doc)
        store.put(provider.context.environment, name, doc)
    finally:
        store.engine.dispose()


def log_records(provider: GatewayProvider, records: Sequence[Any], feedback: Sequence[Any] = ()):
    assert provider.context.log_url is not None
    store = open_log(provider.context.log_url)
    try:
        store.write(list(records), list(feedback))
    finally:
        store.close()


# -- the shared serving suite --------------------------------------------------------------
class TestGatewayServing(ServingConformance):
    supports_mirror = True
    #: the log's buckets are within 1 % of the nearest rank (and clamped to each bucket's
    #: min/max): the suite's default 1 ms holds; exact values are checked on a known set below
    latency_accuracy = LatencyAccuracy.EXACT

    def make_provider(self, tmp_path: Path, peers: FakePeers) -> GatewayProvider:
        return make(tmp_path, peers)

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
        now = time.time()
        records = [
            InferenceRecord(
                request_id=uuid.uuid4().hex,
                ts=now,
                endpoint=endpoint.name,
                variant=role.value,
                subject=SUBJECT,
                version=variant.removeprefix("v"),
                status=500 if i < errors else 200,
                latency_ms=latencies_ms[i],
            )
            for i in range(requests)
        ]
        log_records(provider, records)

    def edit_weights(self, provider: Any, endpoint: Prior, weights: Mapping[str, float]) -> None:
        def edit(doc: dict[str, Any]) -> None:
            stable = doc["traffic"]["stable"]
            others = [n for n, w in weights.items() if n != stable and w > 0]
            doc["traffic"] = {
                "stable": stable,
                "candidate": others[0] if others else None,
                "weight": int(weights[others[0]]) if others else 0,
                "mirror": 0,
            }

        hand_edit(provider, endpoint.name, edit)


# -- the shared CRUD suite, on a prompt endpoint with a secret key -------------------------
class TestGatewayCrud(CrudConformance):
    section = "endpoints"
    version_key = "stable_version"

    def make_provider(self, tmp_path: Path) -> GatewayProvider:
        return make(tmp_path, self.peers)

    def desired(self, tmp_path: Path, variant: str) -> Desired:
        number = 2 if variant == "v2" else 1
        document = {
            "template": f"Answer the customer (v{number}): {{{{question}}}}",
            "system": "You are a support agent.",
            "model": "gpt-4o-mini",
            "variables": ["question"],
        }
        blob = json.dumps(document, sort_keys=True, indent=2).encode()
        outputs = self.peers.register(PROMPT, blob, version=number)
        self.peers.declare(PROMPT, {**document, "owner": "team-support"})
        spec: dict[str, Any] = {
            "serves": PROMPT,
            "owner": "team-support" if variant != "meta" else "team-care",
            "client": {
                "type": "openai",
                "base_url": "http://127.0.0.1:8011/v1",
                "api_key": SECRET,
            },
        }
        if variant == "bad":
            del spec["client"]
        return Desired("endpoints.support", "endpoints", "support", spec, inputs={PROMPT: outputs})

    def tamper(self, provider: Any, prior: Prior) -> None:
        hand_edit(provider, prior.name, lambda doc: doc["log"].update(payloads=1.0))


# -- the gateway's own cases ---------------------------------------------------------------
class Setup:
    """A provider on a real state database, fake peers holding versions, and helpers."""

    def __init__(self, tmp_path: Path, state_url: str | None = None, **config: Any):
        self.tmp_path = tmp_path
        self.peers = FakePeers()
        self.peers.specs[SUBJECT] = {
            "artifact": "models/fraud.joblib",
            "flavor": "sklearn",
            "owner": "team-ml",
        }
        self.provider = make(tmp_path, self.peers, state_url=state_url, **config)

    def version(self, n: int, body: bytes | None = None) -> dict[str, Any]:
        path = self.tmp_path / "registry" / f"v{n}" / "fraud.joblib"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body if body is not None else f"fraud weights {n}".encode())
        return self.peers.register(SUBJECT, n, path)

    def prompt_version(self, n: int, **doc: Any) -> dict[str, Any]:
        """A prompt version as a registry stores it: its prompt document, as JSON."""
        document = {"template": f"Answer (v{n}): {{{{question}}}}", **doc}
        path = self.tmp_path / "registry" / f"prompt-{n}" / "support.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, sort_keys=True, indent=2))
        return self.peers.register(PROMPT, n, path)

    def desired(
        self, outputs: Mapping[str, Any], name: str = "fraud", subject: str = SUBJECT, **spec: Any
    ) -> Desired:
        body = {"serves": subject, "owner": "team-ml", **spec}
        return Desired(f"endpoints.{name}", "endpoints", name, body, inputs={subject: outputs})

    def create(self, desired: Desired) -> Prior:
        assert self.provider.check(desired) == []
        out = self.provider.create(desired).outputs
        return Prior(desired.address, "endpoints", desired.name, dict(desired.spec), out)

    def update(self, prior: Prior, desired: Desired, change: Change = BEHAVIOUR) -> Prior:
        out = self.provider.update(prior, desired, change).outputs
        return Prior(desired.address, "endpoints", desired.name, dict(desired.spec), out)

    def variant(self, n: int) -> Variant:
        return Variant(f"v{n}", SUBJECT, self.version(n), dict(self.peers.specs[SUBJECT]))

    def doc(self, name: str = "fraud") -> dict[str, Any]:
        route = live(self.provider, name)
        assert route is not None, f"no route for {name}"
        return route.doc


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    made = Setup(tmp_path)
    yield made
    made.provider.close()


def support_client(**extra: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": "http://127.0.0.1:8011/v1", **extra}


#: The route document of docs/gateway.md, as a JSON Schema (plus ``deployment``, see routes).
_NUMBER = {"type": "number"}
_PROMPT = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "template",
        "system",
        "model",
        "params",
        "allow_params",
        "variables",
        "routing",
        "retrieval_version",
    ],
    "properties": {
        "template": {"type": "string"},
        "system": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "params": {"type": "object"},
        "allow_params": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [
                    {"type": "boolean"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["max"],
                        "properties": {"max": {"type": "number", "exclusiveMinimum": 0}},
                    },
                ]
            },
        },
        "variables": {"type": "array", "items": {"type": "string"}},
        "routing": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["rules", "default"],
                    "properties": {
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["when", "model"],
                                "properties": {
                                    "when": {"type": ["string", "object"]},
                                    "model": {"type": "string"},
                                },
                            },
                        },
                        "default": {"type": ["string", "null"]},
                    },
                },
            ]
        },
        "retrieval_version": {"type": ["string", "null"]},
    },
}
_VARIANT_COMMON = {
    "name": {"type": "string"},
    "version": {"type": ["integer", "string"]},
    "fingerprint": {"type": "string", "minLength": 1},
    "outputs": {
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "fingerprint", "uri"],
        "properties": {
            "version": {"type": ["integer", "string"]},
            "fingerprint": {"type": "string"},
            "uri": {"type": "string"},
        },
    },
    "deployed_at": {"type": "string", "format": "date-time"},
}
_COLUMN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "type", "nullable"],
    "properties": {
        "name": {"type": ["string", "null"]},
        "type": {"enum": ["float", "int", "bool", "string", None]},
        "nullable": {"type": "boolean"},
    },
}
_MODEL_VARIANT = {
    "type": "object",
    "additionalProperties": False,
    "required": [*_VARIANT_COMMON, "flavor", "artifact", "digest"],
    "properties": {
        **_VARIANT_COMMON,
        "flavor": {"type": "string"},
        "artifact": {"type": "string", "pattern": "^/"},
        "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["source", "columns"],
            "properties": {
                "source": {"enum": ["spec", "sklearn", "mlflow"]},
                "columns": {"type": "array", "items": _COLUMN},
            },
        },
    },
}
_PROMPT_VARIANT = {
    "type": "object",
    "additionalProperties": False,
    "required": [*_VARIANT_COMMON, "prompt"],
    "properties": {**_VARIANT_COMMON, "prompt": _PROMPT},
}
_PRICE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["input_per_1k", "output_per_1k"],
    "properties": {"input_per_1k": _NUMBER, "output_per_1k": _NUMBER},
}
#: Where a replica finds the upstream key — never the key (``dataplane.route.KeyRef``).
_KEY_REF = {
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["env"],
            "properties": {"env": {"type": "string", "minLength": 1}},
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["spec"],
            "properties": {"spec": {"const": True}},
        },
    ]
}
_CLIENT = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "type",
        "base_url",
        "timeout_s",
        "backoff_s",
        "model",
        "params",
        "max_response_bytes",
        "api_key",
    ],
    "properties": {
        "type": {"const": "openai"},
        "base_url": {"type": "string"},
        "timeout_s": _NUMBER,
        "backoff_s": _NUMBER,
        "model": {"type": ["string", "null"]},
        "params": {"type": "object"},
        "max_response_bytes": {"type": "integer", "exclusiveMinimum": 0},
        "api_key": _KEY_REF,
    },
}


def route_schema(kind: str) -> dict[str, Any]:
    variant = _MODEL_VARIANT if kind == "model" else _PROMPT_VARIANT
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "format",
            "endpoint",
            "address",
            "environment",
            "kind",
            "subject",
            "deployment",
            "variants",
            "traffic",
            "log",
            "cache",
            "client",
            "pricing",
            "timeout_s",
            "max_body_bytes",
        ],
        "properties": {
            "format": {"const": 1},
            "endpoint": {"type": "string"},
            "address": {"type": "string", "pattern": "^endpoints\\."},
            "environment": {"type": "string"},
            "kind": {"const": kind},
            "subject": {"type": "string", "pattern": f"^{kind}s\\."},
            "deployment": {"type": "string", "minLength": 1},
            "variants": {"type": "object", "minProperties": 1, "additionalProperties": variant},
            "traffic": {
                "type": "object",
                "additionalProperties": False,
                "required": ["stable", "candidate", "weight", "mirror"],
                "properties": {
                    "stable": {"type": "string"},
                    "candidate": {"type": ["string", "null"]},
                    "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                    "mirror": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            },
            "log": {
                "type": "object",
                "additionalProperties": False,
                "required": ["payloads"],
                "properties": {"payloads": {"type": "number", "minimum": 0, "maximum": 1}},
            },
            "cache": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["ttl_s"],
                        "properties": {"ttl_s": {"type": "number", "exclusiveMinimum": 0}},
                    },
                ]
            },
            "client": {"oneOf": [{"type": "null"}, _CLIENT]},
            "pricing": {"type": "object", "additionalProperties": _PRICE},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0},
            "max_body_bytes": {"type": "integer", "minimum": 1},
        },
    }


def assert_route_shape(doc: Mapping[str, Any], kind: str) -> None:
    import jsonschema  # type: ignore[import-untyped]

    jsonschema.Draft202012Validator(
        route_schema(kind), format_checker=jsonschema.FormatChecker()
    ).validate(doc)
    assert doc["traffic"]["stable"] in doc["variants"]
    for name, entry in doc["variants"].items():
        assert entry["name"] == name


def test_model_route_document_is_the_documented_shape(setup: Setup) -> None:
    v1 = setup.version(1, b"the fraud model")
    prior = setup.create(setup.desired(v1, log={"payloads": 0.1}))
    doc = setup.doc()
    assert_route_shape(doc, "model")
    entry = doc["variants"]["v1"]
    home = setup.tmp_path / ".mlx" / "gateway" / "artifacts" / v1["fingerprint"][len("sha256:") :]
    assert entry["artifact"] == str(home / "fraud.joblib")  # the declared file's name
    assert Path(entry["artifact"]).read_bytes() == b"the fraud model"
    assert (entry["version"], entry["fingerprint"], entry["flavor"]) == (
        1,
        v1["fingerprint"],
        "sklearn",
    )
    assert entry["outputs"] == v1
    assert {k: doc[k] for k in ("format", "endpoint", "address", "environment", "subject")} == {
        "format": 1,
        "endpoint": "fraud",
        "address": ENDPOINT,
        "environment": ENV,
        "subject": SUBJECT,
    }
    assert doc["traffic"] == Traffic("v1").as_dict()
    assert (doc["log"], doc["cache"], doc["client"], doc["pricing"]) == (
        {"payloads": 0.1},
        None,
        None,
        {},
    )
    assert (doc["timeout_s"], doc["max_body_bytes"]) == (30, 1_048_576)
    route = live(setup.provider)
    assert route is not None
    out = prior.outputs
    assert out == {
        "url": "http://127.0.0.1:8080/endpoints/fraud",
        "subject": SUBJECT,
        "stable_version": 1,
        "fingerprint": v1["fingerprint"],
        "weights": {"v1": 100},
        "variants": {"v1": {"version": 1, "fingerprint": v1["fingerprint"]}},
        "traffic": Traffic("v1").as_dict(),
        "deployment": doc["deployment"],
        "generation": route.generation,
    }


def test_prompt_route_document_holds_the_registered_prompt_and_no_secret(setup: Setup) -> None:
    registered = {
        "system": "You are a support agent.",
        "model": "gpt-4o-mini",
        "params": {"temperature": 0.1},
        "allow_params": {"temperature": True, "max_tokens": {"max": 256}},
        "variables": {"question": "what the customer asked"},
        "routing": {"rules": [{"when": "input_tokens < 200", "model": "gpt-4o-mini"}]},
    }
    outputs = setup.prompt_version(3, **registered)
    # the spec says something else by now: the served version is the registered one
    setup.peers.specs[PROMPT] = {"template": "newer, unregistered text", "owner": "team-support"}
    desired = setup.desired(
        outputs,
        name="support",
        subject=PROMPT,
        client=support_client(api_key=SECRET, timeout_s=20, max_response_bytes=65536),
        cache={"ttl": "10m"},
        log={"payloads": 1},
        pricing={"gpt-4o-mini": {"input_per_1k": 0.00015, "output_per_1k": 0.0006}},
        timeout_s=12,
        max_body_bytes=4096,
    )
    # the spec wrote client.api_key: ${env.SUPPORT_LLM_KEY}
    desired = replace(desired, env_refs={"client.api_key": "SUPPORT_LLM_KEY"})
    prior = setup.create(desired)
    doc = setup.doc("support")
    assert_route_shape(doc, "prompt")
    assert doc["variants"]["v3"]["prompt"] == {
        "template": "Answer (v3): {{question}}",
        "system": "You are a support agent.",
        "model": "gpt-4o-mini",
        "params": {"temperature": 0.1},
        "allow_params": {"temperature": True, "max_tokens": {"max": 256}},
        "variables": ["question"],
        "routing": {
            "rules": [{"when": "input_tokens < 200", "model": "gpt-4o-mini"}],
            "default": None,
        },
        "retrieval_version": None,
    }
    assert doc["client"] == {
        "type": "openai",
        "base_url": "http://127.0.0.1:8011/v1",
        "timeout_s": 20,
        "backoff_s": 0.5,
        "model": None,
        "params": {},
        "max_response_bytes": 65536,
        "api_key": {"env": "SUPPORT_LLM_KEY"},  # where the key is, never the key
    }
    assert doc["cache"] == {"ttl_s": 600}
    assert (doc["log"], doc["timeout_s"], doc["max_body_bytes"]) == ({"payloads": 1}, 12, 4096)
    assert doc["pricing"] == {"gpt-4o-mini": {"input_per_1k": 0.00015, "output_per_1k": 0.0006}}
    # the key is nowhere: not in the document, the outputs, or any file mlx wrote
    assert SECRET not in json.dumps(doc)
    assert SECRET not in json.dumps(prior.outputs)
    for path in (setup.tmp_path / ".mlx").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    # a settings-only update keeps it out too
    changed = replace(desired, spec={**desired.spec, "timeout_s": 5})
    setup.provider.update(prior, changed, Change(behaviour=True, fields=("timeout_s",)))
    assert setup.doc("support")["timeout_s"] == 5
    assert SECRET not in json.dumps(setup.doc("support"))


def test_prompt_from_a_registry_that_hands_out_the_template_file(setup: Setup) -> None:
    path = setup.tmp_path / "registry" / "support.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Reply to {{question}} politely.")
    outputs = setup.peers.register(PROMPT, 1, path)
    setup.peers.specs[PROMPT] = {
        "template": {"file": "prompts/support.txt"},
        "system": "Be brief.",
        "model": "llama3",
        "variables": ["question"],
    }
    setup.create(setup.desired(outputs, "support", PROMPT, client=support_client()))
    prompt = setup.doc("support")["variants"]["v1"]["prompt"]
    assert prompt["template"] == "Reply to {{question}} politely."
    assert (prompt["system"], prompt["model"], prompt["variables"]) == (
        "Be brief.",
        "llama3",
        ["question"],
    )


def test_artifacts_are_content_addressed_and_reused(setup: Setup) -> None:
    v1 = setup.version(1, b"shared weights")
    setup.create(setup.desired(v1, name="fraud"))
    setup.create(setup.desired(v1, name="fraud_eu"))
    a = setup.doc("fraud")["variants"]["v1"]["artifact"]
    b = setup.doc("fraud_eu")["variants"]["v1"]["artifact"]
    assert a == b and Path(a).read_bytes() == b"shared weights"
    assert setup.peers.fetched == [(SUBJECT, v1["fingerprint"])], "fetched twice"
    # a copy that is no longer intact is fetched again, never served as is
    Path(a).write_bytes(b"tampered")
    setup.create(setup.desired(v1, name="fraud_us"))
    assert setup.doc("fraud_us")["variants"]["v1"]["artifact"] == a
    assert Path(a).read_bytes() == b"shared weights"
    assert len(setup.peers.fetched) == 2
    root = setup.tmp_path / ".mlx" / "gateway" / "artifacts"
    assert sorted(p.name for p in root.iterdir()) == [v1["fingerprint"].removeprefix("sha256:")]
    assert sorted(p.name for p in Path(a).parent.iterdir()) == [MANIFEST, "fraud.joblib"]


def test_an_artifact_removed_from_disk_is_drift_and_fetched_again(setup: Setup) -> None:
    import shutil

    desired = setup.desired(setup.version(1))
    prior = setup.create(desired)
    setup.provider.deploy(prior, setup.variant(2))
    seen = setup.provider.read(prior)
    assert seen is not None
    prior = replace(prior, outputs={**prior.outputs, **seen.outputs})
    paths = {n: Path(e["artifact"]) for n, e in setup.doc()["variants"].items()}
    shutil.rmtree(setup.tmp_path / ".mlx" / "gateway")
    observed = setup.provider.read(prior)
    assert observed is not None
    assert observed.differences(prior.outputs) == [
        f"the artifact of v1 is gone: {paths['v1']}",
        f"the artifact of v2 is gone: {paths['v2']}",
    ]
    setup.provider.update(prior, desired, Change(behaviour=True))
    assert {n: Path(e["artifact"]) for n, e in setup.doc()["variants"].items()} == paths
    assert paths["v1"].read_bytes() == b"fraud weights 1"
    assert paths["v2"].read_bytes() == b"fraud weights 2"
    observed = setup.provider.read(prior)
    assert observed is not None and observed.differences(prior.outputs) == []


def test_a_served_copy_swapped_with_its_manifest_is_drift_and_fetched_again(
    setup: Setup,
) -> None:
    """Someone who can write the artifact directory replaces the file *and* rewrites its
    manifest to match: the copy is still not the recorded digest, so refresh reports it and
    the next apply fetches the gated bytes again (mlx serve refuses to load it meanwhile)."""
    desired = setup.desired(setup.version(1))
    prior = setup.create(desired)
    seen = setup.provider.read(prior)
    assert seen is not None and seen.differences(prior.outputs) == []
    entry = setup.doc()["variants"]["v1"]
    path = Path(entry["artifact"])
    assert entry["digest"] == entry["fingerprint"]  # a file: the sha256 of its bytes
    path.write_bytes(b"another model")
    record = json.loads((path.parent / MANIFEST).read_text())
    record["files"] = {".": hashlib.sha256(b"another model").hexdigest()}
    (path.parent / MANIFEST).write_text(json.dumps(record))
    observed = setup.provider.read(prior)
    assert observed is not None
    [note] = observed.differences(prior.outputs)
    assert note.startswith(f"the served copy of v1 (version 1) is not the gated bytes: {path}: ")
    assert "its bytes hash to sha256:" in note and "mlx serve refuses to load it" in note
    setup.provider.update(prior, desired, Change(behaviour=True))
    assert path.read_bytes() == b"fraud weights 1"
    again = setup.provider.read(prior)
    assert again is not None and again.differences(prior.outputs) == []


def test_the_route_carries_the_versions_input_schema_and_follows_a_declared_one(
    setup: Setup,
) -> None:
    """An ``inputs:`` added to the model's spec changes its schema, not its version: the
    route's variant then checks requests by the new schema (no redeploy, same variant)."""
    read = {"source": "sklearn", "columns": [{"name": None, "type": "float", "nullable": False}]}
    v1 = {**setup.version(1), "input_schema": read}
    prior = setup.create(setup.desired(v1))
    assert setup.doc()["variants"]["v1"]["input_schema"] == read
    declared = {"source": "spec", "columns": [{"name": "x", "type": "int", "nullable": True}]}
    setup.update(prior, setup.desired({**v1, "input_schema": declared}))
    doc = setup.doc()
    assert list(doc["variants"]) == ["v1"] and doc["variants"]["v1"]["input_schema"] == declared
    assert_route_shape(doc, "model")


def test_a_registry_that_hands_out_other_bytes_is_refused(setup: Setup) -> None:
    v1 = setup.version(1)
    setup.peers.artifacts[v1["fingerprint"]] = _file(setup.tmp_path / "other.bin", b"not it")
    with pytest.raises(ProviderError, match="the registry gave other bytes than version sha256:"):
        setup.create(setup.desired(v1))


def test_a_directory_artifact_is_copied_whole(setup: Setup) -> None:
    model_dir = setup.tmp_path / "registry" / "mlflow-model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "MLmodel").write_text("flavors: {python_function: {}}\n")
    (model_dir / "code" / "predict.py").write_text("def predict(x): return x\n")
    outputs = setup.peers.register(SUBJECT, 4, model_dir)
    setup.peers.specs[SUBJECT] = {"artifact": "models/mlflow-model/", "flavor": "pyfunc"}
    setup.create(setup.desired(outputs))
    entry = setup.doc()["variants"]["v4"]
    served = Path(entry["artifact"])
    assert served.name == "mlflow-model" and entry["flavor"] == "pyfunc"
    assert (served / "code" / "predict.py").read_text() == "def predict(x): return x\n"
    assert (served / "MLmodel").is_file()


def test_every_document_an_update_writes_serves_a_deployed_stable(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    written: list[tuple[int, dict[str, Any], Route | None]] = []
    original = RouteStore.put

    def put(store: RouteStore, workspace: str, endpoint: str, doc: dict[str, Any]) -> int:
        generation = original(store, workspace, endpoint, doc)
        # what a replica polling the table reads right after this write
        written.append((generation, json.loads(json.dumps(doc)), live(setup.provider)))
        return generation

    monkeypatch.setattr(RouteStore, "put", put)
    v2 = setup.version(2)
    after = setup.update(prior, setup.desired(v2, log={"payloads": 0.5}))
    monkeypatch.undo()
    assert len(written) >= 3, "deploy, move traffic and retire are separate documents"
    generations = [g for g, _doc, _seen in written]
    assert generations == sorted(set(generations)), generations
    for generation, doc, seen in written:
        assert seen is not None and seen.generation == generation and seen.doc == doc
        assert_route_shape(doc, "model")
        split = doc["traffic"]
        assert split["stable"] in doc["variants"], f"generation {generation}: {split}"
        for entry in doc["variants"].values():
            assert Path(entry["artifact"]).is_file(), f"generation {generation}: {entry}"
    stables = [doc["traffic"]["stable"] for _g, doc, _s in written]
    variants = [sorted(doc["variants"]) for _g, doc, _s in written]
    # settings first, then v2 deployed dark, then every request to it, then v1 gone
    assert stables == ["v1", "v1", "v2", "v2"] and variants == [
        ["v1"],
        ["v1", "v2"],
        ["v1", "v2"],
        ["v2"],
    ]
    assert written[0][1]["log"] == {"payloads": 0.5}
    assert after.outputs["generation"] == generations[-1]
    assert after.outputs["weights"] == {"v2": 100} and after.outputs["stable_version"] == 2


def test_a_version_back_reuses_its_artifact(setup: Setup) -> None:
    v1, v2 = setup.version(1), setup.version(2)
    prior = setup.create(setup.desired(v1))
    prior = setup.update(prior, setup.desired(v2))
    back = setup.update(prior, setup.desired(v1))
    assert back.outputs["variants"] == {"v1": {"version": 1, "fingerprint": v1["fingerprint"]}}
    assert [f for _a, f in setup.peers.fetched] == [v1["fingerprint"], v2["fingerprint"]]


def test_metadata_change_rewrites_settings_and_keeps_the_split(setup: Setup) -> None:
    desired = setup.desired(setup.version(1))
    prior = setup.create(desired)
    setup.provider.deploy(prior, setup.variant(2))
    setup.provider.set_traffic(prior, Traffic("v1", "v2", 10))
    edited = replace(desired, spec={**desired.spec, "timeout_s": 5, "labels": {"tier": "gold"}})
    out = setup.provider.update(prior, edited, Change(metadata=True)).outputs
    doc = setup.doc()
    assert doc["timeout_s"] == 5
    assert doc["traffic"] == Traffic("v1", "v2", 10).as_dict()
    assert out["weights"] == {"v1": 90, "v2": 10}
    # nothing to change: nothing written
    again = setup.provider.update(replace(prior, outputs=out), edited, Change(metadata=True))
    assert again.outputs["generation"] == out["generation"]


def test_a_hand_edited_document_is_drift_and_an_update_repairs_it(setup: Setup) -> None:
    desired = setup.desired(setup.version(1))
    prior = setup.create(desired)
    setup.provider.deploy(prior, setup.variant(2))
    observed = setup.provider.read(prior)
    assert observed is not None
    prior = replace(prior, outputs={**prior.outputs, **observed.outputs})

    def edit(doc: dict[str, Any]) -> None:
        doc["traffic"].update(candidate="v2", weight=30)
        doc["max_body_bytes"] = 10

    hand_edit(setup.provider, "fraud", edit)
    observed = setup.provider.read(prior)
    assert observed is not None
    drift = observed.differences(prior.outputs, prior.fingerprint)
    assert "weights: {'v1': 100, 'v2': 0} -> {'v1': 70, 'v2': 30}" in drift
    assert any(line.startswith("traffic:") for line in drift)
    assert "route settings changed outside mlx: max_body_bytes" in drift
    repaired = setup.provider.update(prior, desired, Change(behaviour=True))
    assert repaired.outputs["weights"] == {"v1": 100, "v2": 0}
    assert setup.doc()["max_body_bytes"] == 1_048_576
    observed = setup.provider.read(prior)
    assert observed is not None and observed.differences(prior.outputs) == []
    # a route deleted by hand: gone, and an update makes it again
    assert live(setup.provider) is not None
    store = RouteStore.open(str(setup.provider.context.state_url))
    store.delete(ENV, "fraud")
    store.engine.dispose()
    assert setup.provider.read(prior) is None
    again = setup.provider.update(prior, desired, Change(behaviour=True))
    assert again.outputs["weights"] == {"v1": 100}


def test_variant_metrics_from_the_log(setup: Setup) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    now = time.time()

    def rec(variant: str, latency: float, status: int = 200, **kw: Any) -> InferenceRecord:
        values: dict[str, Any] = {
            "request_id": uuid.uuid4().hex,
            "ts": now,
            "endpoint": "fraud",
            "variant": variant,
            "status": status,
            "latency_ms": latency,
            "cost_usd": 0.002,
            **kw,
        }
        return InferenceRecord(**values)

    # ten latencies a bucket apart each: nearest-rank percentiles come back exactly
    stable = [rec("stable", 10.0 * (i + 1), status) for i, status in enumerate([500, 503, 404])]
    stable += [rec("stable", 10.0 * (i + 1)) for i in range(3, 10)]
    candidate = [rec("candidate", ms) for ms in (5.0, 50.0, 500.0)]
    shadow = [rec("shadow", 7.0, request_id=candidate[0].request_id)]
    elsewhere = [
        rec("stable", 1.0, endpoint="other"),
        rec("stable", 1.0, environment="prod"),
        rec("stable", 1.0, ts=now - 7200),
    ]
    feedback = [
        Feedback(request_id=stable[3].request_id, endpoint="fraud", value=1),
        Feedback(request_id=stable[4].request_id, endpoint="fraud", value=0),
        Feedback(request_id=stable[5].request_id, endpoint="fraud", outcome=True),
    ]
    log_records(setup.provider, stable + candidate + shadow + elsewhere, feedback)
    got = setup.provider.variant_metrics(prior, now - 60, now + 60)
    assert set(got) == set(Role)
    s, c, w = got[Role.STABLE], got[Role.CANDIDATE], got[Role.SHADOW]
    assert (s.requests, s.server_errors) == (10, 2)  # a 404 is the caller's error
    assert (s.latency_p50_ms, s.latency_p95_ms, s.latency_p99_ms) == (50.0, 100.0, 100.0)
    assert s.cost_usd == pytest.approx(0.02)
    assert s.feedback_count == 3 and s.feedback_mean == pytest.approx(2 / 3)
    assert (c.requests, c.server_errors, c.feedback_count, c.feedback_mean) == (3, 0, 0, None)
    assert (c.latency_p50_ms, c.latency_p95_ms) == (50.0, 500.0)
    assert (w.requests, w.latency_p50_ms) == (1, 7.0)
    empty = setup.provider.variant_metrics(prior, now - 600, now - 300)
    assert all(m.requests == 0 and m.latency_p50_ms is None for m in empty.values())


def test_the_log_source_is_the_log_the_metrics_read(setup: Setup) -> None:
    """A monitor reads an endpoint's log through ``LogSource``: the same records, counted."""
    prior = setup.create(setup.desired(setup.version(1)))
    source = capability(setup.provider, LogSource)
    url = source.log_url(prior)
    assert url is not None
    now = time.time()
    records = [
        InferenceRecord(
            request_id=uuid.uuid4().hex,
            ts=now,
            endpoint="fraud",
            variant="stable",
            status=200,
            latency_ms=float(i),
        )
        for i in range(4)
    ]
    log_records(setup.provider, records)
    store = open_log(url)
    try:
        logged = store.tail("fraud", environment=ENV)
        got = sorted(r.record.request_id for r in logged)
        assert got == sorted(r.request_id for r in records)
    finally:
        store.close()
    assert setup.provider.variant_metrics(prior, now - 1, now + 1)[Role.STABLE].requests == 4


def test_the_log_source_defaults_to_the_spec_directory(tmp_path: Path) -> None:
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", environment=ENV, peers=FakePeers())
    provider = GatewayProvider({}, ctx)
    endpoint = Prior("endpoints.fraud", "endpoints", "fraud", {}, {})
    assert provider.log_url(endpoint) == f"sqlite:///{tmp_path / '.mlx' / 'inference.db'}"
    provider.close()


def test_metrics_without_a_log_are_zero_and_create_nothing(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    prior = setup.create(setup.desired(setup.version(1)))
    got = setup.provider.variant_metrics(prior, 0, time.time())
    assert all(m.requests == 0 for m in got.values()) and set(got) == set(Role)
    assert not (tmp_path / ".mlx" / "inference.db").exists()
    setup.provider.close()


def test_check_problems(setup: Setup) -> None:
    def problems(subject: str = SUBJECT, **spec: Any) -> list[tuple[tuple[Any, ...], str]]:
        found = setup.provider.check(setup.desired({}, subject=subject, **spec))
        assert all("\n" not in p.message for p in found)
        return [(p.path, p.message) for p in found]

    assert problems() == []
    assert problems(PROMPT, client=support_client()) == []
    [(path, message)] = problems(PROMPT)
    assert path == ("client",) and "prompt endpoint needs its LLM upstream" in message
    assert [p for p, _m in problems(client=support_client(), cache={"ttl": "1m"})] == [
        ("client",),
        ("cache",),
    ]
    assert problems(log={"payloads": 1.5})[0][0] == ("log", "payloads")
    assert problems(subject="datasets.x")[0][0] == ("serves",)


def test_traffic_rules(setup: Setup) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    setup.provider.deploy(prior, setup.variant(2))
    refused = {
        "mirror 150": Traffic("v1", "v2", 0, 150),
        "needs a candidate": Traffic("v1", None, 10),
        "both stable and candidate": Traffic("v1", "v1", 10),
        "out of range": Traffic("v1", "v2", 12.5),  # type: ignore[arg-type]
    }
    for match, split in refused.items():
        with pytest.raises(ProviderError, match=match) as caught:
            setup.provider.set_traffic(prior, split)
        assert str(caught.value).startswith("endpoints.fraud: ")
    assert setup.provider.traffic(prior) == Traffic("v1")
    setup.provider.set_traffic(prior, Traffic("v1", "v2", 10.0, 20))  # type: ignore[arg-type]
    assert setup.doc()["traffic"] == {"stable": "v1", "candidate": "v2", "weight": 10, "mirror": 20}
    setup.provider.set_traffic(prior, Traffic("v1", "v2", 0, 20))
    with pytest.raises(ProviderError, match="v2 still takes 20% mirrored copies"):
        setup.provider.retire(prior, "v2")
    setup.provider.set_traffic(prior, Traffic("v2"))  # promote: v1 takes nothing now
    setup.provider.retire(prior, "v1")
    assert sorted(setup.doc()["variants"]) == ["v2"]


def test_deploy_refuses_other_content_under_a_taken_name(setup: Setup) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    impostor = Variant("v1", SUBJECT, setup.version(7), {})
    with pytest.raises(ProviderError, match="variant v1 of fraud already serves"):
        setup.provider.deploy(prior, impostor)
    other = Variant("v1", "models.other", setup.version(1), {})
    with pytest.raises(ProviderError, match=r"serves models\.fraud"):
        setup.provider.deploy(prior, other)
    gone = replace(prior, name="nowhere", address="endpoints.nowhere")
    with pytest.raises(ProviderError, match="no route for nowhere"):
        setup.provider.deploy(gone, setup.variant(2))
    setup.provider.retire(gone, "v1")  # nothing there: nothing to do


def test_an_update_to_the_same_version_under_a_reused_number_gets_its_own_variant(
    setup: Setup,
) -> None:
    """A registry that was wiped numbers a new content ``1`` again: not the live ``v1``."""
    prior = setup.create(setup.desired(setup.version(1, b"old")))
    reborn = setup.peers.register(SUBJECT, 1, _file(setup.tmp_path / "reborn.joblib", b"new"))
    out = setup.update(prior, setup.desired(reborn)).outputs
    [name] = out["variants"]
    assert name.startswith("v1-") and out["variants"][name]["fingerprint"] == reborn["fingerprint"]
    assert out["weights"] == {name: 100}


def test_serving_another_subject_is_one_write(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    prior = setup.create(setup.desired(setup.version(1)))
    setup.peers.specs["models.fraud_v2"] = {"artifact": "models/fraud2.joblib"}
    other = setup.peers.register(
        "models.fraud_v2", 1, _file(setup.tmp_path / "fraud2.joblib", b"second model")
    )
    writes: list[dict[str, Any]] = []
    original = RouteStore.put

    def put(store: RouteStore, workspace: str, endpoint: str, doc: dict[str, Any]) -> int:
        writes.append(doc)
        return original(store, workspace, endpoint, doc)

    monkeypatch.setattr(RouteStore, "put", put)
    out = setup.update(prior, setup.desired(other, subject="models.fraud_v2")).outputs
    assert len(writes) == 1 and writes[0]["subject"] == "models.fraud_v2"
    assert out["subject"] == "models.fraud_v2" and out["weights"] == {"v1": 100}
    assert out["deployment"] == prior.outputs["deployment"]


def test_delete_after_a_replacement_keeps_the_new_route(setup: Setup) -> None:
    desired = setup.desired(setup.version(1))
    old = setup.create(desired)
    new = setup.create(desired)  # a replacement creates first, then deletes the old record
    assert new.outputs["deployment"] != old.outputs["deployment"]
    setup.provider.delete(old)
    assert live(setup.provider) is not None
    assert any("kept the route of fraud" in line for line in setup.provider.logs)  # type: ignore[attr-defined]
    setup.provider.delete(new)
    assert live(setup.provider) is None


def test_environments_have_their_own_routes(tmp_path: Path) -> None:
    staging, prod = Setup(tmp_path), Setup(tmp_path, environment="prod")
    s = staging.create(staging.desired(staging.version(1)))
    p = prod.create(prod.desired(prod.version(2)))
    assert (s.outputs["stable_version"], p.outputs["stable_version"]) == (1, 2)
    prod.provider.delete(p)
    assert staging.provider.read(s) is not None and prod.provider.read(p) is None
    for made in (staging, prod):
        made.provider.close()


def test_planned_outputs_and_configured_url(tmp_path: Path) -> None:
    setup = Setup(tmp_path, base_url="https://gateway.internal:9443/")
    desired = setup.desired({"version": 3, "fingerprint": "sha256:ab"})
    assert setup.provider.planned_outputs(desired) == {
        "url": "https://gateway.internal:9443/endpoints/fraud",
        "stable_version": 3,
    }
    setup.provider.close()


def test_bad_config_and_missing_state_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ProviderError) as bad:
        make(tmp_path, FakePeers(), base_url="ftp://x", bogus=1)
    message = str(bad.value)
    assert message.startswith("invalid gateway provider config:") and "\n" not in message
    assert "base_url" in message and "bogus" in message
    outside = make(tmp_path, FakePeers(), artifacts_dir="/etc/mlx-artifacts")
    [problem] = outside.check(Setup(tmp_path).desired({}))
    assert problem.path == ("provider",) and "artifacts_dir" in problem.message
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=FakePeers())
    stateless = GatewayProvider({}, ctx)
    with pytest.raises(ProviderError, match="keeps its routes in the state database"):
        stateless.create(Setup(tmp_path).desired({"version": 1, "fingerprint": "sha256:ab"}))


def test_artifacts_dir_is_configurable(tmp_path: Path) -> None:
    setup = Setup(tmp_path, artifacts_dir="served")
    v1 = setup.version(1)
    setup.create(setup.desired(v1))
    artifact = Path(setup.doc()["variants"]["v1"]["artifact"])
    assert artifact.parent == tmp_path / "served" / v1["fingerprint"].removeprefix("sha256:")
    setup.provider.close()


@pytest.mark.postgres
def test_postgresql_state_works_the_same(tmp_path: Path, pg_url: str) -> None:
    setup = Setup(tmp_path, state_url=pg_url)
    prior = setup.create(setup.desired(setup.version(1)))
    assert setup.provider.context.state_url is not None
    assert_route_shape(setup.doc(), "model")
    setup.provider.deploy(prior, setup.variant(2))
    setup.provider.set_traffic(prior, Traffic("v1", "v2", 25))
    observed = setup.provider.read(prior)
    assert observed is not None and observed.outputs["weights"] == {"v1": 75, "v2": 25}
    setup.provider.set_traffic(prior, Traffic("v1"))
    after = setup.update(prior, setup.desired(setup.version(3)))
    assert after.outputs["weights"] == {"v3": 100}
    route = live(setup.provider)
    assert route is not None and route.generation == after.outputs["generation"]
    setup.provider.delete(after)
    assert setup.provider.read(after) is None
    setup.provider.close()


def _file(path: Path, body: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path
