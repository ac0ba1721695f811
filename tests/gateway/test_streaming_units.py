"""The pure parts of streamed answers: event splitting, the tally, replay, the stream fields."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.inputs import InputError
from gateway.prompts import PromptVariant
from gateway.streaming import Events, Kind, Tally, data_of, replay


def sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0, **kw: Any) -> bytes:
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    return sse({"id": "c1", "created": 7, "model": "m", "choices": [choice], **kw})


@pytest.mark.parametrize(
    ("pieces", "events", "rest"),
    [
        ([b"data: a\n\ndata: b\n\n"], [b"data: a\n\n", b"data: b\n\n"], b""),
        ([b"data: a\n", b"\ndata: b"], [b"data: a\n\n"], b"data: b"),  # split in a delimiter
        ([b"data: a\r\n\r\n"], [b"data: a\r\n\r\n"], b""),  # CRLF kept as it came
        ([b": keep-alive\n\n"], [b": keep-alive\n\n"], b""),
        ([b"da", b"ta: x", b"\n\n"], [b"data: x\n\n"], b""),
    ],
)
def test_events_are_split_as_they_came(
    pieces: list[bytes], events: list[bytes], rest: bytes
) -> None:
    splitter = Events()
    got = [e for p in pieces for e in splitter.feed(p)]
    assert got == events and splitter.pending == rest


@pytest.mark.parametrize(
    ("event", "data"),
    [
        (b"data: {}\n\n", b"{}"),
        (b"data:{}\n\n", b"{}"),
        (b"event: x\ndata: a\ndata: b\n\n", b"a\nb"),
        (b": comment\n\n", None),
    ],
)
def test_data_of(event: bytes, data: bytes | None) -> None:
    assert data_of(event) == data


def test_the_tally_keeps_content_usage_and_the_first_token() -> None:
    t = Tally(t0=0.0)
    assert t.take(data_of(chunk({"role": "assistant", "content": ""})) or b"") is Kind.FORWARD
    assert t.ttft_ms is None  # a role chunk is not a token
    t.take(data_of(chunk({"content": "Hel"})) or b"")
    first = t.ttft_ms
    assert first is not None
    t.take(data_of(chunk({"content": "lo"})) or b"")
    assert t.ttft_ms == first and not t.finished
    t.take(data_of(chunk({}, "stop")) or b"")
    assert t.finished and t.outputs == ["Hello"]
    usage = sse({"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    assert t.take(data_of(usage) or b"") is Kind.USAGE
    assert (t.input_tokens, t.output_tokens) == (3, 2)
    assert t.take(b"[DONE]") is Kind.DONE and t.done
    whole = orjson.loads(t.whole() or b"")
    assert whole["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert whole["usage"]["completion_tokens"] == 2 and whole["model"] == "m"


@pytest.mark.parametrize(
    ("data", "kind", "rebuildable"),
    [
        (b'{"error": {"message": "overloaded"}}', Kind.ERROR, True),
        (b"not json", Kind.FORWARD, False),
        (b"[1]", Kind.FORWARD, False),
        (data_of(chunk({"tool_calls": [{"index": 0, "id": "t"}]})), Kind.FORWARD, False),
        (
            orjson.dumps({"choices": [{"index": 0, "delta": {}, "logprobs": {"content": []}}]}),
            Kind.FORWARD,
            False,
        ),
        (data_of(chunk({"content": "x"})), Kind.FORWARD, True),
    ],
)
def test_the_tally_marks_what_it_cannot_rebuild(
    data: bytes | None, kind: Kind, rebuildable: bool
) -> None:
    t = Tally(t0=0.0)
    assert t.take(data or b"") is kind
    assert t.rebuildable is rebuildable


def test_a_tool_call_counts_as_the_first_token_but_is_not_cached() -> None:
    t = Tally(t0=0.0)
    t.take(data_of(chunk({"tool_calls": [{"index": 0, "function": {"name": "f"}}]})) or b"")
    t.take(data_of(chunk({}, "tool_calls")) or b"")
    assert t.ttft_ms is not None and t.finished and t.whole() is None
    assert t.outputs == [None]


def test_two_choices_are_kept_apart() -> None:
    t = Tally(t0=0.0)
    for index, text in ((0, "a"), (1, "b"), (0, "c")):
        t.take(data_of(chunk({"content": text}, index=index)) or b"")
    assert t.outputs == ["ac", "b"] and not t.finished
    t.take(data_of(chunk({}, "stop", index=0)) or b"")
    assert not t.finished
    t.take(data_of(chunk({}, "length", index=1)) or b"")
    assert t.finished


WHOLE = {
    "id": "w1",
    "object": "chat.completion",
    "created": 5,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi there"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
}


@pytest.mark.parametrize("include_usage", [False, True])
def test_replay_is_the_chunks_openai_streams(include_usage: bool) -> None:
    events = replay(orjson.dumps(WHOLE), include_usage)
    chunks = [orjson.loads(data_of(e) or b"") for e in events]
    assert [c["choices"][0]["delta"] for c in chunks[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi there"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == WHOLE["usage"]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "w1" for c in chunks)
    assert all(("usage" in c) is include_usage for c in chunks[:-1])
    # and what a tally makes of it is the answer again
    t = Tally(t0=0.0)
    for e in events:
        t.take(data_of(e) or b"")
    back = orjson.loads(t.whole() or b"")
    assert back["choices"][0]["message"] == WHOLE["choices"][0]["message"]
    assert back["usage"] == WHOLE["usage"] and back["id"] == "w1"


def test_replay_streams_tool_calls_with_their_index() -> None:
    call = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    doc = {
        **WHOLE,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    chunks = [orjson.loads(data_of(e) or b"") for e in replay(orjson.dumps(doc), False)]
    assert chunks[1]["choices"][0]["delta"] == {"tool_calls": [{"index": 0, **call}]}
    assert chunks[2]["choices"][0]["finish_reason"] == "tool_calls"


# -- the stream fields of a request ------------------------------------------------------------
VARIANT = PromptVariant("v1", "{{q}}", None, "gpt-4o-mini")


@pytest.mark.parametrize(
    ("fields", "stream", "usage"),
    [
        ({}, False, False),
        ({"stream": False}, False, False),
        ({"stream": None}, False, False),
        ({"stream": True}, True, False),
        ({"stream": True, "stream_options": None}, True, False),
        ({"stream": True, "stream_options": {"include_usage": True}}, True, True),
        ({"stream": True, "stream_options": {"include_usage": False}}, True, False),
        ({"stream": True, "stream_options": {"include_obfuscation": False}}, True, False),
    ],
)
def test_stream_fields(fields: dict[str, Any], stream: bool, usage: bool) -> None:
    prepared = VARIANT.prepare({"variables": {"q": "hi"}, **fields})
    assert (prepared.stream, prepared.include_usage) == (stream, usage)
    assert "stream" not in prepared.body and "stream_options" not in prepared.body
    if stream:  # the upstream is always asked for the usage chunk
        assert prepared.upstream == {
            **prepared.body,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    else:
        assert prepared.upstream is prepared.body


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stream": "true"}, '"stream" must be true or false'),
        ({"stream": 1}, '"stream" must be true or false'),
        ({"stream_options": {"include_usage": True}}, 'only allowed with "stream": true'),
        ({"stream": False, "stream_options": {}}, 'only allowed with "stream": true'),
        ({"stream": True, "stream_options": [True]}, "must be an object"),
        ({"stream": True, "stream_options": {"usage": True}}, "not usage"),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, "include_usage"),
    ],
)
def test_bad_stream_fields_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        VARIANT.prepare({"variables": {"q": "hi"}, **fields})
