"""An A/B on cost per success through the real gateway: `mlx apply` releases two prompt
versions on differently priced models, `mlx serve` answers and prices each call from a stub
upstream on 127.0.0.1, callers send feedback over HTTP, and the rollout decides."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from engine.workflows import rollouts
from providers.gates.testing_server import OpenAIStub, support_bot
from tests.gateway.support import Served
from tests.support.harness import Workspace

pytestmark = pytest.mark.slow


def _spec(model: str, base_url: str) -> dict[str, str]:
    return {
        "prompts.yaml": f"""
            prompts:
              support:
                template: "Question: {{{{question}}}}"
                model: {model}
                owner: team-llm
        """,
        "endpoints.yaml": f"""
            endpoints:
              support:
                owner: team-llm
                serves: ${{prompts.support}}
                client: {{type: openai, base_url: "{base_url}", api_key: "sk-x"}}
                pricing:
                  big-model:   {{input_per_1k: 0.01, output_per_1k: 0.03}}
                  small-model: {{input_per_1k: 0.001, output_per_1k: 0.003}}
            rollouts:
              support:
                subject: ${{prompts.support}}
                endpoint: ${{endpoints.support}}
                requires: []
                strategy: ab
                steps: [{{weight: 50}}]
                decision:
                  metric: cost_per_success
                  guard: {{success_rate: {{max_drop: 0.1}}}}
                  min_samples: 150
                analysis: {{interval: 0.05s, min_requests: 0}}
                owner: team-llm
        """,
    }


def test_a_cheaper_prompt_version_wins_on_cost_per_success(tmp_path: Path) -> None:
    with OpenAIStub(support_bot) as stub:
        ws = Workspace(tmp_path / "spec").write(_spec("big-model", stub.base_url))
        report = ws.apply()
        assert report is not None and report.ok, ws.output
        ws.write(_spec("small-model", stub.base_url))
        report = ws.apply()
        assert report is not None and report.ok, ws.output
        served = Served(ws.root, poll=0.1).wait_ready()
        session = ws.session()
        try:
            seen: dict[str, int] = {}
            result = None
            for _ in range(60):
                for i in range(20):
                    reply = served.post(
                        "/endpoints/support/v1/chat/completions",
                        {"messages": [], "variables": {"question": "Is my order late?"}},
                        headers={"x-mlx-key": uuid.uuid4().hex},
                    )
                    assert reply.status == 200, reply
                    variant = reply.headers["x-mlx-variant"]
                    seen[variant] = seen.get(variant, 0) + 1
                    rid = reply.headers["x-request-id"]
                    fb = served.post(
                        "/endpoints/support/feedback",
                        {"request_id": rid, "value": 0 if i % 10 == 0 else 1},
                    )
                    assert fb.status == 200, fb
                result = rollouts.step(session, "support")
                if result.done or result.waiting:
                    break
                time.sleep(0.06)
        finally:
            session.close()
            served.stop()
    assert result is not None and result.phase == "completed", (result, seen)
    assert "cheaper per success" in result.message
    assert seen.get("stable", 0) > 100 and seen.get("candidate", 0) > 100, seen
    look = ws.outputs("rollouts.support")["looks"][-1]["ab"]
    # priced by the gateway from the stub's usage: the small model is 10x cheaper a token;
    # both arms succeed about 9 times in 10 (which calls fail falls on either arm at random)
    assert look["a"]["cost_usd"] > 0 and look["b"]["cost_usd"] > 0
    ratio = look["a"]["cost_per_success"] / look["b"]["cost_per_success"]
    assert 8 < ratio < 12, look
    assert look["guard"]["max_drop"] == 0.1
