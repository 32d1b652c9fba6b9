"""gasoline-run end to end: real wrapper processes, real children, a real daemon.

Every run goes through the wrapper's own CLI in a subprocess; a finished run implies its
output was delivered (or spooled), so nothing here waits on time except as a failure guard.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from collector import VERSION
from receivers.run_wrapper.spool import Batch, OwnSpool
from tests.conftest import Running

WRAPPER = [
    sys.executable,
    "-c",
    "import sys; from receivers.run_wrapper.cli import main; sys.exit(main())",
]
PY = sys.executable
TIMEOUT = 40.0

# The pass-through payload: 100,000 lines per stream, invalid UTF-8, a 1 MiB line, CRs.
PAYLOAD = textwrap.dedent(
    """
    def payload(tag):
        out = bytearray()
        for i in range(100_000):
            if i % 997 == 0:
                out += b"bad \\xff\\xfe\\xc3 utf-8 " + tag + b" %d\\n" % i
            elif i == 50_000:
                out += tag * (1024 * 1024 // len(tag)) + b"\\n"
            elif i % 1013 == 0:
                out += b"\\x1b[32mgreen\\x1b[0m\\r\\n"
            else:
                out += tag + b" line %d\\n" % i
        return bytes(out) + b"no newline at the end"
    """
)


async def run(
    *args: str, spool: Path, url: str, stdin: int | None = None
) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *WRAPPER,
        "--url",
        url,
        "--spool-dir",
        str(spool),
        *args,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=spool.parent,  # in no git repository: the only posts are the output's
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out, err


async def messages(gasoline: Running, service: str) -> list[str]:
    """Every record of ``service`` in the daemon, oldest first (all pages)."""
    await gasoline.settled()
    found: list[str] = []
    cursor = ""
    while True:
        path = f"/buffers/timeline?service={service}&limit=1000"
        status, doc = await gasoline.get_json(path + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, doc
        found[:0] = [e["message"] for e in doc["events"]]
        cursor = doc["metadata"]["cursor_next"]
        if not cursor:
            return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_pty(master: int, data: bytearray) -> bytes:
    """``data`` and everything else read from a pty until its last writer is gone."""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the pty is gone
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def spool_segments(spool: Path) -> list[Path]:
    return sorted(spool.glob("run-*/seg-*.spool")) + sorted(spool.glob("run-*/active.spool"))


async def test_pass_through_is_byte_exact_on_both_streams(
    gasoline: Running, tmp_path: Path
) -> None:
    child = PAYLOAD + textwrap.dedent(
        """
        import sys
        sys.stdout.buffer.write(payload(b"OUT")); sys.stdout.flush()
        sys.stderr.buffer.write(payload(b"ERR")); sys.stderr.flush()
        """
    )
    namespace: dict[str, Any] = {}
    exec(PAYLOAD, namespace)
    rc, out, err = await run(
        "--service", "bytes", PY, "-c", child, spool=tmp_path, url=gasoline.api
    )
    assert rc == 0
    assert out == namespace["payload"](b"OUT")
    assert err == namespace["payload"](b"ERR")  # and nothing from the wrapper itself
    assert not spool_segments(tmp_path)


@pytest.mark.parametrize("code", [0, 3])
async def test_exit_code(gasoline: Running, tmp_path: Path, code: int) -> None:
    rc, out, _ = await run(
        PY, "-c", f"print('x'); raise SystemExit({code})", spool=tmp_path, url=gasoline.api
    )
    assert (rc, out) == (code, b"x\n")


async def test_killed_by_signal_is_128_plus_signal(gasoline: Running, tmp_path: Path) -> None:
    rc, _, _ = await run(
        PY,
        "-c",
        "import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
        spool=tmp_path,
        url=gasoline.api,
    )
    assert rc == 128 + signal.SIGTERM


async def test_command_not_found_is_127(gasoline: Running, tmp_path: Path) -> None:
    rc, _, err = await run("no-such-command-gasoline", spool=tmp_path, url=gasoline.api)
    assert rc == 127 and b"command not found" in err


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--url", "127.0.0.1:7890", "true"], b"--url: '127.0.0.1:7890' is not an http(s) URL"),
        ([], b"a command to run is required"),
    ],
)
async def test_usage_errors_exit_2_before_running_anything(
    tmp_path: Path, args: list[str], error: bytes
) -> None:
    proc = await asyncio.create_subprocess_exec(
        *WRAPPER, "--spool-dir", str(tmp_path), *args, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2 and error in err and b"usage: gasoline-run" in err


async def test_version() -> None:
    proc = await asyncio.create_subprocess_exec(
        *WRAPPER, "--version", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and out.decode().split() == ["gasoline-run", VERSION]


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM])
async def test_signal_to_wrapper_reaches_child_handler(
    gasoline: Running, tmp_path: Path, signo: int
) -> None:
    child = textwrap.dedent(
        f"""
        import signal, sys
        def handler(n, f):
            print("child got", n, flush=True)
            sys.exit(130)
        signal.signal({int(signo)}, handler)
        print("ready", flush=True)
        signal.pause()
        """
    )
    proc = await asyncio.create_subprocess_exec(
        *WRAPPER,
        "--url",
        gasoline.api,
        "--spool-dir",
        str(tmp_path),
        PY,
        "-c",
        child,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(TIMEOUT):
        assert await proc.stdout.readline() == b"ready\n"
        proc.send_signal(signo)
        out, err = await proc.communicate()
    assert proc.returncode == 130
    assert out == f"child got {int(signo)}\n".encode()  # delivered once, not twice
    assert err == b""


async def test_pty_mode_child_sees_a_terminal_and_keeps_colours(
    gasoline: Running, tmp_path: Path
) -> None:
    child = "import sys; print(sys.stdout.isatty(), sys.stderr.isatty()); print('\\x1b[31mred alert\\x1b[0m')"
    master, slave = os.openpty()
    proc = await asyncio.create_subprocess_exec(
        *WRAPPER,
        "--url",
        gasoline.api,
        "--spool-dir",
        str(tmp_path),
        "--service",
        "ptysvc",
        PY,
        "-c",
        child,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)

    try:
        async with asyncio.timeout(TIMEOUT):
            output, rc = await asyncio.gather(
                asyncio.to_thread(read_pty, master, bytearray()), proc.wait()
            )
    finally:
        os.close(master)
    assert rc == 0
    assert b"True True" in output
    assert b"\x1b[31mred alert\x1b[0m" in output
    assert await messages(gasoline, "ptysvc") == ["True True", "red alert"]  # colours stripped


async def test_ctrl_c_on_the_terminal_reaches_the_child_once(
    gasoline: Running, tmp_path: Path
) -> None:
    """The wrapper runs in a terminal session (the pty is its controlling terminal); ^C typed
    there reaches the child through the tty driver, and the wrapper does not send it again."""
    child = textwrap.dedent(
        """
        import signal, sys, time
        def handler(n, f):
            print("child got", n, flush=True)
            time.sleep(0.2)  # a second SIGINT, if one came, would print again meanwhile
            sys.exit(130)
        signal.signal(signal.SIGINT, handler)
        print("ready", flush=True)
        signal.pause()
        """
    )
    in_terminal = (
        "import fcntl, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
        "from receivers.run_wrapper.cli import main; sys.exit(main())"
    )
    master, slave = os.openpty()
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-c",
        in_terminal,
        "--url",
        gasoline.api,
        "--spool-dir",
        str(tmp_path),
        PY,
        "-c",
        child,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)

    def interact() -> bytes:
        data = bytearray()
        while b"ready" not in data:
            data += os.read(master, 65536)
        os.write(master, b"\x03")
        return read_pty(master, data)

    try:
        async with asyncio.timeout(TIMEOUT):
            output, rc = await asyncio.gather(asyncio.to_thread(interact), proc.wait())
    finally:
        os.close(master)
    assert rc == 130
    assert output.count(b"child got") == 1, output


async def test_lines_are_parsed_and_tracebacks_grouped(gasoline: Running, tmp_path: Path) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    child = textwrap.dedent(
        f"""
        import json
        print(json.dumps({{"level": "error", "msg": "payment failed", "trace_id": "{trace_id}"}}), flush=True)
        def boom():
            raise ValueError("boom")
        boom()
        """
    )
    rc, _, err = await run("--service", "api", PY, "-c", child, spool=tmp_path, url=gasoline.api)
    assert rc == 1 and b"ValueError: boom" in err
    await gasoline.settled()
    status, doc = await gasoline.get_json(f"/buffers/timeline?trace_id={trace_id}")
    assert status == 200
    [event] = doc["events"]
    assert event["message"] == "payment failed" and event["level"] == "error"
    assert event["service"] == "api"
    found = await messages(gasoline, "api")
    tracebacks = [m for m in found if "Traceback" in m]
    assert len(tracebacks) == 1
    assert "ValueError: boom" in tracebacks[0] and "in boom" in tracebacks[0]


async def test_daemon_down_then_spool_replayed_exactly_once(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spool = tmp_path / "spool"
    child = "import sys\nfor i in range(5000): print('down line', i)"
    rc, out, err = await run("--service", "downsvc", PY, "-c", child, spool=spool, url=url)
    assert rc == 0 and out.count(b"\n") == 5000
    assert b"--flush-spool" in err and str(spool).encode() in err
    assert spool_segments(spool)

    gasoline = await start_daemon(f"service: {{api: {{endpoint: '127.0.0.1:{port}'}}}}")
    rc, _, err = await run("--flush-spool", spool=spool, url=url)
    assert rc == 0, err
    assert not spool_segments(spool)
    assert await messages(gasoline, "downsvc") == [f"down line {i}" for i in range(5000)]

    # A later run has nothing left to replay: still exactly once.
    rc, _, err = await run("--flush-spool", spool=spool, url=url)
    assert (rc, err) == (0, b"")
    assert len(await messages(gasoline, "downsvc")) == 5000


async def test_a_torn_spool_entry_is_skipped_and_counted(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    """A wrapper killed mid-append leaves its last spool entry cut short: the replay delivers
    the whole batches before it, skips the torn one, says so, and leaves nothing behind."""
    spool_root = tmp_path / "spool"
    own = OwnSpool(spool_root, max_bytes=1 << 20)
    for i in range(3):
        query = urlencode({"service": "torn", "batch": f"t-{i}", "stream": "s", "end": 1})
        own.append(Batch(query, f"torn batch {i}\n".encode(), 1))
    assert own.dir is not None
    own.dir.release()  # the run ended (crashed) without sealing
    [active] = spool_root.glob("run-*/active.spool")
    active.write_bytes(active.read_bytes()[:-5])  # the last append did not complete

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gasoline = await start_daemon(f"service: {{api: {{endpoint: '127.0.0.1:{port}'}}}}")
    rc, _, err = await run("--flush-spool", spool=spool_root, url=url)
    assert rc == 0 and b"replayed 2 lines, 1 torn spool entries skipped" in err, err
    assert not spool_segments(spool_root)
    assert await messages(gasoline, "torn") == ["torn batch 0", "torn batch 1"]


async def test_next_run_replays_a_leftover_spool(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spool = tmp_path / "spool"
    rc, _, _ = await run(
        "--service",
        "left",
        PY,
        "-c",
        "for i in range(300): print('early', i)",
        spool=spool,
        url=url,
    )
    assert rc == 0 and spool_segments(spool)
    gasoline = await start_daemon(f"service: {{api: {{endpoint: '127.0.0.1:{port}'}}}}")
    rc, _, err = await run("--service", "left", PY, "-c", "print('late')", spool=spool, url=url)
    assert (rc, err) == (0, b"")
    assert not spool_segments(spool)
    assert sorted(await messages(gasoline, "left")) == sorted(
        [f"early {i}" for i in range(300)] + ["late"]
    )


async def test_lost_answers_do_not_duplicate_lines(gasoline: Running, tmp_path: Path) -> None:
    """Between the wrapper and the real daemon, a proxy forwards every batch but drops the
    daemon's answer to the first three: the wrapper resends them (at once on a fresh
    connection, later from its spool), and the daemon stores each batch once."""
    lost = 0
    batches: list[str] = []

    async def forward(request: web.Request) -> web.StreamResponse:
        nonlocal lost
        body = await request.read()
        batches.append(request.query["batch"])
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{gasoline.api}/v1/lines",
                params=request.query,
                data=body,
                headers={"Content-Type": request.content_type},
            ) as resp,
        ):
            answer = await resp.read()
            status = resp.status
        if lost < 3:
            lost += 1
            assert request.transport is not None
            request.transport.abort()  # the batch is stored; the sender never hears so
            return web.StreamResponse()
        return web.Response(body=answer, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/lines", forward)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        child = textwrap.dedent(
            """
            import time
            for i in range(2000):
                print("once", i, flush=True)
                if i % 200 == 199:
                    time.sleep(0.05)  # several batches
            """
        )
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        rc, _, err = await run("--service", "once", PY, "-c", child, spool=tmp_path, url=url)
    finally:
        await runner.cleanup()
    assert rc == 0, err
    assert len(batches) > len(set(batches)) >= 3  # resends happened
    assert await messages(gasoline, "once") == [f"once {i}" for i in range(2000)]


@pytest.fixture
async def stalled_daemon() -> AsyncIterator[str]:
    """A stand-in daemon that accepts connections and never answers."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"status": "error"}, status=503)

    app = web.Application()
    app.router.add_post("/v1/lines", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    release.set()
    await runner.cleanup()


async def _fast_child_through(url: str, spool: Path) -> None:
    child = "import sys\nw = sys.stdout.write\nfor i in range(200_000): w(f'fast line {i}\\n')"
    rc, out, err = await run("--flush-timeout", "0.5", PY, "-c", child, spool=spool, url=url)
    assert rc == 0
    assert out == b"".join(b"fast line %d\n" % i for i in range(200_000))
    assert b"spooled" in err


async def test_child_unaffected_when_daemon_down(tmp_path: Path) -> None:
    await _fast_child_through(f"http://127.0.0.1:{free_port()}", tmp_path)


async def test_child_unaffected_when_daemon_stalls(stalled_daemon: str, tmp_path: Path) -> None:
    await _fast_child_through(stalled_daemon, tmp_path)


async def test_1000_lines_per_second_for_10_seconds_nothing_lost(
    gasoline: Running, tmp_path: Path
) -> None:
    child = textwrap.dedent(
        """
        import time
        start = time.monotonic()
        for i in range(10_000):
            print("steady", i, flush=True)
            if i % 100 == 99:  # pacing, ~1,000 lines/s
                time.sleep(max(0.0, start + (i + 1) / 1000 - time.monotonic()))
        """
    )
    rc, _, err = await run("--service", "steady", PY, "-c", child, spool=tmp_path, url=gasoline.api)
    assert (rc, err) == (0, b"")
    assert await messages(gasoline, "steady") == [f"steady {i}" for i in range(10_000)]


async def test_rejected_batch_reported_once_and_counted(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    gasoline = await start_daemon("service: {api: {max_request_body_size: 400}}")
    child = "print('\\n'.join(f'big batch {i}' for i in range(100)), flush=True)"
    rc, out, err = await run(
        "--service", "rej", "--batch-kib", "1", PY, "-c", child, spool=tmp_path, url=gasoline.api
    )
    assert rc == 0 and out.count(b"\n") == 100
    lines = err.decode().splitlines()
    assert len(lines) == 2, err  # the one report, then the counters
    assert "rejected" in lines[0] and "too large" in lines[0]
    rejected = int(lines[1].rsplit(", ", 1)[1].split()[0])
    assert rejected >= 50
    assert len(await messages(gasoline, "rej")) == 100 - rejected
    assert not spool_segments(tmp_path)


@pytest.fixture
async def refusing_daemon() -> AsyncIterator[tuple[str, list[list[str]]]]:
    """A stand-in daemon answering every batch 400, recording what it was sent."""
    received: list[list[str]] = []

    async def reject(request: web.Request) -> web.Response:
        text = (await request.read()).decode()
        received.append(text.splitlines())
        return web.json_response({"status": "error", "error": "lines: nope"}, status=400)

    app = web.Application()
    app.router.add_post("/v1/lines", reject)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", received
    await runner.cleanup()


async def test_4xx_is_not_retried(
    refusing_daemon: tuple[str, list[list[str]]], tmp_path: Path
) -> None:
    url, received = refusing_daemon
    child = "for i in range(1000): print('refused', i, flush=True)"
    rc, _, err = await run("--service", "r", PY, "-c", child, spool=tmp_path, url=url)
    assert rc == 0
    sent = [line for batch in received for line in batch]
    assert sent == [f"refused {i}" for i in range(1000)]  # each line posted once, in order
    assert err.count(b"HTTP 400: lines: nope") == 1
    assert err.decode().splitlines()[-1].endswith("1000 rejected by the daemon")
    assert not spool_segments(tmp_path)
