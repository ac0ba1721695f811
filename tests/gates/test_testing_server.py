"""The OpenAI stub's streaming answer, read by the real ``openai`` client: the words arrive
as separate chunks, the usage chunk only when asked, and the text equals the non-streamed
answer."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from providers.gates.testing_server import OpenAIStub

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "where is the warehouse"}]


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_matches_the_plain_answer(include_usage: bool) -> None:
    with OpenAIStub() as stub:
        client = openai.OpenAI(base_url=stub.base_url, api_key="unused", max_retries=0)
        plain = client.chat.completions.create(model="m", messages=MESSAGES)
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": include_usage},
            )
        )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices]
    text = "".join(p for p in pieces if p)
    assert text == plain.choices[0].message.content
    assert len([p for p in pieces if p]) == len(text.split())  # one chunk per word
    usage = [c.usage for c in chunks if c.usage is not None]
    if include_usage:
        assert usage == [plain.usage] and chunks[-1].choices == []
    else:
        assert usage == []
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
