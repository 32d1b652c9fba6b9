"""A block's columns give back the records they were made of, field for field, and each
partial read (by trace id, text, time range) answers as a scan of the records would."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.model import Record
from collector.store.blocks import (
    BlockError,
    BlockHead,
    block_ids,
    decode_rows,
    encode_block,
    range_records,
    read_head,
    text_records,
    trace_records,
)

_SCALARS = (
    st.text(max_size=12)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.none()
)
_VALUES = (
    _SCALARS
    | st.lists(_SCALARS, max_size=3)
    | st.dictionaries(st.text(max_size=4), _SCALARS, max_size=3)
)
_WORDS = st.sampled_from(["GET", "/api/orders", "200", "10.0.0.7", "took", "42", "x", ""])


@st.composite
def _record(draw: st.DrawFn) -> Record:
    words = draw(st.lists(_WORDS | st.text(max_size=6), max_size=8))
    message = draw(st.sampled_from([" ", "\n", '"', "\\", "=", ""])).join(words)
    if draw(st.booleans()):
        message += draw(st.sampled_from(["\udc80", "\u212aelvin", "\u4e2d\U0001f525", "]\n["]))
    attributes: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), _VALUES, max_size=4))
    for key in draw(st.lists(st.sampled_from(words or ["none"]), max_size=3)):
        attributes[key] = key  # a value the message holds
        if key.isascii() and key.isdigit():
            attributes[key + "#"] = int(key)
    return Record(
        time_ns=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        source=draw(st.sampled_from(["backend", "otlp", "browser"])),
        level=draw(st.sampled_from(["info", "error", "debug"])),
        message=message,
        service=draw(st.text(max_size=5)),
        trace_id=draw(st.none() | st.binary(min_size=16, max_size=16) | st.binary(max_size=20)),
        span_id=draw(st.none() | st.binary(min_size=8, max_size=8) | st.binary(max_size=10)),
        correlation_id=draw(st.none() | st.text(max_size=6)),
        tags=tuple(draw(st.lists(st.text(max_size=5), max_size=3))),
        attributes=attributes,
        kind=draw(st.sampled_from(["log", "span", "event"])),
    )


def _block(records: list[Record]) -> tuple[BlockHead, bytes]:
    data, _ = encode_block(records, 1)
    head = read_head(data, len(data))
    return head, data[head.columns_offset :]


@settings(max_examples=150, deadline=None)
@given(st.lists(_record(), max_size=40), st.data())
def test_columns_give_back_every_field_and_answer_partial_reads_as_a_scan(
    drawn: list[Record], data: st.DataObject
) -> None:
    # Many copies too: past the rows read one by one, and across stretches of the index.
    copies = data.draw(st.sampled_from([1, 1, 40]))
    records = [dataclasses.replace(r) for _ in range(copies) for r in drawn]
    next_id = 1
    for record in records:
        next_id += data.draw(st.integers(min_value=0, max_value=3))
        record.id = next_id
        next_id += 1
    head, body = _block(records)
    assert head.version == 3 and head.count == len(records)
    assert decode_rows(head, body) == records
    assert list(block_ids(head, body)) == [r.id for r in records]
    for trace_id in {r.trace_id for r in records if r.trace_id is not None} | {bytes(16)}:
        assert trace_records(head, body, trace_id) == [r for r in records if r.trace_id == trace_id]
    if records:
        lo, hi = sorted(data.draw(st.sampled_from([r.time_ns for r in records])) for _ in range(2))
        assert range_records(head, body, lo, hi) == [r for r in records if lo <= r.time_ns <= hi]
        message = data.draw(st.sampled_from([r.message for r in records]))
        start = data.draw(st.integers(min_value=0, max_value=len(message)))
        text = message[start : start + data.draw(st.integers(min_value=1, max_value=6))].swapcase()
        found = text_records(head, body, text)
        if found is not None:
            assert [r for r in found if text.lower() in r.message.lower()] == [
                r for r in records if text.lower() in r.message.lower()
            ]
            assert all(r in records for r in found)


def test_a_damaged_column_is_a_block_error_never_a_crash() -> None:
    records = [
        Record(time_ns=i, source="backend", level="info", message=f"m{i}", id=i + 1)
        for i in range(50)
    ]
    head, body = _block(records)
    for at in range(0, len(body), 7):
        damaged = bytearray(body)
        damaged[at] ^= 0x5A
        with pytest.raises(BlockError):
            decode_rows(head, bytes(damaged))
    short = dataclasses.replace(head, count=51)
    with pytest.raises(BlockError, match="51"):
        decode_rows(short, body)


def _logged(messages: list[str]) -> list[Record]:
    return [
        Record(time_ns=i, source="backend", level="info", message=m, id=i + 1)
        for i, m in enumerate(messages)
    ]


def test_letters_whose_lowercase_is_ascii_are_found_by_ascii_text() -> None:
    messages = ["\u212aelvin scale", "TAX\u0130 rank", "plain kelvin", "ID=42 took 7 MS", "other"]
    records = _logged(messages)
    head, body = _block(records)
    # Digits and punctuation are looked for as they are, before the messages are lowercased.
    for text, expected in (
        ("KELVIN", [1, 3]),
        ("taxi", [2]),
        ("ELVIN S", [1]),
        ("id=42 TOOK 7 ms", [4]),
        ("id=4 took", []),
        ("=42 ", [4]),
    ):
        found = text_records(head, body, text)
        assert found is not None
        assert [r.id for r in found if text.lower() in r.message.lower()] == expected


def test_a_text_whose_caseless_part_is_in_many_lines_is_searched_in_the_whole_column() -> None:
    # "=1 " is in every line: past the few lines asked one by one, the column is searched.
    messages = [f"ID=1 row {i}" + (" TOOK" if i % 7 == 3 else "") for i in range(200)]
    records = _logged(messages)
    head, body = _block(records)
    found = text_records(head, body, "id=1 row 1")
    assert found is not None
    assert [r.id for r in found if "id=1 row 1" in r.message.lower()] == [
        r.id for r in records if "id=1 row 1" in r.message.lower()
    ]
    found = text_records(head, body, "1 TOOK")
    assert found is not None and {r.id for r in found} >= {
        r.id for r in records if "1 took" in r.message.lower()
    }


def test_a_rare_text_gives_its_rows_in_every_stretch_of_a_block() -> None:
    # Rows past the first 256 are found through the lines index, not by counting lines.
    wanted = {0, 255, 256, 700, 1999}
    messages = [
        "job id=1234 TOOK 5ms" if i in wanted else f"job id={i + 5000} took, batch=1234 x"
        for i in range(2000)
    ]
    records = _logged(messages)
    head, body = _block(records)
    found = text_records(head, body, "ID=1234 took")
    assert found is not None
    assert [r.id - 1 for r in found] == sorted(wanted)
    assert [r.message for r in found] == [messages[i] for i in sorted(wanted)]
