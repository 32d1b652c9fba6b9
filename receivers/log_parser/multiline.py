"""Multi-line grouping: stack traces and continuation lines joined into one record.

A stack trace split over thirty records is useless to whoever reads the logs; grouping must
still be bounded (a runaway indented dump cannot hold memory) and must never lose or reorder
text: every line fed comes back exactly once, in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MultilineGrouper"]

_TRACEBACK = "Traceback (most recent call last):"
_PY_CONNECTORS = frozenset(
    (
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    )
)
# Java "... 12 more" / "... 3 common frames omitted" when not indented.
_JAVA_MORE_RE = re.compile(r"\.\.\. \d+ (?:more|common frames omitted)", re.ASCII)
# An exception header: "java.lang.IllegalStateException: boom", "TypeError: x", "Traceback ..."
_EXCEPTION_HEAD_RE = re.compile(
    r"(?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Error|Exception|Throwable)(?::|$)", re.ASCII
)
# A log line that announces an error, after which an exception header belongs to it
# (logger.exception(...), logback's "ERROR ... - Request failed" followed by the trace).
_ERRORISH_RE = re.compile(
    r"\b(?:error|err|fatal|severe|critical|crit|exception|panic|warn|warning|failed)\b",
    re.ASCII | re.IGNORECASE,
)
# Go panics: "goroutine 1 [running]:", "created by main.run in goroutine 1", and frames like
# "main.(*Server).handle(0xc000010000, ...)" (checked together with a closing ")"). Every
# repetition is bounded by literal parentheses, so matching stays linear on hostile lines.
_GO_LINE_RE = re.compile(
    r"(?:goroutine \d+ \[|created by |exit status \d|[\w./*-]+(?:\(\*?[\w.]+\)[\w./-]*)*\()",
    re.ASCII,
)


def _size(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))


class MultilineGrouper:
    """Groups continuation lines into one record (tracebacks, Java/Node stacks, indented lines).

    A line continues the pending record when it is indented or blank (Java ``\\tat``, Node
    ``    at``, Python frames), is a Java ``Caused by:``/``Suppressed:``/``... N more`` line, is
    the exception line or a chained-exception connector of a Python traceback, or is a frame
    of a Go panic. An exception header (``java.lang.X: msg``, ``TypeError: x``, ``Traceback
    (most recent call last):``) joins the pending record only if that is a single line
    announcing an error (``logger.exception``, logback's "ERROR ... failed" + trace); otherwise
    it starts its own record, so an uncaught crash is never filed under an unrelated line.

    Feed lines without their terminators; completed records come back joined with "\\n". A
    record is cut and emitted when it reaches ``max_lines`` lines or ``max_bytes`` UTF-8 bytes
    (lines themselves are never split, so one longer line is a record of its own).
    :meth:`flush` hands over the pending record; calling it when the source goes idle is the
    caller's job.
    """

    __slots__ = (
        "_bytes",
        "_carry",
        "_go_panic",
        "_lines",
        "_max_bytes",
        "_max_lines",
        "_python",
    )

    def __init__(self, *, max_lines: int = 500, max_bytes: int = 65536) -> None:
        if max_lines < 1 or max_bytes < 1:
            raise ValueError("max_lines and max_bytes must be positive")
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._lines: list[str] = []
        self._bytes = 0
        # Python traceback state: 0 none, 1 inside frames, 2 after the exception line,
        # 3 after a "During handling..." connector (a new Traceback header continues).
        self._python = 0
        self._go_panic = False
        # Set after a record was cut by a limit: the next line may still continue it.
        self._carry = False

    def _begin(self, line: str) -> None:
        self._lines = [line]
        self._bytes = _size(line)
        self._python = 1 if line.startswith(_TRACEBACK) else 0
        self._go_panic = line.startswith(("panic: ", "fatal error: "))

    def _continues(self, line: str) -> bool:
        first = line[:1]
        if first == " " or first == "\t" or not line or line.isspace():
            return True
        python = self._python
        if python == 1:
            if not line.startswith(_TRACEBACK):
                self._python = 2  # the "ValueError: boom" line closes the frames
            return True
        if python >= 2:
            if line in _PY_CONNECTORS:
                self._python = 3
                return True
            if python == 3 and line.startswith(_TRACEBACK):
                self._python = 1
                return True
            self._python = 0
        if line.startswith("Caused by: ") or line.startswith("Suppressed: "):
            return True
        if first == "." and _JAVA_MORE_RE.match(line):
            return True
        if self._go_panic:
            match = _GO_LINE_RE.match(line)
            if match is not None and (match.group()[-1] != "(" or line[-1] == ")"):
                return True
            self._go_panic = False
        is_traceback = line.startswith(_TRACEBACK)
        if is_traceback or _EXCEPTION_HEAD_RE.match(line):
            lines = self._lines
            if len(lines) == 1 and not self._carry and _ERRORISH_RE.search(lines[0]):
                if is_traceback:
                    self._python = 1
                return True
        return False

    def feed(self, line: str) -> list[str]:
        """Add one line; returns the records it completed (usually none or one)."""
        lines = self._lines
        if not lines:
            if self._carry and self._continues(line):
                self._lines = [line]
                self._bytes = _size(line)
            else:
                self._begin(line)
            self._carry = False
            return self._emit_if_full()
        if not self._continues(line):
            record = "\n".join(lines)
            self._begin(line)
            full = self._emit_if_full()
            if full:
                return [record, *full]
            return [record]
        size = _size(line)
        if self._bytes + 1 + size > self._max_bytes:
            # Cut before the line that would overflow; the rest starts a new record in the
            # same state, so a long trace continues grouping after the cut.
            record = "\n".join(lines)
            self._lines = [line]
            self._bytes = size
            return [record, *self._emit_if_full()]
        lines.append(line)
        self._bytes += 1 + size
        return self._emit_if_full()

    def feed_all(self, lines: Iterable[str]) -> list[str]:
        """:meth:`feed` for each line in turn; the records they completed, in order."""
        out: list[str] = []
        for line in lines:
            out.extend(self.feed(line))
        return out

    def _emit_if_full(self) -> list[str]:
        lines = self._lines
        if len(lines) >= self._max_lines or self._bytes >= self._max_bytes:
            record = "\n".join(lines)
            lines.clear()
            self._bytes = 0
            self._carry = True
            return [record]
        return []

    def flush(self) -> list[str]:
        """The pending record, if any; the grouper is empty afterwards."""
        if not self._lines:
            self._carry = False
            return []
        record = "\n".join(self._lines)
        self._lines = []
        self._bytes = 0
        self._python = 0
        self._go_panic = False
        self._carry = False
        return [record]
