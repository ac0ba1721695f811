"""`mlx logs` end to end: the real command against a real log."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from inference.records import FIELDS, Feedback, iso
from inference.store import LogStore, open_log
from tests.conftest import BASIC, MLX, REPO, run_mlx, write_spec
from tests.inference.conftest import rec

ENDPOINTS = """
    endpoints:
      fraud:
        owner: team-ml
        serves: ${models.fraud}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec", {"mlx.yaml": "mlx: {}\n"})


def _log(spec: Path) -> LogStore:
    return open_log(f"sqlite:///{spec / '.mlx' / 'inference.db'}")


def _fill(store: LogStore, now: float) -> None:
    store.write(
        [
            rec("old-1", ts=now - 3600, version="1"),
            rec(
                "new-1",
                ts=now - 120,
                variant="canary",
                version="2",
                status=503,
                latency_ms=12.5,
                input_tokens=10,
                output_tokens=5,
                cost_usd=0.001,
                error="upstream\ntimed out",
            ),
            rec("new-2", ts=now - 60, version="1", cache_hit=True, outputs={"p": 0.9}),
            rec("other", ts=now - 60, endpoint="support"),
        ]
    )


def test_human_lines_oldest_first(spec: Path) -> None:
    now = time.time()
    _fill(_log(spec), now)
    result = run_mlx(["logs", "fraud"], spec)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert [line.split()[1] for line in lines] == ["old-1", "new-1", "new-2"]
    fields = lines[1].split("  ")
    assert fields[0] == iso(now - 120)[:23] + "Z"
    assert fields[1:] == [
        "new-1", "canary", "v2", "503", "12.5ms", "10+5tok", "$0.001000", "upstream timed out",
    ]  # fmt: skip
    assert lines[2].split("  ")[-1] == "cache-hit" and "  -  -" in lines[2]  # no tokens, no cost
    assert "ttft" not in result.out  # none of them was streamed


def test_a_streamed_answer_shows_its_time_to_first_token(spec: Path) -> None:
    now = time.time()
    _log(spec).write(
        [rec("st-1", ts=now - 5, latency_ms=240.0, ttft_ms=31.25, input_tokens=3, output_tokens=9)]
    )
    text = run_mlx(["logs", "fraud"], spec)
    assert text.code == 0, text
    assert text.out.split("  ")[5:8] == ["240.0ms", "ttft 31.2ms", "3+9tok"]
    as_json = json.loads(run_mlx(["logs", "fraud", "--json"], spec).out)
    assert as_json["ttft_ms"] == 31.25 and as_json["latency_ms"] == 240.0


def test_json_lines_have_the_fixed_fields(spec: Path) -> None:
    now = time.time()
    _fill(_log(spec), now)
    result = run_mlx(["logs", "fraud", "--json"], spec)
    assert result.code == 0, result
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert [list(r) for r in rows] == [[*FIELDS, "environment"]] * 3
    assert rows[1]["ts"] == iso(now - 120) and rows[1]["status"] == 503
    assert rows[2]["outputs"] == {"p": 0.9} and rows[2]["cache_hit"] is True


def test_since_takes_durations_and_timestamps(spec: Path) -> None:
    now = time.time()
    _fill(_log(spec), now)
    recent = run_mlx(["logs", "fraud", "--since", "10m"], spec)
    assert [line.split()[1] for line in recent.out.splitlines()] == ["new-1", "new-2"]
    iso_since = run_mlx(["logs", "fraud", "--since", iso(now - 90)], spec)
    assert [line.split()[1] for line in iso_since.out.splitlines()] == ["new-2"]
    assert run_mlx(["logs", "fraud", "--since", "1m"], spec).out == ""
    limited = run_mlx(["logs", "fraud", "-n", "1"], spec)
    assert [line.split()[1] for line in limited.out.splitlines()] == ["new-2"]
    assert "the last 1 records" in limited.err
    bad = run_mlx(["logs", "fraud", "--since", "yesterday"], spec)
    assert bad.code == 1 and "--since 'yesterday' is neither a duration" in bad.err
    assert "Traceback" not in bad.err


def test_unknown_endpoint_names_the_ones_the_log_has(spec: Path) -> None:
    _fill(_log(spec), time.time())
    result = run_mlx(["logs", "frod"], spec)
    assert result.code == 1 and result.out == ""
    assert 'unknown endpoint "frod" (did you mean "fraud"?)' in result.err
    assert "has records of fraud, support (environment default)" in result.err
    assert "Traceback" not in result.err


def test_environments_are_separate(spec: Path) -> None:
    _log(spec).write([rec("p-1", environment="prod")])
    wrong = run_mlx(["logs", "fraud"], spec)
    assert wrong.code == 1 and "has it in prod (use --env)" in wrong.err
    right = run_mlx(["--env", "prod", "logs", "fraud"], spec)
    assert right.code == 0 and right.out.split()[1] == "p-1"


def test_no_log_yet(spec: Path) -> None:
    result = run_mlx(["logs", "fraud"], spec)
    assert result.code == 1 and "does not exist yet (nothing served)" in result.err
    assert not (spec / ".mlx" / "inference.db").exists()  # reading never creates it


def test_an_endpoint_the_spec_declares_is_known_before_it_served(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", {**BASIC, "endpoints.yaml": ENDPOINTS})
    result = run_mlx(["logs", "fraud"], spec)
    assert (result.code, result.out) == (0, ""), result


def test_where_the_log_is(spec: Path, tmp_path: Path) -> None:
    elsewhere = open_log(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    elsewhere.write([rec("from-env")])
    other = open_log(f"sqlite:///{tmp_path / 'other.db'}")
    other.write([rec("from-flag")])
    env = {"MLX_LOG": f"sqlite:///{tmp_path / 'elsewhere.db'}"}
    assert run_mlx(["logs", "fraud"], spec, env=env).out.split()[1] == "from-env"
    flag = run_mlx(["logs", "fraud", "--log", f"sqlite:///{tmp_path / 'other.db'}"], spec, env=env)
    assert flag.out.split()[1] == "from-flag"
    # mlx.log in the spec, relative to the spec dir
    (spec / "mlx.yaml").write_text("mlx:\n  log: sqlite:///logs/here.db\n")
    open_log(f"sqlite:///{spec / 'logs' / 'here.db'}").write([rec("from-spec")])
    assert run_mlx(["logs", "fraud"], spec).out.split()[1] == "from-spec"


def test_with_postgresql_state_the_log_is_in_the_same_database(spec: Path, pg_url: str) -> None:
    open_log(pg_url).write([rec("in-pg")])
    result = run_mlx(["logs", "fraud", "--state", pg_url], spec)
    assert result.code == 0, result
    assert result.out.split()[1] == "in-pg"


def test_follow_prints_new_records_until_ctrl_c(spec: Path) -> None:
    store = _log(spec)
    store.write([rec("before", ts=time.time() - 5)])
    proc = subprocess.Popen(
        [str(MLX), "logs", "fraud", "--follow", "--json", "--interval", "0.1"],
        cwd=spec,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_id() -> str:
        try:
            return str(json.loads(lines.get(timeout=60))["request_id"])
        except queue.Empty:
            proc.kill()
            pytest.fail(f"no line from mlx logs --follow: {proc.communicate()[1]}")

    try:
        assert next_id() == "before"
        store.write([rec("live-1"), rec("elsewhere", endpoint="support"), rec("live-2")])
        assert [next_id(), next_id()] == ["live-1", "live-2"]
        store.write([rec("live-3")])
        assert next_id() == "live-3"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and lines.empty()


def _traffic(store: LogStore, now: float) -> None:
    """stable: 4 requests, 1 cache hit, 1 server error, $0.04, 2 successes (one request's
    feedback is negative); canary: 2 requests, $0.01, feedback but no success."""
    store.write(
        [
            rec("s1", ts=now - 50, cost_usd=0.01, latency_ms=10.0),
            rec("s2", ts=now - 40, cost_usd=0.01, latency_ms=20.0, cache_hit=True),
            rec("s3", ts=now - 30, cost_usd=0.02, latency_ms=30.0),
            rec("s4", ts=now - 20, status=502, latency_ms=40.0, error="upstream"),
            rec("c1", ts=now - 50, variant="canary", version="2", cost_usd=0.005),
            rec("c2", ts=now - 40, variant="canary", version="2", cost_usd=0.005),
            rec("ancient", ts=now - 7200, cost_usd=5.0),
        ],
        [
            Feedback(request_id="s1", endpoint="fraud", value=1, ts=now - 10),
            Feedback(request_id="s3", endpoint="fraud", outcome=True, ts=now - 10),
            Feedback(request_id="s2", endpoint="fraud", value=-1, ts=now - 10),
            Feedback(request_id="c1", endpoint="fraud", value=0, ts=now - 10),
        ],
    )


def test_summary_per_variant_from_the_log(spec: Path) -> None:
    """Hit rate, cost per request and cost per successful outcome per variant (issue 10.4)."""
    now = time.time()
    _traffic(_log(spec), now)
    result = run_mlx(["logs", "fraud", "--summary", "--since", "1h", "--json"], spec)
    assert result.code == 0, result
    got = json.loads(result.out)["variants"]
    assert sorted(got) == ["canary", "stable"]
    stable, canary = got["stable"], got["canary"]
    assert stable["requests"] == 4 and stable["server_errors"] == 1
    assert stable["hit_rate"] == pytest.approx(0.25)
    assert stable["error_rate"] == pytest.approx(0.25)
    assert stable["cost_per_request"] == pytest.approx(0.04 / 4)
    assert stable["cost_per_success"] == pytest.approx(0.04 / 2)
    assert canary["requests"] == 2 and canary["hit_rate"] == 0.0
    assert canary["cost_per_request"] == pytest.approx(0.005)
    assert canary["cost_per_success"] is None  # feedback given, nothing succeeded

    text = run_mlx(["logs", "fraud", "--summary", "--since", "1h"], spec)
    assert text.code == 0, text
    header, *rows = text.out.splitlines()
    assert header.split()[:2] == ["VARIANT", "REQUESTS"]
    by_variant = {row.split()[0]: row.split() for row in rows}
    assert by_variant["stable"][1:3] == ["4", "25.0%"]
    assert by_variant["stable"][-3:] == ["25.0%", "$0.010000", "$0.020000"]
    assert by_variant["canary"][-1] == "-"

    everything = json.loads(run_mlx(["logs", "fraud", "--summary", "--json"], spec).out)
    assert everything["variants"]["stable"]["requests"] == 5  # no --since: all time


def test_summary_refuses_follow_and_unknown_endpoints(spec: Path) -> None:
    _traffic(_log(spec), time.time())
    both = run_mlx(["logs", "fraud", "--summary", "--follow"], spec)
    assert both.code == 1 and "--summary and --follow" in both.err
    unknown = run_mlx(["logs", "frad", "--summary"], spec)
    assert unknown.code == 1 and 'unknown endpoint "frad"' in unknown.err and "fraud" in unknown.err
    bad_since = run_mlx(["logs", "fraud", "--summary", "--since", "yesterdayish"], spec)
    assert bad_since.code == 1 and "yesterdayish" in bad_since.err, bad_since
    assert "Traceback" not in bad_since.err


def test_the_summary_shows_what_callers_abandoned_apart_from_errors(spec: Path) -> None:
    now = time.time()
    store = _log(spec)
    store.write(
        [
            rec("ok", ts=now - 30, latency_ms=10.0),
            rec("failed", ts=now - 20, status=500, latency_ms=10.0),
            *[rec(f"gone{i}", ts=now - 10, status=499, latency_ms=9000.0) for i in range(3)],
        ]
    )
    got = json.loads(run_mlx(["logs", "fraud", "--summary", "--json"], spec).out)["variants"]
    stable = got["stable"]
    assert (stable["requests"], stable["server_errors"], stable["abandoned"]) == (2, 1, 3)
    assert stable["error_rate"] == 0.5 and stable["latency_p99_ms"] == 10.0
    text = run_mlx(["logs", "fraud", "--summary"], spec)
    header, row = text.out.splitlines()
    assert header.split()[:4] == ["VARIANT", "REQUESTS", "ERRORS", "ABANDONED"]
    assert row.split()[:4] == ["stable", "2", "50.0%", "3"]


def test_a_reused_request_id_shows_the_callers(spec: Path) -> None:
    store = _log(spec)
    store.write([rec("fresh-1", ts=time.time() - 5, client_request_id="mine")])
    line = run_mlx(["logs", "fraud"], spec).out.strip()
    assert line.split("  ")[1] == "fresh-1"
    assert line.endswith("(caller's id mine, already used)")
    as_json = json.loads(run_mlx(["logs", "fraud", "--json"], spec).out)
    assert as_json["client_request_id"] == "mine" and list(as_json)[:-1] == list(FIELDS)


def test_a_bad_log_url_is_named_as_the_logs_with_its_password_hidden(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec", {"mlx.yaml": 'mlx:\n  log: "postgresql://u:s3cret@h:99999/db"\n'}
    )
    result = run_mlx(["logs", "fraud"], spec)
    assert result.code == 1
    assert "invalid inference log URL postgresql://u:***@h:99999/db" in result.err, result
    assert "s3cret" not in result.err + result.out
