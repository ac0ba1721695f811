"""A live data-drift run over a real SQLite inference log written through the real LogWriter:
the traffic of one variant shifts, and the drift is attributed to that (variant, version)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from inference.drift_bins import bins_from_profile
from inference.drift_counts import window_counts
from inference.records import InferenceRecord
from inference.store import open_log
from inference.writer import LogWriter
from providers.monitor.judge import FIRING, NO_DATA, judge_run
from providers.monitor.reference import ensure_profile, load_profile

T0 = 1_767_225_600.0


def _reference(path: Path) -> Path:
    rng = random.Random(1)
    with path.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["a", "b"])
        for _ in range(2000):
            w.writerow([rng.gauss(0, 1), rng.gauss(5, 2)])
    return path


def _records(variant: str, version: str, shift: float, n: int, seed: int) -> list[InferenceRecord]:
    rng = random.Random(seed)
    return [
        InferenceRecord(
            request_id=f"{variant}-{i}",
            ts=T0 + i,
            endpoint="fraud",
            variant=variant,
            subject="models.fraud",
            version=version,
            status=200,
            latency_ms=5.0,
            inputs={"dataframe_records": [{"a": rng.gauss(shift, 1), "b": rng.gauss(5, 2)}]},
        )
        for i in range(n)
    ]


def test_drift_is_attributed_to_the_variant_that_shifted(tmp_path: Path) -> None:
    profile = load_profile(
        ensure_profile(tmp_path / ".mlx", "sha256:ref", _reference(tmp_path / "ref.csv"))[0]
    )
    store = open_log(f"sqlite:///{tmp_path / 'log' / 'inference.db'}")
    try:
        writer = LogWriter(store, flush_interval=0.01)
        for r in _records("stable", "1", 0.0, 900, 2) + _records("candidate", "2", 1.5, 500, 3):
            assert writer.submit(r) > 0
        assert writer.close()
        bins = bins_from_profile(profile.as_dict())
        result = judge_run(window_counts(store, "fraud", bins, since=T0), profile)
        empty = judge_run(window_counts(store, "fraud", bins, since=T0 + 10_000), profile)
    finally:
        store.close()
    assert result.state == FIRING
    assert [(s.variant, s.version) for s in result.drifted_slices] == [("candidate", "2")]
    by_slice = {(s.variant, s.version): s for s in result.slices}
    assert by_slice[("candidate", "2")].dataset.drifted_features == ("a",)
    assert by_slice[("candidate", "2")].requests == 500
    assert by_slice[("stable", "1")].dataset.drifted_features == ()
    assert by_slice[("stable", "1")].requests == 900
    assert empty.state == NO_DATA  # a window with no traffic: never ok
