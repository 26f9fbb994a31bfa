"""The streaming JSON scanner (readers/jsonscan.py) on its own, against naive references.

The scanner finds the brackets outside strings, and their depths, block by block; the stream
decodes the elements of tracked top-level arrays in batches. Both are checked with blocks as
small as one byte, so that blocks cut through strings, escapes and numbers.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers import jsonscan
from vprim.assets.sources.readers.base import ParseError


def naive_brackets(data: bytes) -> list[tuple[int, int, bool]]:
    """(offset, depth after it, opens) of every bracket outside strings, one byte at a time."""
    out, depth, in_string, escaped = [], 0, False, False
    for i, c in enumerate(data):
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in b"[{":
            depth += 1
            out.append((i, depth, True))
        elif c in b"]}":
            depth -= 1
            out.append((i, depth, False))
    return out


def scanned(data: bytes, block: int) -> list[tuple[int, int, bool]]:
    scanner, out = jsonscan.Scanner(), []
    for base in range(0, len(data), block):
        pos, depth, is_open = scanner.scan(data[base : base + block])
        out += zip((pos + base).tolist(), depth.tolist(), is_open.tolist())
    return out


# strings full of what the scanner must not take for structure
_TRICKY = st.text(alphabet=st.sampled_from(list('ab"\\[]{},: \u00e9\n')), max_size=12)
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _TRICKY),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_TRICKY, inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=_JSON, block=st.integers(1, 9))
def test_scanner_finds_what_a_byte_by_byte_reading_finds(value, block):
    data = json.dumps(value, ensure_ascii=False).encode()
    assert scanned(data, block) == naive_brackets(data)


def test_scanner_carries_a_backslash_run_across_blocks():
    data = b'["a\\\\", "b\\"]", ["c"]]'  # an escaped backslash, then an escaped quote
    for block in range(1, len(data) + 1):
        assert scanned(data, block) == naive_brackets(data), block


# --- the stream ---------------------------------------------------------------------------------
class Recorder:
    """A sink that keeps the elements it is given, and which path gave each."""

    fast_type = list[dict[str, int]]  # fast only when every value is an integer

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.paths: list[str] = []

    def fast(self, items: list) -> None:
        self.items += items
        self.paths += ["fast"] * len(items)

    def slow(self, items: list, where: str) -> None:
        self.items += items
        self.paths += ["slow"] * len(items)


def stream(data: bytes, block: int = 1 << 20, batch: int = 1000) -> tuple[Any, dict]:
    """``data`` through an ArrayStream tracking ``items``: the stream and the top level."""
    out = jsonscan.ArrayStream("doc.json", batch, {"items": Recorder})
    f, first = jsonscan.open_utf8(io.BytesIO(data), "doc.json")
    if first:
        out.feed(first)
    while chunk := f.read(block):
        out.feed(chunk)
    return out, out.finish()


_ELEMENT = st.dictionaries(
    _TRICKY, st.one_of(st.integers(-(2**63), 2**63 - 1), _JSON), min_size=0, max_size=3
)


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(_ELEMENT, max_size=12),
    info=_JSON,
    block=st.integers(1, 40),
    batch=st.integers(1, 5),
)
def test_stream_gives_the_elements_json_load_gives(items, info, block, batch):
    doc = {"info": info, "items": items, "tail": [1, {"x": "]"}]}
    data = json.dumps(doc, ensure_ascii=False).encode()
    out, top = stream(data, block, batch)
    assert out.sinks["items"].items == items
    # the skeleton: the top level with each array or object value as [] / {}
    shown = [] if isinstance(info, list) else {} if isinstance(info, dict) else info
    assert top == {"info": shown, "items": [], "tail": []}


def test_elements_that_do_not_fit_go_slow_alone():
    # misfits of the fast type (a string, a float): set aside one by one
    items = [{"a": 1}, {"a": "x"}, {"a": 2}, {"a": 2.5}, {"a": 3}]
    sink = stream(json.dumps({"items": items}).encode())[0].sinks["items"]
    assert sink.items == items
    assert sink.paths == ["fast", "slow", "fast", "slow", "fast"]
    # a NaN token msgspec cannot decode: its element alone goes to the stdlib json
    items = [{"a": 1}, {"a": math.nan}, {"a": 2}, {"a": 3}]
    sink = stream(json.dumps({"items": items}).encode())[0].sinks["items"]
    assert [sink.items[i] for i in (0, 2, 3)] == [items[i] for i in (0, 2, 3)]
    assert math.isnan(sink.items[1]["a"])
    assert sink.paths == ["fast", "slow", "fast", "fast"]


def test_a_key_given_twice_keeps_its_last_array():
    out, _ = stream(b'{"items": [{"a": 1}], "items": [{"a": 2}, {"a": 3}]}')
    assert out.sinks["items"].items == [{"a": 2}, {"a": 3}]


def test_a_value_that_is_not_an_array_is_not_tracked():
    out, top = stream(b'{"items": {"a": 1}, "other": [{"a": 2}]}')
    assert out.sinks == {} and top == {"items": {}, "other": []}


@pytest.mark.parametrize(
    "data, reason",
    [
        (b'{"items": [{"a": 1}, {"a": 2}', Reason.PARSE_INVALID_JSON),  # cut short
        (b'{"items": [{"a": 1},]}', Reason.PARSE_INVALID_JSON),  # a trailing comma
        (b'{"items": [{"a": 1} {"a": 2}]}', Reason.PARSE_INVALID_JSON),  # a missing comma
        (b'{"items": [{"a": 1}, 7]}', Reason.PARSE_INVALID_JSON),  # an element not an object
        (b'{"items": [{"a": 1}]]}', Reason.PARSE_INVALID_JSON),  # unbalanced
        (b'{"items": [{"a": 1}}}', Reason.PARSE_INVALID_JSON),  # mismatched
        (b'[{"a": 1}]', Reason.PARSE_INVALID_JSON),  # the top level is not an object
        (b'{"info": {"a": tru}, "items": []}', Reason.PARSE_INVALID_JSON),  # a skipped value
        (b'{"items": [], "x": 1,}', Reason.PARSE_INVALID_JSON),  # the top level itself
        (b'{"items": [{"a": "caf\xe9"}]}', Reason.PARSE_BAD_ENCODING),  # not UTF-8
        (b'{"items": [{"a": "\xc3', Reason.PARSE_BAD_ENCODING),  # ends inside a character
        (b"  \n ", Reason.PARSE_EMPTY_FILE),
    ],
)
def test_broken_documents(data, reason):
    for block in (1, 3, 1 << 20):
        with pytest.raises(ParseError) as err:
            stream(data, block)
        assert err.value.reason == reason, (block, err.value.detail)
        assert err.value.detail.startswith("doc.json")


def test_a_large_skipped_value_is_not_kept(monkeypatch):
    monkeypatch.setattr(jsonscan, "SKIPPED_CHECK_BYTES", 8)
    # above the limit a skipped value is only checked for structure, not decoded
    out, top = stream(b'{"info": {"a": tru, "b": [1, 2, 3]}, "items": [{"a": 1}]}', block=4)
    assert out.sinks["items"].items == [{"a": 1}] and top["info"] == {}


def test_open_utf8_skips_a_bom_and_reencodes_utf16():
    f, first = jsonscan.open_utf8(io.BytesIO(b'\xef\xbb\xbf{"a": 1}'), "x")
    assert first + f.read() == b'{"a": 1}'
    f, first = jsonscan.open_utf8(io.BytesIO('{"a": "\u00e9"}'.encode("utf-16")), "x")
    assert first + f.read() == '{"a": "\u00e9"}'.encode()


def test_runs_of_consecutive_indices() -> None:
    assert jsonscan.runs([]) == []
    assert jsonscan.runs([0, 1, 2, 5, 7, 8]) == [(0, 3), (5, 6), (7, 9)]
