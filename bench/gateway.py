"""How much the gateway costs a caller: ``mlx serve`` against a bare Starlette app, under wrk.

    .venv/bin/python bench/gateway.py                 # 3 s per run, 7 repeats (~6 minutes)
    .venv/bin/python bench/gateway.py --duration 4 --json

In one run, with ``wrk`` (Debian's package) as the load generator in its own process, at 1, 8
and 32 connections:

(a) ``mlx serve`` serving a scikit-learn model (logistic regression, 8 features, fitted on a
    DataFrame) with the inference log on (SQLite WAL, every request a record, payloads kept for
    10 %), one row per request in ``dataframe_split`` form;
(b) a bare Starlette app on the same uvicorn (uvloop + httptools, access log off) that parses
    the same body and calls the same model in-process, directly in its handler;
(c) the gateway with a shadow variant: the same endpoint mirroring 100 % of requests to a
    candidate (a second model of the same size);

and (a) once more on a second, identical endpoint of the same gateway: how far two identical
configurations differ on this shared machine (the A/A noise floor the other ratios sit in);
and (d) a second gateway, identical but for ``--log-durability sync`` (each answer waits until
its record is committed; its own log file): what closing the ``kill -9`` window costs.
Runs are interleaved: every scenario once per connection count, ``--repeat`` times, in an
order rotated each time, a second's pause after each. This machine's speed drifts by ±30 %
over a minute (other tenants), far more than the figures being compared, so every ratio and
difference is taken between runs made next to each other in time and the median over the
repeats is the figure judged (the best-of ratios of the table are printed beside it; earlier
versions judged those, and two identical configurations then differed by up to 36 %). The
table shows each scenario's best run; CPU per request is the server process's (all its
threads), and for (c) the shadow worker's beside it.

It prints requests/s and p50/p99 for each, the ratios against the targets (a ≥ 0.6 x b's
throughput at 8 connections; the gateway's p50 overhead over b ≤ 2 ms; c's p50 ≤ 1.1 x a's),
(d)/(a) throughput and p50 (no target: the price of ``sync``), and the log's counts: every
request each gateway answered (its own ``/metrics``) against the records in its log after a
SIGTERM shutdown, per variant. The benchmark never asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

Pair = tuple[dict[str, float], dict[str, float]]

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "out" / "gateway"
FEATURES = [f"f{i}" for i in range(8)]
ROW = [0.5, -1.2, 3.3, 0.0, 2.1, -0.7, 1.5, 0.25]
BODY = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [ROW]}})
CONNECTIONS = (1, 8, 32)
SETTLE_S = 1.0  # between runs: shadow copies still queued finish before the next run starts

LUA = """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


# -- the bare app (b) ------------------------------------------------------------------------------
def bare_app(port: int, model_path: str) -> None:
    """A Starlette app doing the least a model server must: parse, predict, answer."""
    import joblib
    import numpy as np
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    model = joblib.load(model_path)
    import warnings

    warnings.filterwarnings("ignore", message="X does not have valid feature names")

    async def invocations(request: Request) -> JSONResponse:
        body = await request.json()
        x = np.asarray(body["dataframe_split"]["data"], dtype=np.float64)
        return JSONResponse({"predictions": model.predict(x).tolist()})

    app = Starlette(routes=[Route("/endpoints/{name}/invocations", invocations, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- helpers --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(
                url, data=BODY.encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def wrk(url: str, connections: int, duration: float, script: Path) -> dict[str, float]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if m is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    requests, duration_us, p50, p99, errors, non2xx = map(int, m.groups())
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50 / 1000.0,
        "p99_ms": p99 / 1000.0,
        "requests": requests,
        "errors": errors,
        "non2xx": non2xx,
    }


def train(directory: Path) -> tuple[Path, Path]:
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(2000, len(FEATURES))), columns=FEATURES)
    y = (x["f0"] + 0.5 * x["f2"] - x["f5"] + rng.normal(0, 0.5, len(x)) > 0).astype(int)
    paths = []
    for name, c in (("a", 1.0), ("b", 0.1)):
        path = directory / name / "model.joblib"
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(LogisticRegression(C=c).fit(x, y), path)
        paths.append(path)
    return paths[0], paths[1]


def setup(spec: Path, model_a: Path, model_b: Path) -> str:
    from dataplane.table import RouteStore

    (spec / ".mlx").mkdir(parents=True, exist_ok=True)
    (spec / "mlx.yaml").write_text("mlx:\n  state: sqlite:///.mlx/state.db\n")

    def variant(name: str, version: int, path: Path) -> dict[str, Any]:
        return {
            "name": name,
            "version": version,
            "fingerprint": "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(),
            "flavor": "sklearn",
            "artifact": str(path),
        }

    def doc(endpoint: str, candidate: bool) -> dict[str, Any]:
        variants = {"v1": variant("v1", 1, model_a)}
        if candidate:
            variants["v2"] = variant("v2", 2, model_b)
        return {
            "format": 1,
            "endpoint": endpoint,
            "kind": "model",
            "subject": "models.fraud",
            "variants": variants,
            "traffic": {
                "stable": "v1",
                "candidate": "v2" if candidate else None,
                "weight": 0,
                "mirror": 100 if candidate else 0,
            },
            "log": {"payloads": 0.1},
            "timeout_s": 30,
            "max_body_bytes": 1_048_576,
        }

    store = RouteStore.open(f"sqlite:///{spec / '.mlx' / 'state.db'}")
    store.put("default", "fraud", doc("fraud", False))
    store.put("default", "again", doc("again", False))  # (a) once more: the A/A noise floor
    store.put("default", "shadowed", doc("shadowed", True))
    return f"sqlite:///{spec / '.mlx' / 'inference.db'}"


def metric_counts(text: str) -> dict[tuple[str, str], float]:
    """``{(endpoint, variant): requests answered}`` from the gateway's ``/metrics``."""
    out: dict[tuple[str, str], float] = {}
    pat = re.compile(
        r'^mlx_gateway_requests_total\{endpoint="([^"]+)",status="(\d+)",variant="([^"]+)"\} (\S+)$'
    )
    for line in text.splitlines():
        m = pat.match(line)
        if m:
            key = (m.group(1), m.group(3))
            out[key] = out.get(key, 0.0) + float(m.group(4))
    return out


def log_counts(log_url: str) -> dict[tuple[str, str], int]:
    from sqlalchemy import func, select

    from inference import schema
    from inference.store import open_log

    store = open_log(log_url)
    t = schema.inference
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(t.c.endpoint, t.c.variant, func.count()).group_by(t.c.endpoint, t.c.variant)
        ).all()
    store.close()
    return {(e, v): int(n) for e, v, n in rows}


# -- the run --------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(p) for p in text)
    return out


def measured(
    url: str, connections: int, duration: float, script: Path, pid: int, helpers: list[int]
) -> dict[str, float]:
    """A wrk run, with the CPU the server (``pid``) and its ``helpers`` used per request."""
    before = cpu_seconds(pid), sum(cpu_seconds(p) for p in helpers)
    result = wrk(url, connections, duration, script)
    n = max(result["requests"], 1)
    result["cpu_us_per_request"] = (cpu_seconds(pid) - before[0]) / n * 1e6
    helper = sum(cpu_seconds(p) for p in helpers) - before[1]
    result["helper_cpu_us_per_request"] = helper / n * 1e6
    return result


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The best of several runs, per figure (this machine's speed wanders between runs)."""
    return {
        "rps": max(r["rps"] for r in runs),
        "p50_ms": min(r["p50_ms"] for r in runs),
        "p99_ms": min(r["p99_ms"] for r in runs),
        "cpu_us_per_request": min(r["cpu_us_per_request"] for r in runs),
        "helper_cpu_us_per_request": min(r["helper_cpu_us_per_request"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "non2xx": sum(r["non2xx"] for r in runs),
    }


def connection_counts(text: str) -> tuple[int, ...]:
    """``--connections 1,8,32``: positive whole numbers, each once."""
    try:
        counts = tuple(int(c) for c in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected distinct positive counts like 1,8,32")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each scenario")
    parser.add_argument(
        "--connections",
        type=connection_counts,
        default=CONNECTIONS,
        help="comma-separated connection counts (the targets need 1, 8 and 32)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_app(int(args.bare[0]), args.bare[1])
        return
    connections: tuple[int, ...] = args.connections
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
    model_a, model_b = train(work / "models")
    spec = work / "spec"
    log_url = setup(spec, model_a, model_b)
    script = work / "post.lua"
    script.write_text(LUA % json.dumps(BODY))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("MLX_LOG", "MLX_STATE", "MLX_ENV", "MLX_GATEWAY_TOKEN"):
        env.pop(name, None)
    bare_port, gw_port, sync_port = free_port(), free_port(), free_port()
    bare = subprocess.Popen(
        [sys.executable, __file__, "--bare", str(bare_port), str(model_a)], env=env
    )
    mlx = Path(sys.executable).parent / "mlx"
    gw = subprocess.Popen(
        [str(mlx), "serve", "-C", str(spec), "--port", str(gw_port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    sync_log = f"sqlite:///{spec / '.mlx' / 'inference-sync.db'}"
    sync_args = ["--port", str(sync_port), "--log", sync_log, "--log-durability", "sync"]
    sync = subprocess.Popen(
        [str(mlx), "serve", "-C", str(spec), *sync_args],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    urls = {
        "b": f"http://127.0.0.1:{bare_port}/endpoints/fraud/invocations",
        "a": f"http://127.0.0.1:{gw_port}/endpoints/fraud/invocations",
        "c": f"http://127.0.0.1:{gw_port}/endpoints/shadowed/invocations",
        "a2": f"http://127.0.0.1:{gw_port}/endpoints/again/invocations",
        "d": f"http://127.0.0.1:{sync_port}/endpoints/fraud/invocations",
    }
    runs: dict[str, dict[int, list[dict[str, float]]]] = {
        k: {c: [] for c in connections} for k in urls
    }
    try:
        for url in urls.values():
            wait_http(url)
        time.sleep(3.0)  # the shadow worker loads its model
        for url in urls.values():
            wrk(url, 8, 2, script)  # warm up
        pids = {"b": bare.pid, "a": gw.pid, "c": gw.pid, "a2": gw.pid, "d": sync.pid}
        keys = list(urls)
        for r in range(args.repeat):
            # interleaved, so that the machine's drift hits all alike, and in a rotated order,
            # so that no scenario always follows the same one (the one after (c) ran while the
            # shadow worker finished (c)'s copies, the one after (b) after an idle gateway)
            order = keys[r % len(keys) :] + keys[: r % len(keys)]
            for c in connections:
                for key in order:
                    helpers = children(gw.pid) if key == "c" else []  # the shadow worker
                    runs[key][c].append(
                        measured(urls[key], c, args.duration, script, pids[key], helpers)
                    )
                    time.sleep(SETTLE_S)
        time.sleep(1.0)  # the last shadow calls finish
        with urllib.request.urlopen(f"http://127.0.0.1:{gw_port}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{sync_port}/metrics", timeout=10) as resp:
            sync_metrics = resp.read().decode()
    finally:
        bare.terminate()
        gw.send_signal(signal.SIGTERM)
        sync.send_signal(signal.SIGTERM)
        code = max(gw.wait(120), sync.wait(120))
        bare.wait(30)
    results = {k: {c: best(v) for c, v in per.items()} for k, per in runs.items()}
    answered = metric_counts(metrics)
    logged = log_counts(log_url)
    for (endpoint, variant), n in metric_counts(sync_metrics).items():
        answered[(f"{endpoint}/sync", variant)] = n
    for (endpoint, variant), m in log_counts(sync_log).items():
        logged[(f"{endpoint}/sync", variant)] = m
    report(results, runs, answered, logged, shadow_counts(metrics), code, args.json)
    shutil.rmtree(work, ignore_errors=True)


def shadow_counts(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in re.finditer(
        r'^mlx_gateway_shadow_total\{endpoint="shadowed",outcome="(\w+)"\} (\S+)$', text, re.M
    ):
        out[m.group(1)] = float(m.group(2))
    return out


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    results: dict[str, dict[int, dict[str, float]]],
    runs: dict[str, dict[int, list[dict[str, float]]]],
    answered: dict[tuple[str, str], float],
    logged: dict[tuple[str, str], int],
    shadows: dict[str, float],
    exit_code: int,
    as_json: bool,
) -> None:
    names = {
        "a": "(a) gateway, log on",
        "b": "(b) bare Starlette",
        "c": "(c) gateway + shadow",
        "a2": "(a) again (A/A)",
        "d": "(d) gateway, log sync",
    }
    head = ("", "conns", "req/s", "p50 ms", "p99 ms", "CPU us/req", "+worker", "errors")
    print("{:24} {:>5} {:>9} {:>8} {:>8} {:>11} {:>8} {:>7}".format(*head))
    for scenario in ("a", "b", "c", "a2", "d"):
        for conns, r in results[scenario].items():
            errs = int(r["errors"] + r["non2xx"])
            worker = f"{r['helper_cpu_us_per_request']:.0f}" if scenario == "c" else "-"
            print(
                f"{names[scenario]:24} {conns:>5} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} "
                f"{r['p99_ms']:>8.2f} {r['cpu_us_per_request']:>11.0f} {worker:>8} {errs:>7}"
            )
    conns = sorted(results["a"])
    print()
    line = "{:34} {:>6.2f} {:3} {:18} {}"

    def each(n: int, other: str, base: str, figure: Callable[[Pair], float]) -> list[float]:
        """A figure of two runs made next to each other in time (same repeat), per repeat."""
        return [figure(pair) for pair in zip(runs[other][n], runs[base][n], strict=True)]

    def paired(n: int, other: str, base: str, figure: Callable[[Pair], float]) -> float:
        """The figure judged: the median over the repeats."""
        return statistics.median(each(n, other, base, figure))

    def rps_ratio(pair: Pair) -> float:
        return pair[0]["rps"] / pair[1]["rps"]

    def p50_ratio(pair: Pair) -> float:
        return pair[0]["p50_ms"] / pair[1]["p50_ms"]

    def p50_minus(pair: Pair) -> float:
        return pair[0]["p50_ms"] - pair[1]["p50_ms"]

    figures: dict[str, dict[int, float]] = {
        "throughput": {},
        "overhead": {},
        "shadow": {},
        "sync_throughput": {},
        "sync_p50": {},
    }
    if 8 in results["a"]:
        tput = figures["throughput"][8] = paired(8, "a", "b", rps_ratio)
        what = "(a)/(b) throughput @ 8 conns"
        print(line.format(what, tput, "", "(target >= 0.6)", _verdict(tput >= 0.6)))
    for n in conns:
        d = figures["overhead"][n] = paired(n, "a", "b", p50_minus)
        what = f"(a)-(b) p50 overhead @ {n:>2} conns"
        print(line.format(what, d, "ms", "(target <= 2 ms)", _verdict(d <= 2)))
    for n in conns:
        ratio = figures["shadow"][n] = paired(n, "c", "a", p50_ratio)
        what = f"(c)/(a) p50 @ {n:>2} conns"
        print(line.format(what, ratio, "", "(target <= 1.10)", _verdict(ratio <= 1.1)))
    for n in conns:
        ratio = paired(n, "a2", "a", p50_ratio)
        what = f"A/A p50 @ {n:>2} conns (noise floor)"
        print(line.format(what, ratio, "", "(no target)", ""))
    for n in conns:  # what --log-durability sync costs
        tput = figures["sync_throughput"][n] = paired(n, "d", "a", rps_ratio)
        ratio = figures["sync_p50"][n] = paired(n, "d", "a", p50_ratio)
        print(line.format(f"(d)/(a) throughput @ {n:>2} conns", tput, "", "(sync; no target)", ""))
        print(line.format(f"(d)/(a) p50 @ {n:>2} conns", ratio, "", "(sync; no target)", ""))
    # each repeat's ratio, and the ratio of the best-of figures in the table: how much of a
    # ratio is the configuration and how much the machine's drift between runs
    print()
    for n in conns:
        for other, label in (("c", "(c)/(a)"), ("a2", "A/A"), ("d", "(d)/(a)")):
            shown = " ".join(f"{r:.2f}" for r in each(n, other, "a", p50_ratio))
            of_best = results[other][n]["p50_ms"] / results["a"][n]["p50_ms"]
            print(f"{label:8} p50 @ {n:>2} conns: each repeat {shown}; best-of {of_best:.2f}")
    print()
    lost = 0
    print(f"{'endpoint':14} {'variant':9} {'answered':>9} {'logged':>9}")
    for key in sorted(set(answered) | set(logged)):
        n_answered, n_logged = int(answered.get(key, 0)), logged.get(key, 0)
        lost += max(0, n_answered - n_logged)
        print(f"{key[0]:14} {key[1]:9} {n_answered:>9} {n_logged:>9}")
    print(f"log records lost: {lost} (target 0) {_verdict(lost == 0)}; gateway exit {exit_code}")
    mirrored = answered.get(("shadowed", "stable"), 0.0)
    ran = answered.get(("shadowed", "shadow"), 0.0)
    print(
        f"shadow copies: {mirrored:.0f} mirrored, {ran:.0f} ran and were logged "
        f"({ran / max(mirrored, 1):.0%}), {shadows.get('dropped', 0):.0f} dropped, "
        f"{shadows.get('failed', 0):.0f} failed"
    )
    if as_json:
        doc = {
            "results": results,
            "runs": runs,
            "throughput_ratio": figures["throughput"],
            "p50_overhead_ms": figures["overhead"],
            "shadow_p50_ratio": figures["shadow"],
            "sync_throughput_ratio": figures["sync_throughput"],
            "sync_p50_ratio": figures["sync_p50"],
            "lost": lost,
            "exit": exit_code,
            "shadows": shadows,
        }
        print(json.dumps(doc))


if __name__ == "__main__":
    main()
