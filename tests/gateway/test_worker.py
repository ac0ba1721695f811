"""The shadow worker (``gateway.worker``) in-process: bursts of jobs, its own log records.

The worker reads jobs from a queue and answers into a byte stream; here both are in memory,
the model is a real scikit-learn one, the log a real SQLite file.
"""

from __future__ import annotations

import io
import queue
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.models import SklearnModel
from gateway.worker import HEADER, Worker, _open_writer
from tests.gateway.conftest import FEATURES, floats, train, training_frame
from tests.gateway.support import records

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


class Counted:
    """A model that keeps how many rows each predict call got."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.n_features_in_ = inner.n_features_in_
        self.calls: list[int] = []

    def predict(self, x: Any) -> Any:
        self.calls.append(len(x))
        return self.inner.predict(x)


def _model(tmp_path: Path, name: str, seed: int) -> tuple[SklearnModel, Counted]:
    counted = Counted(train(tmp_path / name / "model.joblib", seed=seed))
    return SklearnModel(counted, floats(FEATURES), True), counted


def _rows(n: int) -> list[list[float]]:
    frame, _ = training_frame(7)
    return [[float(v) for v in r] for r in frame[FEATURES].head(n).to_numpy()]


def _job(i: int, key: str, row: list[float] | None, **meta: Any) -> tuple[dict[str, Any], bytes]:
    body = b"{broken" if row is None else orjson.dumps({"instances": [row]})
    fields = {"request_id": f"r{i}", "ts": time.time(), "endpoint": "fraud", "version": "2"}
    job = {"op": "job", "id": i, "key": key, "timeout": 30.0, "sent": time.monotonic()}
    return {**job, "record": fields, "keep": True, **meta}, body


def _run(worker: Worker, jobs: list[tuple[dict[str, Any], bytes]]) -> None:
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for job in jobs:
        q.put(job)
    q.put(None)
    worker.run(q)


def _answers(out: io.BytesIO) -> list[dict[str, Any]]:
    buf, found = out.getvalue(), []
    while buf:
        meta_len, body_len = HEADER.unpack_from(buf)
        found.append(orjson.loads(buf[HEADER.size : HEADER.size + meta_len]))
        buf = buf[HEADER.size + meta_len + body_len :]
    return found


def test_a_burst_runs_as_one_predict_per_model(tmp_path: Path) -> None:
    a, counted_a = _model(tmp_path, "a", 0)
    b, counted_b = _model(tmp_path, "b", 1)
    out = io.BytesIO()
    worker = Worker(out)  # no log: the answers carry the outputs for the gateway to log
    worker.models.update({"ka": a, "kb": b})
    rows = _rows(5)
    jobs = [_job(i, "ka" if i % 2 == 0 else "kb", rows[i]) for i in range(5)]
    _run(worker, jobs)
    assert counted_a.calls == [3] and counted_b.calls == [2]
    answers = {m["id"]: m for m in _answers(out)}
    for i in range(5):
        inner = (counted_a if i % 2 == 0 else counted_b).inner
        want = pytest.approx(inner.predict([rows[i]]).tolist(), rel=1e-12, abs=1e-12)
        assert answers[i]["status"] == 200 and answers[i]["outputs"] == want
        assert "logged" not in answers[i]


def test_the_worker_writes_its_records_and_answers_without_outputs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'inference.db'}"
    model, counted = _model(tmp_path, "a", 0)
    out = io.BytesIO()
    worker = Worker(out, _open_writer(url))
    worker.models["ka"] = model
    rows = _rows(2)
    _run(worker, [_job(0, "ka", rows[0]), _job(1, "ka", None), _job(2, "ka", rows[1], keep=False)])
    closed = worker.close()
    assert closed == {"op": "closed", "written": 3, "lost": 0}
    answers = {m["id"]: m for m in _answers(out)}
    assert all(a["logged"] and "outputs" not in a for a in answers.values())
    assert [answers[i]["status"] for i in range(3)] == [200, 400, 200]
    logged = {r.request_id: r for r in records(url, "fraud")}
    assert set(logged) == {"r0", "r1", "r2"}
    assert all(r.variant == "shadow" and r.version == "2" for r in logged.values())
    want = pytest.approx(counted.inner.predict([rows[0]]).tolist(), rel=1e-12, abs=1e-12)
    assert logged["r0"].outputs == want and logged["r0"].inputs == {"instances": [rows[0]]}
    assert logged["r1"].status == 400 and "malformed JSON" in (logged["r1"].error or "")
    assert logged["r2"].inputs is None and logged["r2"].outputs is None  # not sampled
    assert counted.calls == [2]  # the two good requests shared a predict


def test_a_job_that_waited_past_its_timeout_is_skipped_not_run(tmp_path: Path) -> None:
    model, counted = _model(tmp_path, "a", 0)
    out = io.BytesIO()
    worker = Worker(out)
    worker.models["ka"] = model
    rows = _rows(2)
    stale = _job(0, "ka", rows[0], sent=time.monotonic() - 5, timeout=1.0)
    _run(worker, [stale, _job(1, "ka", rows[1])])
    answers = {m["id"]: m for m in _answers(out)}
    assert answers[0] == {"id": 0, "skipped": "expired"}
    assert answers[1]["status"] == 200
    assert counted.calls == [1]


def test_jobs_for_a_model_not_loaded_are_skipped(tmp_path: Path) -> None:
    out = io.BytesIO()
    worker = Worker(out)
    worker.failed["kx"] = "ValueError: not a model"
    _run(worker, [_job(0, "kx", _rows(1)[0])])
    assert _answers(out) == [{"id": 0, "skipped": "load failed: ValueError: not a model"}]


def test_a_log_the_worker_cannot_open_leaves_the_logging_to_the_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _open_writer(f"sqlite:///{blocker / 'inference.db'}") is None
    assert "cannot open the log" in capsys.readouterr().err
    assert _open_writer(None) is None


def test_records_the_worker_could_not_write_are_reported_lost(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The worker's last frame counts what its writer never wrote: the gateway adds it to the
    records lost and exits 1 (``report_stop``), rather than report a clean stop."""
    import sqlite3

    import gateway.worker as worker_module
    from gateway.server import report_stop
    from gateway.shadow import ShadowProcess
    from inference.writer import WriterStats

    monkeypatch.setattr(worker_module, "LOG_CLOSE_S", 0.3)  # how long close retries
    path = tmp_path / "inference.db"
    model, _ = _model(tmp_path, "a", 0)
    out = io.BytesIO()
    worker = Worker(out, _open_writer(f"sqlite:///{path}"))
    worker.models["ka"] = model
    with sqlite3.connect(path) as db:  # the log's table is gone: every insert fails
        db.execute("DROP TABLE mlx_inference")
    rows = _rows(2)
    _run(worker, [_job(0, "ka", rows[0]), _job(1, "ka", rows[1])])
    closed = worker.close()
    assert closed == {"op": "closed", "written": 0, "lost": 2}

    shadows = ShadowProcess(8, lambda *_: None, lambda *_: None)
    shadows._answered(closed)
    assert (shadows.log_written, shadows.log_lost) == (0, 2)
    clean = WriterStats(
        accepted=5, written=5, dropped=0, rejected=0, lost=0, pending=0, flushes=1, flush_errors=0
    )
    capsys.readouterr()
    assert report_stop(True, clean, shadows) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0].endswith("2 lost")  # the summary, before the error
    assert "the inference log lost 2 record(s)" in err + caplog.text
    shadows.log_lost = 0
    shadows._answered({"op": "closed", "written": 3, "lost": 0})
    assert report_stop(True, clean, shadows) == 0
    said = capsys.readouterr().err.splitlines()
    assert said == [
        "mlx serve: stopped; inference log: 5 record(s) written (and 3 by the shadow worker)"
    ]
    assert report_stop(False, clean, shadows) == 1  # the gateway's own writer lost some


def test_the_worker_loads_only_bytes_with_the_recorded_digest(tmp_path: Path) -> None:
    """A shadow candidate's artifact swapped for a hostile pickle is refused, not unpickled."""
    import pickle

    from common.digests import digest_path
    from tests.gateway.test_artifact_integrity import WritesAMarker

    good = tmp_path / "good" / "model.joblib"
    train(good)
    marker = tmp_path / "the-pickle-ran"
    evil = tmp_path / "evil" / "model.joblib"
    evil.parent.mkdir()
    evil.write_bytes(pickle.dumps(WritesAMarker(marker)))
    worker = Worker(io.BytesIO())
    for key, path in (("good", good), ("evil", evil)):
        worker.load(
            {
                "op": "load",
                "key": key,
                "flavor": "sklearn",
                "artifact": str(path),
                "digest": digest_path(good),  # what was gated: the good model's bytes
                "input_schema": None,
            }
        )
    deadline = time.monotonic() + 30
    while worker.loading and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "good" in worker.models
    assert "evil" not in worker.models and not marker.exists()
    assert worker.failed["evil"].startswith("its artifact's bytes are not the recorded ones")
    assert str(tmp_path) not in worker.failed["evil"]  # the gateway may log it: no path
