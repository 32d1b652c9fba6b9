"""One HTTP client for ``POST /v1/lines`` (raw output as text/plain) and the wrapper's other
posts (a test run's spans, git events), and the one place answers are classified.

200 is delivered; 400/413 and other 4xx are the batch's fault and never retried; 5xx, 429,
timeouts and connection errors are the daemon's state and retried (via the spool).
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from collector.edge import client_headers

__all__ = ["Answer", "LinesClient", "Outcome"]

_RETRYABLE_4XX = frozenset((408, 429))
# Raw output; a test run's spans (an OTLP protobuf request); everything else is JSON.
_CONTENT_TYPES = {"/v1/lines": "text/plain", "/v1/tests": "application/x-protobuf"}


class Outcome(Enum):
    OK = "ok"
    REJECTED = "rejected"  # 4xx: not retryable
    RETRY = "retry"  # 5xx, timeout, reset: the daemon is there but not accepting
    DOWN = "down"  # connection refused or no such host: nothing listens


@dataclass(slots=True, frozen=True)
class Answer:
    outcome: Outcome
    message: str = ""


class LinesClient:
    """A keep-alive connection to the daemon; used from one thread only.

    ``post`` blocks for at most about ``timeout`` seconds and never raises for network or
    HTTP errors: they come back as an ``Answer``.
    """

    __slots__ = ("_base", "_conn", "_host", "_port", "_secure", "_timeout", "url")

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        """``url``: the daemon's http(s) URL (the command line checked it)."""
        parts = urlsplit(url)
        self.url = url
        self._secure = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(self, query: str, body: bytes, path: str = "/v1/lines") -> Answer:
        """Send one batch (raw output to ``/v1/lines``, JSON elsewhere); a stale keep-alive
        connection is retried once, fresh."""
        reused = self._conn is not None
        answer = self._post_once(query, body, path)
        if reused and answer.outcome is not Outcome.OK and answer.message == "stale":
            answer = self._post_once(query, body, path)
        if answer.message == "stale":
            return Answer(Outcome.RETRY, "connection closed by the daemon")
        return answer

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post_once(self, query: str, body: bytes, path: str) -> Answer:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._secure else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        conn = self._conn
        try:
            conn.request(
                "POST",
                f"{self._base}{path}?{query}" if query else self._base + path,
                body=body,
                headers={
                    "Content-Type": _CONTENT_TYPES.get(path, "application/json"),
                    **client_headers(),
                },
            )
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.close()
            return Answer(Outcome.RETRY, "stale")
        except ConnectionRefusedError:
            self.close()
            return Answer(Outcome.DOWN, "connection refused")
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer(Outcome.RETRY, str(exc) or type(exc).__name__)
        if resp.will_close:
            self.close()
        status = resp.status
        if status == 200:
            return Answer(Outcome.OK)
        message = f"HTTP {status}: {_error_text(data)}"
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            return Answer(Outcome.REJECTED, message)
        return Answer(Outcome.RETRY, message)


def _error_text(data: bytes) -> str:
    try:
        doc = json.loads(data)
    except ValueError:
        return data[:200].decode("utf-8", "replace")
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, str):
        return error
    return data[:200].decode("utf-8", "replace")
