"""The Notifier suite: alert channels deliver every message, and fail clearly when they cannot.

For providers with the ``Notifier`` capability. On top of the CRUD hooks::

    def delivered(self, provider, channel):
        '''Everything the channel's destination received so far, oldest first (parsed
        JSON bodies, file lines, queue messages). Called once before the first send.'''

    def broken(self, provider, after):
        '''A context manager: the destination fails from its ``after``-th request on.'''

A webhook gets its URL from the run's resolved spec (``peers.spec``): the suite
declares every spec it applies in the fake peers, as the engine does.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from contract import AlertMessage, Notifier, Prior, Provider, ProviderError
from providers.testing.base import METADATA
from providers.testing.crud import CrudConformance

MESSAGE = AlertMessage(
    title="Drift on fraud: PSI 0.31",
    text="monitors.fraud_drift saw PSI 0.31 on amount (threshold 0.2) — ünïcode ok",
    severity="critical",
    source="monitors.fraud_drift",
    owner="team-ml",
    details={"psi": 0.31, "feature": "amount"},
)


class NotifierConformance(CrudConformance):
    def delivered(self, provider: Provider, channel: Prior) -> list[Any]:
        raise NotImplementedError("the Notifier suite needs delivered(provider, channel)")

    def broken(self, provider: Provider, after: int) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError("the Notifier suite needs broken(provider, after)")

    def notifier(self, provider: Provider) -> Notifier:
        assert isinstance(provider, Notifier), f"{type(provider).__name__} is not a Notifier"
        return provider

    def test_send_delivers_the_message(self, provider: Provider, tmp_path: Path) -> None:
        channel = self.create(provider, tmp_path)
        before = len(self.delivered(provider, channel))
        self.notifier(provider).send(channel, MESSAGE)
        got = self.delivered(provider, channel)
        assert len(got) == before + 1, "send() must deliver exactly one message"
        text = json.dumps(got[-1], ensure_ascii=False, default=str)
        assert MESSAGE.title in text and "ünïcode" in text

    def test_every_send_is_delivered(self, provider: Provider, tmp_path: Path) -> None:
        channel = self.create(provider, tmp_path)
        before = len(self.delivered(provider, channel))
        for n in range(3):
            self.notifier(provider).send(channel, AlertMessage(f"alert {n}", "text"))
        got = self.delivered(provider, channel)[before:]
        assert [n for n in range(3) if f"alert {n}" in json.dumps(got[n])] == [0, 1, 2]

    def test_send_after_an_update_uses_the_new_settings(
        self, provider: Provider, tmp_path: Path
    ) -> None:
        first = self.create(provider, tmp_path)
        after = self.update(provider, first, tmp_path, "meta", METADATA)
        before = len(self.delivered(provider, after))
        self.notifier(provider).send(after, MESSAGE)
        assert len(self.delivered(provider, after)) == before + 1

    def test_an_unreachable_destination_is_a_clear_error(
        self, provider: Provider, tmp_path: Path
    ) -> None:
        channel = self.create(provider, tmp_path)
        before = len(self.delivered(provider, channel))
        with self.broken(provider, 0), pytest.raises(ProviderError) as failed:
            self.notifier(provider).send(channel, MESSAGE)
        self.one_line(failed.value)
        self.notifier(provider).send(channel, MESSAGE)  # the destination is back
        assert len(self.delivered(provider, channel)) == before + 1
