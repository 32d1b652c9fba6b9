"""``gasoline-run CMD ARGS``: run a command exactly as before and ship every line to Gasoline.

The command's output passes through byte for byte; a background shipper splits it into lines,
groups stack traces, and posts them to the daemon's ``POST /v1/lines``, spilling to an on-disk
spool when the daemon is down. Modules: ``child`` (process, pty/pipes, signals), ``lines``
(bytes to records), ``sender`` (HTTP), ``spool`` (disk buffer), ``shipper`` (the thread that
ties them together), ``cli`` (options and exit codes).
"""

from __future__ import annotations

__all__: list[str] = []
