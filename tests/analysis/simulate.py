"""How many samples the sequential A/B test needs, and how often it errs: simulations.

Not a test (pytest does not collect it): the numbers behind docs/statistics.md.

    .venv/bin/python -m tests.analysis.simulate          # ~1 minute on one core
"""

from __future__ import annotations

import time

import numpy as np

from analysis.fixed import sample_size_proportions, z_test_proportions
from analysis.sequential import ABVerdict, compare_proportions

DECIDED = (ABVerdict.A_BETTER, ABVerdict.B_BETTER)


def false_positives(
    sims: int, looks: int, step: int, p: float, seed: int
) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    xa = rng.binomial(step, p, size=(sims, looks)).cumsum(axis=1)
    xb = rng.binomial(step, p, size=(sims, looks)).cumsum(axis=1)
    sequential = peeking = final = 0
    for s in range(sims):
        state, stopped, peeked = None, False, False
        for k in range(looks):
            n = step * (k + 1)
            a, b = int(xa[s, k]), int(xb[s, k])
            r = compare_proportions(a, n, b, n, min_samples=step, state=state)
            state = r.state
            stopped = stopped or r.verdict in DECIDED
            peeked = peeked or z_test_proportions(a, n, b, n).p_value < 0.05
        sequential += stopped
        peeking += peeked
        final += z_test_proportions(a, n, b, n).p_value < 0.05
    return sequential / sims, peeking / sims, final / sims


def stopping(
    p_a: float,
    p_b: float,
    step: int,
    looks: int,
    sims: int,
    mde: float,
    min_samples: int,
    seed: int,
) -> np.ndarray:
    """Per-arm sample size at which each simulated test decides for B (inf: never/for A)."""
    rng = np.random.default_rng(seed)
    xa = rng.binomial(step, p_a, size=(sims, looks)).cumsum(axis=1)
    xb = rng.binomial(step, p_b, size=(sims, looks)).cumsum(axis=1)
    stops = np.full(sims, np.inf)
    for s in range(sims):
        state = None
        for k in range(looks):
            n = step * (k + 1)
            r = compare_proportions(
                int(xa[s, k]),
                n,
                int(xb[s, k]),
                n,
                min_samples=min_samples,
                mde=mde,
                state=state,
            )
            state = r.state
            if r.verdict in DECIDED:
                if r.verdict is ABVerdict.B_BETTER:
                    stops[s] = n
                break
    return stops


def main() -> None:
    started = time.perf_counter()
    print("## False positives: no effect (10% both arms), 20 looks of 500 per arm, alpha 0.05")
    seq, peek, final = false_positives(10_000, 20, 500, 0.10, seed=1)
    print(
        f"10,000 simulated tests: mSPRT {seq:.2%}; z-test peeked at every look {peek:.2%}; "
        f"z-test at the last look only {final:.2%}"
    )
    for p_a, p_b, step, looks, min_samples in (
        (0.05, 0.06, 500, 120, 1000),
        (0.10, 0.13, 100, 150, 200),
    ):
        fixed = sample_size_proportions(p_a, p_b)
        print(
            f"\n## {p_a:.0%} -> {p_b:.0%}: fixed horizon needs {fixed:,} per arm (power 0.8); "
            f"mSPRT looks every {step} per arm, min_samples {min_samples}, 1,000 tests"
        )
        print(
            "| mde (tau = mde * p_A) | power at fixed n | median stop | n for 80% power |"
            " n for 90% power |"
        )
        print("|---|---|---|---|---|")
        for mde in (0.05, 0.1, 0.2, 0.3, 0.5):
            stops = stopping(p_a, p_b, step, looks, 1000, mde, min_samples, seed=2)
            power_at_fixed = np.mean(stops <= fixed)
            q80, q90 = np.quantile(stops, 0.8), np.quantile(stops, 0.9)
            print(
                f"| {mde:g} (tau {mde * p_a:.4g}) | {power_at_fixed:.0%} "
                f"| {np.median(stops):,.0f} | {q80:,.0f} ({q80 / fixed:.2f}x) | {q90:,.0f} |"
            )
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
