"""A prompt endpoint's contract with its callers and its upstream, end to end.

The spec is applied with ``mlx apply`` (the gateway provider writes the route from the
registered prompt version), served by a real ``mlx serve`` and called with the official
``openai`` client; the LLM is the OpenAI-compatible stub, which records what reached it.

* the upstream key: ``client.api_key: ${env.X}`` with ``X`` unset where ``mlx serve`` runs is
  a refused endpoint (503 naming X, degraded health, a line on stderr), never a call without
  the key; with ``X`` set, the upstream gets ``Bearer <X>``;
* callers' parameters: only what the prompt's ``allow_params`` allows, within its caps,
  reaches the upstream; anything else is a 400 naming it, and the upstream is not called.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from providers.gates.testing_server import OpenAIStub, support_bot
from tests.conftest import require_extra, run_mlx
from tests.gateway.conftest import log_url
from tests.gateway.support import Served, records
from tests.support.harness import Workspace

pytestmark = pytest.mark.slow

KEY_VAR = "MLX_TEST_CONTRACT_LLM_KEY"
KEY = "sk-contract-4242"
PROMPTS = """
prompts:
  support:
    template: "Question: {{question}}"
    model: gpt-4o-mini
    params: {temperature: 0.1, max_tokens: 100}
    allow_params:
      temperature: true
      max_tokens: {max: 512}
    owner: team-llm
"""
ENDPOINTS = """
endpoints:
  support:
    owner: team-llm
    serves: ${{prompts.support}}
    log: {{payloads: 1}}
    client: {{type: openai, base_url: "{base}", api_key: "${{env.{var}}}"}}
"""


@dataclass
class Applied:
    ws: Workspace
    stub: OpenAIStub

    def serve(self, env: dict[str, str]) -> Served:
        assert KEY_VAR not in os.environ  # the test decides where the key is set
        return Served(self.ws.root, env=env).wait_ready()


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    with OpenAIStub(support_bot) as stub:
        files = {
            "prompts.yaml": PROMPTS,
            "endpoints.yaml": ENDPOINTS.format(base=stub.base_url, var=KEY_VAR),
        }
        root = tmp_path_factory.mktemp("contract") / "spec"
        ws = Workspace(root, environ={KEY_VAR: KEY}).write(files)  # set where apply runs
        report = ws.apply()
        assert report is not None and report.ok, ws.output
        yield Applied(ws, stub)


@pytest.fixture(scope="module")
def served(applied: Applied) -> Iterator[Served]:
    server = applied.serve({KEY_VAR: KEY})
    yield server
    server.stop()


def _client(server: Served) -> Any:
    openai = require_extra("openai", "dev")
    return openai.OpenAI(
        base_url=f"{server.url}/endpoints/support/v1", api_key="unused", max_retries=0
    )


def _ask(server: Served, **params: Any) -> Any:
    return _client(server).chat.completions.create(
        model="support",
        messages=[],
        extra_body={"variables": {"question": "Where is my parcel?"}},
        **params,
    )


# -- item 16: an upstream key that is not set ---------------------------------------------------
def test_an_unset_upstream_key_refuses_the_endpoint_naming_the_variable(applied: Applied) -> None:
    openai = require_extra("openai", "dev")
    server = applied.serve({})  # KEY_VAR is not set where mlx serve runs
    try:
        calls = applied.stub.calls
        with pytest.raises(openai.APIStatusError) as err:
            _ask(server)
        assert err.value.status_code == 503
        message = err.value.body["message"]
        assert KEY_VAR in message and "'support'" in message and "not set" in message
        assert applied.stub.calls == calls  # never called without its key
        health = server.get("/healthz").json()
        assert health["status"] == "degraded"
        assert any(KEY_VAR in p for p in health["endpoints"]["support"]["problems"])
        line = server.wait_for(
            lambda: next((ln for ln in server.stderr if KEY_VAR in ln), None),
            what="a stderr line naming the variable",
        )
        assert "'support'" in line and "503" in line
        metrics = server.get("/metrics").body.decode()
        assert 'mlx_gateway_rejected_total{reason="upstream_key"} 1.0' in metrics
    finally:
        server.stop()
    assert KEY not in server.output()  # the name is said, never a value


def test_with_the_key_set_the_upstream_gets_it(applied: Applied, served: Served) -> None:
    answer = _ask(served)
    assert answer.choices[0].message.content == "You said: Where is my parcel?"
    headers = {k.lower(): v for k, v in applied.stub.headers[-1].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert served.get("/healthz").json()["status"] == "ok"


# -- item 20: callers' parameters ----------------------------------------------------------------
def test_the_prompts_params_apply_and_an_allowed_value_overrides_them(
    applied: Applied, served: Served
) -> None:
    _ask(served)
    sent = applied.stub.requests[-1]
    assert (sent["temperature"], sent["max_tokens"]) == (0.1, 100)  # the prompt's params
    _ask(served, temperature=0.7, max_tokens=512, user="customer-9")
    sent = applied.stub.requests[-1]
    assert (sent["temperature"], sent["max_tokens"], sent["user"]) == (0.7, 512, "customer-9")
    assert sent["model"] == "gpt-4o-mini"  # the caller's model is ignored


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"n": 50}, ["n", "may set: max_tokens (max 512), temperature"]),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            ["tools", "may set: max_tokens (max 512), temperature"],
        ),
        ({"max_tokens": 1_000_000}, ["max_tokens 1000000", "at most 512"]),
        ({"max_tokens": "lots"}, ["max_tokens must be a number", "at most 512"]),
        ({"extra_body": {"logit_bias": {"50256": -100}, "seed": 7}}, ["logit_bias, seed"]),
    ],
    ids=["n", "tools", "over-the-cap", "not-a-number", "two-unknown"],
)
def test_a_parameter_the_prompt_does_not_allow_is_a_400_naming_it(
    applied: Applied, served: Served, params: dict[str, Any], named: list[str]
) -> None:
    openai = require_extra("openai", "dev")
    calls = applied.stub.calls
    client = _client(served)
    extra = params.pop("extra_body", {})
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.with_raw_response.create(
            model="support",
            messages=[],
            extra_body={"variables": {"question": "Where is my parcel?"}, **extra},
            extra_headers={"x-request-id": f"refused-{uuid.uuid4().hex}"},
            **params,
        )
    message = err.value.body["message"]
    for text in named:
        assert text in message, message
    assert applied.stub.calls == calls  # nothing reached the upstream
    rid = err.value.response.headers["x-request-id"]
    rec = served.wait_for(
        lambda: next(
            (r for r in records(log_url(applied.ws.root), "support") if r.request_id == rid), None
        ),
        what=f"the record of {rid}",
    )
    assert rec.status == 400 and rec.error == message


# -- the spec: allow_params is validated, and is part of the version --------------------------
@pytest.mark.parametrize(
    ("allow", "line", "fragment"),
    [
        ("max_tokens: {maxx: 5}", 8, 'unknown field "maxx"'),
        ("max_tokens: {max: 0}", 8, "greater than 0"),
        ("max_tokens: {max: -3}", 8, "greater than 0"),
        ("n: sure", 8, "expected true, false or a cap such as {max: 512}"),
        ("model: true", 8, "model is part of the prompt version"),
        ("messages: true", 8, "messages is always allowed"),
    ],
)
def test_a_bad_allow_params_is_a_spec_error_at_its_line(
    tmp_path: Path, allow: str, line: int, fragment: str
) -> None:
    spec = PROMPTS.replace("      max_tokens: {max: 512}\n", f"      {allow}\n")
    (tmp_path / "mlx.yaml").write_text("mlx:\n  state: sqlite:///.mlx/state.db\n")
    (tmp_path / "prompts.yaml").write_text(spec.lstrip("\n"))
    run = run_mlx(["validate"], tmp_path)
    assert run.code == 1, str(run)
    assert f"prompts.yaml:{line}:" in run.err and fragment in run.err, str(run)


def test_allow_params_is_part_of_the_prompts_version(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "spec").write({"prompts.yaml": PROMPTS})
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    first = ws.outputs("prompts.support")
    ws.write({"prompts.yaml": PROMPTS.replace("{max: 512}", "{max: 1024}")})
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    second = ws.outputs("prompts.support")
    assert (first["version"], second["version"]) == (1, 2)
    assert first["fingerprint"] != second["fingerprint"]
    assert ws.registry_versions("prompts", "support") == [1, 2]
