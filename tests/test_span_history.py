"""Spans in the durable history: a restarted ``gasoline serve`` answers the same about a
trace the OTel SDK exported (attributes, the trace list, causality) and wrote no secret;
``kill -9`` loses no span that was stored; a corrupt span block is skipped and counted;
span blocks stay within their share of ``max_bytes``, every eviction counted. A trace
that left memory is answered from disk while the daemon runs, whole and each span once,
reading only the blocks that may hold it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zstandard
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from collector.config import Duration, HistoryConfig, StoreConfig
from collector.model import DropReason
from collector.store import Store, span_blocks
from receivers.otlp_codec import decode_traces, restore_span_detail
from tests.conftest import GASOLINE, serve_process, wait_for
from tests.test_mcp import call as mcp_call
from tests.test_mcp import mcp_session

CONFIG = """
service:
  store:
    history: {block_records: 4}
"""
SECRET = "s3cr3t-bearer-9f2d"


def _export_checkout(endpoint: str, *, order: int = 1) -> str:
    """A three-span trace, exported by the SDK's OTLP/HTTP exporter; returns its id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("span-history")
    with tracer.start_as_current_span("POST /checkout", attributes={"http.route": "/checkout"}):
        with tracer.start_as_current_span(
            "charge card",
            attributes={"order.id": order, "http.request.header.authorization": SECRET},
        ) as charge:
            with tracer.start_as_current_span(
                "SELECT payments", attributes={"db.statement": "SELECT * FROM payments"}
            ) as query:
                query.add_event("retry", {"attempt": 2})
                query.set_status(Status(StatusCode.ERROR, "deadlock detected"))
            charge.set_status(Status(StatusCode.ERROR, "payment failed"))
        trace_id = format(charge.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _spans_of(http: aiohttp.ClientSession, api: str, trace_id: str, n: int) -> None:
    async with asyncio.timeout(30):  # the queue drains; the timeout guards failure
        while True:
            async with http.get(f"{api}/v1/traces/{trace_id}") as resp:
                if resp.status == 200 and (await resp.json())["span_count"] >= n:
                    return
            await asyncio.sleep(0.02)


def _flat(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A trace document's spans (a tree) by name."""
    out: dict[str, dict[str, Any]] = {}
    todo = list(document["spans"])
    while todo:
        span = todo.pop()
        out[span["name"]] = span
        todo += span.get("children", [])
    return out


def _readable_on_disk(data: Path) -> bytes:
    """Every byte under ``data``, with each zstandard frame (a block's group) and zlib
    stream in it decompressed too: what anyone reading the files could see."""
    out = []
    for path in data.rglob("*"):
        if not path.is_file():
            continue
        pieces = [path.read_bytes()]
        for match in re.finditer(re.escape(zstandard.FRAME_HEADER), pieces[0]):
            with contextlib.suppress(zstandard.ZstdError):
                frame = pieces[0][match.start() :]
                pieces.append(zstandard.ZstdDecompressor().decompressobj().decompress(frame))
        for piece in pieces:
            out.append(piece)
            for match in re.finditer(b"\x78[\x01\x5e\x9c\xda]", piece):
                stream = zlib.decompressobj()
                try:
                    out.append(stream.decompress(piece[match.start() :]))
                except zlib.error:
                    continue
    return b"".join(out)


async def test_a_restarted_serve_answers_the_same_about_a_trace_and_wrote_no_secret(
    tmp_path: Path,
) -> None:
    async with aiohttp.ClientSession() as http:
        with serve_process(tmp_path, CONFIG) as (_, urls):
            endpoint = f"{urls['OTLP/HTTP']}/v1/traces"
            trace_ids = [
                await asyncio.to_thread(_export_checkout, endpoint, order=i) for i in range(3)
            ]
            for trace_id in trace_ids:
                await _spans_of(http, urls["API"], trace_id, 3)
            api = urls["API"]
            before = [await _get(http, f"{api}/v1/traces/{t}") for t in trace_ids]
            before_list = await _get(http, f"{api}/v1/traces")
            before_why = await _get(http, f"{api}/v1/traces/{trace_ids[0]}/causality")
        with serve_process(tmp_path, CONFIG) as (_, urls):
            api = urls["API"]
            after = [await _get(http, f"{api}/v1/traces/{t}") for t in trace_ids]
            after_list = await _get(http, f"{api}/v1/traces")
            after_why = await _get(http, f"{api}/v1/traces/{trace_ids[0]}/causality")
            status = await _get(http, f"{api}/daemon/status")
            cli = subprocess.run(
                [GASOLINE, "status", "--url", api], capture_output=True, text=True, timeout=60
            )
    assert "  spans:   9 spans in 3 blocks" in cli.stdout and "9 restored" in cli.stdout
    assert after == before and after_list == before_list and after_why == before_why
    charge = _flat(after[1])["charge card"]
    assert charge["attributes"]["order.id"] == 1
    assert charge["attributes"]["http.request.header.authorization"] == "[REDACTED]"
    query = _flat(after[1])["SELECT payments"]
    assert query["attributes"]["db.statement"] == "SELECT * FROM payments"
    assert [e["name"] for e in query["events"]] == ["retry"]
    assert {t["trace_id"] for t in after_list["traces"]} >= set(trace_ids)
    spans = status["store"]["history"]["spans"]
    assert spans["state"] == "ok" and spans["restored_spans"] == 9 and spans["spans"] == 9
    assert status["store"]["spans"] == 9 and spans["bytes_per_span"] > 0
    # The balance still holds after the restart: what came back from disk is counted.
    assert {k: status["accounting"]["spans"][k] for k in ("accepted", "restored", "stored")} == {
        "accepted": 0,
        "restored": 9,
        "stored": 9,
    }
    assert "spans:     0 accepted + 9 restored = 9 stored" in cli.stdout
    readable = _readable_on_disk(tmp_path / ".gasoline/data")
    assert b"SELECT * FROM payments" in readable  # the scan does see inside the blocks
    assert SECRET.encode() not in readable  # redacted before anything was written


async def test_kill_9_mid_ingest_keeps_every_span_that_was_stored(tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        with serve_process(tmp_path, CONFIG, killed_by_test=True) as (proc, urls):
            endpoint = f"{urls['OTLP/HTTP']}/v1/traces"
            stored = [
                await asyncio.to_thread(_export_checkout, endpoint, order=i) for i in range(5)
            ]
            for trace_id in stored:
                await _spans_of(http, urls["API"], trace_id, 3)
            more = asyncio.gather(
                *(asyncio.to_thread(_export_checkout, endpoint, order=10 + i) for i in range(4)),
                return_exceptions=True,
            )
            proc.send_signal(signal.SIGKILL)
            await more
            assert proc.wait(timeout=30) == -signal.SIGKILL
        with serve_process(tmp_path, CONFIG) as (_, urls):
            pages = [await _get(http, f"{urls['API']}/v1/traces/{t}") for t in stored]
            status = await _get(http, f"{urls['API']}/daemon/status")
    for page in pages:
        assert sorted(_flat(page)) == [
            "POST /checkout",
            "SELECT payments",
            "charge card",
        ]
    spans = status["store"]["history"]["spans"]
    assert spans["restored_spans"] >= 15 and spans["spans"] + spans["pending"] >= 15


def _request(i: int, spans: int = 4) -> bytes:
    """An OTLP request of ``spans`` spans of trace ``i``, with a large-ish attribute."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    attr = resource.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "api"
    scope = resource.scope_spans.add()
    for k in range(spans):
        span = scope.spans.add()
        span.trace_id = i.to_bytes(16, "big")
        span.span_id = (i * 100 + k + 1).to_bytes(8, "big")
        span.name = f"step {k}"
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i * 1_000_000 + k
        span.end_time_unix_nano = span.start_time_unix_nano + 500
        kv = span.attributes.add()
        kv.key, kv.value.string_value = "payload", os.urandom(200).hex()
    return request.SerializeToString()


def _store(data: Path, *, max_spans: int = 1_000_000, **history: Any) -> Store:
    config = StoreConfig(max_spans=max_spans, history=HistoryConfig(dir=str(data), **history))
    store = Store(config)
    assert store.open_history(restore_span_detail) is not None
    assert store.spans.history is not None and store.spans.history.active
    return store


def test_a_corrupt_span_block_is_skipped_and_counted(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=8)
    for i in range(1, 7):
        store.spans.add(decode_traces(_request(i)).batch, time.time_ns())  # 3 blocks of 8
    store.close()
    blocks = sorted((tmp_path / "spans").glob("*.sblk"))
    assert len(blocks) == 3
    data = bytearray(blocks[1].read_bytes())
    data[-20] ^= 0xFF
    blocks[1].write_bytes(bytes(data))
    again = _store(tmp_path, block_records=8)
    history = again.spans.history
    assert history is not None
    assert history.corrupt_blocks == 1 and history.evicted[DropReason.CORRUPT] == 8
    assert again.spans.span_count == 16 and history.sealed_spans == 16
    assert [len(again.spans.trace(i.to_bytes(16, "big"))) for i in range(1, 7)] == [
        4,
        4,
        0,
        0,
        4,
        4,
    ]
    assert again.spans.trace((5).to_bytes(16, "big"))[0].detail().attributes["payload"]
    assert blocks[1].with_suffix(".corrupt").exists()
    assert "skipped" in (history.stats()["error"] or "")


def test_span_blocks_keep_to_their_share_of_max_bytes_and_count_evictions(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path, block_records=4, max_bytes=20_000, span_share=0.5)
    for i in range(1, 41):
        store.spans.add(decode_traces(_request(i)).batch, time.time_ns())
    history = store.spans.history
    assert history is not None
    assert history.sealed_bytes <= 10_000 and history.blocks
    evicted = history.evicted[DropReason.EVICTED_BYTE_LIMIT]
    assert evicted > 0 and evicted + history.sealed_spans + history.pending_spans == 160
    store.close()
    again = _store(tmp_path, block_records=4, max_bytes=20_000, span_share=0.5)
    assert again.spans.span_count == 160 - evicted  # exactly what the disk kept came back


def test_span_blocks_past_max_age_are_removed_and_counted(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=4, max_age=60)
    for i in range(1, 4):
        store.spans.add(decode_traces(_request(i)).batch, time.time_ns())
    history = store.spans.history
    assert history is not None and len(history.blocks) == 3
    store.evict_expired(time.time_ns() + 61 * 10**9)
    assert not history.blocks and history.evicted[DropReason.EXPIRED] == 12


def test_clear_removes_the_spans_on_disk_too(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=4)
    for i in range(1, 4):
        store.spans.add(decode_traces(_request(i, spans=3)).batch, time.time_ns())
    history = store.spans.history
    assert history is not None and history.sealed_spans == 6 and history.pending_spans == 3
    store.spans.clear()
    assert history.evicted[DropReason.CLEARED] == 9 and not history.blocks
    store.close()
    again = _store(tmp_path, block_records=4)
    assert again.spans.span_count == 0 and not list((tmp_path / "spans").glob("*.sblk"))


def test_a_torn_write_ahead_tail_is_cut_off_and_counted(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=100)
    for i in range(1, 4):
        store.spans.add(decode_traces(_request(i)).batch, time.time_ns())
    store.flush()
    wal = tmp_path / "spans" / "wal.log"
    whole = wal.read_bytes()
    store.spans.history = None  # as if killed: nothing sealed, the lock let go
    assert store.records.history is not None
    store.records.history.close(time.time_ns())
    wal.write_bytes(whole + whole[: len(whole) // 5])  # a fourth batch, torn mid-write
    again = _store(tmp_path, block_records=100)
    history = again.spans.history
    assert history is not None and history.wal_frames_skipped == 1
    assert again.spans.span_count == 12 and history.pending_spans == 12
    assert wal.read_bytes() == whole  # new frames will not follow a torn one


LEFT_MEMORY = """
service:
  store:
    max_spans: 5
    history: {block_records: 4}
"""


async def test_a_trace_that_left_memory_is_answered_from_disk_by_the_running_serve(
    tmp_path: Path,
) -> None:
    """Five spans fit in memory: of four three-span traces the first two leave it, and
    the third keeps two of its spans (the SDK exports each span on its own)."""
    async with aiohttp.ClientSession() as http:
        with serve_process(tmp_path, LEFT_MEMORY) as (_, urls):
            endpoint, api = f"{urls['OTLP/HTTP']}/v1/traces", urls["API"]
            trace_ids, before, before_why, before_rows = [], [], [], []
            for i in range(4):
                trace_id = await asyncio.to_thread(_export_checkout, endpoint, order=i)
                await _spans_of(http, api, trace_id, 3)  # whole in memory now
                trace_ids.append(trace_id)
                before.append(await _get(http, f"{api}/v1/traces/{trace_id}"))
                before_why.append(await _get(http, f"{api}/v1/traces/{trace_id}/causality"))
                before_rows.append(await _get(http, f"{api}/v1/traces/{trace_id}/rows"))
            status = await _get(http, f"{api}/daemon/status")
            after = [await _get(http, f"{api}/v1/traces/{t}") for t in trace_ids]
            after_why = [await _get(http, f"{api}/v1/traces/{t}/causality") for t in trace_ids]
            after_rows = [await _get(http, f"{api}/v1/traces/{t}/rows") for t in trace_ids]
            by_prefix = await _get(http, f"{api}/v1/traces/{trace_ids[0][:10]}")
            read = (await _get(http, f"{api}/daemon/status"))["store"]["history"]["spans"]
    assert status["store"]["spans"] == 5  # 7 of the 12 spans are on disk only
    assert status["accounting"]["spans"]["evicted"] == {"evicted_span_limit": 7}
    assert after == before and after_why == before_why
    assert after_rows == before_rows  # the trace page's waterfall
    assert all("SELECT payments" in json.dumps(rows) for rows in after_rows)
    assert [sorted(_flat(page)) for page in after] == [
        ["POST /checkout", "SELECT payments", "charge card"]
    ] * 4
    for page in after:  # each span once
        ids = [span["span_id"] for span in _flat(page).values()]
        assert page["span_count"] == 3 and len(set(ids)) == 3
    charge = _flat(after[0])["charge card"]
    assert charge["attributes"]["order.id"] == 0
    assert [e["name"] for e in _flat(after[0])["SELECT payments"]["events"]] == ["retry"]
    assert by_prefix == before[0]  # the short id of a trace only on disk resolves
    assert 1 <= read["blocks_read"] <= read["blocks"] and read["corrupt_blocks"] == 0


def _batch(trace_id: bytes, first: int, spans: int = 4) -> Any:
    """``spans`` spans of one trace, with span ids from ``first`` on: the OTLP request
    ``_request`` makes, given its own ids."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(_request(1, spans))
    for k, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        span.trace_id = trace_id
        span.span_id = (first + k).to_bytes(8, "big")
        if k:
            span.parent_span_id = first.to_bytes(8, "big")
    return decode_traces(request.SerializeToString()).batch


def _seen(spans: list[Any]) -> list[tuple[str, str, str, int, dict[str, Any]]]:
    return [
        (s.span_id.hex(), s.parent_id.hex(), s.name, s.start_ns, s.detail().attributes)
        for s in spans
    ]


def _tid(n: int) -> bytes:
    """Trace ids that differ in their first bytes, as real ones do."""
    return bytes([n, 0xAB, n, 0xCD]) + bytes(12)


def test_a_trace_split_between_memory_and_disk_comes_back_whole_each_span_once(
    tmp_path: Path,
) -> None:
    """Every batch is received in the same nanosecond, so the oldest chunk in memory
    and the newest that left it cannot be told apart by time: span ids tell them."""
    now = time.time_ns()
    batches = [
        _batch(_tid(1), 1),
        _batch(_tid(2), 101),
        _batch(_tid(1), 5),
        _batch(_tid(3), 201),
        _batch(_tid(1), 9),
    ]
    reference = Store(StoreConfig())
    for batch in batches:
        reference.spans.add(batch, now)
    store = _store(tmp_path, max_spans=8, block_records=8)
    for batch in batches:
        store.spans.add(batch, now)
    assert store.spans.span_count == 8 and store.spans.trace_span_count(_tid(1)) == 4
    for trace_id in (_tid(1), _tid(2), _tid(3)):
        assert _seen(store.spans.trace(trace_id)) == _seen(reference.spans.trace(trace_id))
    assert len(store.spans.trace(_tid(1))) == 12  # 8 of them from disk, one block pending
    assert store.spans.trace(_tid(9)) == []
    assert store.resolve_trace_id(_tid(2).hex()[:9]) == _tid(2)  # only on disk
    assert store.resolve_trace_id(_tid(3).hex()[:8]) == _tid(3)  # only in memory
    store.spans.add(_batch(_tid(2)[:8] + bytes([1]) + bytes(7), 301), now)
    with pytest.raises(ValueError, match="starts several trace ids"):
        store.resolve_trace_id(_tid(2).hex()[:16])  # one in memory, one on disk


def test_a_lookup_reads_only_the_blocks_that_may_hold_the_trace(tmp_path: Path) -> None:
    store = _store(tmp_path, max_spans=4, block_records=8)
    for n in range(1, 9):
        store.spans.add(_batch(_tid(n), 100 * n), time.time_ns())  # 4 blocks of 2 traces
    history = store.spans.history
    assert history is not None and len(history.blocks) == 4
    assert len(store.spans.trace(_tid(3))) == 4 and history.blocks_read == 1
    assert len(store.spans.trace(_tid(4))) == 4 and history.blocks_read == 1  # cached
    assert store.spans.trace(_tid(200)) == [] and history.blocks_read == 1  # no block may
    assert store.spans.trace(bytes(8) + _tid(3)[:8]) == [] and history.blocks_read == 1
    assert len(store.spans.trace(_tid(1))) == 4 and history.blocks_read == 2


def test_a_span_block_corrupted_while_running_is_skipped_and_counted(tmp_path: Path) -> None:
    store = _store(tmp_path, max_spans=4, block_records=8)
    for n in range(1, 7):
        store.spans.add(_batch(_tid(n), 100 * n), time.time_ns())
    history = store.spans.history
    assert history is not None
    path = tmp_path / "spans" / f"{history.blocks[1].number:020d}.sblk"  # traces 3 and 4
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    assert store.spans.trace(_tid(3)) == [] and store.spans.trace(_tid(4)) == []
    assert history.corrupt_blocks == 1 and history.evicted[DropReason.CORRUPT] == 8
    assert path.with_suffix(".corrupt").exists() and "skipped" in (history.error or "")
    assert [len(store.spans.trace(_tid(n))) for n in (1, 2, 5, 6)] == [4, 4, 4, 4]
    assert history.corrupt_blocks == 1  # set aside once, never read again


# Span blocks as the two earlier formats wrote them: three traces (``_tid(1)`` to
# ``_tid(3)``) of two spans each ("step 0", "step 1", attribute ``n`` = 10 trace + step),
# received in November 2023. ``GASSPN2`` is one zstandard frame with the index of the
# ids' first and last words; ``GASSPN1`` the same block without the index.
_V1_BLOCK = """
R0FTU1BOMQoDAAAABgAAAEBCOTb+nJcXwMZXNv6clxcWgRdEFgzvGCqk9ogotS/9YIoDdQ8A5BZ7
AQAAvISDJ0BCOTb+nJcXAgAAACAAAAABqwHNABBkZRAAZAJBNEQ1RAgAAAAIFAAAAFsic3RlcCAw
IiwgMSJdWyJzaG9wIl2vaQAAAHgB41rJyCXBJcbFU5xaVJaZnKqXl5ibKsTGxVKckV8g1MMoZM8l
wLia8SwDEhDigHJStNiKS1ILFAwsHZwszf7NmS7uaOICYXixczHmCTFJcAl54jEgVQndKENLR5hR
pmhGcQMAeyQh6xgAAAAKFgoMc2VydmljZS5uYW1lEgYKBHsBAAAVjqqAgIRIAqsCyMnIgXSGdYa0
mulOaLEVl6QWKBhYNrR4mP2bM13csaQNwvBi52LME2KSEBHyxGPASSV0owwtG2FGlaIZJQoAT18l
c3wBAAA6CATUwMZXA6sDASwBLQEswbTItciwarya+XAYdQ8cCzf7N2e6uOOWExCGFzsXY54Qk4Sc
kCceA3SV0I0ytDwIM2ormlHyAGNPJf48INCiKTJuLjhFYe0e3JDocTFUBgx8Di4KMSffiggjuMcG
YosJAY/x8NgONHfUUCZ4AuAY34PLQ8zJtyJi5CYmCwyYEFDHMJTzygjQLBgdkbWu0gWHzRph885x
O5RRY3loBDRcA2/wEGJGvnUUowKEAe/YADOSmTk2GRDIAE4=
"""

_V2_BLOCK = """
R0FTU1BOMgoDAAAABgAAAEBCOTb+nJcXwMZXNv6clxcWgRdEFgzvGCqk9ogMAAAABAAAAKnOibIB
qwHNAqsCzQOrA80AAAAAKLUv/WCKA3UPAOQWewEAALyEgydAQjk2/pyXFwIAAAAgAAAAAasBzQAQ
ZGUQAGQCQTRENUQIAAAACBQAAABbInN0ZXAgMCIsIDEiXVsic2hvcCJdr2kAAAB4AeNaycglwSXG
xVOcWlSWmZyql5eYmyrExsVSnJFfINTDKGTPJcC4mvEsAxIQ4oByUrTYiktSCxQMLB2cLM3+zZku
7mjiAmF4sXMx5gkxSXAJeeIxIFUJ3ShDS0eYUaZoRnEDAHskIesYAAAAChYKDHNlcnZpY2UubmFt
ZRIGCgR7AQAAFY6qgICESAKrAsjJyIF0hnWGtJrpTmixFZekFigYWDa0eJj9mzNd3LGkDcLwYudi
zBNikhAR8sRjwEkldKMMLRthRpWiGSUKAE9fJXN8AQAAOggE1MDGVwOrAwEsAS0BLMG0yLXIsGq8
mvlwGHUPHAs3+zdnurjjlhMQhhc7F2OeEJOEnJAnHgN0ldCNMrQ8CDNqK5pR8gBjTyX+PCDQoiky
bi44RWHtHtyQ6HExVAYMfA4uCjEn34oII7jHBmKLCQGP8fDYDjR31FAmeALgGN+Dy0PMybciYuQm
JgsMmBBQxzCU88oI0CwYHZG1rtIFh80aYfPOcTuUUWN5aAQ0XANv8BBiRr51FKMChAHv2AAzkpk5
NhkQyABO
"""


@pytest.mark.parametrize(("version", "block"), [(1, _V1_BLOCK), (2, _V2_BLOCK)])
def test_span_blocks_of_earlier_formats_are_still_read(
    tmp_path: Path, version: int, block: str
) -> None:
    (tmp_path / "spans").mkdir()
    (tmp_path / "spans" / f"{1:020d}.sblk").write_bytes(base64.b64decode(block))
    years = Duration(10 * 365 * 86400)
    store = _store(tmp_path, max_spans=4, block_records=8, max_age=years)
    history = store.spans.history
    assert history is not None and [b.groups for b in history.blocks] == [1]
    assert (history.blocks[0].firsts is None) == (version == 1)
    assert store.spans.span_count == 0  # received long before the memory tier's TTL
    for n in range(4, 8):
        store.spans.add(_batch(_tid(n), 100 * n), time.time_ns())  # new blocks beside it
    assert len(history.blocks) == 3 and history.blocks[1].firsts is not None
    for _ in range(2):
        for n in range(1, 4):
            spans = store.spans.trace(_tid(n))
            assert [(s.name, s.span_id, s.detail().attributes) for s in spans] == [
                (f"step {k}", (100 * n + k).to_bytes(8, "big"), {"n": 10 * n + k}) for k in range(2)
            ]
        assert [len(store.spans.trace(_tid(n))) for n in range(4, 8)] == [4] * 4
        assert store.spans.trace(_tid(9)) == []
        assert store.resolve_trace_id(_tid(2).hex()[:8]) == _tid(2)
        assert history.corrupt_blocks == 0
        store.close()
        store = _store(tmp_path, max_spans=4, block_records=8, max_age=years)
        history = store.spans.history
        assert history is not None and len(history.blocks) == 3


def _grouped_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_bytes: int
) -> tuple[Store, Store, list[bytes]]:
    """The same batches in a store that keeps all in memory and in one whose history
    seals blocks of 48 spans (12 batches) in groups of ``group_bytes`` (4 spans in
    memory). Trace 1 is in every third batch, trace ``2 + i`` in batch ``i`` otherwise,
    but batch 7 holds trace 2 and batch 10 one that starts with the same four bytes."""
    monkeypatch.setattr(span_blocks, "_GROUP_BYTES", group_bytes)
    now = time.time_ns()
    traces = [_tid(1 if i % 3 == 0 else 2 + i) for i in range(30)]
    traces[7], traces[10] = _tid(2), _tid(2)[:8] + bytes([1]) + bytes(7)
    reference = Store(StoreConfig())
    store = _store(tmp_path, max_spans=4, block_records=48)
    for i, trace_id in enumerate(traces):
        batch = _batch(trace_id, 10 * i + 1)
        reference.spans.add(batch, now)
        store.spans.add(batch, now)
    return reference, store, list(dict.fromkeys(traces))


@pytest.mark.parametrize("group_bytes", [1, 5000])
def test_trace_lookups_answer_the_same_across_the_groups_of_a_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_bytes: int
) -> None:
    """Each chunk a group of its own (1 byte), or four in a group (5000 bytes)."""
    reference, store, traces = _grouped_store(tmp_path, monkeypatch, group_bytes)
    history = store.spans.history
    assert history is not None and len(history.blocks) == 2
    assert all(1 < b.groups <= 12 and b.first_groups is not None for b in history.blocks)
    for trace_id in [*traces, _tid(99)]:
        assert _seen(store.spans.trace(trace_id)) == _seen(reference.spans.trace(trace_id))
    assert len(store.spans.trace(_tid(1))) == 40  # in 10 batches, and so in many groups
    assert history.corrupt_blocks == 0
    assert store.resolve_trace_id(_tid(7).hex()[:8]) == _tid(7)  # on disk only
    with pytest.raises(ValueError, match="starts several trace ids"):
        store.resolve_trace_id(_tid(2).hex()[:8])
    store.close()
    again = _store(tmp_path, max_spans=60, block_records=48)  # the newest block read whole
    assert again.spans.span_count == 60
    for trace_id in traces:
        assert _seen(again.spans.trace(trace_id)) == _seen(reference.spans.trace(trace_id))


def test_a_lookup_reads_only_the_groups_that_may_hold_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store, _ = _grouped_store(tmp_path, monkeypatch, 1)
    history = store.spans.history
    assert history is not None
    block = history.blocks[0]
    assert (
        block.groups_holding(span_blocks.trace_words(_tid(3))) == [1]
        and block.groups_holding(span_blocks.trace_words(_tid(9))) == []
    )
    assert block.groups_holding(span_blocks.trace_words(_tid(1))) == list(range(0, 12, 3))
    assert block.groups_holding(span_blocks.trace_words(_tid(2))) == [
        7,
        10,
    ]  # and the one whose id starts the same
    assert (
        block.groups_holding(span_blocks.trace_words(_tid(2)[:12] + b"\1\1\1\1")) == []
    )  # last words rule it out
    assert len(store.spans.trace(_tid(3))) == 4 and history.groups_read == 1
    assert len(store.spans.trace(_tid(3))) == 4 and history.groups_read == 1  # kept
    assert len(store.spans.trace(_tid(1))) == 40
    assert history.blocks_read == 3 and history.groups_read == 1 + 4 + 4
    assert store.spans.trace(_tid(99)) == [] and history.groups_read == 9


def test_a_corrupt_group_skips_its_block_and_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, store, _ = _grouped_store(tmp_path, monkeypatch, 1)
    history = store.spans.history
    assert history is not None
    block = history.blocks[0]
    path = tmp_path / "spans" / f"{block.number:020d}.sblk"
    offset, length = block.group_range(4)  # trace 6's batch
    data = bytearray(path.read_bytes())
    data[offset + length // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert len(store.spans.trace(_tid(7))) == 4  # its group alone is read, and holds
    assert history.corrupt_blocks == 0
    assert store.spans.trace(_tid(6)) == []
    assert history.corrupt_blocks == 1 and history.evicted[DropReason.CORRUPT] == 48
    assert path.with_suffix(".corrupt").exists() and "group 4" in (history.error or "")
    assert store.spans.trace(_tid(7)) == []  # the block is gone whole, kept groups too
    assert _seen(store.spans.trace(_tid(24))) == _seen(reference.spans.trace(_tid(24)))
    assert history.corrupt_blocks == 1 and len(history.blocks) == 1


async def test_observe_and_analyze_over_mcp_open_a_trace_that_left_memory(
    tmp_path: Path,
) -> None:
    """The MCP server (embedded mode: it runs the receivers and the store itself) holds
    three spans in memory; a second trace pushes the first out of it."""
    config = tmp_path / "gasoline.yaml"
    config.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: '127.0.0.1:0'}, "
        "http: {endpoint: '127.0.0.1:0'}}}}\n"
        "service: {api: {endpoint: '127.0.0.1:0'}, "
        "store: {max_spans: 3, history: {block_records: 4}}}\n"
    )

    async def whole(session: Any, trace_id: str) -> dict[str, Any]:
        async with asyncio.timeout(30):  # storing is asynchronous; the timeout guards failure
            while True:
                answer = await mcp_call(
                    session, "observe", what="trace", filter={"trace_id": trace_id}
                )
                if answer.get("trace", {}).get("span_count") == 3:
                    return answer
                await asyncio.sleep(0.02)

    async with mcp_session(tmp_path, "--config", str(config)) as (session, errlog):
        await wait_for(lambda: "receivers started here" in errlog.read_text())
        ports = dict(re.findall(r"(grpc|http|api) (\d+)", errlog.read_text()))
        endpoint = f"http://127.0.0.1:{ports['http']}/v1/traces"
        first = await asyncio.to_thread(_export_checkout, endpoint, order=7)
        before = await whole(session, first)
        why_before = await mcp_call(session, "analyze", type="causality", trace_id=first)
        second = await asyncio.to_thread(_export_checkout, endpoint, order=8)
        await whole(session, second)
        traces = await mcp_call(session, "observe", what="traces")
        after = await mcp_call(session, "observe", what="trace", filter={"trace_id": first})
        short = await mcp_call(session, "observe", what="trace", filter={"trace_id": first[:12]})
        why_after = await mcp_call(session, "analyze", type="causality", trace_id=first)
    assert [t["trace_id"] for t in traces["traces"]] == [second]  # first is on disk only
    for answer in (before, after, short, why_before, why_after):
        answer.get("metadata", {}).pop("query_time_ms", None)  # the one thing that may differ
    assert after == before and short == before and why_after == why_before
    assert "deadlock detected" in json.dumps(why_after)  # the cause, found on disk
    assert sorted(_flat(after["trace"])) == ["POST /checkout", "SELECT payments", "charge card"]
