"""Benchmark: mlx's data-drift monitor against Evidently's DataDriftPreset (issue 21).

Run: ``.venv/bin/python bench/drift.py`` (``make bench`` does; ``--rows 1000000 --big-rows
10000000`` are the defaults). ``--quick`` is a smoke run on small data (Evidently only when
its environment already exists).

1. Reference and current data of ``--rows`` rows x 20 numeric features (numpy, seeded;
   normal, log-normal, uniform and gamma columns) written to Parquet in a temporary
   directory, in chunks. Five features of the current data are shifted: four by an effect
   far over the threshold (a location shift of 0.5 std, x1.3 scale of a log-normal, +1.5 on
   a uniform(0, 10), the std x1.5) and one *small but real* (+0.02 std): on a million rows
   a p-value test flags it; the effect size (Wasserstein / reference std 0.02 < 0.1) does
   not, in both tools. Truth is therefore four drifted features.
2. mlx, in a process of its own: ``providers.monitor.reference.ensure_profile`` (the
   reference profiled once, in DuckDB) and the run: ``load_profile``,
   ``inference.drift_files.file_counts`` (one ``GROUP BY`` over the current Parquet) and
   ``providers.monitor.judge.judge_run`` with ``method: auto`` (Wasserstein normed at 0.1
   on a reference of more than 1000 rows). The dataset fingerprint (a file hash the engine
   computes at plan time) is not part of the run and not timed.
3. Evidently, in a process of the benchmark's own virtual environment
   (``build/evidently-venv``, made on first use: ``evidently==0.7.23``, ``pandas<3``,
   ``pyarrow``): both files read with pandas, then ``Report([DataDriftPreset(
   num_method="wasserstein", num_threshold=0.1)])`` — the same test and threshold as
   mlx's ``auto`` — and its per-column verdicts read back from the report's JSON.
4. mlx alone on ``--big-rows`` rows (reference and current of that length, both Parquet,
   generated in chunks of 500,000 rows so the generator stays small).

Times are measured inside each process (imports excluded and printed apart); peak memory is
each process's own ``ru_maxrss`` from ``os.wait4`` (the parent waits for that child alone),
so the generator's memory is in neither. Nothing is asserted: the figures of a shared
machine are printed, with the issue's targets (>= 20x faster, identical verdicts; memory
flat in the rows and under 500 MB). ``--json`` adds the figures as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FEATURES = [f"f{i:02d}" for i in range(20)]
EVIDENTLY_VENV = ROOT / "build" / "evidently-venv"
EVIDENTLY_PINS = ("evidently==0.7.23", "pandas<3", "pyarrow")
METHOD, THRESHOLD = "wasserstein", 0.1
CHUNK = 500_000
TARGET_RATIO, TARGET_MB = 20.0, 500.0


@dataclass(frozen=True)
class Shift:
    feature: str
    what: str
    drifts: bool  # the truth both tools should find


SHIFTS = {
    "f00": Shift("f00", "normal, location +0.5 std", True),
    "f05": Shift("f05", "log-normal, scale x1.3", True),
    "f10": Shift("f10", "uniform(0, 10), +1.5", True),
    "f12": Shift("f12", "normal, std x1.5", True),
    "f16": Shift("f16", "normal, location +0.02 std (small but real)", False),
}


def _column(rng: Any, i: int, n: int, current: bool) -> Any:
    """Feature ``i``'s values: four families in turn, each with its own parameters."""
    name = FEATURES[i]
    shifted = current and name in SHIFTS
    family = i % 4
    if family == 0:  # normal
        loc, scale = float(i), 1.0 + i / 10
        if shifted and name == "f00":
            loc += 0.5 * scale
        if shifted and name == "f16":
            loc += 0.02 * scale
        if shifted and name == "f12":
            scale *= 1.5
        return rng.normal(loc, scale, n)
    if family == 1:  # log-normal
        values = rng.lognormal(0.0, 0.5, n)
        return values * 1.3 if shifted else values
    if family == 2:  # uniform(0, 10)
        values = rng.uniform(0.0, 10.0, n)
        return values + 1.5 if shifted else values
    return rng.gamma(2.0, 1.0 + i / 20, n)  # gamma (never shifted)


def write_data(path: Path, rows: int, *, seed: int, current: bool) -> float:
    """``rows`` x 20 features to Parquet in chunks; the seconds it took."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([(n, pa.float64()) for n in FEATURES])
    t = time.perf_counter()
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            columns = {name: _column(rng, i, n, current) for i, name in enumerate(FEATURES)}
            writer.write_table(pa.table(columns, schema=schema))
    return time.perf_counter() - t


# -- the mlx process --------------------------------------------------------------------------
def mlx_child(reference: str, current: str, data_dir: str) -> None:
    """In a fresh process: profile, count and judge; print times and verdicts as JSON."""
    t0 = time.perf_counter()
    from inference.drift_bins import bins_from_profile
    from inference.drift_files import file_counts
    from providers.monitor.judge import judge_run
    from providers.monitor.reference import ensure_profile, load_profile

    imported = time.perf_counter() - t0
    t = time.perf_counter()
    path, built = ensure_profile(Path(data_dir), "sha256:bench-reference", reference)
    profiled = time.perf_counter() - t
    assert built
    t = time.perf_counter()
    profile = load_profile(path)
    window = file_counts(current, bins_from_profile(profile.as_dict()))
    result = judge_run(window, profile)
    ran = time.perf_counter() - t
    assert result.whole is not None
    verdicts = {name: signals[0] for name, signals in result.whole.features.items()}
    print(
        json.dumps(
            {
                "import_s": imported,
                "profile_s": profiled,
                "run_s": ran,
                "rows": [profile.rows, result.whole.rows],
                "state": result.state,
                "methods": sorted({v.method for v in verdicts.values()}),
                "scores": {n: v.statistic for n, v in verdicts.items()},
                "drifted": {n: v.drifted for n, v in verdicts.items()},
            }
        )
    )


# -- the parent -------------------------------------------------------------------------------
def run_child(argv: list[str]) -> tuple[dict[str, Any], float, float]:
    """Run one child to its end: its last JSON line, its wall seconds and its own peak RSS in
    MB (``ru_maxrss`` of that process alone, from ``os.wait4``)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{argv[1]} failed (exit {proc.returncode}):\n{out}\n{err}")
    return json.loads(out.strip().splitlines()[-1]), wall, usage.ru_maxrss / 1024


def ensure_evidently(create: bool) -> Path | None:
    """The benchmark's Evidently interpreter; made (pinned) when absent and ``create``."""
    python = EVIDENTLY_VENV / "bin" / "python"
    if python.exists():
        return python
    if not create:
        return None
    print(f"making {EVIDENTLY_VENV} ({', '.join(EVIDENTLY_PINS)}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *EVIDENTLY_PINS,
        ],
        check=True,
    )
    return python


def run_mlx(reference: Path, current: Path, work: Path, tag: str) -> dict[str, Any]:
    data_dir = work / f"mlx-{tag}"
    got, wall, peak = run_child(
        [sys.executable, __file__, "--mlx-child", str(reference), str(current), str(data_dir)]
    )
    got.update(wall_s=wall, peak_mb=peak, total_s=got["profile_s"] + got["run_s"])
    return got


def run_evidently(python: Path, reference: Path, current: Path) -> dict[str, Any]:
    script = str(Path(__file__).with_name("drift_evidently.py"))
    got, wall, peak = run_child(
        [str(python), script, str(reference), str(current), METHOD, str(THRESHOLD)]
    )
    got.update(wall_s=wall, peak_mb=peak, total_s=got["load_s"] + got["report_s"])
    return got


def compare(mlx: dict[str, Any], evidently: dict[str, Any] | None) -> dict[str, Any]:
    """Per feature: the truth, each tool's verdict and score; the disagreements."""
    rows = {}
    for name in FEATURES:
        truth = _truth(name)
        rows[name] = {
            "truth": truth,
            "mlx": mlx["drifted"][name],
            "mlx_score": mlx["scores"][name],
            "evidently": evidently["drifted"].get(name) if evidently else None,
            "evidently_score": evidently["scores"].get(name) if evidently else None,
        }
    disagree = [n for n, r in rows.items() if evidently and r["mlx"] != r["evidently"]]
    wrong = [n for n, r in rows.items() if r["mlx"] != r["truth"]]
    return {"features": rows, "disagree": disagree, "mlx_wrong": wrong}


def _truth(name: str) -> bool:
    return name in SHIFTS and SHIFTS[name].drifts


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    rows: int, mlx: dict[str, Any], evidently: dict[str, Any] | None, why_not: str
) -> dict[str, Any]:
    verdicts = compare(mlx, evidently)
    print(f"\n== drift: {rows:,} rows x {len(FEATURES)} features, {len(SHIFTS)} shifted ==")
    print(
        f"test and threshold: {METHOD} (normed) >= {THRESHOLD} (mlx auto chose: "
        f"{', '.join(mlx['methods'])})"
    )
    print(
        f"mlx        profile {mlx['profile_s']:7.2f}s  run {mlx['run_s']:7.2f}s  "
        f"total {mlx['total_s']:7.2f}s  (imports {mlx['import_s']:.2f}s, process "
        f"{mlx['wall_s']:.2f}s)  peak RSS {mlx['peak_mb']:7.0f} MB"
    )
    out: dict[str, Any] = {"rows": rows, "mlx": mlx, "evidently": evidently, **verdicts}
    if evidently is None:
        print(f"evidently  skipped: {why_not}")
    else:
        print(
            f"evidently  load    {evidently['load_s']:7.2f}s  report {evidently['report_s']:6.2f}s"
            f"  total {evidently['total_s']:7.2f}s  (imports {evidently['import_s']:.2f}s, "
            f"process {evidently['wall_s']:.2f}s)  peak RSS {evidently['peak_mb']:7.0f} MB  "
            f"[evidently {evidently['version']}]"
        )
        ratio = evidently["total_s"] / mlx["total_s"]
        ratio_run = evidently["total_s"] / mlx["run_s"]
        ratio_process = evidently["wall_s"] / mlx["wall_s"]
        print(
            f"ratio Evidently / mlx (profile + run)    {ratio:7.1f}x  "
            f"(target >= {TARGET_RATIO:.0f}x)  {_mark(ratio >= TARGET_RATIO)}"
        )
        print(f"ratio Evidently / mlx run (profile kept) {ratio_run:7.1f}x")
        print(f"ratio of whole processes (imports too)   {ratio_process:7.1f}x")
        print(
            f"memory Evidently / mlx                   "
            f"{evidently['peak_mb'] / mlx['peak_mb']:7.1f}x"
        )
        out["ratios"] = {"total": ratio, "run": ratio_run, "process": ratio_process}
    print("feature  truth   mlx (score)           evidently (score)      agree")
    for name, r in verdicts["features"].items():
        ev = (
            f"{_word(r['evidently']):6s} ({r['evidently_score']:.4f})"
            if r["evidently"] is not None
            else "-"
        )
        agree = "" if r["evidently"] is None else ("yes" if r["evidently"] == r["mlx"] else "NO")
        note = f"  <- {SHIFTS[name].what}" if name in SHIFTS else ""
        print(
            f"{name}      {_word(r['truth']):6s}  {_word(r['mlx']):6s} ({r['mlx_score']:.4f})"
            f"       {ev:21s}  {agree}{note}"
        )
    if evidently is not None:
        same = not verdicts["disagree"]
        print(
            f"verdicts identical: {same}  {_mark(same)}"
            + (f"  (disagree: {', '.join(verdicts['disagree'])})" if not same else "")
        )
    print(
        f"mlx verdicts equal the truth: {not verdicts['mlx_wrong']}"
        + (f"  (wrong: {', '.join(verdicts['mlx_wrong'])})" if verdicts["mlx_wrong"] else "")
    )
    return out


def _word(drifted: bool) -> str:
    return "drift" if drifted else "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="rows of the comparison")
    parser.add_argument("--big-rows", type=int, default=None, help="rows of mlx alone (0: skip)")
    parser.add_argument("--quick", action="store_true", help="small data, a smoke run")
    parser.add_argument("--no-evidently", action="store_true", help="mlx alone")
    parser.add_argument("--json", action="store_true", help="the figures as a last JSON line")
    parser.add_argument("--mlx-child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mlx_child:
        mlx_child(*args.mlx_child)
        return
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    big = args.big_rows if args.big_rows is not None else (100_000 if args.quick else 10_000_000)
    python: Path | None = None
    why_not = "--no-evidently"
    if not args.no_evidently:
        python = ensure_evidently(create=not args.quick)
        why_not = f"--quick and no {EVIDENTLY_VENV.relative_to(ROOT)} (run without --quick once)"
    doc: dict[str, Any] = {"config": {"rows": rows, "big_rows": big, "quick": args.quick}}
    with tempfile.TemporaryDirectory(prefix="mlx-bench-drift-") as tmp:
        work = Path(tmp)
        ref, cur = work / "reference.parquet", work / "current.parquet"
        took = write_data(ref, rows, seed=1, current=False)
        took += write_data(cur, rows, seed=2, current=True)
        print(f"wrote reference and current, {rows:,} rows each, in {took:.1f}s", flush=True)
        mlx = run_mlx(ref, cur, work, "small")
        evidently = run_evidently(python, ref, cur) if python is not None else None
        doc["compare"] = report(rows, mlx, evidently, why_not)
        ref.unlink()
        cur.unlink()
        if big:
            ref, cur = work / "big-reference.parquet", work / "big-current.parquet"
            took = write_data(ref, big, seed=3, current=False)
            took += write_data(cur, big, seed=4, current=True)
            size = (ref.stat().st_size + cur.stat().st_size) / 1e6
            print(
                f"\nwrote reference and current, {big:,} rows each ({size:,.0f} MB of "
                f"Parquet), in {took:.1f}s",
                flush=True,
            )
            large = run_mlx(ref, cur, work, "big")
            doc["big"] = large
            wrong = [n for n in FEATURES if large["drifted"][n] != _truth(n)]
            print(f"== mlx alone: {big:,} rows x {len(FEATURES)} features ==")
            for label, got, n in (("at", mlx, rows), ("at", large, big)):
                print(
                    f"mlx {label} {n:>12,} rows: profile {got['profile_s']:7.2f}s  run "
                    f"{got['run_s']:7.2f}s  total {got['total_s']:7.2f}s  peak RSS "
                    f"{got['peak_mb']:6.0f} MB"
                )
            growth = large["peak_mb"] / mlx["peak_mb"]
            print(
                f"peak RSS at {big:,} rows: {large['peak_mb']:.0f} MB (target < "
                f"{TARGET_MB:.0f} MB)  {_mark(large['peak_mb'] < TARGET_MB)}; "
                f"x{growth:.2f} the {rows:,}-row run's for x{big / rows:.0f} the rows"
            )
            print(
                f"mlx verdicts equal the truth: {not wrong}"
                + (f"  (wrong: {', '.join(wrong)})" if wrong else "")
            )
    if args.json:
        print(json.dumps(doc))


if __name__ == "__main__":
    main()
