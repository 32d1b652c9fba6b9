"""Counts that add up: one unit per figure, and accepted = stored + dropped + evicted per kind.

A known mix goes into a real daemon: plain lines with a multi-line traceback through
``gasoline-run`` (spooled while the daemon is down, then replayed), spans from the OTel SDK
exporter, and native events. ``gasoline status`` and ``/daemon/status`` must balance every
kind, and gasoline-run's messages must count what the daemon counts as lines.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from collector.config import StoreConfig
from collector.model import Record
from collector.store import Store
from receivers.run_wrapper.shipper import Counters
from tests.conftest import wait_for
from tests.test_run_wrapper import PY, free_port, run

GASOLINE = str(Path(sys.executable).parent / "gasoline")

# 3 lines on stdout, a 6-line traceback on stderr: 9 lines, 4 records.
CHILD = textwrap.dedent(
    """
    import sys
    print("server starting")
    print("GET /health 200")
    print("server stopping", flush=True)
    sys.stderr.write(
        "Traceback (most recent call last):\\n"
        '  File "app.py", line 9, in <module>\\n'
        "    main()\\n"
        '  File "app.py", line 5, in main\\n'
        '    raise ValueError("boom")\\n'
        "ValueError: boom\\n"
    )
    """
)
LINES, RECORDS_FROM_LINES = 9, 4
# 3 spans in one trace of at most 2; 2 events + 4 records from lines, at most 4 kept.
CONFIG = (
    "service: {{api: {{endpoint: '127.0.0.1:{port}'}},"
    " store: {{max_spans_per_trace: 2, max_records: 4, history: {{enabled: false}}}}}}"
)

_SUM_RE = re.compile(
    r"(?P<kind>spans|records):\s+(?P<accepted>\d+) accepted(?: \+ (?P<made>\d+) made from lines)?"
    r" = (?P<stored>\d+) stored \+ (?P<queued>\d+) queued"
    r" \+ (?P<dropped>\d+) dropped(?: \((?P<why_dropped>[^)]*)\))?"
    r" \+ (?P<evicted>\d+) evicted(?: \((?P<why_evicted>[^)]*)\))?$"
)
_LINES_RE = re.compile(
    r"lines:\s+(?P<accepted>\d+) accepted = (?P<parsed>\d+) parsed \+ (?P<queued>\d+) queued"
    r" \+ (?P<dropped>\d+) dropped(?: \([^)]*\))?; parsed into (?P<made>\d+) records?"
)


def _export_three_spans(endpoint: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("counts")
    with (
        tracer.start_as_current_span("GET /cart"),
        tracer.start_as_current_span("load cart"),
        tracer.start_as_current_span("SELECT items"),
    ):
        pass
    provider.shutdown()


async def _status_text(url: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        GASOLINE,
        "status",
        "--url",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GASOLINE_URL": ""},
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err
    return out.decode()


def _by_reason(text: str | None) -> dict[str, int]:
    """``trace_too_large 1, expired 2`` as a dict."""
    if not text:
        return {}
    return {reason: int(n) for reason, n in (part.rsplit(" ", 1) for part in text.split(", "))}


async def test_counts_balance_per_kind_in_status_text_and_json(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spool = tmp_path / "spool"

    # The daemon is down: every line goes to the spool, and the summary counts lines.
    rc, _, err = await run("--service", "shop", "--no-pty", PY, "-c", CHILD, spool=spool, url=url)
    assert rc == 0, err
    assert f"gasoline-run: 0 lines sent, {LINES} spooled, 0 dropped (queue full)" in err.decode()

    gasoline = await start_daemon(CONFIG.format(port=port))
    rc, _, err = await run("--flush-spool", spool=spool, url=url)
    assert (rc, err.decode()) == (0, f"gasoline-run: replayed {LINES} lines\n")

    await asyncio.to_thread(_export_three_spans, f"{gasoline.http}/v1/traces")
    events = {"events": [{"message": "cart opened"}, {"message": "cart paid", "level": "warn"}]}
    async with aiohttp.ClientSession() as http, http.post(f"{url}/events", json=events) as resp:
        assert resp.status == 200
    await gasoline.settled()

    # /daemon/status: one unit per kind, every sum exact.
    status, doc = await gasoline.get_json("/daemon/status")
    assert status == 200
    accounting = doc["accounting"]
    assert accounting["lines"] == {
        "accepted": LINES,
        "queued": 0,
        "parsed": LINES,
        "dropped": {},
    }
    assert accounting["spans"] == {
        "accepted": 3,
        "restored": 0,
        "queued": 0,
        "stored": 2,
        "dropped": {"trace_too_large": 1},
        "evicted": {},
    }
    assert accounting["records"] == {
        "accepted": 2,
        "from_lines": RECORDS_FROM_LINES,
        "restored": 0,
        "queued": 0,
        "stored": 4,
        "dropped": {},
        "evicted": {"evicted_record_limit": 2},
    }
    assert accounting["refused"] == {}
    # The older figures agree with the balance, each in its own unit.
    assert doc["pipeline"]["accepted"] == {"lines": LINES, "spans": 3, "records": 2}
    assert doc["pipeline"]["receivers"]["native"]["accepted"] == {"lines": LINES, "records": 2}
    assert (doc["store"]["spans"], doc["store"]["records"]) == (2, 4)

    # gasoline status: the same sums, shown.
    text = await _status_text(url)
    assert "spans:     3 accepted = 2 stored + 0 queued + 1 dropped (trace_too_large 1)" in text
    assert (
        f"records:   2 accepted + {RECORDS_FROM_LINES} made from lines = 4 stored + 0 queued"
        " + 0 dropped + 2 evicted (evicted_record_limit 2)"
    ) in text
    assert (
        f"lines:     {LINES} accepted = {LINES} parsed + 0 queued + 0 dropped; "
        f"parsed into {RECORDS_FROM_LINES} records"
    ) in text
    assert "refused:   none" in text
    sums = [m.groupdict() for m in map(_SUM_RE.match, text.splitlines()) if m]
    assert [s["kind"] for s in sums] == ["spans", "records"]
    for s in sums:
        taken = int(s["accepted"]) + int(s["made"] or 0)
        parts = [int(s[k]) for k in ("stored", "queued", "dropped", "evicted")]
        assert taken == sum(parts), s
        assert int(s["dropped"]) == sum(_by_reason(s["why_dropped"]).values())
        assert int(s["evicted"]) == sum(_by_reason(s["why_evicted"]).values())
    [lines] = [m.groupdict() for m in map(_LINES_RE.match, text.splitlines()) if m]
    assert int(lines["accepted"]) == sum(int(lines[k]) for k in ("parsed", "queued", "dropped"))
    assert int(lines["made"]) == int(sums[1]["made"])


async def test_lines_sent_live_match_what_the_daemon_accepts(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    """A run with the daemon up, one with it down and replayed by the next run: the daemon's
    lines accepted is the sum of what the runs shipped, and its records come from them."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spool = tmp_path / "spool"
    rc, _, err = await run("--service", "shop", "--no-pty", PY, "-c", CHILD, spool=spool, url=url)
    assert rc == 0 and f"0 lines sent, {LINES} spooled" in err.decode()

    gasoline = await start_daemon(CONFIG.format(port=port))
    rc, _, err = await run("--service", "shop", "--no-pty", PY, "-c", CHILD, spool=spool, url=url)
    assert rc == 0 and b"gasoline-run:" not in err  # nothing spooled or lost: no summary
    await gasoline.settled()
    _, doc = await gasoline.get_json("/daemon/status")
    lines = doc["accounting"]["lines"]
    assert (lines["accepted"], lines["parsed"]) == (2 * LINES, 2 * LINES)
    assert doc["accounting"]["records"]["from_lines"] == 2 * RECORDS_FROM_LINES


async def test_a_replay_of_several_runs_spools_says_so(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    """Each run's summary counts its own lines; --flush-spool replays every finished run's
    spool and says how many runs that was, so its figure is the sum of theirs."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spool = tmp_path / "spool"
    for _ in range(2):
        rc, _, err = await run("--service", "shop", PY, "-c", CHILD, spool=spool, url=url)
        assert rc == 0 and f"0 lines sent, {LINES} spooled" in err.decode()
    gasoline = await start_daemon(CONFIG.format(port=port))
    rc, _, err = await run("--flush-spool", spool=spool, url=url)
    assert (rc, err.decode()) == (0, f"gasoline-run: replayed {2 * LINES} lines from 2 runs\n")
    await gasoline.settled()
    _, doc = await gasoline.get_json("/daemon/status")
    assert doc["accounting"]["lines"]["accepted"] == 2 * LINES


async def test_a_tailed_file_counts_its_lines_not_its_grouped_records(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    """The file tailer groups a traceback itself and offers it as one entry: the daemon
    still counts it as the lines it is, the figure the tailer shows as ``lines``."""
    log = tmp_path / "app.log"
    log.write_text(
        "server starting\nGET /health 200\nserver stopping\n"
        "Traceback (most recent call last):\n"
        '  File "app.py", line 9, in <module>\n'
        "    main()\n"
        '  File "app.py", line 5, in main\n'
        '    raise ValueError("boom")\n'
        "ValueError: boom\n"
    )
    gasoline = await start_daemon(
        "receivers:\n"
        f"  filelog/app: {{include: ['{log}'], start_at: beginning,"
        f" storage_dir: '{tmp_path / 'state'}', poll_interval: 20ms}}\n"
        "service: {pipelines: {logs: {receivers: [otlp, filelog/app]}}}\n"
    )
    [tailer] = [r for r in gasoline.daemon.receivers if r.name == "filelog/app"]
    await wait_for(lambda: tailer.stats()["filelog/app"]["counts"].get("records", 0) == 4)
    await gasoline.settled()
    _, doc = await gasoline.get_json("/daemon/status")
    assert doc["receivers"]["filelog/app"]["counts"]["lines"] == LINES
    accounting = doc["accounting"]
    assert accounting["lines"] == {"accepted": LINES, "queued": 0, "parsed": LINES, "dropped": {}}
    assert accounting["records"]["from_lines"] == RECORDS_FROM_LINES
    assert accounting["records"]["stored"] == RECORDS_FROM_LINES
    assert doc["pipeline"]["receivers"]["filelog/app"]["accepted"] == {"lines": LINES}


async def test_refused_lines_are_shown_apart_from_the_balance(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    """Lines refused for a full queue were never accepted: listed as refused, in lines, and
    the balance of what was accepted still holds."""
    gasoline = await start_daemon("service: {queue: {max_items: 5}}")
    body = {"service": "shop", "lines": ["a", "b\n  continued", "c", "d", "e", "f"]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gasoline.api}/v1/lines", json=body) as resp:
            assert resp.status == 503
        async with http.post(f"{gasoline.api}/v1/lines", json={"lines": ["g", "h"]}) as resp:
            assert resp.status == 200
    await gasoline.settled()
    _, doc = await gasoline.get_json("/daemon/status")
    accounting = doc["accounting"]
    assert accounting["refused"] == {"lines": {"queue_full": 7}}
    assert accounting["lines"] == {"accepted": 2, "queued": 0, "parsed": 2, "dropped": {}}
    text = await _status_text(gasoline.api)
    assert "refused:   lines queue_full 7 (never accepted; the senders were told)" in text
    assert "lines:     2 accepted = 2 parsed + 0 queued + 0 dropped; parsed into 2 records" in text


def test_clearing_the_store_counts_what_it_removed_as_evicted() -> None:
    """``configure clear`` keeps the balance: what it removes is evicted (cleared)."""
    store = Store(StoreConfig())
    store.records.add(
        [Record(time_ns=1, source="custom", level="info", message=f"r{i}") for i in range(3)],
        now_ns=1,
    )
    store.records.clear()
    assert len(store.records) == 0 and store.records.evicted == {"cleared": 3}
    store.records.clear()  # nothing left: nothing more counted
    assert store.records.evicted == {"cleared": 3}


def test_the_summary_names_its_unit_for_every_figure() -> None:
    counters = Counters(sent=12, replayed=9, spooled=2, queue_dropped=1)
    assert counters.summary("gasoline-run") == (
        "gasoline-run: 12 lines sent (9 of them replayed from the spool), 2 spooled, "
        "1 dropped (queue full), 0 dropped (spool full), 0 rejected by the daemon"
    )
    assert Counters(sent=1, replayed=1).replay_summary() == "gasoline-run: replayed 1 line"
    assert Counters(sent=5, replayed=5).replay_summary(runs=2) == (
        "gasoline-run: replayed 5 lines from 2 runs"
    )
    assert Counters().summary("gasoline-run") is None and Counters().replay_summary() is None
