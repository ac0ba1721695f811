"""The client-error comparison every analysis makes (issue 18, item 1): a candidate that
refuses what stable accepts — 4xx where stable answers 200 — is failing, whatever its 5xx
count. Judged like any ``max_drop`` on a share: Newcombe's interval of the difference must
lie wholly above the tolerance to fail; a caller who hung up (499) counts for nobody."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analysis.base import AnalysisError, Verdict
from analysis.canary import VariantStats, judge_canary
from analysis.runs import run_verdict
from analysis.shadow import Pair, judge_shadow, summarize
from specs.rollouts import DEFAULT_CLIENT_ERROR_DROP, Analysis

PASS, FAIL, INCONCLUSIVE = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
METRIC = "client_error_rate"


def analysis(**fields: Any) -> Analysis:
    """What a user writes: the comparison is there without being configured."""
    return Analysis.model_validate(fields)


def stats(requests: int, client: int = 0, server: int = 0) -> VariantStats:
    return VariantStats(requests, server, latency_p95_ms=20.0, client_errors=client)


def client_measurement(candidate: VariantStats, stable: VariantStats, spec: Analysis) -> Any:
    found = [m for m in judge_canary(candidate, stable, spec) if m.metric == METRIC]
    assert len(found) <= 1
    return found[0] if found else None


def test_every_analysis_compares_client_errors_by_default() -> None:
    spec = analysis(error_rate={"max": 0.01})
    assert spec.client_error_rate is not None
    assert spec.client_error_rate.max_drop == DEFAULT_CLIENT_ERROR_DROP == 0.01
    assert (spec.client_error_rate.min, spec.client_error_rate.max) == (None, None)


TABLE = [
    # (candidate (requests, 4xx), stable (requests, 4xx), spec fields, verdict)
    # a candidate that refuses everything stable accepts
    ((200, 200), (1800, 0), {}, FAIL),
    # ... even on little traffic, once both sides have min_requests
    ((20, 20), (180, 0), {"min_requests": 20}, FAIL),
    # the same share as stable (callers sending bad requests hit both alike)
    ((200, 10), (1800, 90), {}, PASS),
    # a lower share never fails
    ((200, 0), (1800, 90), {}, PASS),
    # exactly the tolerance above stable passes (1.5% vs 0.5%: +0.01)
    ((2000, 30), (2000, 10), {}, PASS),
    # above it, but the interval of the difference reaches back below it: not yet shown
    ((200, 6), (1800, 9), {}, INCONCLUSIVE),
    # the same shares on much more traffic: shown
    ((20000, 600), (180000, 900), {}, FAIL),
    # a tolerance the user chose
    ((2000, 200), (2000, 0), {"client_error_rate": {"max_drop": 0.2}}, PASS),
    ((2000, 600), (2000, 0), {"client_error_rate": {"max_drop": 0.2}}, FAIL),
    # too little data on either side: no data is not a pass
    ((50, 0), (1800, 0), {}, INCONCLUSIVE),
    ((200, 0), (50, 0), {}, INCONCLUSIVE),
    # an absolute bound judges the candidate alone
    ((2000, 300), (0, 0), {"client_error_rate": {"max": 0.05}}, FAIL),
]


@pytest.mark.parametrize(("candidate", "stable", "fields", "expected"), TABLE)
def test_the_candidates_client_error_share_against_stables(
    candidate: tuple[int, int], stable: tuple[int, int], fields: dict[str, Any], expected: Verdict
) -> None:
    got = client_measurement(stats(*candidate), stats(*stable), analysis(**fields))
    assert got is not None and got.verdict is expected, got
    if got.candidate is not None:
        assert got.candidate == candidate[1] / candidate[0]


def test_failing_reason_names_both_shares_and_the_interval() -> None:
    got = client_measurement(stats(200, 200), stats(1800, 0), analysis())
    assert got.reason == (
        "client_error_rate worse than stable by 1 (200/200 against stable 0/1800, "
        "difference 95% interval [0.981, 1]) breaches max_drop 0.01"
    ), got.reason
    low, high = got.interval
    assert 0.01 < low <= high <= 1.0


def test_without_stable_traffic_there_is_nothing_to_compare_with() -> None:
    """Stable served nothing in the window (all traffic on the candidate, or a quiet
    window): the relative comparison is not judged; the other measurements decide."""
    assert client_measurement(stats(200, 200), stats(0), analysis()) is None


def test_a_candidate_with_no_5xx_that_refuses_everything_fails_the_look() -> None:
    """The issue's case: error_rate counts 0 server errors ("0/110 … within max 0.05"),
    yet every answer is a 400."""
    spec = analysis(error_rate={"max": 0.05}, min_requests=50)
    measurements = judge_canary(stats(110, 110), stats(990, 1), spec)
    by_metric = {m.metric: m.verdict for m in measurements}
    assert by_metric == {"error_rate": PASS, METRIC: FAIL}
    assert run_verdict(measurements) is FAIL


def test_null_is_not_a_way_to_switch_it_off() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Analysis.model_validate({"client_error_rate": None})


def test_a_custom_metric_cannot_take_its_name() -> None:
    with pytest.raises(AnalysisError, match="client_error_rate is built in"):
        judge_canary(stats(100), stats(100), analysis(metrics={METRIC: {"min": 0.5}}))


# -- shadow: the same requests, answered by both ---------------------------------------
def _pairs(n: int, shadow_status: int, primary_status: int = 200) -> list[Pair]:
    return [Pair(primary_status, shadow_status, 10.0, 10.0) for _ in range(n)]


def test_a_shadow_that_refuses_what_the_primary_accepts_fails() -> None:
    measurements = judge_shadow(summarize(_pairs(200, 400)), analysis(min_requests=100))
    (got,) = measurements
    assert (got.metric, got.verdict, got.candidate, got.stable) == (METRIC, FAIL, 1.0, 0.0)


def test_a_shadow_refusing_what_the_primary_refuses_passes() -> None:
    pairs = _pairs(190, 200) + _pairs(10, 422, primary_status=422)
    (got,) = judge_shadow(summarize(pairs), analysis(min_requests=100))
    assert got.verdict is PASS and got.candidate == got.stable == 10 / 200


def test_a_caller_who_hung_up_is_nobodys_client_error() -> None:
    stats_ = summarize(_pairs(150, 200, primary_status=499))
    assert (stats_.primary_client_errors, stats_.shadow_client_errors) == (0, 0)


# -- from the inference log -------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/log.db"
    return str(request.getfixturevalue("pg_url"))


def test_the_log_summary_counts_4xx_but_not_499(log_url: str) -> None:
    """What the controller reads: 4xx per variant, 499 in neither count, and the
    analysis's request count is the answers given (the same SQL on both databases)."""
    from contract import Role
    from inference.records import InferenceRecord
    from inference.store import open_log
    from providers.gateway.metrics import role_metrics

    store = open_log(log_url)
    statuses = {"stable": [200] * 90 + [400] * 5 + [499] * 5, "candidate": [400] * 8 + [499] * 2}
    records = [
        InferenceRecord(
            request_id=f"{variant}-{i}",
            ts=1000.0 + i,
            endpoint="m",
            variant=variant,
            status=status,
            latency_ms=5.0,
        )
        for variant, codes in statuses.items()
        for i, status in enumerate(codes)
    ]
    try:
        store.write(records, [])
        from inference.query import variant_summary

        summary = variant_summary(store, "m", since=0, until=2000)
        assert (summary["stable"].requests, summary["stable"].client_errors) == (95, 5)
        assert summary["stable"].abandoned == 5 and summary["stable"].server_errors == 0
        metrics = role_metrics(store, "m", "default", 0, 2000)
    finally:
        store.close()
    assert (metrics[Role.STABLE].requests, metrics[Role.STABLE].client_errors) == (95, 5)
    assert (metrics[Role.CANDIDATE].requests, metrics[Role.CANDIDATE].client_errors) == (8, 8)
