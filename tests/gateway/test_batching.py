"""Adaptive batching (``gateway.batching``) with real prediction threads and a real model.

The model's first ``predict`` is held on an event, so that the requests sent meanwhile are
waiting in its lane when it returns: which requests share a ``predict`` is then certain, not
a matter of timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.batching import Batcher
from gateway.inputs import InputError
from gateway.models import ModelFailure, SklearnModel
from gateway.pool import DaemonPool, Expired
from tests.gateway.conftest import FEATURES, floats, train, training_frame

# the gateway hands numeric models arrays in their own column order (names checked before)
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


class Held:
    """A model whose first predict waits for ``release``; every call's row count is kept."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.feature_names_in_ = inner.feature_names_in_
        self.n_features_in_ = inner.n_features_in_
        self.release = threading.Event()
        self.calls: list[int] = []

    def predict(self, x: Any) -> Any:
        self.calls.append(len(x))
        if len(self.calls) == 1:
            assert self.release.wait(10), "the test never released the first predict"
        return self.inner.predict(x)


@pytest.fixture()
def held(tmp_path: Path) -> tuple[SklearnModel, Held]:
    inner = train(tmp_path / "model.joblib")
    model = Held(inner)
    # "amount" is declared nullable: a null reaches the model, which raises on it
    servable = SklearnModel(model, floats(FEATURES, nullable=("amount",)), True)
    assert servable.batchable
    return servable, model


def _rows(n: int, seed: int = 7) -> list[list[float]]:
    frame, _ = training_frame(seed)
    return [[float(v) for v in row] for row in frame[FEATURES].head(n).to_numpy()]


def _body(rows: list[list[float]]) -> bytes:
    return orjson.dumps({"dataframe_split": {"columns": FEATURES, "data": rows}})


async def _started(model: Held) -> None:
    """Until the first predict is running (and held)."""
    for _ in range(2000):
        if model.calls:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the first predict never started")


def _run(scenario: Any) -> Any:
    return asyncio.run(scenario())


def _behind_held(
    batcher: Batcher, servable: SklearnModel, model: Held, first: bytes, queued: list[bytes]
) -> list[Any]:
    """``first`` starts the held predict; ``queued`` are sent while it is held, then it is
    released: each request's answer (or the exception it raised), ``first``'s first."""

    async def scenario() -> list[Any]:
        head = asyncio.ensure_future(batcher.run(10, servable, first))
        await _started(model)
        rest = [asyncio.ensure_future(batcher.run(10, servable, b)) for b in queued]
        await asyncio.sleep(0.05)  # they are all in the lane, behind the held predict
        model.release.set()
        return list(await asyncio.gather(head, *rest, return_exceptions=True))

    return _run(scenario)


@pytest.fixture()
def pool() -> Iterator[DaemonPool]:
    threads = DaemonPool(2, "t")
    yield threads
    threads.shutdown()


def _expected(model: Held, rows: list[list[float]]) -> Any:
    import numpy as np

    return pytest.approx(model.inner.predict(np.asarray(rows)).tolist(), rel=1e-12, abs=1e-12)


def test_requests_waiting_behind_a_predict_share_the_next_one(
    held: tuple[SklearnModel, Held], pool: DaemonPool
) -> None:
    servable, model = held
    rows = _rows(13)
    bodies = [rows[0:1]] + [rows[1 + 2 * i : 3 + 2 * i] for i in range(6)]
    batcher = Batcher(pool, max_requests=32)
    answers = _behind_held(
        batcher, servable, model, _body(bodies[0]), [_body(b) for b in bodies[1:]]
    )
    assert model.calls == [1, 12]  # the lone first request, then the six others in one call
    for (doc, predictions), rows_sent in zip(answers, bodies, strict=True):
        assert doc["dataframe_split"]["data"] == rows_sent  # each answer is its own request's
        assert predictions == _expected(model, rows_sent)
    assert batcher.counts() == (1, 6)


def test_a_lone_request_is_predicted_alone_at_once(
    held: tuple[SklearnModel, Held], pool: DaemonPool
) -> None:
    servable, model = held
    model.release.set()
    batcher = Batcher(pool)
    rows = _rows(3)

    async def scenario() -> Any:
        return [await batcher.run(10, servable, _body([r])) for r in rows]

    answers = _run(scenario)
    assert model.calls == [1, 1, 1]
    assert [p for _, p in answers] == [_expected(model, [r]) for r in rows]
    assert batcher.counts() == (0, 0)


def test_a_bad_request_in_a_batch_fails_alone(
    held: tuple[SklearnModel, Held], pool: DaemonPool
) -> None:
    servable, model = held
    rows = _rows(4)
    batcher = Batcher(pool)
    bad_bodies = [
        b"{not json",
        orjson.dumps({"dataframe_split": {"columns": ["amount", "age"], "data": [[1.0, 2.0]]}}),
        orjson.dumps({"dataframe_split": {"columns": FEATURES, "data": [["x", 1, 2]]}}),
        orjson.dumps({"instances": [rows[0]], "inputs": [rows[0]]}),  # two formats
        orjson.dumps({"dataframe_split": {"columns": FEATURES, "data": [[1.0, None, 2.0]]}}),
    ]

    good_bodies = [_body([r]) for r in rows[1:]]
    answers = _behind_held(batcher, servable, model, _body(rows[0:1]), good_bodies + bad_bodies)
    good, bad = answers[:4], answers[4:]
    assert [p for _, p in good] == [_expected(model, [r]) for r in rows]
    assert all(isinstance(e, InputError) for e in bad), bad
    assert "malformed JSON" in str(bad[0])
    assert "missing column 'hour'" in str(bad[1])
    assert "amount" in str(bad[2])
    assert "carries 2 input formats, instances and inputs" in str(bad[3])
    assert "column 'age' takes no nulls, but row 0 has null" in str(bad[4])
    assert model.calls == [1, 3]  # the three good ones shared a predict; the bad never reached it


def test_a_batch_the_model_raises_on_is_predicted_request_by_request(
    held: tuple[SklearnModel, Held], pool: DaemonPool
) -> None:
    """A null in a nullable column passes the gateway's checks and the model raises on it:
    only its request fails, and as the model's failure (its input was the kind declared)."""
    servable, model = held
    rows = _rows(3)
    null_row: list[Any] = [None, 30, 4]
    queued = [_body([rows[1]]), _body([null_row]), _body([rows[2]])]
    batcher = Batcher(pool)
    first, one, null, two = _behind_held(batcher, servable, model, _body(rows[0:1]), queued)
    assert first[1] == _expected(model, [rows[0]])
    assert one[1] == _expected(model, [rows[1]])
    assert two[1] == _expected(model, [rows[2]])
    assert isinstance(null, ModelFailure) and str(null) == "the model failed (ValueError)"
    assert "Input X contains NaN" in null.detail
    assert model.calls == [1, 3, 1, 1, 1]  # the refused batch of three, then each alone
    assert batcher.counts() == (0, 0)


def test_no_predict_takes_more_than_max_requests(
    held: tuple[SklearnModel, Held], pool: DaemonPool
) -> None:
    servable, model = held
    rows = _rows(5)
    batcher = Batcher(pool, max_requests=2)
    answers = _behind_held(
        batcher, servable, model, _body(rows[0:1]), [_body([r]) for r in rows[1:]]
    )
    assert model.calls == [1, 2, 2]
    assert [p for _, p in answers] == [_expected(model, [r]) for r in rows]
    assert batcher.counts() == (2, 4)


def test_a_request_that_expired_in_the_lane_is_never_predicted(
    held: tuple[SklearnModel, Held], pool: DaemonPool
) -> None:
    servable, model = held
    rows = _rows(3)
    batcher = Batcher(pool)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(batcher.run(10, servable, _body(rows[0:1])))
        await _started(model)
        late = asyncio.ensure_future(batcher.run(0.01, servable, _body([rows[1]])))
        kept = asyncio.ensure_future(batcher.run(10, servable, _body([rows[2]])))
        with pytest.raises(Expired):
            await late
        model.release.set()
        return [await first, await kept]

    first, kept = _run(scenario)
    assert first[1] == _expected(model, [rows[0]])
    assert model.calls == [1, 1]  # the expired request's row was never sent to the model
    assert kept[1] == _expected(model, [rows[2]])


def test_models_that_batch() -> None:
    """Numeric rows of a known width batch; a pipeline that takes strings, or a model of
    unknown width, does not."""
    assert SklearnModel(object(), floats(["a", "b", "c"]), True).batchable
    assert not SklearnModel(object(), None, True).batchable
    assert not SklearnModel(object(), floats(["a"]), False).batchable
