"""Record shapes, feedback validation and scores, latency buckets, --since parsing."""

from __future__ import annotations

import json
import math
import random

import pytest

from inference import buckets
from inference.records import FIELDS, Feedback, FeedbackError, InferenceRecord, iso, score_of
from inference.times import parse_since

SPEC_FIELDS = [
    "request_id", "ts", "endpoint", "variant", "subject", "version", "fingerprint",
    "prompt_version", "retrieval_version", "status", "latency_ms", "input_tokens",
    "output_tokens", "cost_usd", "cache_hit", "key_hash", "inputs", "outputs", "error",
    "client_request_id", "ttft_ms",  # SPEC.md's added fields
    "cached_input_tokens", "price_source",  # SPEC.md's added fields (issue 22)
    # the price applied and the models: what `mlx logs --reprice` prices again
    "price_input_per_1m", "price_output_per_1m", "price_cached_input_per_1m",
    "model", "requested_model",
]  # fmt: skip


def test_record_has_exactly_the_spec_fields_plus_environment() -> None:
    assert list(FIELDS) == SPEC_FIELDS
    r = InferenceRecord(
        request_id="r1", ts=1767225600.25, endpoint="fraud", variant="stable", status=200,
        latency_ms=3.5, inputs=[{"a": 1}],
    )  # fmt: skip
    out = r.to_json()
    assert list(out) == [*SPEC_FIELDS, "environment"]
    assert out["ts"] == "2026-01-01T00:00:00.250000Z"
    assert out["environment"] == "default" and out["inputs"] == [{"a": 1}]
    json.dumps(out)  # JSON-ready


def test_iso_is_utc() -> None:
    assert iso(0.0) == "1970-01-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("label", "outcome", "value", "score"),
    [
        (None, None, 0.25, 0.25),
        (None, None, True, 1.0),
        (None, False, None, 0.0),
        ("good", None, None, None),
        (1, None, None, 1.0),
        ("good", 3, None, 3.0),  # outcome is numeric, label is not
        (5, 0, None, 0.0),  # outcome before label
        (None, 7, "x", 7.0),  # a non-numeric value falls through to outcome
        (None, None, math.nan, None),
    ],
)
def test_score_of(label: object, outcome: object, value: object, score: float | None) -> None:
    assert score_of(label, outcome, value) == score


def test_feedback_from_body() -> None:
    fb = Feedback.from_body("fraud", {"request_id": "r1", "outcome": True}, environment="prod")
    assert (fb.request_id, fb.endpoint, fb.environment, fb.outcome, fb.score) == (
        "r1",
        "fraud",
        "prod",
        True,
        1.0,
    )
    assert fb.to_json()["score"] == 1.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1], "must be a JSON object, got list"),
        ({"request_id": "r1"}, "one of label, outcome, value is required"),
        ({"label": 1}, "request_id must be a non-empty string"),
        ({"request_id": 5, "label": 1}, "request_id must be a non-empty string"),
        ({"request_id": "r1", "lable": 1}, "unknown field(s) lable"),
    ],
)
def test_feedback_body_errors(body: object, message: str) -> None:
    with pytest.raises(FeedbackError) as err:
        Feedback.from_body("fraud", body)
    assert message in str(err.value) and "'fraud'" in str(err.value)


def test_buckets_bound_the_relative_error() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        x = math.exp(rnd.uniform(math.log(0.002), math.log(5e6)))
        b = buckets.bucket_of(x)
        assert buckets.GAMMA ** (b - 1) < x <= buckets.GAMMA**b * (1 + 1e-12)
        assert abs(buckets.representative(b) - x) / x <= buckets.ALPHA + 1e-12
    assert buckets.bucket_of(0.0) == buckets.bucket_of(-1.0) == buckets.ZERO_BUCKET
    assert buckets.bucket_of(math.nan) == buckets.ZERO_BUCKET
    assert buckets.bucket_of(1e12) == buckets.MAX_BUCKET


def test_percentiles_from_bins_match_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 1001)]
    bins: dict[int, list[float]] = {}
    for x in xs:
        bins.setdefault(buckets.bucket_of(x), []).append(x)
    got = buckets.percentiles(
        [buckets.Bin(b, len(v), min(v), max(v)) for b, v in bins.items()], (0.5, 0.95, 0.99, 1.0)
    )
    for estimate, exact in zip(got, (500.0, 950.0, 990.0, 1000.0), strict=True):
        assert estimate is not None and abs(estimate - exact) / exact <= buckets.ALPHA
    assert got[-1] == 1000.0  # the last value of the last bin: exact
    assert buckets.percentiles([], (0.5,)) == [None]


def test_durations_and_times() -> None:
    """The durations are ``common.durations``' (tests/unit/test_durations.py has the grammar)."""
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("1h30m", now=6000.0) == 600.0 and parse_since(" 2H ", now=7200.0) == 0.0
    assert parse_since("500ms", now=1000.0) == 999.5
    assert parse_since("2026-01-01T00:00:00Z") == 1767225600.0
    assert parse_since("2026-01-01") == 1767225600.0  # no offset: UTC
    assert parse_since("2026-01-01T02:00:00+02:00") == 1767225600.0
    for text in ("yesterday", "10", "m", "10 m", "2026-13-01"):
        with pytest.raises(ValueError, match="neither a duration"):
            parse_since(text)
