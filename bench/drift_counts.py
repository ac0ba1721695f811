"""Benchmark: drift counts in the store against fetching the rows and counting in Python.

Run: ``.venv/bin/pip install -e '.[bench]'`` once, then ``.venv/bin/python bench/drift_counts.py``
(``--rows 1000000 --parquet-rows 10000000`` are the defaults).

1. SQLite log: ``--rows`` records of one endpoint, two variants, each with sampled inputs of 5
   numeric features (one-row ``dataframe_split`` bodies, MLflow's usual payload), written with
   ``LogStore.write``. Then, over the whole window: ``inference.drift_counts.window_counts``
   (one statement, ``GROUP BY`` in SQLite) against the baseline — stream the window's
   ``inputs`` to Python, ``json.loads`` each, ``analysis.drift.count`` per feature and slice.
   Both must give the same counts; the ratio is printed. ``--pg-url`` repeats it on a
   PostgreSQL log (an empty database).
2. DuckDB: a Parquet file of ``--parquet-rows`` rows x 5 features (+ variant, version),
   counted by ``inference.drift_files.file_counts`` in a fresh process: its time and its peak
   RSS (``resource.getrusage``; the generator's memory is not in it).

Nothing is asserted; the numbers go in docs/monitors.md ("Counting in the store").
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.drift import Histogram, build_feature, count  # noqa: E402
from inference.drift_bins import Bins, bins_from_profile  # noqa: E402
from inference.drift_counts import window_counts  # noqa: E402
from inference.records import InferenceRecord  # noqa: E402
from inference.store import open_log  # noqa: E402

T0 = 1_767_225_600.0
NAMES = [f"f{i}" for i in range(5)]
BATCH = 20_000


def profile(seed: int = 1) -> tuple[dict[str, Any], list[Bins]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    features = {
        n: build_feature(n, rng.normal(0.0, 1.0, 20_000).tolist(), bins=20).as_dict() for n in NAMES
    }
    return features, bins_from_profile({"features": features})


def fill_log(url: str, rows: int) -> Any:
    import numpy as np

    store = open_log(url)
    with store.engine.connect() as conn:
        have = conn.exec_driver_sql("SELECT COUNT(*) FROM mlx_inference").scalar()
    if have == rows:  # --pg-url of a database an earlier run filled
        print(f"  reusing the {rows:,} log rows already there")
        return store
    rng = np.random.default_rng(2)
    t = time.perf_counter()
    for start in range(0, rows, BATCH):
        n = min(BATCH, rows - start)
        values = rng.normal(0.1, 1.0, (n, len(NAMES))).round(6).tolist()
        batch = [
            InferenceRecord(
                request_id=f"r{start + i}",
                ts=T0 + (start + i) * 0.001,
                endpoint="fraud",
                variant="candidate" if i % 10 == 0 else "stable",
                version="2" if i % 10 == 0 else "1",
                status=200,
                latency_ms=5.0,
                inputs={"dataframe_split": {"columns": NAMES, "data": [row]}},
            )
            for i, row in enumerate(values)
        ]
        store.write(batch)
    print(f"  wrote {rows:,} log rows in {time.perf_counter() - t:.1f}s")
    return store


def python_counts(
    store: Any, features: dict[str, Any]
) -> dict[tuple[str, str], dict[str, Histogram]]:
    """The baseline: every sampled row to Python, parsed and counted there (streamed)."""
    from analysis.drift.profile import feature_from_dict

    profiles = {n: feature_from_dict(f) for n, f in features.items()}
    columns: dict[tuple[str, str], dict[str, list[Any]]] = {}
    with store.engine.connect() as conn:
        result = conn.exec_driver_sql(
            "SELECT variant, version, inputs FROM mlx_inference "
            "WHERE environment = 'default' AND endpoint = 'fraud' AND inputs IS NOT NULL"
        )
        for variant, version, inputs in result:
            doc = json.loads(inputs)["dataframe_split"]
            cols = columns.setdefault((variant, version), {n: [] for n in NAMES})
            index = {c: i for i, c in enumerate(doc["columns"])}
            for row in doc["data"]:
                for n in NAMES:
                    cols[n].append(row[index[n]] if n in index else None)
    return {key: {n: count(cols[n], profiles[n]) for n in NAMES} for key, cols in columns.items()}


def bench_log(rows: int, url: str) -> None:
    features, bins = profile()
    store = fill_log(url, rows)
    with store.engine.connect() as conn:  # the table in the page cache for both contenders
        conn.exec_driver_sql("SELECT COUNT(*), SUM(LENGTH(inputs)) FROM mlx_inference").all()
    t = time.perf_counter()
    counted = window_counts(store, "fraud", bins)
    in_store = time.perf_counter() - t
    t = time.perf_counter()
    baseline = python_counts(store, features)
    in_python = time.perf_counter() - t
    same = all(
        Histogram.from_dict(counted[key].features[n].as_dict()).counts == baseline[key][n].counts
        for key in baseline
        for n in NAMES
    )
    print(f"{store.dialect}, {rows:,} rows x {len(NAMES)} features, 2 slices:")
    print(f"  window_counts (one GROUP BY in the database): {in_store:.2f}s")
    print(f"  fetch rows + json.loads + count in Python: {in_python:.2f}s")
    print(f"  ratio Python / store: {in_python / in_store:.2f}x; same counts: {same}")
    store.close()


def fill_parquet(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    chunk = 1_000_000
    t = time.perf_counter()
    schema = pa.schema(
        [(n, pa.float64()) for n in NAMES] + [("variant", pa.string()), ("version", pa.string())]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            data = {name: rng.normal(0.1, 1.0, n) for name in NAMES}
            canary = rng.random(n) < 0.1
            data["variant"] = np.where(canary, "candidate", "stable")
            data["version"] = np.where(canary, "2", "1")
            writer.write_table(pa.table(data, schema=schema))
    size = path.stat().st_size / 1e6
    print(f"  wrote {rows:,} Parquet rows ({size:.0f} MB) in {time.perf_counter() - t:.1f}s")


def duckdb_child(path: str) -> None:
    """In a fresh process: count the Parquet file, print the time and this process's peak RSS."""
    from inference.drift_files import file_counts

    _, bins = profile()
    t = time.perf_counter()
    counted = file_counts(path, bins, slice_by=("variant", "version"))
    took = time.perf_counter() - t
    rows = sum(c.requests for c in counted.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": took, "peak_mb": peak, "rows": rows}))


def bench_duckdb(rows: int, workdir: Path) -> None:
    path = workdir / "window.parquet"
    fill_parquet(path, rows)
    out = subprocess.run(
        [sys.executable, __file__, "--duckdb-child", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"DuckDB over Parquet, {got['rows']:,} rows x {len(NAMES)} features, 2 slices:")
    print(f"  file_counts: {got['seconds']:.2f}s, peak RSS of the process {got['peak_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parquet-rows", type=int, default=10_000_000)
    parser.add_argument(
        "--pg-url", default=None, help="also a PostgreSQL log (an empty database it may fill)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite log")
    parser.add_argument("--duckdb-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duckdb_child:
        duckdb_child(args.duckdb_child)
        return
    with tempfile.TemporaryDirectory(prefix="mlx-drift-counts-") as tmp:
        if args.rows:
            if not args.no_sqlite:
                bench_log(args.rows, f"sqlite:///{Path(tmp) / 'log.db'}")
            if args.pg_url:
                bench_log(args.rows, args.pg_url)
        if args.parquet_rows:
            bench_duckdb(args.parquet_rows, Path(tmp))


if __name__ == "__main__":
    main()
