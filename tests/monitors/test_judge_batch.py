"""A batch data-drift run end to end below the CLI: a reference CSV profiled once (DuckDB),
a current CSV counted by DuckDB into its bins, judged per feature and as a dataset."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from inference.drift_bins import SliceCounts, bins_from_profile
from inference.drift_files import file_counts
from providers.monitor.judge import ERROR, FIRING, NO_DATA, OK, error, judge_run
from providers.monitor.reference import ReferenceError, ensure_profile, load_profile

FEATURES = ["a", "b", "c", "d", "e"]


def _write(path: Path, rows: int, seed: int, shift: dict[str, float]) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow([*FEATURES, "label"])
        for _ in range(rows):
            w.writerow(
                [round(rng.gauss(shift.get(f, 0.0), 1.0), 6) for f in FEATURES]
                + [rng.randint(0, 1)]
            )
    return path


def _run(tmp_path: Path, current: Path):  # type: ignore[no-untyped-def]
    ref = _write(tmp_path / "ref.csv", 3000, 1, {})
    path, built = ensure_profile(tmp_path / ".mlx", "sha256:ref", ref, label="label")
    assert built
    profile = load_profile(path)
    window = file_counts(current, bins_from_profile(profile.as_dict()))
    return profile, judge_run(window, profile)


def test_two_of_five_shifted_fires_and_names_them(tmp_path: Path) -> None:
    cur = _write(tmp_path / "cur.csv", 3000, 2, {"a": 1.0, "c": 1.0})
    profile, result = _run(tmp_path, cur)
    assert set(profile.features) == set(FEATURES)  # every column but the label
    # the monitor fires on any drifted feature; the dataset verdict (share 0.4 < 0.5) is
    # reported with it
    assert result.state == FIRING
    assert result.whole is not None
    assert set(result.whole.dataset.drifted_features) == {"a", "c"}
    assert result.whole.dataset.share == pytest.approx(0.4)
    assert result.whole.dataset.state.value == "ok"
    effects = {n: vs[0].effect for n, vs in result.whole.features.items()}
    assert all(effects[n] is not None and effects[n] > 0.5 for n in ("a", "c"))
    assert all(effects[n] is not None and effects[n] < 0.1 for n in ("b", "d", "e"))


def test_no_shift_is_ok(tmp_path: Path) -> None:
    cur = _write(tmp_path / "cur.csv", 3000, 2, {})
    _, result = _run(tmp_path, cur)
    assert result.state == OK
    assert result.whole is not None and result.whole.dataset.drifted_features == ()


def test_profile_is_built_once_per_fingerprint(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.csv", 500, 1, {})
    first, built = ensure_profile(tmp_path, "sha256:x", ref, label="label")
    ref.write_text("garbage that would fail to profile\n")
    again, rebuilt = ensure_profile(tmp_path, "sha256:x", ref, label="label")
    assert (first, built, rebuilt) == (again, True, False)


def test_empty_window_is_no_data_and_never_ok(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.csv", 500, 1, {})
    profile = load_profile(ensure_profile(tmp_path, "sha256:y", ref, label="label")[0])
    assert judge_run({}, profile).state == NO_DATA
    assert judge_run({("v1", "3"): SliceCounts()}, profile).state == NO_DATA


def test_a_column_gone_empty_is_a_missing_rate_finding(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.csv", 1000, 1, {})
    cur = tmp_path / "cur.csv"
    lines = ref.read_text().splitlines()
    with cur.open("w") as out:
        out.write(lines[0] + "\n")
        for line in lines[1:]:
            cells = line.split(",")
            cells[1] = ""  # b empty
            out.write(",".join(cells) + "\n")
    profile = load_profile(ensure_profile(tmp_path, "sha256:z", ref, label="label")[0])
    result = judge_run(file_counts(cur, bins_from_profile(profile.as_dict())), profile)
    assert result.whole is not None
    b = result.whole.features["b"]
    assert b[0].state.value == "no_data" and b[1].drifted and b[1].statistic == 1.0
    assert result.whole.dataset.drifted_features == ("b",)


def test_unreadable_reference_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError, match="cannot read the reference"):
        ensure_profile(tmp_path, "sha256:q", tmp_path / "absent.csv")
    with pytest.raises(ReferenceError, match="no column 'zz'"):
        ensure_profile(tmp_path, "sha256:q", _write(tmp_path / "r.csv", 10, 1, {}), ["zz"])
    assert error("x").state == ERROR
