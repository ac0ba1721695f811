"""One benchmark, this tree against an earlier commit's, in one run: their runs interleaved.

    git worktree add --detach ../base <commit>            # the earlier commit
    (cd ../base && python3 -m venv .venv && .venv/bin/pip install -e '.[dev,mlflow,bench]')
    .venv/bin/python bench/side_by_side.py --base ../base plan_scale --sizes 1000
    .venv/bin/python bench/side_by_side.py --base ../base gateway --duration 2 --repeat 3
    .venv/bin/python bench/side_by_side.py --base ../base inference_log --rows 200000 --no-pg

Each round runs the benchmark once with each tree's own copy of it and its own environment
(``<base>/.venv`` for the earlier commit, this interpreter for this tree), the order flipped
every round, so both see the same machine (this one's speed drifts by ±30 % over a minute).
Every numeric figure the benchmark prints as JSON is compared; the headline ones are shown:
the median over rounds of each side, and the median of the per-round ratios this ÷ base
(the figure judged: for a time, below 1 is faster; for a rate, above 1). Never asserts.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
#: The figures shown per benchmark (dotted paths into its JSON; a list is keyed by
#: ``resources`` when its items have one, else by index).
HEADLINES = {
    "plan_scale": r"^results\.\d+\.(apply_s|cold_s|warm_s|warm_nomemo_s|changed_s|cold_rss_mb)$",
    "gateway": r"^(throughput_ratio|p50_overhead_ms|shadow_p50_ratio)\.\d+$"
    r"|^results\.a\.\d+\.(rps|p50_ms)$",
    "inference_log": r"^write_rows_per_s\.first\.sqlite$|^writer\.(rows_per_s|submit_us)$"
    r"|^queries\..*sqlite\.s$",
}


def last_json(text: str) -> Any:
    """The last JSON document a benchmark printed (``--json`` prints it last)."""
    for start in reversed([m.start() for m in re.finditer(r"^[{\[]", text, re.M)]):
        try:
            return json.loads(text[start:])
        except json.JSONDecodeError:
            continue
    raise ValueError("the benchmark printed no JSON")


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = (
            (str(v.get("resources", i)) if isinstance(v, dict) else str(i), v)
            for i, v in enumerate(value)
        )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return {prefix: float(value)}
    else:
        return out
    for key, child in items:
        out.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return out


def run(python: Path, tree: Path, bench: str, args: list[str]) -> dict[str, float]:
    cmd = [str(python), str(tree / "bench" / f"{bench}.py"), "--json", *args]
    print(f"$ {' '.join(cmd)}", flush=True)
    done = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"{bench} failed in {tree} (exit {done.returncode})")
    return flatten(last_json(done.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the earlier commit's worktree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--all", action="store_true", help="show every figure, not the headlines")
    parser.add_argument("bench", choices=sorted(HEADLINES))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    base_python = ns.base / ".venv" / "bin" / "python"
    sides: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
    for i in range(ns.rounds):
        order = [("base", base_python, ns.base), ("this", Path(sys.executable), HERE)]
        for name, python, tree in order if i % 2 == 0 else reversed(order):
            sides[name].append(run(python, tree, ns.bench, ns.args))
    wanted = re.compile(".*" if ns.all else HEADLINES[ns.bench])
    keys = sorted(k for k in set(sides["base"][0]) & set(sides["this"][0]) if wanted.search(k))
    print(f"\n{ns.bench}: this tree ({HERE}) against {ns.base}, {ns.rounds} rounds interleaved")
    print(f"{'figure':58} {'base':>12} {'this':>12} {'this/base':>10}")
    for key in keys:
        base = [r[key] for r in sides["base"]]
        this = [r[key] for r in sides["this"]]
        ratios = [t / b for t, b in zip(this, base, strict=True) if b]
        ratio = f"{statistics.median(ratios):10.2f}" if ratios else f"{'-':>10}"
        print(f"{key:58} {statistics.median(base):12.4g} {statistics.median(this):12.4g} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
