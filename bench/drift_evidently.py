"""Evidently's side of bench/drift.py: run by the benchmark's own virtual environment
(``build/evidently-venv``), never by mlx's, and importing nothing of mlx.

``python bench/drift_evidently.py REFERENCE.parquet CURRENT.parquet METHOD THRESHOLD``: reads
both files into pandas, runs a ``Report`` with ``DataDriftPreset(num_method=METHOD,
num_threshold=THRESHOLD)`` (every column numeric), and prints one JSON line: the seconds to
load and to run the report, and per column Evidently's drift score and its own verdict (its
"Value Drift for column …" test failed = drift).
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    reference_path, current_path, method, threshold = sys.argv[1:5]
    t0 = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter() - t0
    t = time.perf_counter()
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    loaded = time.perf_counter() - t
    columns = list(reference.columns)
    definition = DataDefinition(numerical_columns=columns)
    t = time.perf_counter()
    report = Report(
        [DataDriftPreset(num_method=method, num_threshold=float(threshold))],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    doc = json.loads(snapshot.json())
    ran = time.perf_counter() - t
    scores: dict[str, float] = {}
    for metric in doc["metrics"]:
        config = metric.get("config", {})
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            scores[config["column"]] = float(metric["value"])
    drifted: dict[str, bool] = {}
    for test in doc["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == "evidently:metric_v2:ValueDrift":
            drifted[params["column"]] = test["status"] != "SUCCESS"
    import evidently

    print(
        json.dumps(
            {
                "version": evidently.__version__,
                "import_s": imported,
                "load_s": loaded,
                "report_s": ran,
                "rows": [len(reference), len(current)],
                "scores": scores,
                "drifted": drifted,
            }
        )
    )


if __name__ == "__main__":
    main()
