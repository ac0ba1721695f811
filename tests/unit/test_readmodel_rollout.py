"""``readmodels.rollout`` only reads: the live split comes from the ``live`` function the
caller passes (the CLI asks the endpoint's provider), given the endpoint's record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from common.diagnostics import MlxError
from readmodels.rollout import status_of
from state.store import Record


def _record(address: str, outputs: dict[str, Any]) -> Record:
    section, name = address.split(".", 1)
    return Record(
        address,
        section,
        name,
        "gateway",
        "ok",
        None,
        None,
        None,
        {},
        outputs,
        [],
        1,
        datetime.now(UTC),
    )


class Reader:
    """The part of ``StateReader`` a read model uses, over fixed records."""

    def __init__(self, *records: Record):
        self.records = {r.address: r for r in records}

    def record(self, address: str) -> Record | None:
        return self.records.get(address)

    def index(self) -> dict[str, Record]:
        return dict(self.records)

    def events(self, address: str) -> list[dict[str, Any]]:
        return []


ROLLOUT = {"strategy": "canary", "subject": "models.m", "endpoint": "endpoints.e", "steps": 3}
LIVE = {"stable": "v1", "candidate": "v2", "weight": 10, "mirror": 0}


@pytest.mark.parametrize(
    ("records", "answer", "live", "asked"),
    [
        ([_record("endpoints.e", {})], LIVE, LIVE, True),
        ([_record("endpoints.e", {})], {"error": "unreachable"}, {"error": "unreachable"}, True),
        ([_record("endpoints.e", {})], None, None, True),
        ([], LIVE, None, False),  # the endpoint is not recorded: nothing to ask
    ],
)
def test_the_live_split_is_what_the_callers_function_says(
    records: list[Record], answer: Any, live: Any, asked: bool
) -> None:
    seen: list[Record] = []

    def read_live(rec: Record) -> Any:
        seen.append(rec)
        return answer

    reader = Reader(_record("rollouts.m", ROLLOUT), *records)
    data = status_of(reader, "m", read_live)  # type: ignore[arg-type]
    assert data["live"] == live
    assert [r.address for r in seen] == (["endpoints.e"] if asked else [])
    assert (data["address"], data["strategy"], data["step"]) == ("rollouts.m", "canary", 1)


def test_a_rollout_without_an_endpoint_asks_nothing() -> None:
    reader = Reader(_record("rollouts.m", {**ROLLOUT, "endpoint": None}))
    data = status_of(reader, "rollouts.m", lambda _rec: pytest.fail("asked"))  # type: ignore[arg-type]
    assert data["live"] is None


def test_an_unknown_rollout_is_an_error_naming_the_known_ones() -> None:
    reader = Reader(_record("rollouts.main", ROLLOUT))
    with pytest.raises(MlxError, match=r"no rollout rollouts\.mian in the state.*rollouts\.main"):
        status_of(reader, "mian", lambda _rec: None)  # type: ignore[arg-type]
