"""What streaming through the gateway costs: ``mlx serve`` against a bare proxy and no proxy.

    .venv/bin/python bench/streaming.py           # ~2 minutes; --repeat N --concurrency 1,16 --json
    .venv/bin/python bench/streaming.py --quick   # a smoke run of a few seconds

The upstream is a streaming stub (Starlette on uvicorn, its own process) answering
``POST /v1/chat/completions`` with ``stream: true`` as server-sent events: a role chunk, one
chunk per word, a finish chunk, a usage chunk and ``data: [DONE]``. The request's ``model``
says how many words and how long to wait before each (``stub-200x0``: 200 words, no wait).
In one run, three ways to reach it:

(direct) the client talks to the stub itself;
(bare)   a bare Starlette app on the same uvicorn forwarding the request with httpx and the
         answer as ``StreamingResponse(aiter_raw())``: the floor of any Python proxy;
(mlx)    ``mlx serve`` with a prompt endpoint whose upstream is the stub (inference log on,
         SQLite WAL, as ``mlx serve`` runs by default).

Two shapes: ``fast`` (200 words, no wait: what the hop costs per chunk) and ``slow`` (50 words
20 ms apart: does the first token reach the caller when the upstream sends it, or only once
the whole answer has come — the "no buffering" check). The client is httpx (async, one
process), at each concurrency (1 and 16 streams at once), ``--repeat`` times, the three paths
interleaved in an order rotated each repeat. Per run: time to first token (the first content
chunk; p50/p95), the whole stream's time (p50/p95), content chunks per second of the run, and
the CPU seconds of the process between client and stub (the gateway or the bare proxy: all
its threads and child processes) per stream. Each figure is the median over the repeats; each
ratio (mlx/bare, mlx/direct) the median of the ratios of runs made next to each other in time
(this machine's speed drifts between minutes). Every stream is checked to arrive whole (every
event, then ``[DONE]``); one that does not is counted as bad and printed. After the gateway
stopped, its log is read: one complete streamed record (status 200, a ``ttft_ms``) per stream
the client got whole through it, else ``ANOMALY``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # first: bench/ (this script's directory) holds a gateway.py too

from bench.gateway import children, cpu_seconds, free_port  # noqa: E402

OUT = REPO / "bench" / "out" / "streaming"
PATHS = ("direct", "bare", "mlx")
CONCURRENCY = (1, 16)
QUESTION = "how do I reset my password"
#: Every server keeps idle connections this long (uvicorn's default is 5 s): a path waits while
#: the other two run, and a pooled connection the server closes just as the client reuses it
#: is a ``ReadError`` — the client's race, not a broken stream.
KEEP_ALIVE_S = 120


@dataclass(frozen=True)
class Shape:
    """A streamed answer: ``words`` content chunks, ``delay_ms`` before each."""

    name: str
    words: int
    delay_ms: int
    streams: int  # per run at concurrency 1; at concurrency c, max(streams, c)

    @property
    def model(self) -> str:
        return f"stub-{self.words}x{self.delay_ms}"

    @property
    def events(self) -> int:
        """Data events before ``[DONE]``: role, words, finish, usage."""
        return self.words + 3


def shapes(quick: bool) -> tuple[Shape, Shape]:
    if quick:
        return Shape("fast", 20, 0, 4), Shape("slow", 5, 20, 2)
    return Shape("fast", 200, 0, 32), Shape("slow", 50, 20, 3)


# -- the upstream stub (its own process) ----------------------------------------------------------
def parse_model(model: str) -> tuple[int, float]:
    """``stub-200x20`` -> (200 words, 0.02 s before each)."""
    words, delay_ms = model.removeprefix("stub-").split("x")
    return int(words), int(delay_ms) / 1000.0


def stub_app(port: int) -> None:
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def event(model: str, delta: dict[str, Any] | None, **extra: Any) -> bytes:
        chunk: dict[str, Any] = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [],
        }
        if delta is not None:
            finish = extra.pop("finish_reason", None)
            chunk["choices"] = [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ]
        chunk.update(extra)
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    async def events(model: str, words: int, delay_s: float) -> AsyncIterator[bytes]:
        yield event(model, {"role": "assistant", "content": ""})
        word = event(model, {"content": " word"})  # the same bytes every time: the stub is cheap
        for _ in range(words):
            if delay_s:
                await asyncio.sleep(delay_s)
            yield word
        yield event(model, {}, finish_reason="stop")
        usage = {"prompt_tokens": 7, "completion_tokens": words, "total_tokens": words + 7}
        yield event(model, None, usage=usage)
        yield b"data: [DONE]\n\n"

    async def completions(request: Request) -> Response:
        body = orjson.loads(await request.body())
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "this stub only streams"}}, 400)
        words, delay_s = parse_model(body["model"])
        return StreamingResponse(
            events(body["model"], words, delay_s), media_type="text/event-stream"
        )

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


# -- the bare proxy (its own process) -------------------------------------------------------------
def bare_app(port: int, upstream: str) -> None:
    """The least a streaming proxy does: forward the body, pass the answer's bytes on."""
    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    client = httpx.AsyncClient(
        timeout=30.0,
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
    )

    async def completions(request: Request) -> StreamingResponse:
        req = client.build_request(
            "POST",
            f"{upstream}/chat/completions",
            content=await request.body(),
            headers={"content-type": "application/json"},
        )
        resp = await client.send(req, stream=True)
        return StreamingResponse(
            resp.aiter_raw(),
            status_code=resp.status_code,
            media_type=resp.headers.get("content-type"),
            background=BackgroundTask(resp.aclose),
        )

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


# -- mlx serve ------------------------------------------------------------------------------------
def setup(spec: Path, upstream: str, kinds: tuple[Shape, ...]) -> None:
    """A spec dir whose state holds one prompt endpoint per shape (as the gateway provider
    writes them), each calling the stub with the shape's model."""
    from dataplane.table import RouteStore

    (spec / ".mlx").mkdir(parents=True, exist_ok=True)
    (spec / "mlx.yaml").write_text("mlx:\n  state: sqlite:///.mlx/state.db\n")
    store = RouteStore.open(f"sqlite:///{spec / '.mlx' / 'state.db'}")
    for shape in kinds:
        prompt = {
            "template": "{{question}}",
            "model": shape.model,
            "params": {},
            "variables": [],
            "routing": None,
            "retrieval_version": None,
        }
        variant = {"name": "v1", "version": 1, "fingerprint": "sha256:v1-1", "prompt": prompt}
        doc = {
            "format": 1,
            "endpoint": shape.name,
            "address": f"endpoints.{shape.name}",
            "environment": "default",
            "kind": "prompt",
            "subject": f"prompts.{shape.name}",
            "variants": {"v1": variant},
            "traffic": {"stable": "v1", "candidate": None, "weight": 0, "mirror": 0},
            "log": {"payloads": 0.1},
            "cache": None,
            "client": {
                "type": "openai",
                "base_url": upstream,
                "timeout_s": 30,
                "backoff_s": 0.01,
                "model": None,
                "params": {},
            },
            "pricing": {},
            "timeout_s": 30,
            "max_body_bytes": 1_048_576,
        }
        store.put("default", shape.name, doc)


# -- the client -----------------------------------------------------------------------------------
@dataclass
class Stream:
    """One streamed answer as the client saw it (seconds from sending the request)."""

    ttft_s: float
    total_s: float
    events: int
    ok: bool
    error: str | None = None


async def stream_once(client: Any, url: str, body: bytes, expected_events: int) -> Stream:
    import orjson

    t0 = time.perf_counter()
    ttft: float | None = None
    events, done, buf = 0, False, b""
    try:
        async with client.stream(
            "POST", url, content=body, headers={"content-type": "application/json"}
        ) as resp:
            if resp.status_code != 200:
                await resp.aread()
                return Stream(0.0, 0.0, 0, False, f"HTTP {resp.status_code}: {resp.text[:200]}")
            async for raw in resp.aiter_raw():
                buf += raw
                *whole, buf = buf.replace(b"\r\n", b"\n").split(b"\n\n")
                for ev in whole:
                    if not ev.startswith(b"data: "):
                        continue
                    data = ev[6:]
                    if data == b"[DONE]":
                        done = True
                        continue
                    events += 1
                    if ttft is None:
                        choices = orjson.loads(data).get("choices") or [{}]
                        if (choices[0].get("delta") or {}).get("content"):
                            ttft = time.perf_counter() - t0
    except Exception as exc:  # a broken stream is counted, not raised
        return Stream(0.0, time.perf_counter() - t0, events, False, f"{type(exc).__name__}: {exc}")
    total = time.perf_counter() - t0
    ok = done and events == expected_events and ttft is not None
    why = None if ok else f"{events} events of {expected_events}, [DONE] {done}"
    return Stream(ttft or 0.0, total, events, ok, why)


def request_body(path: str, shape: Shape) -> bytes:
    """What the client sends: to the stub (directly or through the bare proxy) the request
    ``mlx serve`` would send it (it always asks for usage); to ``mlx serve`` the prompt's
    variables. Every caller asks for the usage chunk, so all three get the same events."""
    options = {"include_usage": True}
    if path == "mlx":
        doc: dict[str, Any] = {"model": "x", "messages": [], "variables": {"question": QUESTION}}
    else:
        messages = [{"role": "user", "content": QUESTION}]
        doc = {"model": shape.model, "messages": messages}
    return json.dumps({**doc, "stream": True, "stream_options": options}).encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run_once(
    client: Any, url: str, body: bytes, shape: Shape, concurrency: int, pids: list[int]
) -> dict[str, Any]:
    """``n`` streams, ``concurrency`` at a time; the figures of the run."""
    n = max(shape.streams, concurrency)
    queue = list(range(n))
    got: list[Stream] = []

    async def worker() -> None:
        while queue:
            queue.pop()
            got.append(await stream_once(client, url, body, shape.events))

    def cpu() -> float:
        return sum(cpu_seconds(p) for p in pids)

    cpu0, t0 = cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, spent = time.perf_counter() - t0, cpu() - cpu0
    good = [s for s in got if s.ok]
    ttft = [s.ttft_s * 1000 for s in good] or [float("nan")]
    total = [s.total_s * 1000 for s in good] or [float("nan")]
    return {
        "streams": len(got),
        "bad": len(got) - len(good),
        "errors": sorted({s.error for s in got if s.error})[:3],
        "ttft_p50_ms": percentile(ttft, 0.5),
        "ttft_p95_ms": percentile(ttft, 0.95),
        "total_p50_ms": percentile(total, 0.5),
        "total_p95_ms": percentile(total, 0.95),
        "chunks_per_s": len(good) * shape.words / wall,
        "cpu_s": spent if pids else None,
    }


FIGURES = ("ttft_p50_ms", "ttft_p95_ms", "total_p50_ms", "total_p95_ms", "chunks_per_s")


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the repeats, and the CPU per stream over all of them
    (the kernel counts a process's CPU in 10 ms ticks: one run's streams are too few for it)."""
    out: dict[str, Any] = {f: statistics.median(r[f] for r in runs) for f in FIGURES}
    out["streams"] = streams = sum(r["streams"] for r in runs)
    out["bad"] = sum(r["bad"] for r in runs)
    cpu = [r["cpu_s"] for r in runs if r["cpu_s"] is not None]
    out["cpu_ms_per_stream"] = sum(cpu) / streams * 1000 if cpu else None
    return out


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]], figure: str) -> float | None:
    """The median over the repeats of a's figure / b's, each pair run next to each other."""
    ratios = [x[figure] / y[figure] for x, y in zip(a, b, strict=True) if x[figure] and y[figure]]
    return statistics.median(ratios) if ratios else None


# -- the run --------------------------------------------------------------------------------------
def wait_up(url: str, body: bytes, events: int, timeout: float = 60.0) -> None:
    import httpx

    async def once() -> bool:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return (await stream_once(client, url, body, events)).ok

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(once()):
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def counts(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(c) for c in text.split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1 or len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"{text!r}: expected distinct positive counts like 1,16")
    return out


def streamed_records(log_url: str) -> dict[str, int]:
    """``{endpoint: records of complete streamed answers}`` in the gateway's log (read after
    it stopped): each should match a stream the client got whole through ``mlx``."""
    from sqlalchemy import func, select

    from inference import schema
    from inference.store import open_log

    store = open_log(log_url)
    t = schema.inference
    query = (
        select(t.c.endpoint, func.count())
        .where(t.c.status == 200, t.c.ttft_ms.is_not(None))
        .group_by(t.c.endpoint)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    store.close()
    return {str(e): int(n) for e, n in rows}


async def measure(
    urls: dict[str, str],
    pids: dict[str, list[int]],
    kinds: tuple[Shape, ...],
    concurrency: tuple[int, ...],
    repeat: int,
    whole: dict[str, int],
) -> dict[str, dict[int, dict[str, list[dict[str, Any]]]]]:
    """Every run; ``whole`` counts the streams that came whole through mlx, per endpoint."""
    import httpx

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    runs: dict[str, dict[int, dict[str, list[dict[str, Any]]]]] = {
        s.name: {c: {p: [] for p in PATHS} for c in concurrency} for s in kinds
    }
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        for shape in kinds:  # warm up: connections, imports, the gateway's first request
            for path in PATHS:
                warm = await run_once(
                    client,
                    urls[path].format(name=shape.name),
                    request_body(path, shape),
                    shape,
                    4,
                    [],
                )
                if path == "mlx":
                    whole[shape.name] = whole.get(shape.name, 0) + warm["streams"] - warm["bad"]
        for r in range(repeat):
            order = PATHS[r % 3 :] + PATHS[: r % 3]
            for shape in kinds:
                for c in concurrency:
                    for path in order:
                        body = request_body(path, shape)
                        url = urls[path].format(name=shape.name)
                        procs = [q for p in pids[path] for q in (p, *children(p))]
                        result = await run_once(client, url, body, shape, c, procs)
                        runs[shape.name][c][path].append(result)
                        if path == "mlx":
                            got = result["streams"] - result["bad"]
                            whole[shape.name] = whole.get(shape.name, 0) + got
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each path (default 5)")
    parser.add_argument("--concurrency", type=counts, default=CONCURRENCY, help="e.g. 1,16")
    parser.add_argument("--quick", action="store_true", help="a smoke run: short streams, 1 repeat")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--stub", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "UPSTREAM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stub:
        stub_app(args.stub)
        return
    if args.bare:
        bare_app(int(args.bare[0]), args.bare[1])
        return
    repeat = 1 if args.quick else args.repeat
    concurrency: tuple[int, ...] = (
        (1, 4) if args.quick and args.concurrency == CONCURRENCY else args.concurrency
    )
    kinds = shapes(args.quick)
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in ("MLX_LOG", "MLX_STATE", "MLX_ENV", "MLX_GATEWAY_TOKEN"):
        env.pop(name, None)
    stub_port, bare_port, mlx_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{stub_port}/v1"
    setup(work / "spec", upstream, kinds)
    log_url = f"sqlite:///{work / 'spec' / '.mlx' / 'inference.db'}"
    me = [sys.executable, __file__]
    stub = subprocess.Popen([*me, "--stub", str(stub_port)], env=env)
    bare = subprocess.Popen([*me, "--bare", str(bare_port), upstream], env=env)
    mlx = Path(sys.executable).parent / "mlx"
    gw = subprocess.Popen(
        [
            *(str(mlx), "serve", "-C", str(work / "spec"), "--port", str(mlx_port)),
            *("--keep-alive", str(KEEP_ALIVE_S), "--log", log_url),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    # {name}: the shape's endpoint (the stub's URL is the same for both: the model says which)
    urls = {
        "direct": f"{upstream}/chat/completions",
        "bare": f"http://127.0.0.1:{bare_port}/v1/chat/completions",
        "mlx": f"http://127.0.0.1:{mlx_port}/endpoints/{{name}}/v1/chat/completions",
    }
    pids = {"direct": [], "bare": [bare.pid], "mlx": [gw.pid]}
    code = None
    try:
        whole = {kinds[0].name: 1}  # the stream wait_up got whole through mlx
        for path in PATHS:
            url = urls[path].format(name=kinds[0].name)
            wait_up(url, request_body(path, kinds[0]), kinds[0].events)
        runs = asyncio.run(measure(urls, pids, kinds, concurrency, repeat, whole))
    finally:
        bare.terminate()
        stub.terminate()
        gw.send_signal(signal.SIGTERM)
        code = gw.wait(60)
        bare.wait(30)
        stub.wait(30)
    logged = streamed_records(log_url)
    config = {
        "repeat": repeat,
        "concurrency": list(concurrency),
        "shapes": [asdict(s) for s in kinds],
        "quick": args.quick,
    }
    report(runs, kinds, config, code, {"streamed": whole, "logged": logged}, args.json)
    shutil.rmtree(work, ignore_errors=True)


def report(
    runs: dict[str, dict[int, dict[str, list[dict[str, Any]]]]],
    kinds: tuple[Shape, ...],
    config: dict[str, Any],
    exit_code: int | None,
    log: dict[str, dict[str, int]],
    as_json: bool,
) -> None:
    head = ("shape", "conc", "path", "TTFT p50", "p95 ms", "total p50", "p95 ms", "chunks/s")
    print(
        "{:6} {:>4} {:7} {:>9} {:>8} {:>10} {:>8} {:>9} {:>11} {:>5}".format(
            *head, "CPU ms/str", "bad"
        )
    )
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for shape in kinds:
        results[shape.name] = {}
        for c, per in runs[shape.name].items():
            results[shape.name][c] = {p: summary(per[p]) for p in PATHS}
            for p in PATHS:
                s = results[shape.name][c][p]
                cpu = "-" if s["cpu_ms_per_stream"] is None else f"{s['cpu_ms_per_stream']:.2f}"
                print(
                    f"{shape.name:6} {c:>4} {p:7} {s['ttft_p50_ms']:>9.2f} "
                    f"{s['ttft_p95_ms']:>8.2f} {s['total_p50_ms']:>10.2f} "
                    f"{s['total_p95_ms']:>8.2f} "
                    f"{s['chunks_per_s']:>9.0f} {cpu:>11} {s['bad']:>5}"
                )
    print()
    ratios: dict[str, dict[int, dict[str, Any]]] = {}
    columns = [(shape.name, c) for shape in kinds for c in runs[shape.name]]
    for name, c in columns:
        per, summed = runs[name][c], results[name][c]
        r: dict[str, Any] = {}
        for base in ("bare", "direct"):
            for figure in ("ttft_p50_ms", "total_p50_ms", "chunks_per_s"):
                r[f"mlx/{base} {figure}"] = paired(per["mlx"], per[base], figure)
        bare_cpu = summed["bare"]["cpu_ms_per_stream"]
        r["mlx/bare cpu_ms_per_stream"] = (
            summed["mlx"]["cpu_ms_per_stream"] / bare_cpu if bare_cpu else None
        )
        ratios.setdefault(name, {})[c] = r
    print(f"{'ratios (medians of paired runs)':34}" + "".join(f"{n:>6}@{c:<3}" for n, c in columns))
    for key in ratios[columns[0][0]][columns[0][1]]:
        cells = (ratios[n][c][key] for n, c in columns)
        print(f"{key:34}" + "".join("       -  " if v is None else f"{v:>9.2f} " for v in cells))
    print()
    slow = kinds[1]
    checks: dict[int, dict[str, float]] = {}
    for c in results[slow.name]:
        m, d = results[slow.name][c]["mlx"], results[slow.name][c]["direct"]
        # buffered, the first token would come with the last: nearer the whole stream's time
        # than the first chunk's (the direct path's TTFT)
        buffered = m["ttft_p50_ms"] - d["ttft_p50_ms"] > m["total_p50_ms"] - m["ttft_p50_ms"]
        checks[c] = {
            "mlx_ttft_p50_ms": m["ttft_p50_ms"],
            "mlx_total_p50_ms": m["total_p50_ms"],
            "direct_ttft_p50_ms": d["ttft_p50_ms"],
            "ttft_share_of_total": m["ttft_p50_ms"] / m["total_p50_ms"],
            "buffered": buffered,
        }
        verdict = "BUFFERED (an mlx bug)" if buffered else "streams, not buffered"
        print(
            f"no buffering, {slow.words} chunks {slow.delay_ms} ms apart @ {c:>2}: "
            f"TTFT through mlx {m['ttft_p50_ms']:.1f} ms (direct {d['ttft_p50_ms']:.1f} ms, "
            f"the first chunk's time), whole stream {m['total_p50_ms']:.1f} ms: {verdict}"
        )
    bad = sum(results[s][c][p]["bad"] for s in results for c in results[s] for p in PATHS)
    print(f"bad streams: {bad}; gateway exit {exit_code}")
    for name in sorted(log["streamed"]):
        sent, kept = log["streamed"][name], log["logged"].get(name, 0)
        flag = "" if sent == kept else "  ANOMALY: the log does not match what the client got"
        print(f"endpoint {name}: {sent} streams came whole through mlx, {kept} logged 200{flag}")
    for s in runs:
        for c in runs[s]:
            for p in PATHS:
                for run in runs[s][c][p]:
                    for err in run["errors"]:
                        print(f"ANOMALY {s} @ {c} via {p}: {err}")
    if as_json:
        doc = {
            "config": config,
            "results": results,
            "ratios": ratios,
            "no_buffering": checks,
            "bad": bad,
            "exit": exit_code,
            "log": log,
            "runs": runs,
        }
        print(json.dumps(doc))


if __name__ == "__main__":
    main()
