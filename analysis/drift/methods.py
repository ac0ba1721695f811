"""The drift tests by name, their defaults, and ``auto``'s choice (as Evidently's).

| method | statistic | drift when | default |
|---|---|---|---|
| ks | two-sample KS p-value | p < threshold | 0.05 |
| chisquare | chi-square goodness-of-fit p-value | p < threshold | 0.05 |
| wasserstein | Wasserstein-1 / reference std (at least 0.001) | >= threshold | 0.1 |
| jensenshannon | Jensen-Shannon distance, natural log | >= threshold | 0.1 |
| psi | population stability index, 10 decile bins | >= threshold | 0.25 (warn at 0.1) |

``auto`` (Evidently's ``DataDriftPreset``): a reference of at most 1000 values — numeric
with more than 5 distinct values: ks, otherwise chisquare; larger — numeric with more than 5
distinct values: wasserstein, otherwise jensenshannon. (Evidently counts the distinct values
of reference and current together and uses a two-proportion z-test for two values; mlx
counts the reference's and uses chi-square with one degree of freedom there.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analysis.base import AnalysisError
from analysis.drift.profile import KEEP_VALUES, FeatureProfile

Method = Literal["ks", "chisquare", "wasserstein", "jensenshannon", "psi"]
METHODS: tuple[str, ...] = ("auto", "ks", "chisquare", "wasserstein", "jensenshannon", "psi")


@dataclass(frozen=True)
class Test:
    name: Method
    p_value: bool  # True: drift when p < threshold; False: drift when statistic >= threshold
    threshold: float
    numeric_only: bool = False
    warn: float | None = None


TESTS: dict[str, Test] = {
    "ks": Test("ks", True, 0.05, numeric_only=True),
    "chisquare": Test("chisquare", True, 0.05),
    "wasserstein": Test("wasserstein", False, 0.1, numeric_only=True),
    "jensenshannon": Test("jensenshannon", False, 0.1),
    "psi": Test("psi", False, 0.25, warn=0.1),
}

#: Distinct values up to which a numeric feature is treated as discrete by ``auto``.
FEW_VALUES = 5


def choose(method: str, profile: FeatureProfile) -> Test:
    """The test ``method`` names for this feature (``auto``: Evidently's choice)."""
    if method == "auto":
        return TESTS[_auto(profile)]
    test = TESTS.get(method)
    if test is None:
        raise AnalysisError(f"unknown drift method {method!r}: one of {', '.join(METHODS)}")
    if test.numeric_only and profile.kind != "numeric":
        raise AnalysisError(
            f"{method} compares numbers: feature {profile.name!r} is {profile.kind}"
        )
    return test


def _auto(profile: FeatureProfile) -> Method:
    many = profile.kind == "numeric" and profile.distinct > FEW_VALUES
    if profile.reference.values <= KEEP_VALUES:
        return "ks" if many else "chisquare"
    return "wasserstein" if many else "jensenshannon"
