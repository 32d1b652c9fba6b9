"""Output bytes to shipping lines: split on newlines, cut, decoded, de-coloured.

Only the shipping copy is touched here; the pass-through path never sees this module, so a
line that is cut or decoded with replacement characters still reaches the terminal whole.
Multi-line records are grouped by the daemon (``receivers.stream_groups``), so the wrapper
does no per-line work beyond splitting.
"""

from __future__ import annotations

import re

__all__ = ["MAX_LINE_BYTES", "StreamLines"]

MAX_LINE_BYTES = 64 * 1024
"""Lines longer than this are cut to this many bytes for shipping (passed through whole)."""

# SGR and other CSI sequences: colours mean nothing to the log parser and hide levels.
_CSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_CUT_CHECK_CHARS = MAX_LINE_BYTES // 4  # shorter than this (in chars) cannot be too long


class StreamLines:
    """The complete lines of one output stream (stdout or stderr); not thread-safe.

    Keeps at most one partial line (up to ``MAX_LINE_BYTES``), so memory stays bounded
    however the child writes.
    """

    __slots__ = ("_carry", "_skipping", "truncated")

    def __init__(self) -> None:
        self._carry = b""
        self._skipping = False  # inside the tail of a line already cut and shipped
        self.truncated = 0

    def feed(self, data: bytes) -> list[str]:
        """The lines ``data`` completed.

        Complete lines are decoded as one block (a newline is never inside a UTF-8
        sequence, so this equals decoding line by line) to keep the per-line cost low.
        """
        if self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return []
            data = data[newline + 1 :]
            self._skipping = False
        if self._carry:
            data = self._carry + data
        end = data.rfind(b"\n")
        carry = data[end + 1 :]
        lines = self._lines(data[:end]) if end >= 0 else []
        if len(carry) > MAX_LINE_BYTES:
            lines += self._lines(carry)
            self._skipping = True
            carry = b""
        self._carry = carry
        return lines

    def close(self) -> list[str]:
        """End of stream: the unterminated last line, if any."""
        lines = self._lines(self._carry) if self._carry and not self._skipping else []
        self._carry = b""
        self._skipping = False
        return lines

    def _lines(self, block: bytes) -> list[str]:
        text = block.decode("utf-8", errors="replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n").removesuffix("\r")
        if "\x1b" in text:
            text = _CSI_RE.sub("", text)
        lines = text.split("\n")
        if max(map(len, lines)) > _CUT_CHECK_CHARS:
            for i, line in enumerate(lines):
                if len(line) > _CUT_CHECK_CHARS:
                    raw = line.encode()
                    if len(raw) > MAX_LINE_BYTES:
                        lines[i] = raw[:MAX_LINE_BYTES].decode("utf-8", errors="replace")
                        self.truncated += 1
        return lines
