"""``gasoline-run``: options, wiring, exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from collector import VERSION
from collector.edge import daemon_url
from receivers.run_wrapper.child import block_signals, run_child
from receivers.run_wrapper.chunks import ChunkQueue

if TYPE_CHECKING:
    from receivers.run_wrapper.shipper import ShipperConfig
    from receivers.run_wrapper.spool import Batch

__all__ = ["build_parser", "command_of", "main", "run_wrapped"]

_DEFAULT_URL = "http://127.0.0.1:7890"
_USAGE = "gasoline-run [options] CMD [ARGS...]\n       gasoline-run --flush-spool [options]"
_MIB = 1024 * 1024
# How long the command's exit waits for the shipper beyond --flush-timeout: its last posts'
# timeouts and, for a command that exits at once, the shipper's imports.
_JOIN_SLACK_S = 6.0

_DESCRIPTION = """\
Run CMD ARGS exactly as without the wrapper (same output, colours, exit code, Ctrl-C), and
send every line of its output to a Gasoline daemon (POST /v1/lines), where it is parsed into
log records: JSON and logfmt fields, levels, trace ids; stack traces grouped into one
record. Options go before CMD.

Output: passed through byte for byte, unbuffered. When stdout is a terminal the command gets a
pty for stdout and stderr (it keeps colours and line buffering; stdout and stderr are then one
stream, as on a terminal); otherwise two pipes (stderr stays stderr, `| tee` works). stdin is
inherited. The daemon cuts lines at 65,536 characters and strips colour codes; what
passes through is untouched.

Signals: SIGINT, SIGTERM and SIGHUP sent to the wrapper are forwarded to the command; Ctrl-C on
the terminal reaches the command directly (it stays in the terminal's foreground group) and is
not sent twice.

Shipping never slows the command: output goes to a bounded in-memory queue (--queue-mib,
default 64 MiB of raw output; when full the OLDEST output is dropped and counted) and a
background thread posts each stream's whole lines as raw text blocks, after 3 ms of quiet, 5 ms
of steady output (25 ms in a flood), or --batch-kib of output; the daemon splits and parses
them and groups multi-line records (tracebacks, stack traces) across blocks. When the daemon is
down or answers 5xx, batches are appended every 100 ms to an on-disk spool (fsynced; sealed
segments seg-NNNNNN.spool under --spool-dir/run-<time>-<pid>/; at most --spool-mib, default 256
MiB, per run; beyond that new batches are dropped and counted) and replayed in order once the
daemon answers. Batches answered 4xx are not retried: reported once on stderr and counted. At
exit the wrapper waits up to --flush-timeout seconds to deliver (not at all when nothing
listens); what is left stays in the spool and is replayed by the next gasoline-run (each run
replays every spool a finished run left behind) or by --flush-spool. Spooled lines keep the
time they were printed.

The wrapper prints nothing else unless something is wrong; a one-line summary of counters
appears on stderr at exit only when lines were spooled, dropped or rejected. Every figure it
prints counts lines, as `gasoline status` does under "lines ... accepted"; the daemon groups
them into records (a stack trace of many lines is one), counted apart.

Exit status: the command's exit code; 128+N if it was killed by signal N; 127 if CMD was not
found, 126 if it could not be executed; 2 for a usage error. With --flush-spool: 0 when the
spool is empty afterwards, 1 when the daemon did not take all of it.
"""


def build_parser(
    prog: str = "gasoline-run",
    usage: str = _USAGE,
    description: str = _DESCRIPTION,
) -> argparse.ArgumentParser:
    """The wrapper's options; ``gasoline test`` adds its own to the same parser."""
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=usage,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {VERSION}")
    parser.add_argument(
        "--url",
        type=_http_url,
        default=os.environ.get("GASOLINE_URL") or _DEFAULT_URL,
        help=f"daemon API URL (default: $GASOLINE_URL or {_DEFAULT_URL})",
    )
    parser.add_argument("--service", help="service name of the records (default: CMD's basename)")
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="K:V",
        help="tag every record (repeatable), e.g. --tag env:dev",
    )
    parser.add_argument(
        "--spool-dir",
        type=Path,
        default=Path(os.environ.get("GASOLINE_SPOOL_DIR") or Path.home() / ".gasoline" / "spool"),
        help="spool root (default: $GASOLINE_SPOOL_DIR or ~/.gasoline/spool)",
    )
    parser.add_argument(
        "--queue-mib", type=_positive, default=64, help="in-memory queue size in MiB (64)"
    )
    parser.add_argument(
        "--spool-mib", type=_positive, default=256, help="spool cap per run in MiB (256)"
    )
    parser.add_argument(
        "--batch-kib", type=_positive, default=4096, help="most output per POST in KiB (4096)"
    )
    parser.add_argument(
        "--flush-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to keep delivering after the command exits (5)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--pty", dest="pty", action="store_true", default=None, help="force a pty")
    mode.add_argument("--no-pty", dest="pty", action="store_false", help="force pipes")
    parser.add_argument(
        "--no-git",
        action="store_true",
        help="do not report the git state of the working directory (commits, branch "
        "switches, uncommitted changes) as git events",
    )
    parser.add_argument(
        "--flush-spool",
        action="store_true",
        help="replay every finished run's spool to the daemon, then exit",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _http_url(text: str) -> str:
    try:
        return daemon_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _config(args: argparse.Namespace, service: str, prog: str = "gasoline-run") -> ShipperConfig:
    from receivers.run_wrapper.shipper import ShipperConfig  # see _ship

    return ShipperConfig(
        prog=prog,
        url=args.url,
        service=service,
        tags=tuple(args.tag),
        spool_root=args.spool_dir,
        queue_bytes=args.queue_mib * _MIB,
        spool_max_bytes=args.spool_mib * _MIB,
        batch_bytes=args.batch_kib * 1024,
        flush_timeout=args.flush_timeout,
    )


def _ship(
    args: argparse.Namespace,
    service: str,
    queue: ChunkQueue,
    abort: threading.Event,
    finish: Callable[[], list[Batch]] | None,
    watch_git: bool,
    prog: str,
) -> None:
    # Imported here, on the shipper's own thread, once the command runs: the HTTP client and
    # the rest take longer to load than many commands take to print their first line.
    from receivers.run_wrapper.shipper import Shipper

    tick = None
    if watch_git:
        from receivers.git_watch.watch import WorkdirWatch
        from receivers.run_wrapper.spool import Batch

        workdir = WorkdirWatch(Path.cwd())

        def tick(now: float) -> list[Batch]:
            events = workdir.tick(now)
            body = json.dumps({"events": events}).encode()
            return [Batch("", body, 0, "/v1/events")] if events else []

    Shipper(_config(args, service, prog), queue, abort, finish, tick).run()


def command_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """CMD ARGS from the parsed options (a leading ``--`` dropped); a usage error if none."""
    command: list[str] = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command and not args.flush_spool:
        parser.error("a command to run is required (or --flush-spool)")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (see --help)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = command_of(parser, args)
    if args.flush_spool:
        from receivers.run_wrapper.shipper import flush_spool

        return flush_spool(_config(args, ""))
    return run_wrapped(args, command)


def run_wrapped(
    args: argparse.Namespace,
    command: list[str],
    *,
    env: Mapping[str, str] | None = None,
    finish: Callable[[int, int], list[Batch]] | None = None,
    prog: str = "gasoline-run",
) -> int:
    """Run ``command`` with ``env``, passing its output through and shipping it; then
    ``finish(exit status, end time ns)``, on the shipper's thread, makes the batches that
    are delivered after the output. Returns the exit status (see --help)."""
    block_signals()
    ended: list[tuple[int, int]] = []  # set before the queue closes, read after
    after = None if finish is None else lambda: finish(*ended[0])
    queue = ChunkQueue(args.queue_mib * _MIB)
    abort = threading.Event()
    service = args.service or os.path.basename(command[0])
    shipper = threading.Thread(
        target=_ship,
        # gasoline test records the git state itself, once per run (``finish``).
        args=(args, service, queue, abort, after, finish is None and not args.no_git, prog),
        name="gasoline-run-shipper",
        daemon=True,
    )
    # The pump thread must get the interpreter back quickly after each read, or the child
    # waits on a full pipe while the shipper thread works: hand it over every 0.5 ms
    # instead of every 5 ms.
    sys.setswitchinterval(0.0005)
    use_pty = os.isatty(1) if args.pty is None else args.pty
    try:
        code = run_child(
            command,
            use_pty=use_pty,
            on_output=queue.put,
            on_started=shipper.start,
            on_late_signal=abort.set,
            env=env,
        )
    except FileNotFoundError:
        print(f"{prog}: {command[0]}: command not found", file=sys.stderr)
        return 127
    except OSError as exc:
        print(f"{prog}: {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 126
    ended.append((code, time.time_ns()))
    queue.close()
    shipper.join(args.flush_timeout + _JOIN_SLACK_S)
    return code
