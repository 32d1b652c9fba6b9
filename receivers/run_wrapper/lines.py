"""Output bytes to shipping blocks: whole lines only, each partial line carried over.

Only the shipping copy is touched here; the pass-through path never sees this module. The
daemon does the rest (``receivers.stream_groups``: decoding, line endings, colour codes, lines
over 65,536 characters), so the wrapper's per-chunk work is a search for the last newline.
"""

from __future__ import annotations

__all__ = ["MAX_LINE_BYTES", "StreamLines"]

MAX_LINE_BYTES = 64 * 1024
"""A partial line held longer than this is shipped cut to this many bytes (its rest is not
shipped; the pass-through gets it whole)."""


class StreamLines:
    """The complete lines of one output stream (stdout or stderr); not thread-safe.

    Keeps at most one partial line (up to ``MAX_LINE_BYTES``), so memory stays bounded
    however the child writes.
    """

    __slots__ = ("_carry", "_skipping")

    def __init__(self) -> None:
        self._carry = b""
        self._skipping = False  # inside the tail of a line already cut and shipped

    def feed(self, data: bytes) -> bytes:
        """The lines ``data`` completed, each ending in a newline (b"" if none)."""
        if self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return b""
            data = data[newline + 1 :]
            self._skipping = False
        if self._carry:
            data = self._carry + data
        end = data.rfind(b"\n") + 1
        block, carry = data[:end], data[end:]
        if len(carry) > MAX_LINE_BYTES:
            block += carry[:MAX_LINE_BYTES] + b"\n"
            self._skipping = True
            carry = b""
        self._carry = carry
        return block

    def close(self) -> bytes:
        """End of stream: the unterminated last line, if any, with a newline."""
        block = self._carry + b"\n" if self._carry and not self._skipping else b""
        self._carry = b""
        self._skipping = False
        return block
