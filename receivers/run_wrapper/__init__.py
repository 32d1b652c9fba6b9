"""``gasoline-run CMD ARGS``: run a command exactly as before and ship every line to Gasoline.

The command's output passes through byte for byte; a background shipper cuts it into whole
lines and posts them raw to the daemon's ``POST /v1/lines`` (which splits, parses and groups
stack traces), spilling to an on-disk spool when the daemon is down. Modules: ``child``
(process, pty/pipes, signals), ``chunks`` (the queue from the pump to the shipper), ``lines``
(bytes to whole lines), ``sender`` (HTTP), ``spool`` (disk buffer), ``shipper`` (the thread
that ties them together), ``cli`` (options and exit codes).
"""

from __future__ import annotations

__all__: list[str] = []
