"""A prompt endpoint applied by `mlx apply` (the gateway provider writes its route) and
called with the official openai client through `mlx serve`: the control plane's route
documents and the data plane agree, the key comes from the gateway's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.gates.testing_server import OpenAIStub, support_bot
from tests.conftest import require_extra
from tests.gateway.support import Served
from tests.support.harness import Workspace

pytestmark = pytest.mark.slow


def test_the_openai_client_calls_an_applied_prompt_endpoint(tmp_path: Path) -> None:
    openai = require_extra("openai", "dev")
    with OpenAIStub(support_bot) as stub:
        spec = {
            "prompts.yaml": """
                prompts:
                  support:
                    template: "Question: {{question}}"
                    system: You are terse.
                    model: gpt-4o-mini
                    owner: team-llm
            """,
            "endpoints.yaml": f"""
                endpoints:
                  support:
                    owner: team-llm
                    serves: ${{prompts.support}}
                    client:
                      type: openai
                      base_url: "{stub.base_url}"
                      api_key: "${{env.SUPPORT_LLM_KEY}}"
            """,
        }
        env = {"SUPPORT_LLM_KEY": "sk-applied-123"}
        ws = Workspace(tmp_path / "spec", environ=env).write(spec)
        report = ws.apply()
        assert report is not None and report.ok, ws.output
        served = Served(ws.root, env=env).wait_ready()
        try:
            client = openai.OpenAI(
                base_url=f"{served.url}/endpoints/support/v1", api_key="unused", max_retries=0
            )
            raw = client.chat.completions.with_raw_response.create(
                model="ignored",
                messages=[],
                extra_body={"variables": {"question": "Is my order late?"}},
            )
            answer = raw.parse()
        finally:
            served.stop()
    assert answer.choices[0].message.content
    assert raw.headers["x-mlx-version"] == "1" and raw.headers["x-mlx-variant"] == "stable"
    sent = stub.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert sent["messages"][1] == {"role": "user", "content": "Question: Is my order late?"}
    headers = {k.lower(): v for k, v in stub.headers[-1].items()}
    assert headers["authorization"] == "Bearer sk-applied-123"
