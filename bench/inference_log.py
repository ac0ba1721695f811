"""Benchmark of the inference log's embedded store: SQLite WAL against Parquet segments.

Run: ``.venv/bin/pip install -e '.[bench]'`` once, then ``.venv/bin/python bench/inference_log.py``.

1. Writes, in 500-record batches as ``LogWriter`` writes them, of realistic records (~10 %
   carrying inputs/outputs): SQLite WAL (``LogStore.write``), Parquet segments with
   ``dt=/hour=`` partitions, one file per flush or one per 20 flushes (pyarrow), and
   PostgreSQL if a server answers. Also: the whole ``LogWriter`` path (``submit`` → thread →
   SQLite), and what an index on the records' random request ids would cost.
2. The queries monitors and rollouts run, over windows of 100k and 1M rows: per-variant
   requests, error rate, p50/p95/p99 latency, cost, tokens and feedback (rollout analysis,
   dashboards); a 10-bin histogram of one input feature over the sampled payloads (drift);
   spend; the newest 100 records (``mlx logs``). SQLite through ``inference.query``; Parquet
   through DuckDB (both layouts). Best of ``--repeat``; ratios are Parquet ÷ SQLite.

Nothing is asserted; the numbers go in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference import query  # noqa: E402
from inference.records import Feedback, InferenceRecord  # noqa: E402
from inference.store import LogStore, feedback_row, open_log, record_row  # noqa: E402
from inference.writer import LogWriter  # noqa: E402

BATCH = 500
RATE = 1000.0  # requests per second of synthetic traffic: 1M rows = 16.7 minutes
T0 = 1_767_225_600.0
FEATURES = [f"f{i}" for i in range(8)]
EDGES = [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]  # 10 bins
FILES_PER_COMPACT = 20


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


# -- synthetic traffic ---------------------------------------------------------------------------
def records(start: int, n: int, seed: int = 1) -> list[InferenceRecord]:
    """``n`` requests of a model endpoint with a 10 % canary, from sequence number ``start``."""
    rnd = random.Random(seed * 1_000_003 + start)
    out = []
    for seq in range(start, start + n):
        canary = rnd.random() < 0.1
        sampled = rnd.random() < 0.1
        roll = rnd.random()
        status = 500 if roll < 0.01 else 429 if roll < 0.02 else 200
        out.append(
            InferenceRecord(
                request_id=uuid.UUID(int=rnd.getrandbits(128), version=4).hex,
                ts=T0 + seq / RATE,
                endpoint="fraud",
                variant="canary" if canary else "stable",
                subject="models.fraud",
                version="8" if canary else "7",
                fingerprint="sha256:" + ("9f" if canary else "3a") * 32,
                status=status,
                latency_ms=rnd.lognormvariate(3.2 + (0.1 if canary else 0.0), 0.5),
                input_tokens=rnd.randint(20, 400),
                output_tokens=rnd.randint(1, 50),
                cost_usd=rnd.randint(1, 60) * 1e-6,
                cache_hit=rnd.random() < 0.15,
                key_hash=f"{rnd.getrandbits(64):016x}",
                inputs=(
                    [
                        {
                            **{
                                f: round(rnd.gauss(0.1 if canary else 0.0, 1.0), 4)
                                for f in FEATURES
                            },
                            "country": rnd.choice(["DE", "FR", "US", "GB", "IN"]),
                            "channel": rnd.choice(["web", "app", "pos"]),
                        }
                    ]
                    if sampled
                    else None
                ),
                outputs={"predictions": [round(rnd.random(), 4)]} if sampled else None,
                error="upstream: model server returned 500" if status >= 500 else None,
            )
        )
    return out


def feedback_for(batch: list[InferenceRecord], seed: int) -> list[Feedback]:
    rnd = random.Random(seed)
    return [
        Feedback(
            request_id=r.request_id, endpoint=r.endpoint, ts=r.ts + 30, value=rnd.random() < 0.3
        )
        for r in batch
        if rnd.random() < 0.02
    ]


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(size, total - start)


# -- Parquet segments ------------------------------------------------------------------------------
class ParquetSegments:
    """Each flush → one file under ``dt=YYYY-MM-DD/hour=HH/`` (or one per ``per`` flushes, the
    batches kept in memory meanwhile: a SIGKILL then loses up to ``per`` flushes)."""

    def __init__(self, root: Path, per: int = 1):
        import pyarrow as pa  # type: ignore[import-untyped]

        self.root, self.per, self.seq = root, per, 0
        self.pending: list[dict[str, Any]] = []
        self.pending_fb: list[dict[str, Any]] = []
        self.flushes = 0
        self.files = 0
        self.schema = pa.schema(
            [
                ("environment", pa.string()),
                ("endpoint", pa.string()),
                ("request_id", pa.string()),
                ("variant", pa.string()),
                ("ts", pa.float64()),
                ("subject", pa.string()),
                ("version", pa.string()),
                ("fingerprint", pa.string()),
                ("prompt_version", pa.string()),
                ("retrieval_version", pa.string()),
                ("status", pa.int32()),
                ("latency_ms", pa.float64()),
                ("latency_bucket", pa.int16()),
                ("input_tokens", pa.int32()),
                ("output_tokens", pa.int32()),
                ("cost_usd", pa.float64()),
                ("cache_hit", pa.bool_()),
                ("key_hash", pa.string()),
                ("inputs", pa.string()),
                ("outputs", pa.string()),
                ("error", pa.string()),
            ]
        )
        self.fb_schema = pa.schema(
            [
                ("environment", pa.string()),
                ("endpoint", pa.string()),
                ("request_id", pa.string()),
                ("ts", pa.float64()),
                ("label", pa.string()),
                ("outcome", pa.string()),
                ("value", pa.string()),
                ("score", pa.float64()),
            ]
        )

    def write(self, batch: Sequence[InferenceRecord], feedback: Sequence[Feedback] = ()) -> None:
        self.pending.extend(record_row(r) for r in batch)
        self.pending_fb.extend(feedback_row(f) for f in feedback)
        self.flushes += 1
        if self.flushes % self.per == 0:
            self.close()

    def close(self) -> None:
        if self.pending_fb:
            self._file(self.pending_fb, self.fb_schema, "feedback")
            self.pending_fb = []
        if self.pending:
            by_hour: dict[str, list[dict[str, Any]]] = {}
            for row in self.pending:
                moment = datetime.fromtimestamp(row["ts"], UTC)
                by_hour.setdefault(f"dt={moment:%Y-%m-%d}/hour={moment:%H}", []).append(row)
            for part, rows in by_hour.items():
                self._file(rows, self.schema, f"records/{part}")
            self.pending = []

    def _file(self, rows: list[dict[str, Any]], schema: Any, where: str) -> None:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        table = pa.table({name: [r[name] for r in rows] for name in schema.names}, schema=schema)
        folder = self.root / where
        folder.mkdir(parents=True, exist_ok=True)
        self.seq += 1
        pq.write_table(table, folder / f"part-{self.seq:07d}.parquet", compression="zstd")
        self.files += 1


# -- DuckDB queries over the segments ---------------------------------------------------------
def duck(root: Path) -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW r AS SELECT * FROM read_parquet('{root}/records/**/*.parquet', "
        "hive_partitioning = true)"
    )
    con.execute(f"CREATE VIEW f AS SELECT * FROM read_parquet('{root}/feedback/*.parquet')")
    return con


def duck_summary(con: Any, since: float) -> list[tuple[Any, ...]]:
    return con.execute(
        """
        WITH w AS (SELECT * FROM r WHERE environment = 'default' AND endpoint = 'fraud'
                   AND ts >= ?),
        fb AS (SELECT w.variant, count(*) AS n, avg(f.score) AS mean,
                      count(DISTINCT CASE WHEN f.score > 0 THEN f.request_id END) AS ok
               FROM w JOIN f ON f.request_id = w.request_id AND f.endpoint = w.endpoint
                             AND f.environment = w.environment
               WHERE w.variant <> 'shadow' GROUP BY w.variant)
        SELECT w.variant, count(*), sum(CASE WHEN status >= 500 THEN 1 ELSE 0 END),
               sum(CASE WHEN status BETWEEN 400 AND 499 THEN 1 ELSE 0 END),
               quantile_disc(latency_ms, [0.5, 0.95, 0.99]), sum(cost_usd),
               sum(input_tokens), sum(output_tokens), sum(CASE WHEN cache_hit THEN 1 ELSE 0 END),
               any_value(fb.n), any_value(fb.mean), any_value(fb.ok)
        FROM w LEFT JOIN fb ON fb.variant = w.variant GROUP BY w.variant ORDER BY w.variant
        """,
        [since],
    ).fetchall()


def duck_histogram(con: Any, since: float) -> list[tuple[Any, ...]]:
    bins = " + ".join(f"(CASE WHEN v >= {e} THEN 1 ELSE 0 END)" for e in EDGES)
    return con.execute(
        f"""
        WITH v AS (SELECT unnest(json_extract(inputs, '$[*].f0'))::DOUBLE AS v
                   FROM r WHERE environment = 'default' AND endpoint = 'fraud' AND ts >= ?
                   AND inputs IS NOT NULL)
        SELECT CASE WHEN v IS NULL THEN NULL ELSE {bins} END AS k, count(*) FROM v GROUP BY k
        """,
        [since],
    ).fetchall()


def duck_spend(con: Any, since: float) -> Any:
    return con.execute(
        "SELECT sum(cost_usd), sum(input_tokens), sum(output_tokens) FROM r "
        "WHERE environment = 'default' AND ts >= ?",
        [since],
    ).fetchone()


def duck_tail(con: Any) -> Any:
    return con.execute(
        "SELECT * FROM r WHERE environment = 'default' AND endpoint = 'fraud' "
        "ORDER BY ts DESC LIMIT 100"
    ).fetchall()


# -- the run ------------------------------------------------------------------------------------
def fresh_pg(base: str) -> str | None:
    try:
        import psycopg

        name = f"mlx_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return base.rsplit("/", 1)[0] + "/" + name
    except Exception as exc:
        print(f"(PostgreSQL skipped: {type(exc).__name__}: {str(exc).strip()[:80]})")
        return None


def drop_pg(base: str, url: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def fresh_sqlite(path: Path) -> LogStore:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return open_log(f"sqlite:///{path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows in the log (largest window)"
    )
    parser.add_argument("--windows", default="100000,1000000", help="query windows, in rows")
    parser.add_argument(
        "--write-rows", type=int, default=200_000, help="rows for the write-rate runs"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--pg",
        default=os.environ.get("MLX_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    out = ROOT / "bench" / "out" / "inference_log"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    figures: dict[str, Any] = {}

    # 1. writes --------------------------------------------------------------------------------
    sqlite = fresh_sqlite(out / "log.db")
    per_flush = ParquetSegments(out / "parquet-per-flush", per=1)
    compacted = ParquetSegments(out / "parquet-per-20", per=FILES_PER_COMPACT)
    pg_url = None if args.no_pg else fresh_pg(args.pg)
    pg = open_log(pg_url) if pg_url else None
    spent = {"sqlite": 0.0, "parquet/flush": 0.0, "parquet/20 flushes": 0.0, "postgresql": 0.0}
    spent_first = dict(spent)
    print(f"writing {args.rows:,} records in batches of {BATCH} …", flush=True)
    for start, n in chunks(args.rows, 50_000):
        chunk = records(start, n)
        for i in range(0, n, BATCH):
            batch = chunk[i : i + BATCH]
            fb = feedback_for(batch, start + i)
            targets: list[tuple[str, Any]] = [
                ("sqlite", sqlite),
                ("parquet/flush", per_flush),
                ("parquet/20 flushes", compacted),
            ]
            if pg is not None and start + i < args.write_rows:
                targets.append(("postgresql", pg))
            for name, target in targets:
                t = time.perf_counter()
                target.write(batch, fb)
                spent[name] += time.perf_counter() - t
            if start + i + BATCH >= args.write_rows and not spent_first["sqlite"]:
                spent_first = dict(spent)
    compacted.close()
    rates = {name: args.write_rows / s for name, s in spent_first.items() if s}
    rates_all = {
        name: args.rows / spent[name] for name in ("sqlite", "parquet/flush", "parquet/20 flushes")
    }
    figures["write_rows_per_s"] = {"first": rates, "all": rates_all, "rows_first": args.write_rows}
    figures["files"] = {"parquet/flush": per_flush.files, "parquet/20 flushes": compacted.files}
    figures["bytes"] = {
        "sqlite": sum(p.stat().st_size for p in out.glob("log.db*")),
        "parquet/flush": sum(
            p.stat().st_size for p in (out / "parquet-per-flush").rglob("*.parquet")
        ),
        "parquet/20 flushes": sum(
            p.stat().st_size for p in (out / "parquet-per-20").rglob("*.parquet")
        ),
    }
    if pg is not None:
        pg.close()

    # the whole writer path, and a request-id index
    n = args.write_rows
    sample = records(0, n, seed=9)
    store = fresh_sqlite(out / "writer.db")
    writer = LogWriter(store, max_pending=n + 1)
    t = time.perf_counter()
    for r in sample:
        writer.submit(r)
    submitted = time.perf_counter() - t
    writer.close(timeout=600)
    through = time.perf_counter() - t
    figures["writer"] = {"submit_us": submitted / n * 1e6, "rows_per_s": n / through}
    # the log's index on request_id (schema 2): random ids (what callers often send) against
    # the time-ordered ones the gateway makes (gateway.http.new_request_id), and no index
    ordered = [
        replace(r, request_id=f"{int((T0 + i / RATE) * 1000):012x}{r.request_id[:20]}")
        for i, r in enumerate(sample)
    ]
    index_cost = {}
    for name, rows, indexed in (
        ("without", sample, False),
        ("with", sample, True),
        ("with, time-ordered ids", ordered, True),
    ):
        target = fresh_sqlite(out / f"index-{len(index_cost)}.db")
        with target.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX IF EXISTS ix_mlx_inference_request")
            if indexed:
                conn.exec_driver_sql("CREATE INDEX ix_bench_request ON mlx_inference (request_id)")
        t = time.perf_counter()
        for i in range(0, n, BATCH):
            target.write(rows[i : i + BATCH])
        index_cost[name] = n / (time.perf_counter() - t)
    figures["request_id_index"] = index_cost

    # 2. queries ----------------------------------------------------------------------------
    end = T0 + args.rows / RATE
    cons = {"per-flush": duck(out / "parquet-per-flush"), "per-20": duck(out / "parquet-per-20")}
    q: dict[str, dict[str, float]] = {}

    def measure(label: str, fn: Callable[[], Any]) -> Any:
        seconds, result = best_of(args.repeat, fn)
        q[label] = {"s": seconds}
        print(f"  {label:<44} {seconds * 1000:9.1f} ms", flush=True)
        return result

    print(f"queries (best of {args.repeat}):")
    for w in windows:
        since = end - w / RATE
        s = measure(
            f"summary {w:,} sqlite",
            partial(query.variant_summary, sqlite, "fraud", since=since),
        )
        measure(
            f"summary {w:,} sqlite, no feedback join",
            partial(_summary_without_feedback, sqlite, since),
        )
        d = measure(
            f"summary {w:,} parquet/20 duckdb",
            partial(duck_summary, cons["per-20"], since),
        )
        measure(
            f"summary {w:,} parquet/flush duckdb",
            partial(duck_summary, cons["per-flush"], since),
        )
        _check_summary(s, d)
        measure(
            f"drift histogram {w:,} sqlite",
            partial(query.feature_counts, sqlite, "fraud", "f0", edges=EDGES, since=since),
        )
        measure(
            f"drift histogram {w:,} parquet/20 duckdb",
            partial(duck_histogram, cons["per-20"], since),
        )
        measure(f"spend {w:,} sqlite", partial(query.spend, sqlite, since=since))
        measure(f"spend {w:,} parquet/20 duckdb", partial(duck_spend, cons["per-20"], since))
    measure("tail 100 sqlite", lambda: query.tail(sqlite, "fraud", limit=100))
    measure("tail 100 parquet/20 duckdb", lambda: duck_tail(cons["per-20"]))
    measure("tail 100 parquet/flush duckdb", lambda: duck_tail(cons["per-flush"]))
    measure(
        "exact p50/p95/p99 sqlite (fetch + sort)",
        lambda: _exact_percentiles(sqlite, end - windows[-1] / RATE),
    )
    figures["queries"] = q

    # report --------------------------------------------------------------------------------
    print()
    mb = {k: v / 1e6 for k, v in figures["bytes"].items()}
    print(f"writes, rows/s (first {args.write_rows:,} rows; all {args.rows:,} in brackets):")
    for name, rate in rates.items():
        extra = f"  [{rates_all[name]:,.0f}]" if name in rates_all else ""
        print(f"  {name:<22} {rate:>10,.0f}{extra}")
    for name in ("parquet/flush", "parquet/20 flushes", "postgresql"):
        if name in rates:
            print(f"  {f'ratio {name} / sqlite':<34} {rates[name] / rates['sqlite']:.2f}")
    print(
        f"  files (records and feedback): {per_flush.files:,} (per flush) vs {compacted.files:,} "
        f"(per 20 flushes); MB: sqlite {mb['sqlite']:.0f}, parquet {mb['parquet/flush']:.0f} "
        f"(per flush), {mb['parquet/20 flushes']:.0f} (per 20)"
    )
    wr = figures["writer"]
    print(
        f"  LogWriter end to end: {wr['rows_per_s']:,.0f} rows/s; "
        f"submit() {wr['submit_us']:.2f} µs/record"
    )
    plain = index_cost["without"]
    print(
        f"  an index on request_id: {index_cost['with']:,.0f} vs {plain:,.0f} rows/s without "
        f"(ratio {index_cost['with'] / plain:.2f}); with time-ordered ids (the gateway's) "
        f"{index_cost['with, time-ordered ids']:,.0f} "
        f"(ratio {index_cost['with, time-ordered ids'] / plain:.2f})"
    )
    print("queries, ratio parquet (duckdb) / sqlite (below 1: parquet is faster):")
    for w in windows:
        for what, layout in (
            ("summary", "parquet/20"),
            ("summary", "parquet/flush"),
            ("drift histogram", "parquet/20"),
            ("spend", "parquet/20"),
        ):
            a, b = q[f"{what} {w:,} {layout} duckdb"]["s"], q[f"{what} {w:,} sqlite"]["s"]
            print(f"  {f'{what} {w:,} ({layout})':<44} {a / b:6.2f}")
    for layout in ("parquet/20", "parquet/flush"):
        a, b = q[f"tail 100 {layout} duckdb"]["s"], q["tail 100 sqlite"]["s"]
        print(f"  {f'tail 100 ({layout})':<44} {a / b:6.2f}")
    if args.json:
        print(json.dumps(figures, indent=2))
    if pg_url:
        drop_pg(args.pg, pg_url)


def _summary_without_feedback(store: LogStore, since: float) -> Any:
    """``variant_summary`` with its feedback join left out (what an endpoint without
    feedback costs): the same grouped query, run directly."""
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT variant, latency_bucket, count(*), sum(status >= 500), sum(cost_usd), "
                "min(latency_ms), max(latency_ms) FROM mlx_inference WHERE environment = 'default' "
                "AND endpoint = 'fraud' AND ts >= :since GROUP BY variant, latency_bucket"
            ),
            {"since": since},
        ).all()


def _exact_percentiles(store: LogStore, since: float) -> dict[str, list[float]]:
    import math

    from sqlalchemy import text

    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT variant, latency_ms FROM mlx_inference WHERE environment = 'default' "
                "AND endpoint = 'fraud' AND ts >= :since"
            ),
            {"since": since},
        ).all()
    by: dict[str, list[float]] = {}
    for variant, latency in rows:
        by.setdefault(variant, []).append(latency)
    out = {}
    for variant, xs in by.items():
        xs.sort()
        out[variant] = [xs[max(1, math.ceil(q * len(xs) - 1e-9)) - 1] for q in (0.5, 0.95, 0.99)]
    return out


def _check_summary(sqlite: dict[str, query.VariantSummary], duck: list[tuple[Any, ...]]) -> None:
    """Both stores must answer the same question: counts equal, percentiles within 1 %."""
    for row in duck:
        s = sqlite[row[0]]
        same = (s.requests, s.server_errors, s.client_errors, s.feedback, s.successes) == (
            row[1], row[2], row[3], row[9] or 0, row[11] or 0,
        )  # fmt: skip
        close = all(
            abs(a - b) / b <= 0.0101
            for a, b in zip(
                (s.latency_p50_ms, s.latency_p95_ms, s.latency_p99_ms), row[4], strict=True
            )
            if a is not None
        )
        if not (same and close):
            print(f"  ANOMALY: sqlite and duckdb disagree on {row[0]}: {s} vs {row}")


if __name__ == "__main__":
    main()
