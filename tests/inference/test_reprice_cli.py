"""``mlx logs ENDPOINT --reprice [--since D]`` end to end: the real command, the spec's
corrected pricing, a real log on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from inference import query
from inference.store import open_log
from tests.conftest import BASIC, run_mlx, write_spec
from tests.inference.conftest import rec

ENDPOINTS = """
    endpoints:
      chat:
        owner: team-ml
        serves: ${models.fraud}
        pricing:
          house-model: {input_per_1k: 1.0, output_per_1k: 2.0, cached_input_per_1k: 0.25}
"""

#: (600 x 1 + 400 x 0.25 + 100 x 2) / 1000 with the corrected price
RIGHT = 0.9


def _llm(request_id: str, ts: float, **kw: Any) -> Any:
    values: dict[str, Any] = {
        "endpoint": "chat",
        "ts": ts,
        "input_tokens": 1000,
        "output_tokens": 100,
        "cached_input_tokens": 400,
        "requested_model": "house-model",
        "model": "house-model",
        "cost_usd": 9.0,
        "price_source": "spec",
    }
    values.update(kw)
    return rec(request_id, **values)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    spec = write_spec(tmp_path / "spec", {**BASIC, "endpoints.yaml": ENDPOINTS})
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    now = time.time()
    open_log(url).write(
        [
            _llm("old", now - 7200),
            _llm("new", now - 60),
            _llm("no-usage", now - 30, input_tokens=None, output_tokens=None, cost_usd=None),
        ]
    )
    return spec, url


def test_reprice_with_since_changes_only_the_window(world: tuple[Path, str]) -> None:
    spec, url = world
    result = run_mlx(["logs", "chat", "--reprice", "--since", "1h", "--log", url], spec)
    assert result.code == 0, result
    assert result.out.strip() == "chat: 1 of 1 records changed; total $9.000000 -> $0.900000"
    got = {x.record.request_id: x.record for x in query.tail(open_log(url), "chat", limit=None)}
    assert got["new"].cost_usd == pytest.approx(RIGHT)
    assert got["old"].cost_usd == 9.0 and got["no-usage"].cost_usd is None
    again = run_mlx(["logs", "chat", "--reprice", "--json", "--log", url], spec)
    assert again.code == 0, again
    doc = json.loads(again.out)
    assert (doc["endpoint"], doc["records"], doc["changed"]) == ("chat", 2, 1)
    assert doc["before_usd"] == pytest.approx(9.0 + RIGHT)
    assert doc["after_usd"] == pytest.approx(2 * RIGHT)


def test_reprice_does_not_go_with_summary_or_follow(world: tuple[Path, str]) -> None:
    spec, url = world
    for flag in ("--summary", "--follow"):
        result = run_mlx(["logs", "chat", "--reprice", flag, "--log", url], spec)
        assert result.code == 1 and "--reprice goes with neither" in result.err


def test_an_unpriced_answer_reads_unpriced_not_zero(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", {**BASIC, "endpoints.yaml": ENDPOINTS})
    url = f"sqlite:///{tmp_path / 'log.db'}"
    now = time.time()
    open_log(url).write(
        [
            _llm("u", now - 2, model="nope-7b", cost_usd=None, price_source=None),
            _llm("p", now - 1, cost_usd=0.5),
        ]
    )
    lines = run_mlx(["logs", "chat", "--log", url], spec).out.splitlines()
    assert [line.split("  ")[7] for line in lines] == ["unpriced", "$0.500000"]
