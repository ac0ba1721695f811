"""The route document says where a prompt endpoint's upstream key is; ``mlx serve`` resolves
that from its own environment, reading no spec — and serves a document of the previous release
(no reference) from the spec it serves, as that release did.

Applied with ``mlx apply`` (the gateway provider writes the reference), served by a real
``mlx serve``; the LLM is the OpenAI-compatible stub, which records what reached it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.gates.testing_server import OpenAIStub, support_bot
from tests.gateway.conftest import routes
from tests.gateway.support import Served
from tests.support.harness import Workspace

pytestmark = pytest.mark.slow

KEY_VAR = "MLX_TEST_REF_LLM_KEY"
OTHER_VAR = "MLX_TEST_REF_OTHER_KEY"
KEY = "sk-reference-7331"
PROMPTS = """
prompts:
  support:
    template: "Question: {{question}}"
    model: gpt-4o-mini
    owner: team-llm
"""
ENDPOINTS = """
endpoints:
  support:
    owner: team-llm
    serves: ${{prompts.support}}
    client: {{type: openai, base_url: "{base}", api_key: "${{env.{var}}}"}}
"""


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(support_bot) as running:
        yield running


def _ask(server: Served) -> Any:
    return server.post(
        "/endpoints/support/v1/chat/completions",
        {"messages": [], "variables": {"question": "Where is my parcel?"}},
    )


def test_the_key_is_found_where_the_document_says_and_an_older_document_asks_the_spec(
    tmp_path: Path, stub: OpenAIStub
) -> None:
    ws = Workspace(tmp_path / "spec", environ={KEY_VAR: KEY})
    ws.write(
        {
            "prompts.yaml": PROMPTS,
            "endpoints.yaml": ENDPOINTS.format(base=stub.base_url, var=KEY_VAR),
        }
    )
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    store = routes(ws.root)
    doc = store.get("default", "support").doc
    assert doc["client"]["api_key"] == {"env": KEY_VAR}  # where the key is
    assert KEY not in json.dumps(doc)  # never the key

    # the spec now names another variable, not applied: the document is what serves
    ws.write({"endpoints.yaml": ENDPOINTS.format(base=stub.base_url, var=OTHER_VAR)})
    server = Served(ws.root, env={KEY_VAR: KEY}).wait_ready()
    try:
        answer = _ask(server)
        assert answer.status == 200, answer.json()
        headers = {k.lower(): v for k, v in stub.headers[-1].items()}
        assert headers["authorization"] == f"Bearer {KEY}"

        # a document as the previous release wrote it (no reference): the spec is asked, and
        # it names OTHER_VAR, unset here: refused, naming it
        older = {**doc, "client": {k: v for k, v in doc["client"].items() if k != "api_key"}}
        store.put("default", "support", older)
        refused = server.wait_for(
            lambda: (r := _ask(server)).status == 503 and r,
            what="the older document served from the spec",
        )
        message = refused.json()["error"]["message"]
        assert OTHER_VAR in message and "not set where mlx serve runs" in message
        calls = stub.calls
        assert _ask(server).status == 503
        assert stub.calls == calls  # never called without its key
    finally:
        server.stop()
    assert KEY not in server.output()
