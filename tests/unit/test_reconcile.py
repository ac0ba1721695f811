"""The rollout controller's pure step (controller/reconcile.py), table-driven: state,
observation and clock in; the next state and what to do to the world out.

Every behaviour of issue 18's items 5-9 is decided here, so it is tested here — each
table row is one branch — plus the few lines of controller/rollouts/drive.py that carry
an outcome out through the pass harness (traffic re-asserted, the window a look reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from analysis.canary import VariantStats
from contract import Traffic
from controller import reconcile
from controller.reconcile import Observation, Outcome, advance, start
from controller.state import KEEP_RELEASED, Phase, RolloutState, Waiting
from specs.rollouts import Rollout

T0 = 1_000_000.0
MIN = 60.0
V1 = {"version": 1, "fingerprint": "sha256:one", "uri": "local://models/m/1"}
V2 = {"version": 2, "fingerprint": "sha256:two", "uri": "local://models/m/2"}
V3 = {"version": 3, "fingerprint": "sha256:three", "uri": "local://models/m/3"}


def rollout(**over: Any) -> Rollout:
    """10% for 10m, 50% for 10m, then 100%; judged on error rate (20 requests per side)."""
    body: dict[str, Any] = {
        "owner": "team-ml",
        "subject": "models.m",
        "endpoint": "endpoints.m",
        "alias": "production",
        "strategy": "canary",
        "steps": [{"weight": 10, "pause": "10m"}, {"weight": 50, "pause": "10m"}, {"weight": 100}],
        "analysis": {"error_rate": {"max": 0.05}, "min_requests": 20},
        "timeout": "2h",
    }
    body.update(over)
    return Rollout.model_validate({k: v for k, v in body.items() if v is not None})


SPEC = rollout()


def stats(requests: int, errors: int = 0, client: int = 0) -> VariantStats:
    return VariantStats(requests, errors, latency_p95_ms=20.0, client_errors=client)


HEALTHY = {"stable": stats(900), "candidate": stats(100)}
FAILING = {"stable": stats(900), "candidate": stats(100, errors=40)}
REFUSING = {"stable": stats(900), "candidate": stats(100, client=100)}  # item 1
TOO_FEW = {"stable": stats(900), "candidate": stats(5)}


def started(spec: Rollout = SPEC, at: float = T0) -> RolloutState:
    """A canary of v2 against stable v1, at its first step (weight 10, pause until +10m)."""
    out = start("rollouts.m", spec, dict(V1), dict(V2), at)
    assert out.state.phase is Phase.PROGRESSING and out.state.weight == 10
    return out.state


def at_step_two(spec: Rollout = SPEC) -> RolloutState:
    """The state recorded once step 1 passed: weight 50, its pause running until +20m."""
    out = advance(spec, started(spec), Observation(T0 + 10 * MIN, metrics=HEALTHY))
    assert out.state.weight == 50, out.events
    return out.state


def paused(waiting: Waiting, spec: Rollout = SPEC) -> RolloutState:
    """A rollout at step 1 paused for ``waiting``."""
    return replace(started(spec), phase=Phase.PAUSED, waiting=waiting, message="paused: …")


def split(weight: int) -> Traffic:
    return Traffic("v1", "v2", weight, 0)


# -- item 5: the end of a pause advances only on a passed analysis ---------------------
END_OF_PAUSE = [
    # (id, observation at the end of step 1's pause, weight, phase, waiting, tally)
    ("passed", Observation(T0 + 600, metrics=HEALTHY), 50, Phase.PROGRESSING, None, "passed"),
    (
        "metrics unreadable",
        Observation(T0 + 600, error="cannot read the inference log: database is locked"),
        10,
        Phase.PROGRESSING,
        None,
        "errors",
    ),
    ("no error text", Observation(T0 + 600), 10, Phase.PROGRESSING, None, "errors"),
    ("no traffic at all", Observation(T0 + 600, metrics={}), 10, Phase.PAUSED,
     Waiting.INCONCLUSIVE, "inconclusive"),
    ("too little traffic", Observation(T0 + 600, metrics=TOO_FEW), 10, Phase.PAUSED,
     Waiting.INCONCLUSIVE, "inconclusive"),
    ("failing", Observation(T0 + 600, metrics=FAILING), 0, Phase.ABORTED, None, "failed"),
    ("refusing (4xx only)", Observation(T0 + 600, metrics=REFUSING), 0, Phase.ABORTED, None,
     "failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("obs", "weight", "phase", "waiting", "counted"),
    [row[1:] for row in END_OF_PAUSE],
    ids=[row[0] for row in END_OF_PAUSE],
)
def test_the_end_of_a_pause_moves_on_only_on_a_passed_analysis(
    obs: Observation, weight: int, phase: Phase, waiting: Waiting | None, counted: str
) -> None:
    out = advance(SPEC, started(), obs)
    assert (out.state.weight, out.state.phase, out.state.waiting) == (weight, phase, waiting)
    assert out.state.tally[counted] == 1
    assert sum(out.state.tally[k] for k in ("passed", "failed", "inconclusive", "errors")) == 1
    look = out.state.looks[-1]
    assert look["from"] == T0 and look["at"] == T0 + 600


def test_an_unreadable_look_is_an_error_and_the_step_waits_another_pause() -> None:
    out = advance(SPEC, started(), Observation(T0 + 600, error="log unreachable"))
    assert out.state.looks[-1]["verdict"] == "error"
    assert out.state.tally["consecutive_errors"] == 1
    assert out.state.pause_until == T0 + 1200  # looks again after the same pause
    assert out.events == ["step 1: analysis could not be taken: log unreachable"]
    assert out.due_at == T0 + 1200


@pytest.mark.parametrize(("limit", "aborts_after"), [(4, 5), (1, 2), (0, 1)])
def test_consecutive_errors_past_the_limit_abort(limit: int, aborts_after: int) -> None:
    """Argo's consecutiveErrorLimit (default 4): the 5th error in a row aborts."""
    analysis = {"error_rate": {"max": 0.05}, "min_requests": 20}
    if limit != 4:
        analysis["consecutive_error_limit"] = limit
    spec = rollout(analysis=analysis)
    state, now = started(spec), T0
    for look in range(1, aborts_after + 1):
        now = state.pause_until
        assert now is not None
        out = advance(spec, state, Observation(now, error="log unreachable"))
        state = out.state
        if look < aborts_after:
            assert state.phase is Phase.PROGRESSING and state.weight == 10, look
    assert state.phase is Phase.ABORTED and state.tally["errors"] == aborts_after
    assert "consecutive_error_limit" in state.message
    assert out.traffic == Traffic("v1") and out.retire == ["v2"]


def test_a_look_that_is_taken_ends_a_streak_of_errors() -> None:
    state = started()
    for _ in range(4):
        state = advance(SPEC, state, Observation(state.pause_until or 0, error="down")).state
    state = advance(SPEC, state, Observation(state.pause_until or 0, metrics=HEALTHY)).state
    assert state.weight == 50 and state.tally["consecutive_errors"] == 0
    assert state.tally["errors"] == 4 and state.tally["passed"] == 1


def test_an_analysis_with_nothing_to_measure_is_not_a_pass() -> None:
    """An `analysis:` whose only settings are limits, and no stable traffic: nothing was
    judged, and no data is not a pass."""
    spec = rollout(analysis={"min_requests": 20})
    out = advance(spec, started(spec), Observation(T0 + 600, metrics={}))
    assert out.state.phase is Phase.PAUSED and out.state.waiting is Waiting.INCONCLUSIVE
    assert "nothing could be measured" in out.state.message


def test_an_analysis_that_cannot_be_computed_is_an_error() -> None:
    """Statistics the judgement refuses (two feedback metrics, one feedback mean)."""
    spec = rollout(analysis={"metrics": {"a": {"min": 0.5}, "b": {"min": 0.5}}})
    out = advance(spec, started(spec), Observation(T0 + 600, metrics=HEALTHY))
    assert out.state.looks[-1]["verdict"] == "error" and out.state.weight == 10
    assert out.state.tally["errors"] == 1


def test_on_failure_pause_holds_the_weights_for_a_person() -> None:
    spec = rollout(on_failure="pause")
    out = advance(spec, started(spec), Observation(T0 + 600, metrics=FAILING))
    assert (out.state.phase, out.state.waiting) == (Phase.PAUSED, Waiting.FAILURE)
    assert out.traffic == split(10) and out.retire == []
    assert out.alert is not None and out.alert.severity == "warning"


def test_a_canary_without_analysis_moves_on_when_its_pause_ends() -> None:
    """No `analysis:` is a time-based canary (Argo's steps without an AnalysisTemplate)."""
    spec = rollout(analysis=None)
    out = advance(spec, started(spec), Observation(T0 + 600))
    assert out.state.weight == 50 and out.state.looks == []


def test_an_interval_look_due_with_the_end_of_the_pause_does_not_pre_empt_it() -> None:
    """pause 20m, a look every 10m: at 20m the end-of-pause analysis is taken (and moves
    on), not an interval look followed by a judgement of an empty window."""
    spec = rollout(
        steps=[{"weight": 10, "pause": "20m"}, {"weight": 100}],
        analysis={"error_rate": {"max": 0.05}, "min_requests": 20, "interval": "10m"},
    )
    state = started(spec)
    first = advance(spec, state, Observation(T0 + 10 * MIN, metrics=HEALTHY))
    assert first.state.weight == 10 and first.state.next_look_at == T0 + 20 * MIN
    second = advance(spec, first.state, Observation(T0 + 20 * MIN, metrics=HEALTHY))
    assert second.state.phase is Phase.COMPLETED, second.events


# -- item 6: every pass re-asserts the recorded weights --------------------------------
def _recorded_states() -> list[tuple[str, RolloutState, Observation, Traffic]]:
    two = at_step_two()
    done = advance(SPEC, two, Observation(T0 + 20 * MIN, metrics=HEALTHY)).state
    aborted = advance(SPEC, started(), Observation(T0 + 600, metrics=FAILING)).state
    return [
        ("mid-pause, nothing due", two, Observation(T0 + 11 * MIN), split(50)),
        ("paused for promote", paused(Waiting.PROMOTE), Observation(T0 + 3 * 3600), split(10)),
        ("paused inconclusive", paused(Waiting.INCONCLUSIVE), Observation(T0 + 700), split(10)),
        ("paused on timeout", paused(Waiting.TIMEOUT), Observation(T0 + 9000), split(10)),
        ("a look that errs", two, Observation(T0 + 20 * MIN, error="down"), split(50)),
        ("completed", done, Observation(T0 + 9000), Traffic("v2")),
        ("aborted", aborted, Observation(T0 + 9000), Traffic("v1")),
    ]


RECORDED = _recorded_states()


@pytest.mark.parametrize(
    ("state", "obs", "wanted"), [r[1:] for r in RECORDED], ids=[r[0] for r in RECORDED]
)
def test_every_pass_re_asserts_the_recorded_traffic(
    state: RolloutState, obs: Observation, wanted: Traffic
) -> None:
    """A controller killed between recording a step and setting its weights: the next
    pass, whatever it decides, carries the split the record says."""
    out = advance(SPEC, state, obs)
    assert out.traffic == wanted


def test_a_completed_rollout_re_asserts_its_alias_too() -> None:
    done = advance(SPEC, at_step_two(), Observation(T0 + 20 * MIN, metrics=HEALTHY))
    assert done.state.phase is Phase.COMPLETED and done.alias == V2
    again = advance(SPEC, done.state, Observation(T0 + 9000))
    assert again.alias == V2 and again.events == [] and again.traffic == Traffic("v2")


# -- item 7: paused never resumes by itself ---------------------------------------------
PAUSES = [Waiting.PROMOTE, Waiting.INCONCLUSIVE, Waiting.FAILURE, Waiting.TIMEOUT]
LATER = [T0 + 601, T0 + 3 * 3600, T0 + 30 * 86400]  # past its pause, its deadline, a month


@pytest.mark.parametrize("now", LATER)
@pytest.mark.parametrize("waiting", PAUSES)
def test_a_paused_rollout_never_resumes_by_itself(waiting: Waiting, now: float) -> None:
    state = paused(waiting)
    out = advance(SPEC, state, Observation(now, metrics=HEALTHY))
    assert out.state == state and out.events == [] and out.due_at is None
    assert out.alert is None and out.retire == [] and not out.deploy


def test_a_manual_step_pauses_for_promote_and_a_person_moves_it_on() -> None:
    spec = rollout(steps=[{"weight": 10, "pause": "manual"}, {"weight": 100}])
    first = start("rollouts.m", spec, dict(V1), dict(V2), T0)
    state = first.state
    assert (state.phase, state.waiting) == (Phase.PAUSED, Waiting.PROMOTE)
    assert first.due_at is None and first.traffic == split(10)  # no clock to wait for
    assert advance(spec, state, Observation(T0 + 86400)).state.phase is Phase.PAUSED
    promoted = advance(spec, reconcile.promote(state, full=False), Observation(T0 + 86400))
    assert promoted.state.phase is Phase.COMPLETED


def test_past_the_timeout_a_rollout_pauses_and_alerts_once() -> None:
    state = started()
    out = advance(SPEC, replace(state, pause_until=None), Observation(T0 + 2 * 3600))
    assert (out.state.phase, out.state.waiting) == (Phase.PAUSED, Waiting.TIMEOUT)
    assert out.alert is not None and "past its timeout (2h)" in out.alert.text
    assert out.traffic == split(10)
    again = advance(SPEC, out.state, Observation(T0 + 3 * 3600))
    assert again.alert is None and again.events == []


def test_a_person_who_promotes_past_the_timeout_is_not_paused_again_at_once() -> None:
    timed_out = advance(SPEC, started(), Observation(T0 + 2 * 3600)).state
    assert timed_out.waiting is Waiting.TIMEOUT
    promoted = advance(SPEC, reconcile.promote(timed_out, False), Observation(T0 + 2 * 3600))
    assert promoted.state.weight == 50 and promoted.state.deadline is None
    later = advance(SPEC, promoted.state, Observation(T0 + 2 * 3600 + 60))
    assert later.state.phase is Phase.PROGRESSING


def test_abort_requested_while_paused_returns_everything_to_stable_in_one_pass() -> None:
    out = advance(SPEC, reconcile.abort(paused(Waiting.PROMOTE)), Observation(T0 + 5))
    assert out.state.phase is Phase.ABORTED and out.traffic == Traffic("v1")
    assert out.retire == ["v2"] and out.alias is None


# -- item 8: each look's window moves forward -------------------------------------------
def test_each_look_starts_its_window_where_the_last_one_ended() -> None:
    spec = rollout(
        steps=[{"weight": 10, "pause": "1h"}, {"weight": 100}],
        analysis={"error_rate": {"max": 0.05}, "min_requests": 20, "interval": "10m"},
    )
    state = started(spec)
    assert state.window_from == T0
    for n in (1, 2, 3):
        out = advance(spec, state, Observation(T0 + n * 10 * MIN, metrics=HEALTHY))
        assert out.state.looks[-1]["from"] == T0 + (n - 1) * 10 * MIN
        assert out.state.window_from == T0 + n * 10 * MIN
        state = out.state
    spike = advance(spec, state, Observation(T0 + 40 * MIN, metrics=FAILING))
    assert spike.state.phase is Phase.ABORTED


def test_a_new_step_starts_a_new_window() -> None:
    state = at_step_two()
    assert state.window_from == state.step_started_at == T0 + 10 * MIN


# -- item 9: what a rollout says is released ---------------------------------------------
def test_an_aborted_canary_releases_the_stable_version() -> None:
    from engine.policy.released import released_outputs

    out = advance(SPEC, started(), Observation(T0 + 600, metrics=FAILING))
    outputs = out.state.to_outputs()
    assert outputs["phase"] == "aborted"
    assert outputs["released_version"] == 1 and outputs["fingerprint"] == V1["fingerprint"]
    assert outputs["candidate_version"] == 2
    assert released_outputs(outputs) == V1


def test_in_flight_the_stable_version_is_released_and_completion_releases_the_candidate() -> None:
    from engine.policy.released import released_outputs

    assert released_outputs(at_step_two().to_outputs()) == V1
    done = advance(SPEC, at_step_two(), Observation(T0 + 20 * MIN, metrics=HEALTHY))
    assert released_outputs(done.state.to_outputs()) == V2


# -- start: first release, supersede, rollback ---------------------------------------------
def test_a_first_release_completes_at_once() -> None:
    out = start("rollouts.m", SPEC, None, dict(V1), T0)
    assert out.state.phase is Phase.COMPLETED and out.traffic == Traffic("v1")
    assert out.state.message == (
        "completed: v1 serves everything (first release: nothing served before, "
        "no traffic to split)"
    )


def test_a_first_release_the_endpoint_serves_already_says_so() -> None:
    """The endpoint created in the same apply serves v1: no rollout record yet."""
    out = start("rollouts.m", SPEC, dict(V1), dict(V1), T0)
    assert out.state.phase is Phase.COMPLETED and out.traffic == Traffic("v1")
    assert out.state.message == (
        "completed: v1 serves everything (first release: the endpoint serves it already, "
        "no traffic to split)"
    )


def test_a_canary_starts_at_its_first_step_create_before_destroy() -> None:
    out = start("rollouts.m", SPEC, dict(V1), dict(V2), T0)
    assert out.deploy and out.traffic == split(10) and out.retire == []
    assert out.events == ["step 1/3: weight 10, pause 10m"]
    assert out.due_at == T0 + 600


def test_a_candidate_in_flight_superseded_by_a_newer_one_is_retired() -> None:
    out = start("rollouts.m", SPEC, dict(V1), dict(V3), T0 + 5, previous=at_step_two())
    assert out.retire == ["v2"] and out.traffic == Traffic("v1", "v3", 10, 0)
    assert out.events[0] == "candidate v2 superseded by v3: retired"


def test_a_candidate_withdrawn_for_the_stable_bytes_says_so() -> None:
    """Issue 18, item 26: not "first release: nothing serves yet"."""
    out = start("rollouts.m", SPEC, dict(V1), dict(V1), T0 + 5, previous=at_step_two())
    assert out.state.phase is Phase.COMPLETED and out.traffic == Traffic("v1")
    assert out.retire == ["v2"] and not out.deploy
    assert out.state.message == (
        "completed: v1 serves everything (candidate v2 withdrawn: the subject is back to the "
        "stable version)"
    )
    assert "first release" not in " ".join(out.events)


def _completed(previous: RolloutState | None, old: dict[str, Any], new: dict[str, Any]) -> Any:
    state = start("rollouts.m", SPEC, dict(old), dict(new), T0, previous=previous).state
    return advance(SPEC, reconcile.promote(state, True), Observation(T0 + 1)).state


def test_going_back_to_a_version_that_served_before_moves_all_traffic_at_once() -> None:
    """Item 10: a rollback is not a new canary. v1 served, v2 completed; releasing v1
    again deploys it, moves all traffic, then retires v2 — in one pass."""
    v2_stable = _completed(None, V1, V2)
    assert v2_stable.released_before == [V1]
    out = start("rollouts.m", SPEC, dict(V2), dict(V1), T0 + 50, v2_stable, rollback=True)
    assert out.state.phase is Phase.COMPLETED and out.deploy
    assert out.traffic == Traffic("v1") and out.retire == ["v2"] and out.alias == V1
    assert out.state.message == (
        "completed: v1 serves everything (rolled back: all traffic at once, v1 served this "
        "endpoint before)"
    )
    assert out.state.released_before == [V2]


def test_a_version_never_served_still_walks_the_canary() -> None:
    v2_stable = _completed(None, V1, V2)
    out = start("rollouts.m", SPEC, dict(V2), dict(V3), T0 + 50, v2_stable, rollback=True)
    assert out.state.phase is Phase.PROGRESSING and out.traffic == Traffic("v2", "v3", 10, 0)


def test_outside_a_rollback_a_version_that_served_before_walks_the_canary_again() -> None:
    """Rolled back from v2 to v1, the spec files still hold v2: the next apply releases v2
    through the canary again, never to everyone at once."""
    v2_stable = _completed(None, V1, V2)
    back = start("rollouts.m", SPEC, dict(V2), dict(V1), T0 + 50, v2_stable, rollback=True)
    assert back.state.released_before == [V2]
    again = start("rollouts.m", SPEC, dict(V1), dict(V2), T0 + 60, back.state)
    assert again.state.phase is Phase.PROGRESSING and again.traffic == split(10)


def test_the_versions_served_before_are_bounded() -> None:
    state: RolloutState | None = None
    old = V1
    for n in range(2, KEEP_RELEASED + 4):
        new = {"version": n, "fingerprint": f"sha256:{n}"}
        state = _completed(state, old, new)
        old = new
    assert state is not None and len(state.released_before) == KEEP_RELEASED
    assert state.released_before[-1]["version"] == KEEP_RELEASED + 2
    assert V1 not in state.released_before  # rolled out of the window: a canary again


def test_a_retry_request_starts_an_aborted_rollout_again_from_its_first_step() -> None:
    """`mlx rollout retry` travels like promote and abort: a request the pure step acts on."""
    aborted = advance(SPEC, started(), Observation(T0 + 600, metrics=FAILING)).state
    asked = replace(aborted, requested="retry", requested_by="carol")
    out = advance(SPEC, asked, Observation(T0 + 700))
    assert out == reconcile.retry(SPEC, aborted, T0 + 700)
    assert out.state.phase is Phase.PROGRESSING and out.traffic == split(10) and out.deploy
    assert out.state.requested is None and out.state.tally["failed"] == 0


def test_retry_refuses_a_completed_rollout() -> None:
    done = _completed(None, V1, V2)
    with pytest.raises(ValueError, match="nothing to retry"):
        reconcile.retry(SPEC, done, T0)


# -- drive: the outcome carried out ------------------------------------------------------
@dataclass
class FakeServing:
    """An endpoint in memory: its live split, what was asked, per-window metrics."""

    live: Traffic
    metrics: Mapping[str, VariantStats] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)

    def deploy(self, endpoint: Any, variant: Any) -> None:
        self.calls.append(("deploy", variant.name))

    def set_traffic(self, endpoint: Any, traffic: Any) -> None:
        self.calls.append(("set_traffic", traffic))
        self.live = traffic

    def traffic(self, endpoint: Any) -> Any:
        return self.live

    def retire(self, endpoint: Any, variant: str) -> None:
        self.calls.append(("retire", variant))

    def variant_metrics(self, endpoint: Any, since: float, until: float) -> Any:
        from contract import VariantMetrics

        self.windows.append((since, until))
        return {
            role: VariantMetrics(
                requests=s.requests,
                server_errors=s.server_errors,
                latency_p95_ms=s.latency_p95_ms,
                client_errors=s.client_errors,
            )
            for role, s in self.metrics.items()
        }

    def shadow_pairs(self, endpoint: Any, since: float, until: float) -> list[Any]:
        return []


@dataclass
class _Passes:
    """Passes of the rollout's controller through the harness, recorded nowhere."""

    peers: Any
    now: float

    def resume(self, state: RolloutState) -> Any:
        from controller.harness import UNRECORDED, run_pass
        from controller.rollouts.drive import RolloutController

        clock = lambda: self.now  # noqa: E731
        controller = RolloutController.resume("rollouts.m", SPEC, self.peers, state, clock)
        return run_pass(controller, UNRECORDED)


def _drive(tmp_path: Path, serving: FakeServing, now: float) -> Any:
    from contract import Prior, Serving
    from providers.testing.peers import FakePeers

    Serving.register(FakeServing)
    peers = FakePeers(tmp_path)
    endpoint = Prior("endpoints.m", "endpoints", "m", "gateway", {}, {})
    peers.endpoints["endpoints.m"] = (endpoint, serving)  # type: ignore[assignment]
    return _Passes(peers, now), peers


def _live(weight: int) -> Any:
    from contract import Traffic as LiveTraffic

    return LiveTraffic("v1", "v2", weight, 0)


def test_drive_puts_the_traffic_back_where_the_record_says(tmp_path: Path) -> None:
    """Killed after recording step 2 (weight 50) but before setting it: live is still 10."""
    serving = FakeServing(live=_live(10))
    drive, _peers = _drive(tmp_path, serving, T0 + 11 * MIN)
    result = drive.resume(at_step_two())
    assert serving.live == _live(50) and ("set_traffic", _live(50)) in serving.calls
    assert result.outputs["weight"] == 50 and result.outputs["events"] == []


def test_drive_settles_a_completion_recorded_before_its_traffic_moved(tmp_path: Path) -> None:
    from contract import Completion
    from contract import Traffic as LiveTraffic

    done = advance(SPEC, at_step_two(), Observation(T0 + 20 * MIN, metrics=HEALTHY)).state
    serving = FakeServing(live=_live(50))
    drive, peers = _drive(tmp_path, serving, T0 + 21 * MIN)
    result = drive.resume(done)
    assert serving.live == LiveTraffic("v2") and result.completion is Completion.DONE
    assert peers.aliases[("models.m", "production")] == V2


def test_drive_leaves_traffic_alone_when_it_is_as_recorded(tmp_path: Path) -> None:
    serving = FakeServing(live=_live(50))
    drive, _peers = _drive(tmp_path, serving, T0 + 11 * MIN)
    drive.resume(at_step_two())
    assert not any(c[0] == "set_traffic" for c in serving.calls)


def test_drive_reads_the_window_since_the_last_look(tmp_path: Path) -> None:
    """Step 2 began at 10m and was looked at (an interval look) at 15m: the look at the
    end of its pause reads 15m..20m, not the whole step."""
    looked = replace(at_step_two(), window_from=T0 + 15 * MIN)
    serving = FakeServing(live=_live(50), metrics=HEALTHY)
    drive, _peers = _drive(tmp_path, serving, T0 + 20 * MIN)
    result = drive.resume(looked)
    assert serving.windows == [(T0 + 15 * MIN, T0 + 20 * MIN)]
    assert result.outputs["looks"][-1]["from"] == T0 + 15 * MIN


def test_drive_counts_statistics_it_cannot_judge_as_an_error(tmp_path: Path) -> None:
    """A metrics source answering nonsense (more errors than requests) is a look that could
    not be taken — counted toward consecutive_error_limit — not a crash of every pass."""
    serving = FakeServing(live=_live(10), metrics={"candidate": stats(10)})
    serving.metrics = {}

    def broken(endpoint: Any, since: float, until: float) -> Any:
        from contract import VariantMetrics

        return {"candidate": VariantMetrics(requests=1, server_errors=5)}

    serving.variant_metrics = broken  # type: ignore[method-assign]
    drive, _peers = _drive(tmp_path, serving, T0 + 10 * MIN)
    result = drive.resume(started())
    assert result.outputs["tally"]["errors"] == 1 and result.outputs["weight"] == 10
    assert "exceed requests" in result.outputs["looks"][-1]["reason"]


def test_outcome_done_follows_the_phase() -> None:
    assert Outcome(replace(started(), phase=Phase.ABORTED)).done
    assert not Outcome(started()).done


def test_drive_reads_no_metrics_for_a_paused_rollout(tmp_path: Path) -> None:
    serving = FakeServing(live=_live(10), metrics=HEALTHY)
    drive, _peers = _drive(tmp_path, serving, T0 + 3600)  # long past its pause
    result = drive.resume(paused(Waiting.INCONCLUSIVE))
    assert serving.windows == [] and result.outputs["phase"] == "paused"
