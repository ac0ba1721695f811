"""Models that misbehave or take their time (pickled by the test, unpickled by ``mlx serve``)."""

from __future__ import annotations

import time
from typing import Any


class Sleepy:
    """Hangs for ``seconds`` on every call (a candidate that never answers in time)."""

    def __init__(self, seconds: float, width: int):
        self.seconds = seconds
        self.n_features_in_ = width

    def predict(self, x: Any) -> list[int]:
        time.sleep(self.seconds)
        return [0] * len(x)


class Crashy:
    """Raises on every call (a candidate with a bug)."""

    def __init__(self, width: int):
        self.n_features_in_ = width

    def predict(self, x: Any) -> list[int]:
        raise RuntimeError("candidate exploded")


class SlowSum:
    """Sums each row, after ``seconds`` per call: requests sent meanwhile queue behind it."""

    def __init__(self, seconds: float, width: int):
        self.seconds = seconds
        self.n_features_in_ = width
        self.calls: list[int] = []  # rows per call (in the process that calls it)

    def predict(self, x: Any) -> Any:
        self.calls.append(len(x))
        time.sleep(self.seconds)
        return x.sum(axis=1)


class Raises:
    """A model whose predict raises ``error(message)`` on every input (a candidate with a bug
    that a caller did nothing to cause)."""

    def __init__(self, error: type[Exception], message: str, width: int):
        self.error, self.message = error, message
        self.n_features_in_ = width

    def predict(self, x: Any) -> list[int]:
        raise self.error(self.message)


class Opaque:
    """A value the gateway cannot write as JSON."""


class Unreadable:
    """Answers values the gateway cannot encode: the failure is then in the gateway's own
    path (an internal error), not a refusal or a failure of the model's."""

    def __init__(self, width: int):
        self.n_features_in_ = width

    def predict(self, x: Any) -> list[Opaque]:
        return [Opaque() for _ in range(len(x))]


def linalg_error() -> type[Exception]:
    """numpy's ``LinAlgError``: a subclass of ``ValueError`` that a model's own maths raises."""
    import numpy as np

    return np.linalg.LinAlgError


class SlowToLoad:
    """Takes ``seconds`` to unpickle (a large artifact): the replica is loading it."""

    def __init__(self, seconds: float, width: int):
        self.seconds = seconds
        self.n_features_in_ = width

    def __setstate__(self, state: dict[str, Any]) -> None:
        time.sleep(state["seconds"])
        self.__dict__.update(state)

    def predict(self, x: Any) -> list[int]:
        return [1] * len(x)
