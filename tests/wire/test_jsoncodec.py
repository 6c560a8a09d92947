"""webhook/wire/jsoncodec.py: orjson's speed, the standard library's verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.wire import jsoncodec

REVIEWS = sorted((Path(__file__).parent.parent / "fixtures" / "apiserver-reviews").glob("*.json"))


@pytest.mark.parametrize("path", REVIEWS, ids=lambda p: p.stem)
def test_recorded_reviews_decode_as_json_does(path):
    data = path.read_bytes()
    assert jsoncodec.loads(data) == json.loads(data)


@pytest.mark.parametrize("text, expected", [
    ('"\\ud800"', "\ud800"),            # a lone surrogate escape: orjson refuses it, json reads it
    ("NaN", None),                       # json's non-standard constant (compared below)
    # Past 64 bits orjson reads a float, where json reads an int: both are no port, no count.
    ("123456789012345678901234567890", 1.2345678901234568e+29),
    ('{"a": 1, "a": 2}', {"a": 2}),      # duplicated key: the last one wins, as in json
])
def test_what_orjson_refuses_is_read_as_json_reads_it(text, expected):
    got = jsoncodec.loads(text.encode())
    if expected is None:
        assert got != got  # NaN
    else:
        assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("text", [b"", b"{", b"\xff\xfe", b'{"a": 1,}', b"[1] [2]"])
def test_invalid_json_raises_value_error_with_json_message(text):
    with pytest.raises(ValueError) as raised:
        jsoncodec.loads(text)
    with pytest.raises(ValueError) as reference:
        json.loads(text)
    assert str(raised.value) == str(reference.value)


def test_nesting_past_both_limits_raises_recursion_error_like_json():
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(RecursionError):
        jsoncodec.loads(deep)


def test_dumps_is_compact_utf8():
    assert jsoncodec.dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()


def test_dumps_escapes_a_lone_surrogate_as_ascii():
    data = jsoncodec.dumps({"uid": "x\ud800y"})
    assert data == b'{"uid":"x\\ud800y"}'
    assert json.loads(data) == {"uid": "x\ud800y"}


def test_dumps_uses_default_on_both_paths():
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert jsoncodec.dumps({"v": Odd()}, default=str) == b'{"v":"odd"}'
    assert jsoncodec.dumps({"v": Odd(), "s": "\udfff"}, default=str) == b'{"v":"odd","s":"\\udfff"}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_round_trip_agrees_with_json(value):
    data = jsoncodec.dumps(value)
    assert json.loads(data) == value
    assert jsoncodec.loads(data) == value
