"""The serving half of `make demo`: serve the quickstart, send it requests, retrain, walk the
canary rollout to completion on generated traffic, then show the drift monitor find a shift
in what the endpoint is sent, alert once and resolve.

Run from the quickstart directory after `mlx apply` (the Makefile does it all):
    python demo.py [--mlx PATH]
With ``--walk`` it does not retrain: it serves, sends traffic and walks the rollout that
is already in flight (the README's tour, after a retrain you applied yourself).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
READY = "mlx serve: listening on http://"
#: rollouts.yaml's analysis.min_requests (50), and some to spare
MIN_CANDIDATE_REQUESTS = 60
#: The monitor's window for the demo (monitors.yaml says 1h): a refresh must see the shift
#: it just sent, and one some seconds later must no longer see it.
DEMO_WINDOW_S = 15
#: The shift the demo injects: tumours measured 1.6 times as large (a new scanner, a unit
#: change upstream): what the monitor must find.
SHIFT = {"mean_radius": 1.6}


def post(
    url: str, body: object, key: str | None = None
) -> tuple[dict[str, object], dict[str, str]]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    if key:
        req.add_header("x-mlx-key", key)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read()), {k.lower(): v for k, v in resp.headers.items()}


def rows(n: int, start: int = 0, scale: dict[str, float] | None = None) -> dict[str, object]:
    """Biopsies from the eval split, as MLflow's `dataframe_split` (columns + rows); ``scale``
    multiplies the named columns."""
    lines = (HERE / "data" / "eval.csv").read_text().splitlines()
    header = lines[0].split(",")
    features = [c for c in header if c not in ("site", "malignant")]
    keep = [header.index(c) for c in features]
    factor = [(scale or {}).get(c, 1.0) for c in features]
    data = [
        [round(float(line.split(",")[i]) * f, 6) for i, f in zip(keep, factor, strict=True)]
        for line in lines[1 + start : 1 + start + n]
    ]
    return {"dataframe_split": {"columns": features, "data": data}}


def send(url: str, body: bytes, content_type: str) -> object:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def protocols(url: str, request: dict[str, object], predictions: object) -> None:
    """The same two biopsies in the other protocols the gateway speaks: MLflow's CSV at the
    root ``/invocations`` (one model endpoint is served) and KServe's V2 tensors."""
    split = request["dataframe_split"]
    assert isinstance(split, dict)
    columns, data = split["columns"], split["data"]
    csv_body = "\n".join([",".join(columns), *(",".join(map(str, row)) for row in data)])
    by_csv = send(f"{url}/invocations", csv_body.encode(), "text/csv")
    print(f"POST /invocations (text/csv) -> {by_csv}")
    tensors = {
        "inputs": [
            {"name": c, "shape": [len(data)], "datatype": "FP64", "data": [r[i] for r in data]}
            for i, c in enumerate(columns)
        ]
    }
    v2 = send(
        f"{url}/v2/models/tumor_classifier/infer", json.dumps(tensors).encode(), "application/json"
    )
    assert isinstance(v2, dict)
    print(
        f"POST /v2/models/tumor_classifier/infer (KServe V2) -> outputs {v2['outputs'][0]['data']}"
    )
    agree = by_csv == {"predictions": predictions} and v2["outputs"][0]["data"] == predictions
    print(f"    the same predictions in all three protocols: {agree}")


def canary_in_flight(mlx: list[str]) -> bool:
    """Whether the rollout has a candidate taking traffic (`mlx rollout status --json`)."""
    status = subprocess.run(
        [*mlx, "rollout", "status", "tumor_classifier", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if status.returncode != 0:
        return False
    doc = json.loads(status.stdout)
    return bool(doc.get("phase") == "progressing" and doc.get("candidate"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlx", default=str(Path(sys.executable).parent / "mlx"))
    parser.add_argument(
        "--walk",
        action="store_true",
        help="do not retrain: walk the rollout in flight on generated traffic",
    )
    args = parser.parse_args(argv)
    mlx = [args.mlx, "-C", str(HERE)]
    serve = subprocess.Popen(
        [*mlx, "serve", "--port", "0", "--poll", "0.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        url = ""
        for line in serve.stdout:
            if line.startswith(READY):
                url = "http://" + line[len(READY) :].split(" ", 1)[0]
                break
        if not url:
            print("mlx serve did not start", file=sys.stderr)
            return 1
        threading.Thread(target=lambda: [None for _ in serve.stdout], daemon=True).start()
        endpoint = f"{url}/endpoints/tumor_classifier/invocations"
        answer, headers = post(endpoint, json.loads((HERE / "request.json").read_text()))
        print(f"--- served by the gateway at {url}:")
        print(f"POST /endpoints/tumor_classifier/invocations -> {answer}")
        version, variant = headers["x-mlx-version"], headers["x-mlx-variant"]
        print(f"    x-mlx-version: {version}, x-mlx-variant: {variant}")
        protocols(url, json.loads((HERE / "request.json").read_text()), answer["predictions"])

        if not args.walk:
            print("--- retrain with C = 0.9 and apply: the gate runs, then the canary starts")
            subprocess.run([sys.executable, str(HERE / "train.py"), "--C", "0.9"], check=True)
            subprocess.run([*mlx, "apply", "--yes"], check=True)

        stop = threading.Event()
        served: dict[str, int] = {}  # requests answered, by version
        by_variant: dict[str, int] = {}

        def traffic() -> None:
            while not stop.is_set():
                _, h = post(endpoint, rows(1), key=uuid.uuid4().hex)
                served[h["x-mlx-version"]] = served.get(h["x-mlx-version"], 0) + 1
                by_variant[h["x-mlx-variant"]] = by_variant.get(h["x-mlx-variant"], 0) + 1

        workers = [threading.Thread(target=traffic, daemon=True) for _ in range(2)]
        for worker in workers:
            worker.start()
        # The canary's analysis judges the traffic of its step (min_requests per variant):
        # let the candidate answer enough of it before the controller's next pass looks —
        # on a slow machine five seconds of traffic may not be enough, and no data is never
        # a pass (the rollout would pause for a person).
        deadline = time.monotonic() + (120 if canary_in_flight(mlx) else 0)
        while by_variant.get("candidate", 0) < MIN_CANDIDATE_REQUESTS:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print("--- generated traffic while `mlx rollout run` walks the canary:")
        run = subprocess.run([*mlx, "rollout", "run", "tumor_classifier"])
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
        traffic_stopped = time.monotonic()
        print(f"--- requests answered, by version: {dict(sorted(served.items()))}")
        subprocess.run([*mlx, "rollout", "status", "tumor_classifier"], check=False)
        print("--- what the inference log says, per variant (`mlx logs --summary`):")
        subprocess.run([*mlx, "logs", "tumor_classifier", "--summary"], check=False)
        if run.returncode != 0:
            return run.returncode
        return Monitoring(mlx, url, endpoint, traffic_stopped).walk()
    finally:
        serve.terminate()
        serve.wait(timeout=60)


class DemoFailed(Exception):
    """The monitor did not do what the demo shows: `make demo` fails, saying what."""


class Monitoring:
    """monitors.tumor_inputs on the live endpoint: normal traffic is ok; a shift the demo sends
    fires it and appends exactly one line to .mlx/alerts.jsonl; the next run is still firing
    and appends none; once the shifted requests have left the window, normal traffic resolves
    it with one more line."""

    def __init__(self, mlx: list[str], url: str, endpoint: str, traffic_until: float):
        self.mlx, self.url, self.endpoint = mlx, url, endpoint
        self.traffic_until = traffic_until  # when the canary's traffic stopped (monotonic)
        self.alerts = HERE / ".mlx" / "alerts.jsonl"

    def walk(self) -> int:
        try:
            self._walk()
        except DemoFailed as exc:
            print(f"demo: monitors: {exc}", file=sys.stderr)
            return 1
        return 0

    def _walk(self) -> None:
        print(f"--- monitors.tumor_inputs, with its window cut to {DEMO_WINDOW_S}s for the demo:")
        self._short_window()
        self._wait_until(self.traffic_until + DEMO_WINDOW_S, "the canary's traffic")
        self._send("the eval biopsies (normal traffic)", None)
        self._refresh("ok", new_lines=0)
        scaled = ", ".join(f"{c} x {f}" for c, f in SHIFT.items())
        self._send(f"the same biopsies with {scaled} (a shift)", SHIFT)
        shifted_at = time.monotonic()
        self._refresh("firing", new_lines=1)
        self._refresh("firing", new_lines=0, why="still firing: its owner was told once")
        self._wait_until(shifted_at + DEMO_WINDOW_S, "the shifted requests")
        self._send("the eval biopsies again (normal traffic)", None)
        self._refresh("ok", new_lines=1)
        self._scheduled_eval()

    def _scheduled_eval(self) -> None:
        """monitors.tumor_release_nightly re-runs the release gate on the version users get,
        on the eval data pinned when it passed: the same scores, so ok and no alert."""
        print("--- monitors.tumor_release_nightly: the release gate re-run on the released version")
        self._refresh("ok", new_lines=0, name="tumor_release_nightly")
        shown = subprocess.run(
            [*self.mlx, "show", "monitors.tumor_release_nightly"],
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode != 0:
            raise DemoFailed(f"mlx show failed:\n{shown.stdout}{shown.stderr}")
        print("$ mlx show monitors.tumor_release_nightly   # each score, its floor, released")
        lines = shown.stdout.splitlines()
        start = lines.index("monitors.tumor_release_nightly")  # the monitor's own view
        for line in lines[start + 1 :]:
            if line.startswith("  attributes:"):
                break
            print(f"    {line}")

    def _short_window(self) -> None:
        """monitors.yaml's window (1h: a real schedule's) becomes seconds, applied as any edit
        is: variables cannot set a duration field (docs/decisions.md)."""
        path = HERE / "monitors.yaml"
        text = path.read_text()
        if "window: 1h" in text:
            path.write_text(text.replace("window: 1h", f"window: {DEMO_WINDOW_S}s", 1))
        applied = subprocess.run(
            [*self.mlx, "apply", "--yes", "--target", "monitors.tumor_inputs"],
            capture_output=True,
            text=True,
            check=False,
        )
        if applied.returncode != 0:
            raise DemoFailed(f"apply failed:\n{applied.stdout}{applied.stderr}")
        print(f"$ mlx apply --yes --target monitors.tumor_inputs   # window: {DEMO_WINDOW_S}s")
        for line in applied.stdout.splitlines():
            if line.startswith("monitors.tumor_inputs:"):
                print(f"    {line}")

    def _wait_until(self, until: float, what: str) -> None:
        left = until - time.monotonic()
        if left > 0:
            print(f"    (waiting {left:.0f}s for {what} to leave the window)")
            time.sleep(left)

    def _send(self, what: str, scale: dict[str, float] | None) -> None:
        before = self._log_written()
        total = len((HERE / "data" / "eval.csv").read_text().splitlines()) - 1
        sent = 0
        for start in range(0, total, 10):  # ten biopsies a request
            post(self.endpoint, rows(10, start, scale))
            sent += 1
        deadline = time.monotonic() + 30
        while self._log_written() < before + sent:  # the gateway's log writer flushes
            if time.monotonic() > deadline:
                raise DemoFailed("the gateway did not write its log")
            time.sleep(0.05)
        print(f"--- sent {what}: {total} rows in {sent} requests")

    def _log_written(self) -> int:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=10) as resp:
            log = json.loads(resp.read())["log"]
        return int(log["written"]) if not log["pending"] else -1

    def _refresh(
        self,
        expect: str,
        *,
        new_lines: int,
        why: str = "nothing to tell",
        name: str = "tumor_inputs",
    ) -> None:
        before = self._lines()
        cmd = ["refresh", "--monitor", name, "--detailed-exitcode"]
        print("$ mlx " + " ".join(cmd))
        run = subprocess.run([*self.mlx, *cmd], capture_output=True, text=True, check=False)
        for line in run.stdout.splitlines():
            if line.startswith("monitors."):
                print(f"    {line}")
        want_code = 2 if expect == "firing" else 0
        if run.returncode != want_code or f"{name}: {expect} " not in run.stdout:
            got = f"exit {run.returncode}:\n{run.stdout}{run.stderr}"
            raise DemoFailed(f"expected {expect} (exit {want_code}), got {got}")
        added = self._lines()[len(before) :]
        if len(added) != new_lines:
            raise DemoFailed(f"expected {new_lines} new alert line(s), got {len(added)}")
        for line in added:
            alert = json.loads(line)
            print(f"    .mlx/alerts.jsonl +1 [{alert['alert']['status']}]: {alert['text']}")
        if not added:
            print(f"    .mlx/alerts.jsonl: no new line ({why})")

    def _lines(self) -> list[str]:
        if not self.alerts.exists():
            return []
        return self.alerts.read_text().splitlines()


if __name__ == "__main__":
    sys.exit(main())
