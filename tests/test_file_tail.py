"""The file tailer against real files: rotation under concurrent writes, restart resume,
start positions, a large file in bounded memory, grouping, trace linking, config errors.

Every test awaits a condition (``wait_for``); timeouts only guard failures. The writer
thread paces itself with short sleeps, which is load generation, not synchronization.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import pytest

from collector.component import LineSource
from collector.config import Duration
from collector.errors import ConfigError, QueueFullError, ReceiverStartError
from collector.model import Record
from receivers.file_tail import FileLogConfig, FileLogReceiver
from tests.conftest import Running, make_config, wait_for

_SEQ = re.compile(r"seq (\d+)")


def _config(
    tmp_path: Path,
    include: str | list[str],
    *,
    name: str = "app",
    start_at: str = "beginning",
    extra: str = "",
    service_extra: str = "",
) -> str:
    globs = include if isinstance(include, list) else [include]
    return f"""
receivers:
  filelog/{name}:
    include: {globs!r}
    start_at: {start_at}
    storage_dir: {tmp_path / "state" / name}
    service: {name}
    poll_interval: 20ms
{extra}
service:
{service_extra}
  pipelines:
    logs:
      receivers: [otlp, filelog/{name}]
"""


def _messages(running: Running, service: str) -> list[str]:
    records = running.daemon.store.records.iter_newest_first()
    return [r.message for r in records if r.service == service][::-1]


def _seqs(running: Running, service: str) -> list[int]:
    return [int(m.group(1)) for s in _messages(running, service) if (m := _SEQ.search(s))]


def _receiver(running: Running, name: str) -> FileLogReceiver:
    [receiver] = [r for r in running.daemon.receivers if r.name == name]
    assert isinstance(receiver, FileLogReceiver)
    return receiver


_NEEDS_LOGROTATE = pytest.mark.skipif(
    shutil.which("logrotate") is None, reason="logrotate is not installed"
)


class _Writer(threading.Thread):
    """Appends ``seq N`` lines; rotation steps run under ``lock`` between two lines."""

    def __init__(self, path: Path, total: int) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.total = total
        self.lock = threading.Lock()
        self.count = 0
        self.fh = open(path, "a")  # noqa: SIM115 - reopened on rotation

    def run(self) -> None:
        for i in range(self.total):
            with self.lock:
                self.fh.write(f"seq {i:06d} hello\n")
                self.fh.flush()
                self.count = i + 1
            time.sleep(0.0005)
        with self.lock:
            self.fh.close()

    def reopen(self) -> None:
        """Call with ``lock`` held: what an app does on SIGHUP (creates the file anew)."""
        self.fh.close()
        self.fh = open(self.path, "a")  # noqa: SIM115


def _rename_create(log: Path, writer: _Writer, n: int) -> None:
    os.rename(log, log.with_name(f"{log.name}.{n}"))
    # The app keeps writing into the renamed file for a while before it reopens.
    target = writer.count + 30
    while writer.count < target and writer.is_alive():
        time.sleep(0.001)
    with writer.lock:
        writer.reopen()


def _logrotate(log: Path, mode: str) -> None:
    """Run the real logrotate once, forced, with ``mode`` (``create`` or ``copytruncate``)."""
    conf = log.with_name("logrotate.conf")
    conf.write_text(f"{log} {{\n  rotate 10\n  {mode}\n  missingok\n}}\n")
    subprocess.run(
        ["logrotate", "-f", "-s", str(log.with_name("logrotate.state")), str(conf)], check=True
    )


def _logrotate_create(log: Path, writer: _Writer, n: int) -> None:
    _logrotate(log, "create")  # renames app.log to app.log.1 (shifting older ones), creates anew
    target = writer.count + 30  # the app writes on into the renamed file until it reopens
    while writer.count < target and writer.is_alive():
        time.sleep(0.001)
    with writer.lock:
        writer.reopen()


def _logrotate_copytruncate(log: Path, writer: _Writer, n: int) -> None:
    with (
        writer.lock
    ):  # as in _copytruncate: what logrotate loses between its steps is unrecoverable
        _logrotate(log, "copytruncate")


def _copytruncate(log: Path, writer: _Writer, n: int) -> None:
    with writer.lock:  # logrotate cannot stop the writer; lines written in between are lost
        shutil.copyfile(log, log.with_name(f"{log.name}.{n}"))
        os.truncate(log, 0)


def _delete_recreate(log: Path, writer: _Writer, n: int) -> None:
    with writer.lock:
        os.remove(log)
        writer.reopen()


def _rename_gzip(log: Path, writer: _Writer, n: int) -> None:
    rotated = log.with_name(f"{log.name}.{n}")
    with writer.lock:
        os.rename(log, rotated)
        writer.reopen()
    with open(rotated, "rb") as src, gzip.open(f"{rotated}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.remove(rotated)


async def _rotate_under_writes(
    running: Running, log: Path, writer: _Writer, rotate: Callable[[Path, _Writer, int], None]
) -> None:
    writer.start()
    for n, at in enumerate((300, 700, 1100), start=1):
        await wait_for(lambda at=at: writer.count >= at, timeout=20)  # type: ignore[misc]
        await asyncio.to_thread(rotate, log, writer, n)
    await asyncio.to_thread(writer.join, 30)
    await wait_for(lambda: len(_seqs(running, "app")) >= writer.total, timeout=15)
    await running.settled()
    seqs = _seqs(running, "app")
    assert sorted(seqs) == list(range(writer.total)), "every line exactly once"


@pytest.mark.parametrize(
    ("rotate", "include"),
    [
        (_rename_create, "*.log"),
        (_rename_create, "app.log*"),  # the renamed file stays followed under its new name
        (_copytruncate, "*.log"),
        (_copytruncate, "app.log*"),  # the copy matches too and must not be read twice
        (_delete_recreate, "*.log"),
        (_rename_gzip, "app.log*"),
        pytest.param(_logrotate_create, "*.log", marks=_NEEDS_LOGROTATE),
        pytest.param(_logrotate_copytruncate, "app.log*", marks=_NEEDS_LOGROTATE),
    ],
    ids=[
        "rename_create",
        "rename_create_glob_matches_rotated",
        "copytruncate",
        "copytruncate_glob_matches_copy",
        "delete_recreate",
        "rename_then_gzip",
        "logrotate_create",
        "logrotate_copytruncate",
    ],
)
async def test_rotation_under_concurrent_writes_loses_and_duplicates_nothing(
    start_daemon: Any,
    tmp_path: Path,
    rotate: Callable[[Path, _Writer, int], None],
    include: str,
) -> None:
    """Each rotation style three times while a thread appends 1,500 numbered lines.

    The steps are done in Python and, where it is installed, by logrotate itself:
    copytruncate copies the file and truncates it in place (the writer appends with
    O_APPEND, as logging does). The copy+truncate pair runs under the writer's
    lock: logrotate itself loses lines written between the two steps, which no reader can
    recover. A gzip file present from the start (``app.log.0.gz``) is never read.
    """
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    with gzip.open(logs / "app.log.0.gz", "wt") as gz:
        gz.write("seq 999999 stale rotated line\n")
    writer = _Writer(log, 1500)
    running = await start_daemon(_config(tmp_path, str(logs / include)))
    await _rotate_under_writes(running, log, writer, rotate)
    stats = (await running.get_json("/daemon/status"))[1]["receivers"]["filelog/app"]
    assert stats["counts"]["rotations"] >= 3
    assert stats["counts"]["lines"] == 1500


async def test_restart_resumes_after_the_last_delivered_line(
    start_daemon: Any, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"seq {i:06d} first run\n" for i in range(10)))
    text = _config(tmp_path, str(log), start_at="end")
    # start_at: end applies only to files never seen: the first run starts at the end...
    first = await start_daemon(text)
    with log.open("a") as fh:
        fh.writelines(f"seq {i:06d} first run\n" for i in range(10, 20))
    await wait_for(lambda: len(_seqs(first, "app")) == 10)
    await first.daemon.stop()
    with log.open("a") as fh:
        fh.writelines(f"seq {i:06d} while down\n" for i in range(20, 25))
    second = await start_daemon(text)
    with log.open("a") as fh:
        fh.write("seq 000025 marker\n")
    await wait_for(lambda: 25 in _seqs(second, "app"))
    await second.settled()
    # ...and the second resumes from the checkpoint: the lines written while down, once
    # (after the first run's, which the history kept).
    assert _seqs(second, "app") == list(range(10, 26))
    assert _seqs(first, "app") == list(range(10, 20))
    state = (tmp_path / "state" / "app" / "offsets.json").read_text()
    assert '"version": 1' in state


@pytest.mark.parametrize(
    ("start_at", "expected"), [("beginning", [0, 1, 2, 3, 4]), ("end", [3, 4])]
)
async def test_start_at(
    start_daemon: Any, tmp_path: Path, start_at: str, expected: list[int]
) -> None:
    log = tmp_path / "app.log"
    log.write_text("seq 000000 old\nseq 000001 old\nseq 000002 old\n")
    running = await start_daemon(_config(tmp_path, str(tmp_path / "*.log"), start_at=start_at))
    with log.open("a") as fh:
        fh.write("seq 000003 new\nseq 000004 new\n")
    await wait_for(lambda: 4 in _seqs(running, "app"))
    # A file that appears after start is read from its beginning whatever start_at says.
    (tmp_path / "later.log").write_text("seq 000005 later\nseq 000006 later\n")
    await wait_for(lambda: 6 in _seqs(running, "app"))
    await running.settled()
    assert _seqs(running, "app") == [*expected, 5, 6]


async def test_records_carry_file_attributes_and_partial_lines_wait(
    start_daemon: Any, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    running = await start_daemon(_config(tmp_path, str(log), extra="    tags: [team:web]"))
    with log.open("a") as fh:
        fh.write("seq 000000 whole\nseq 000001 half")
        fh.flush()
        await wait_for(lambda: 0 in _seqs(running, "app"))
        fh.write(" and the rest\n")
    await wait_for(lambda: 1 in _seqs(running, "app"))
    [first, second] = [
        r for r in running.daemon.store.records.iter_newest_first() if r.service == "app"
    ][::-1]
    assert second.message == "seq 000001 half and the rest"
    assert first.source == "backend" and "team:web" in first.tags
    assert first.attributes["log.file.path"] == str(log)
    assert first.attributes["log.file.name"] == "app.log"


async def test_python_traceback_is_one_record(start_daemon: Any, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    running = await start_daemon(_config(tmp_path, str(log)))
    log.write_text(
        "ERROR request failed\n"
        "Traceback (most recent call last):\n"
        '  File "app.py", line 3, in handler\n'
        "    raise ValueError('boom')\n"
        "ValueError: boom\n"
        "seq 000001 after\n"
    )
    await wait_for(lambda: 1 in _seqs(running, "app"))
    messages = _messages(running, "app")
    assert len(messages) == 2
    assert "Traceback" in messages[0] and messages[0].endswith("ValueError: boom")


async def test_json_line_with_trace_id_lands_on_its_trace(
    start_daemon: Any, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    running = await start_daemon(_config(tmp_path, str(log)))
    trace = "0af7651916cd43dd8448eb211cf79c19"
    with log.open("a") as fh:
        fh.write(f'{{"level":"error","msg":"charge failed","trace_id":"{trace}"}}\n')
    await wait_for(lambda: bool(running.daemon.store.records.by_trace(bytes.fromhex(trace))))
    [record] = running.daemon.store.records.by_trace(bytes.fromhex(trace))
    assert record.message == "charge failed" and record.level == "error"


async def test_a_failing_file_does_not_stop_the_others(start_daemon: Any, tmp_path: Path) -> None:
    (tmp_path / "loop.log").symlink_to(tmp_path / "loop.log")  # stat fails: ELOOP
    locked = tmp_path / "locked.log"
    locked.write_text("seq 000100 secret\n")
    locked.chmod(0)
    good = tmp_path / "good.log"
    good.write_text("seq 000000 fine\n")
    running = await start_daemon(_config(tmp_path, str(tmp_path / "*.log")))
    await wait_for(lambda: 0 in _seqs(running, "app"))
    stats = (await running.get_json("/daemon/status"))[1]["receivers"]["filelog/app"]
    errors = {Path(f["path"]).name: f["error"] for f in stats["files"] if f["error"]}
    assert "loop.log" in errors and "symbolic links" in errors["loop.log"]
    if os.geteuid() != 0:  # root reads anything, so only others see the permission error
        assert errors["locked.log"] == "Permission denied"


async def test_large_file_is_read_in_bounded_memory_with_progress(
    start_daemon: Any, tmp_path: Path
) -> None:
    log = tmp_path / "big.log"
    line_count = 200_000
    line = "x" * 1000
    with log.open("w") as fh:
        for start in range(0, line_count, 1000):
            fh.write("".join(f"seq {i:06d} {line}\n" for i in range(start, start + 1000)))
    size = log.stat().st_size
    assert size > 200_000_000
    # Keep the store and queue small so that only the tailer's own memory can grow.
    limits = "  store:\n    max_records: 20000\n  queue:\n    max_items: 20000"
    running = await start_daemon(_config(tmp_path, str(log), name="big", service_extra=limits))
    receiver = _receiver(running, "filelog/big")
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * page

    base = rss()
    peak = base
    progress: list[tuple[int, int]] = []

    def done() -> bool:
        nonlocal peak
        peak = max(peak, rss())
        [part] = receiver.stats().values()
        [entry] = part["files"]
        progress.append((entry["offset"], entry["size"]))
        return bool(part["counts"].get("records", 0) == line_count)

    await wait_for(done, timeout=120)
    await running.settled()
    status = (await running.get_json("/daemon/status"))[1]["receivers"]["filelog/big"]
    [entry] = status["files"]
    assert entry["size"] == size and entry["offset"] == size and entry["lines"] == line_count
    assert any(0 < offset < size for offset, _ in progress), "progress seen while reading"
    assert peak - base < 100 * 1024 * 1024, f"RSS grew by {(peak - base) >> 20} MiB"


async def test_a_file_faster_than_parsing_waits_within_the_queue_bytes_losing_nothing(
    start_daemon: Any, tmp_path: Path
) -> None:
    log = tmp_path / "fast.log"
    log.write_text("".join(f"seq {i:06d} {'y' * 200}\n" for i in range(60_000)))
    limits = "  queue:\n    max_line_bytes: 5000000"  # a third of the file, a tailer's batch more
    running = await start_daemon(_config(tmp_path, str(log), name="fast", service_extra=limits))
    pipeline = running.daemon.pipeline
    queued: list[int] = []

    def done() -> bool:
        queued.append(pipeline.stats()["queue"]["line_bytes"])
        return len(_seqs(running, "fast")) == 60_000

    await wait_for(done, timeout=60)
    assert _seqs(running, "fast") == list(range(60_000))
    assert 0 < max(queued) <= 5_000_000
    [part] = _receiver(running, "filelog/fast").stats().values()
    assert part["counts"]["queue_full_retries"] > 0  # it waited for room...
    accounting = pipeline.accounting()
    assert accounting["refused"] == {} and accounting["lines"]["dropped"] == {}  # ...no drop


async def test_receiver_lifecycle_without_daemon(tmp_path: Path) -> None:
    config = FileLogConfig(include=[str(tmp_path / "*.log")], storage_dir=str(tmp_path / "s"))
    receiver = FileLogReceiver(config, name="filelog/x")
    await receiver.stop()  # safe without start
    assert receiver.endpoints() == [] and receiver.bound() == {}
    assert receiver.stats()["filelog/x"]["status"] == "stopped"
    await receiver.stop()


_BAD_CONFIGS = [
    ("start_at: middle", "receivers.filelog/app.start_at: 'middle' must be 'end' or 'beginning'"),
    ("include: []", "receivers.filelog/app.include: must list at least one glob"),
    ("include: nope", "receivers.filelog/app.include: expected a list, got 'nope'"),
    ("patterns: ['(']", "receivers.filelog/app.patterns[0]: '(' is not a regex"),
    ("poll_interval: 1ms", "receivers.filelog/app.poll_interval: 0.001s is too short"),
    ("poll_interval: soon", "receivers.filelog/app.poll_interval: 'soon' is not a duration"),
    ("fingerprint_size: 0", "receivers.filelog/app.fingerprint_size: 0 must be greater than 0"),
    ("max_line_bytes: -1", "receivers.filelog/app.max_line_bytes: -1 must be greater than 0"),
    ("max_batch_lines: 0", "receivers.filelog/app.max_batch_lines: 0 must be greater than 0"),
    ("bogus: 1", "receivers.filelog/app.bogus: unknown key"),
    ("storage_dir: ''", "receivers.filelog/app.storage_dir: must not be empty"),
]


@pytest.mark.parametrize(("line", "expected"), _BAD_CONFIGS, ids=[c[0] for c in _BAD_CONFIGS])
def test_invalid_config_names_the_key(tmp_path: Path, line: str, expected: str) -> None:
    text = f"""
receivers:
  filelog/app:
    include: [/tmp/*.log]
    {line}
service:
  pipelines:
    logs:
      receivers: [filelog/app]
"""
    if line.startswith("include"):
        text = text.replace("    include: [/tmp/*.log]\n", "")
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, text)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_missing_include_is_required(tmp_path: Path) -> None:
    text = "receivers:\n  filelog/app: {}\nservice:\n  pipelines:\n    logs:\n      receivers: [filelog/app]\n"
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, text)
    assert "receivers.filelog/app.include: required (a list of globs)" in info.value.problems


class _SheddingSink:
    """A working in-memory sink that refuses everything while ``full`` is set."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.full = True
        self.refused = 0

    redactor = None

    def lane(self, receiver: str) -> Self:
        return self

    def offer_records(self, records: Sequence[Record]) -> int:
        if self.full:
            self.refused += 1
            raise QueueFullError("ingest queue is full")
        self.records += records
        return len(records)

    def offer_spans(self, batch: Any) -> int:
        raise NotImplementedError

    def offer_lines(
        self,
        source: LineSource,
        lines: Sequence[str],
        *,
        observed_ns: int | None = None,
        kept_on_refusal: bool = False,
    ) -> int:
        return self.offer_records(source.records(lines, now_ns=observed_ns))

    def offer_metrics(self, data_points: int) -> int:
        return data_points

    def count_dropped(self, signal: str, reason: Any, count: int) -> None:
        pass


async def test_queue_full_keeps_lines_and_offsets_until_accepted(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"seq {i:06d} x\n" for i in range(5)))
    config = FileLogConfig(
        include=[str(log)],
        start_at="beginning",
        poll_interval=Duration(0.01),
        storage_dir=str(tmp_path / "state"),
    )
    sink = _SheddingSink()
    receiver = FileLogReceiver(config, name="filelog/app")
    await receiver.start(sink)
    await wait_for(lambda: sink.refused >= 3)
    await receiver.stop()  # nothing was accepted: the checkpoint stays at 0
    assert sink.records == []
    assert '"offset": 0' in (tmp_path / "state" / "offsets.json").read_text()
    sink.full = False
    receiver = FileLogReceiver(config, name="filelog/app")
    await receiver.start(sink)
    with log.open("a") as fh:
        fh.write("seq 000005 x\n")
    await wait_for(lambda: len(sink.records) >= 6)
    await receiver.stop()
    assert [r.message for r in sink.records] == [f"seq {i:06d} x" for i in range(6)]


async def test_rotation_while_stopped_is_finished_from_the_checkpoint(
    start_daemon: Any, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    text = _config(tmp_path, str(log), start_at="end")
    first = await start_daemon(text)
    with log.open("a") as fh:
        fh.writelines(f"seq {i:06d} before\n" for i in range(5))
    await wait_for(lambda: len(_seqs(first, "app")) == 5)
    await first.daemon.stop()
    with log.open("a") as fh:
        fh.writelines(f"seq {i:06d} while down\n" for i in range(5, 8))
    log.rename(tmp_path / "app.log.1")
    log.write_text("".join(f"seq {i:06d} new file\n" for i in range(8, 10)))
    second = await start_daemon(text)
    await wait_for(lambda: 9 in _seqs(second, "app"))
    await second.settled()
    assert _seqs(second, "app") == list(range(10))  # the first run's kept by the history


@pytest.mark.parametrize("problem", ["not_a_directory", "corrupt_checkpoint"])
async def test_unusable_storage_dir_fails_start(tmp_path: Path, problem: str) -> None:
    if problem == "not_a_directory":
        (tmp_path / "file").write_text("")
        storage, expected = tmp_path / "file" / "state", "cannot use storage_dir"
    else:
        storage, expected = tmp_path / "state", "not a filelog checkpoint"
        storage.mkdir()
        (storage / "offsets.json").write_text('{"version": 7}')
    config = FileLogConfig(include=[str(tmp_path / "*.log")], storage_dir=str(storage))
    receiver = FileLogReceiver(config, name="filelog/app")
    with pytest.raises(ReceiverStartError, match=expected):
        await receiver.start(_SheddingSink())
    await receiver.stop()


async def test_seeds_short_form_backend_logs_maps_onto_filelog(start_daemon, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`backend: logs: [{type: file, ...}]` becomes a filelog receiver on the logs pipeline."""
    log = tmp_path / "auth.log"
    log.write_text("")
    running = await start_daemon(
        f"""
        backend:
          logs:
            - {{type: file, path: "{log}", tags: ["service:auth"], poll_interval_ms: 20,
                start_at: beginning}}
        """
    )
    with log.open("a") as f:
        f.write("2024-01-02 15:04:05,123 ERROR login failed for ann\n")
    await wait_for(lambda: len(running.daemon.store.records) == 1, timeout=5)
    [record] = list(running.daemon.store.records.iter_newest_first())
    assert (record.service, record.level, record.message) == (
        "auth",
        "error",
        "login failed for ann",
    )
    _, status = await running.get_json("/daemon/status")
    assert "filelog/backend-0" in status["receivers"]
