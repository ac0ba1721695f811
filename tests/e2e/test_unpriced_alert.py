"""`mlx refresh` raises an "unpriced" alert for an endpoint whose LLM answers of the last day
have no price (cost_usd null), once, through the alert lifecycle and the `mlx.cost_alerts`
channel; it resolves once the window holds none."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import update

from inference.schema import inference as T
from inference.store import open_log
from tests.conftest import BASIC, run_mlx, write_spec
from tests.inference.conftest import rec

MLX = """
    mlx:
      cost_alerts: [alerts.oncall]
"""


def _alerts(spec: Path) -> list[dict[str, Any]]:
    path = spec / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_unpriced_answers_alert_once_and_resolve(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", {**BASIC, "mlx.yaml": MLX})
    assert run_mlx(["apply", "--yes"], spec).code == 0
    now = time.time()
    llm = {"input_tokens": 10, "output_tokens": 5, "requested_model": "house-7b"}
    store = open_log(f"sqlite:///{spec / '.mlx' / 'inference.db'}")
    store.write(
        [
            rec("u1", endpoint="chat", ts=now - 60, model="house-7b", **llm),
            rec("u2", endpoint="chat", ts=now - 30, model="house-7b", **llm),
            rec("no-usage", endpoint="chat", ts=now - 20, model="other-7b", requested_model="x"),
            rec(
                "priced",
                endpoint="chat",
                ts=now - 10,
                model="gpt-4o-mini",
                cost_usd=0.001,
                price_source="spec",
                input_tokens=1,
                output_tokens=1,
            ),
            rec("hit", endpoint="chat", ts=now - 5, model="house-7b", cache_hit=True, cost_usd=0.0),
            rec("failed", endpoint="chat", ts=now - 5, model="house-7b", status=502),
            rec("old", endpoint="old", ts=now - 2 * 86_400, model="house-7b", **llm),
            rec("sklearn", endpoint="fraud", ts=now - 5),  # a model endpoint: no cost, no model
        ]
    )
    store.close()

    first = run_mlx(["refresh"], spec)
    assert first.code == 0, first
    alerts = _alerts(spec)
    assert [(a["source"], a["alert"]["status"]) for a in alerts] == [("endpoints.chat", "firing")]
    assert alerts[0]["title"] == "endpoints.chat: 3 answer(s) with no price"
    assert "house-7b (2), other-7b (1)" in str(alerts[0]["text"])
    assert "1 had no usage" in str(alerts[0]["text"])
    assert alerts[0]["alert"]["key"] == "endpoints.chat/unpriced"

    assert run_mlx(["refresh"], spec).code == 0
    assert len(_alerts(spec)) == 1  # still firing: not notified twice
    listed = run_mlx(["alerts"], spec)
    assert "endpoints.chat" in listed.out, listed

    # the prices were fixed and the window repriced (as `mlx logs chat --reprice` would)
    store = open_log(f"sqlite:///{spec / '.mlx' / 'inference.db'}")
    with store.engine.begin() as conn:
        conn.execute(
            update(T).where(T.c.endpoint == "chat").values(cost_usd=0.01, price_source="spec")
        )
    store.close()
    assert run_mlx(["refresh"], spec).code == 0
    alerts = _alerts(spec)
    assert [(a["source"], a["alert"]["status"]) for a in alerts] == [
        ("endpoints.chat", "firing"),
        ("endpoints.chat", "resolved"),
    ]


def test_no_log_no_alert_and_nothing_created(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", {**BASIC, "mlx.yaml": MLX})
    assert run_mlx(["apply", "--yes"], spec).code == 0
    assert run_mlx(["refresh"], spec).code == 0
    assert _alerts(spec) == [] and not (spec / ".mlx" / "inference.db").exists()
