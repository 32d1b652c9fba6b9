"""The native API on :7890: event intake, trace lookup, timeline filters, status."""

from __future__ import annotations

import json
import os
from typing import Any

import aiohttp
import pytest

from tests.conftest import Running
from tests.test_otlp_http import otlp_json, post, span

TRACE = "5b8efff798038103d269b633813fc60c"


async def post_json(url: str, payload: Any) -> tuple[int, dict[str, Any], Any]:
    status, raw, headers = await post(url, json.dumps(payload).encode())
    return status, json.loads(raw), headers


async def test_single_and_batch_events_are_stored_with_ids(gasoline: Running) -> None:
    status, answer, _ = await post_json(
        f"{gasoline.api}/event",
        {
            "timestamp": 1704067200000,
            "level": "info",
            "source": "browser",
            "message": "click",
            "tags": ["page:/cart"],
            "metadata": {"selector": "#pay"},
        },
    )
    assert status == 200 and answer["status"] == "ok" and answer["event_id"]
    status, answer, _ = await post_json(
        f"{gasoline.api}/v1/events",
        {"events": [{"message": "a", "level": "warning"}, {"message": "b", "level": "ERROR"}]},
    )
    assert status == 200 and answer["count"] == 2 and len(answer["event_ids"]) == 2
    await gasoline.settled()
    _, timeline = await gasoline.get_json("/buffers/timeline?source=browser")
    [click] = timeline["events"]
    assert click["message"] == "click" and click["timestamp"] == 1704067200000
    assert click["tags"] == ["page:/cart"] and click["metadata"] == {"selector": "#pay"}
    _, timeline = await gasoline.get_json("/buffers/timeline?level=warn")
    assert [(e["message"], e["level"]) for e in timeline["events"]] == [
        ("a", "warn"),
        ("b", "error"),
    ]


async def test_event_levels_use_the_same_map_as_log_lines(gasoline: Running) -> None:
    """``WRN`` in a log line is warn; so is ``wrn`` posted as an event's level."""
    status, answer, _ = await post_json(
        f"{gasoline.api}/event", {"message": "short spelling", "level": "wrn"}
    )
    assert status == 200 and answer["status"] == "ok"
    await gasoline.settled()
    _, timeline = await gasoline.get_json("/buffers/timeline?level=warn")
    assert [(e["message"], e["level"]) for e in timeline["events"]] == [("short spelling", "warn")]


async def test_events_link_to_traces_by_traceparent_ids_or_correlation(gasoline: Running) -> None:
    await post(
        f"{gasoline.http}/v1/traces",
        json.dumps(otlp_json([span("eee19b7ec3c1b174", "POST /pay")])).encode(),
    )
    events = [
        {
            "message": "fetch /pay",
            "source": "browser",
            "metadata": {
                "traceparent": f"00-{TRACE}-eee19b7ec3c1b174-01",
                "correlation_id": "req-9",
            },
        },
        {"message": "by ids", "trace_id": TRACE, "span_id": "eee19b7ec3c1b174"},
        {"message": "only the request id", "correlation_id": "req-9"},
    ]
    status, _, _ = await post_json(f"{gasoline.api}/events", {"events": events})
    assert status == 200
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    assert [r["message"] for r in doc["records"]] == ["fetch /pay", "by ids", "only the request id"]
    _, timeline = await gasoline.get_json("/buffers/timeline?correlation_id=req-9")
    messages = [e["message"] for e in timeline["events"]]
    assert "checkout: POST /pay" in messages and "only the request id" in messages


BAD_EVENTS = [
    ({"events": [{"message": "ok"}, {"message": 5}]}, "events[1].message: expected a string"),
    ({"events": [{"level": "loud"}]}, "events[0].level: 'loud' is not a level"),
    ({"events": [{"timestamp": "yesterday"}]}, "events[0].timestamp: 'yesterday' is not a time"),
    ({"events": [{"trace_id": "abc"}]}, "events[0].trace_id: 'abc' is not an id"),
    ({"events": [{"traceparent": "00-zz-yy-01"}]}, "events[0].traceparent"),
    ({"events": [{"tags": "x"}]}, "events[0].tags: expected a list of strings"),
    ({"events": "nope"}, 'body must be {"events": [...]}'),
    ({"events": [[1]]}, "events[0]: expected an object"),
]


@pytest.mark.parametrize(("payload", "message"), BAD_EVENTS, ids=[m for _, m in BAD_EVENTS])
async def test_bad_events_get_400_naming_the_field(
    gasoline: Running, payload: Any, message: str
) -> None:
    status, answer, _ = await post_json(f"{gasoline.api}/events", payload)
    assert status == 400 and message in answer["error"]
    _, status_doc = await gasoline.get_json("/daemon/status")
    assert status_doc["store"]["records"] == 0


async def test_batches_over_the_limit_get_413(gasoline: Running) -> None:
    status, answer, _ = await post_json(
        f"{gasoline.api}/events", {"events": [{"message": "x"}] * 10_001}
    )
    assert status == 413 and "limit is 10000" in answer["error"]
    status, raw, _ = await post(f"{gasoline.api}/events", b"{broken")
    assert status == 400 and "not valid JSON" in json.loads(raw)["error"]


async def test_trace_lookup_errors(gasoline: Running) -> None:
    status, answer = await gasoline.get_json("/v1/traces/xyz")
    assert status == 400 and "32 hex digits" in answer["error"]
    status, answer = await gasoline.get_json(f"/v1/traces/{os.urandom(16).hex()}")
    assert status == 404 and "not in the store" in answer["error"]


async def test_timeline_rejects_unknown_parameters_and_bad_values(gasoline: Running) -> None:
    for query, message in (
        ("?colour=red", "unknown filter 'colour'"),
        ("?level=loud", "level: 'loud' must be one of"),
        ("?limit=0", "limit: '0' must be an integer from 1 to 1000"),
        ("?since=someday", "since: 'someday' is not a time"),
        ("?cursor=zzz", "cursor:"),
    ):
        status, answer = await gasoline.get_json(f"/buffers/timeline{query}")
        assert status == 400 and message in answer["error"], query


async def test_timeline_filters_by_service_time_and_text(gasoline: Running) -> None:
    events = [
        {"message": "login ok", "timestamp": 1000, "service": "auth"},
        {"message": "login failed", "timestamp": 2000, "service": "auth", "level": "error"},
        {"message": "cart loaded", "timestamp": 3000, "tags": ["service:cart"]},
    ]
    await post_json(f"{gasoline.api}/events", {"events": events})
    await gasoline.settled()
    _, answer = await gasoline.get_json("/buffers/timeline?service=auth&text=LOGIN")
    assert [e["message"] for e in answer["events"]] == ["login ok", "login failed"]
    assert answer["metadata"]["total_count"] == 2 and "query_time_ms" in answer["metadata"]
    _, answer = await gasoline.get_json("/buffers/timeline?since=1500&until=2500")
    assert [e["message"] for e in answer["events"]] == ["login failed"]
    _, answer = await gasoline.get_json("/buffers/timeline?service=cart")
    assert [e["message"] for e in answer["events"]] == ["cart loaded"]


async def test_health_and_status_report_ports_counts_and_memory(gasoline: Running) -> None:
    status, health = await gasoline.get_json("/health")
    assert status == 200 and health == {"status": "ok"}
    _, doc = await gasoline.get_json("/daemon/status")
    assert set(doc["ports"]) == {"grpc", "http", "api"}
    assert doc["ports"]["api"] == int(gasoline.api.rsplit(":", 1)[1])
    assert doc["receivers"]["otlp/grpc"]["status"] == "running"
    assert doc["memory"]["rss_bytes"] > 10_000_000
    assert doc["store"]["limits"]["max_spans"] == 1_000_000


async def test_secret_metadata_is_redacted_before_storage(gasoline: Running) -> None:
    await post_json(
        f"{gasoline.api}/event",
        {
            "message": "login",
            "metadata": {
                "Authorization": "Bearer abc",
                "headers": {"Cookie": "sid=1"},
                "user": "ann",
            },
        },
    )
    await gasoline.settled()
    _, answer = await gasoline.get_json("/buffers/timeline")
    assert answer["events"][0]["metadata"] == {
        "Authorization": "[REDACTED]",
        "headers": {"Cookie": "[REDACTED]"},
        "user": "ann",
    }


async def test_api_cors_for_the_extension_page(gasoline: Running) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.options(
            f"{gasoline.api}/events",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        ) as resp,
    ):
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


async def test_plain_lines_are_parsed_into_records_on_their_trace(gasoline: Running) -> None:
    lines = [
        json.dumps(
            {
                "level": "error",
                "msg": "db timeout",
                "trace_id": TRACE,
                "span_id": "eee19b7ec3c1b174",
            }
        ),
        "2024-01-02 15:04:05,123 WARNING app: slow request request_id=req-77",
        'Traceback (most recent call last):\n  File "app.py", line 1\nValueError: bad',
    ]
    status, answer, _ = await post_json(
        f"{gasoline.api}/v1/lines", {"service": "api", "tags": ["service:api"], "lines": lines}
    )
    assert status == 200 and answer["count"] == 3
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    [record] = doc["records"]
    assert (record["message"], record["level"], record["service"]) == ("db timeout", "error", "api")
    _, timeline = await gasoline.get_json("/buffers/timeline?correlation_id=req-77")
    [slow] = timeline["events"]
    assert slow["level"] == "warn" and slow["timestamp"] == 1704207845123
    status, _, _ = await post_json(
        f"{gasoline.api}/v1/lines", {"lines": ["no time here"], "observed_time_ms": 1704067200000}
    )
    await gasoline.settled()
    _, timeline = await gasoline.get_json("/buffers/timeline?text=no+time+here")
    assert timeline["events"][0]["timestamp"] == 1704067200000
    status, answer, _ = await post_json(f"{gasoline.api}/v1/lines", {"lines": "nope"})
    assert status == 400 and "lines" in answer["error"]


async def test_lines_batch_sent_twice_is_stored_once(gasoline: Running) -> None:
    body = {"service": "twice", "batch": "run1-7", "lines": ["first copy", "second line"]}
    status, answer, _ = await post_json(f"{gasoline.api}/v1/lines", body)
    assert (status, answer) == (200, {"status": "ok", "count": 2})
    status, answer, _ = await post_json(f"{gasoline.api}/v1/lines", body)
    assert (status, answer) == (200, {"status": "ok", "count": 2, "duplicate": True})
    status, answer, _ = await post_json(f"{gasoline.api}/v1/lines", {**body, "batch": "run1-8"})
    assert (status, answer["count"]) == (200, 2)
    await gasoline.settled()
    _, doc = await gasoline.get_json("/buffers/timeline?service=twice")
    assert [e["message"] for e in doc["events"]].count("first copy") == 2
    status, answer, _ = await post_json(f"{gasoline.api}/v1/lines", {**body, "batch": 7})
    assert status == 400 and "batch" in answer["error"]


async def test_request_id_on_a_span_links_log_lines_before_and_after_it(
    gasoline: Running,
) -> None:
    """A backend logs only its request id; the span carries it as a request header."""
    before = {"service": "api", "lines": ["ERROR payment declined request_id=req-42"]}
    await post_json(f"{gasoline.api}/v1/lines", before)
    await gasoline.settled()
    traced = span(
        "eee19b7ec3c1b174",
        "POST /pay",
        attributes=[
            {
                "key": "http.request.header.x-request-id",
                "value": {"arrayValue": {"values": [{"stringValue": "req-42"}]}},
            }
        ],
    )
    status, _, _ = await post(
        f"{gasoline.http}/v1/traces", json.dumps(otlp_json([traced])).encode()
    )
    assert status == 200
    await gasoline.settled()
    after = {"service": "api", "lines": ["INFO refund queued request_id=req-42"]}
    await post_json(f"{gasoline.api}/v1/lines", after)
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    messages = sorted(r["message"] for r in doc["records"])
    assert len(messages) == 2 and all(r["trace_id"] == TRACE for r in doc["records"])
    assert any("payment declined" in m for m in messages)
    assert any("refund queued" in m for m in messages)


async def test_text_blocks_are_grouped_per_stream_across_posts(gasoline: Running) -> None:
    """How gasoline-run posts: raw blocks of lines; the daemon groups each stream."""
    url = f"{gasoline.api}/v1/lines"
    first = {
        "service": "blocks",
        "stream": "run-1",
        "batch": "b1",
        "text": 'ERROR payment failed\nTraceback (most recent call last):\n  File "pay.py", line 3',
        "end": False,
    }
    other = {"service": "blocks", "stream": "run-2", "text": "another stream", "end": True}
    second = {
        "service": "blocks",
        "stream": "run-1",
        "batch": "b2",
        "text": "ValueError: card declined\nnext request ok",
        "end": True,
    }
    for body in (first, other, second):
        status, answer, _ = await post_json(url, body)
        assert status == 200, answer
    status, answer, _ = await post_json(url, second)  # a resend changes nothing
    assert answer == {"status": "ok", "count": 2, "duplicate": True}
    await gasoline.settled()
    _, doc = await gasoline.get_json("/buffers/timeline?service=blocks")
    messages = sorted(e["message"] for e in doc["events"])
    assert messages == sorted(
        [
            "payment failed\nTraceback (most recent call last):\n"
            '  File "pay.py", line 3\nValueError: card declined',
            "another stream",
            "next request ok",
        ]
    )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"text": "a line", "stream": ""}, 400, "stream"),
        ({"text": "a line", "stream": "s", "end": "yes"}, 400, "end"),
        ({"lines": ["x"] * 10_001}, 413, "10001 lines"),
    ],
)
async def test_bad_line_posts_are_refused(
    gasoline: Running, body: dict[str, Any], status: int, error: str
) -> None:
    got, answer, _ = await post_json(f"{gasoline.api}/v1/lines", body)
    assert got == status and error in answer["error"]


async def test_raw_output_posted_as_text_plain(gasoline: Running) -> None:
    """``curl --data-binary @out.log``: the body is the output, the fields are in the query.
    A text without ``stream`` is grouped on its own; line endings, colours and overlong
    lines are dealt with by the daemon."""
    long_line = "L" * 70_000
    body = (
        b"\x1b[31mERROR\x1b[0m payment failed\r\n"
        b"Traceback (most recent call last):\n"
        b'  File "pay.py", line 3, in charge\n'
        b"ValueError: card declined\n"
        b"bad \xff utf-8\n" + long_line.encode() + b"\n"
    )
    query = "service=raw&tag=env:dev&tag=team:pay&batch=r1&observed_time_ms=1704067200000"
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # the second is a resend of the same batch
            async with session.post(
                f"{gasoline.api}/v1/lines?{query}",
                data=body,
                headers={"Content-Type": "text/plain"},
            ) as resp:
                assert resp.status == 200, await resp.text()
                answer = await resp.json()
    assert answer == {"status": "ok", "count": 6, "duplicate": True}
    await gasoline.settled()
    _, doc = await gasoline.get_json("/buffers/timeline?service=raw")
    events = sorted(doc["events"], key=lambda e: e["message"])
    assert [e["message"] for e in events] == [
        long_line[: 64 * 1024],
        "bad \ufffd utf-8",
        'payment failed\nTraceback (most recent call last):\n  File "pay.py", line 3, in '
        "charge\nValueError: card declined",
    ]
    assert events[2]["level"] == "error"
    assert all(e["tags"] == ["env:dev", "team:pay"] for e in events)
    assert events[1]["timestamp"] == 1704067200000  # no time of its own: when captured


@pytest.mark.parametrize(
    ("query", "error"),
    [("end=maybe&stream=s", "end"), ("observed_time_ms=soon", "observed_time_ms")],
)
async def test_bad_raw_output_fields_are_refused(gasoline: Running, query: str, error: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gasoline.api}/v1/lines?{query}",
            data=b"a line\n",
            headers={"Content-Type": "text/plain"},
        ) as resp,
    ):
        assert resp.status == 400
        assert error in (await resp.json())["error"]


async def test_a_text_block_is_bounded_by_the_request_size_not_the_event_count(
    gasoline: Running,
) -> None:
    block = {"service": "big", "stream": "s", "text": "\n".join(["x"] * 50_000), "end": True}
    status, answer, _ = await post_json(f"{gasoline.api}/v1/lines", block)
    assert (status, answer["count"]) == (200, 50_000)


async def test_the_intake_counts_its_refusals_in_daemon_status(gasoline: Running) -> None:
    status, _, _ = await post_json(f"{gasoline.api}/events", {"events": "not a list"})
    assert status == 400
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gasoline.api}/events", data=b"{not json") as resp:
            assert resp.status == 400
        async with http.post(f"{gasoline.api}/v1/lines", json={"lines": ["ok"]}) as resp:
            assert resp.status == 200
    _, doc = await gasoline.get_json("/daemon/status")
    assert doc["receivers"]["native"] == {
        "status": "running",
        "counts": {"requests": 3, "refused": 2},
        "refused": {"400": 2},
    }
