"""``gasoline-run``: options, wiring, exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from receivers.run_wrapper.child import block_signals, run_child
from receivers.run_wrapper.lines import MAX_LINE_BYTES
from receivers.run_wrapper.shipper import Shipper, ShipperConfig, flush_spool

__all__ = ["main"]

_DEFAULT_URL = "http://127.0.0.1:7890"
_MIB = 1024 * 1024

_DESCRIPTION = f"""\
Run CMD ARGS exactly as without the wrapper (same output, colours, exit code, Ctrl-C), and
send every line of its output to a Gasoline daemon (POST /v1/lines), where it is parsed into
log records: JSON and logfmt fields, levels, trace ids; stack traces grouped into one
record. Options go before CMD.

Output: passed through byte for byte, unbuffered. When stdout is a terminal the command gets a
pty for stdout and stderr (it keeps colours and line buffering; stdout and stderr are then one
stream, as on a terminal); otherwise two pipes (stderr stays stderr, `| tee` works). stdin is
inherited. Lines longer than {MAX_LINE_BYTES // 1024} KiB are cut to that for shipping only;
colour codes are stripped from the shipped copy only.

Signals: SIGINT, SIGTERM and SIGHUP sent to the wrapper are forwarded to the command; Ctrl-C on
the terminal reaches the command directly (it stays in the terminal's foreground group) and is
not sent twice.

Shipping never slows the command: output goes to a bounded in-memory queue (--queue-mib,
default 64 MiB of raw output; when full the OLDEST output is dropped and counted) and a
background thread posts each stream's lines as text blocks, after 3 ms of quiet, 5 ms
of steady output, or --batch-lines lines / 4 MiB; the daemon groups multi-line records
(tracebacks, stack traces) across blocks. When the daemon is down or answers 5xx, batches
are appended to an on-disk spool (fsynced; sealed segments seg-NNNNNN.jsonl under
--spool-dir/run-<time>-<pid>/; at most --spool-mib, default 256 MiB, per run; beyond that
new batches are dropped and counted) and replayed in order once the daemon answers.
Batches answered 4xx are not retried: reported once on stderr and counted. At exit the
wrapper waits up to --flush-timeout seconds to deliver (not at all when nothing listens);
what is left stays in the spool and is replayed by the next gasoline-run (each run replays
every spool a finished run left behind) or by --flush-spool. Spooled lines keep the time they
were printed.

The wrapper prints nothing else unless something is wrong; a one-line summary of counters
appears on stderr at exit only when lines were spooled, dropped or rejected.

Exit status: the command's exit code; 128+N if it was killed by signal N; 127 if CMD was not
found, 126 if it could not be executed; 2 for a usage error. With --flush-spool: 0 when the
spool is empty afterwards, 1 when the daemon did not take all of it.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gasoline-run",
        usage="gasoline-run [options] CMD [ARGS...]\n       gasoline-run --flush-spool [options]",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
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
        "--batch-lines", type=_positive, default=100_000, help="most lines per POST (100000)"
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (see --help)."""
    parser = _parser()
    args = parser.parse_args(argv)
    command: list[str] = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    try:
        config = ShipperConfig(
            url=args.url,
            service=args.service or (os.path.basename(command[0]) if command else ""),
            tags=tuple(args.tag),
            spool_root=args.spool_dir,
            queue_bytes=args.queue_mib * _MIB,
            spool_max_bytes=args.spool_mib * _MIB,
            batch_lines=args.batch_lines,
            flush_timeout=args.flush_timeout,
        )
        if args.flush_spool:
            return flush_spool(config)
        if not command:
            parser.error("a command to run is required (or --flush-spool)")
        block_signals()
        shipper = Shipper(config, streams=2)
    except ValueError as exc:
        print(f"gasoline-run: {exc}", file=sys.stderr)
        return 2
    # The pump thread must get the interpreter back quickly after each read, or the child
    # waits on a full pipe while the shipper thread encodes: hand it over every 0.5 ms
    # instead of every 5 ms.
    sys.setswitchinterval(0.0005)
    shipper.start()
    use_pty = os.isatty(1) if args.pty is None else args.pty
    try:
        code = run_child(
            command, use_pty=use_pty, on_output=shipper.offer, on_late_signal=shipper.abort
        )
    except FileNotFoundError:
        print(f"gasoline-run: {command[0]}: command not found", file=sys.stderr)
        code = 127
    except OSError as exc:
        print(f"gasoline-run: {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        code = 126
    shipper.close()
    return code
