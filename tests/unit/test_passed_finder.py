"""``engine.policy.released.passed_finder`` (``Peers.passed_verdict``): a gate's latest
*passed* verdict on exactly one subject version, from the release evidence in a real SQLite
state — what a scheduled eval pins its dataset and its recorded scores to."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.policy.released import passed_finder
from state.evidence import Verdict
from state.store import StateStore, StateWriter


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[StateWriter]:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    with store.writer("default", who="tester", operation="apply") as w:
        w.begin("apply", actor="tester")
        yield w
    store.close()


def add(writer: StateWriter, gate: str, fp: str, passed: bool, serial: int, data: str) -> None:
    writer.evidence().add(
        Verdict(
            key=f"{gate}|{fp}|{data}", gate=gate, subject="models.m", subject_fingerprint=fp,
            subject_version=fp[-1], dataset="datasets.d", dataset_fingerprint=data,
            definition="sha:def", passed=passed, serial=serial, created_at=datetime.now(UTC),
            message=None, subject_outputs={"version": int(fp[-1]), "fingerprint": fp},
            outputs={"passed": passed, "evidence": {"metrics": {"roc_auc": serial / 10}}},
        )
    )  # fmt: skip


@pytest.mark.parametrize(
    ("gate", "fingerprint", "serial", "dataset_fingerprint"),
    [
        ("evals.g", "sha:v1", 3, "sha:d2"),  # the latest pass on v1, on the data it passed on
        ("evals.g", "sha:v2", None, None),  # g rejected v2; another gate's pass is not g's
        ("evals.other", "sha:v2", 5, "sha:d2"),
        ("evals.g", "sha:v9", None, None),  # never judged
    ],
)
def test_the_latest_pass_of_that_gate_on_exactly_that_version(
    writer: StateWriter,
    gate: str,
    fingerprint: str,
    serial: int | None,
    dataset_fingerprint: str | None,
) -> None:
    add(writer, "evals.g", "sha:v1", True, 1, "sha:d1")
    add(writer, "evals.g", "sha:v1", True, 3, "sha:d2")
    add(writer, "evals.g", "sha:v2", False, 4, "sha:d2")
    add(writer, "evals.other", "sha:v2", True, 5, "sha:d2")
    found = passed_finder(writer)(gate, fingerprint)
    if serial is None:
        assert found is None
        return
    assert found is not None
    assert found["serial"] == serial and found["dataset_fingerprint"] == dataset_fingerprint
    assert found["dataset"] == "datasets.d"
    assert found["outputs"]["evidence"]["metrics"]["roc_auc"] == serial / 10
    assert found["subject_outputs"]["fingerprint"] == fingerprint
