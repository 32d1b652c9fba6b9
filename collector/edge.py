"""Who may talk to the daemon's ports: the host a request names, and the token it carries.

Protocol-neutral: the HTTP middleware (``receivers.http_guard``) and the gRPC receiver ask
one ``EdgePolicy``, which counts every refusal by reason for ``/daemon/status``.

- **Host.** Only loopback names and addresses (``localhost``, ``127.0.0.1``, ``[::1]``,
  any port), the names in ``service.api.allowed_hosts`` and a specific non-loopback address
  the daemon binds are served. A page that rebinds its own DNS name to 127.0.0.1 still
  sends its own name as Host, so it is refused. A request without Host (HTTP/1.0) is served.
- **Token.** With ``service.api.auth.token`` or ``GASOLINE_TOKEN`` set, every request must
  carry ``Authorization: Bearer <token>`` (gRPC: the ``authorization`` metadata), or the
  ``TOKEN_COOKIE`` a browser got by opening a page with ``?token=`` once (a page load
  cannot send a header). A bind beyond loopback without a token is refused at start.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from collector.errors import ConfigError

if TYPE_CHECKING:
    from collector.config.sections import ApiConfig

__all__ = [
    "HOSTS_KEY",
    "TOKEN_COOKIE",
    "TOKEN_ENV",
    "TOKEN_KEY",
    "EdgePolicy",
    "Refusal",
    "client_headers",
    "daemon_url",
    "host_name",
    "is_loopback",
    "same_origin",
]

TOKEN_ENV = "GASOLINE_TOKEN"
TOKEN_KEY = "service.api.auth.token"
TOKEN_COOKIE = "gasoline_token"
HOSTS_KEY = "service.api.allowed_hosts"
_LOOPBACK_NAMES = frozenset(("localhost", "127.0.0.1", "::1"))
_ANY_ADDRESS = frozenset(("", "0.0.0.0", "::"))


class Refusal(StrEnum):
    """Why a request was refused at the edge, as counted in ``/daemon/status``."""

    HOST = "host"
    TOKEN = "token"
    ORIGIN = "origin"
    CONTENT_TYPE = "content_type"
    BROWSER_TOOL = "browser_tool"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host part of a ``Host`` header or gRPC authority, lowercased, without port or
    brackets: ``[::1]:7890`` -> ``::1``, ``LocalHost:80`` -> ``localhost``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, sep, port = header.rpartition(":")
    return name if sep and port.isdigit() else header


class EdgePolicy:
    """The allowed host names and the token of one daemon. Loop-only, like the receivers."""

    __slots__ = ("_hosts", "_token", "header_timeout_s", "refused")

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        token: str | None = None,
        header_timeout_s: float = 10.0,
    ) -> None:
        self._hosts = _LOOPBACK_NAMES | {host_name(h) for h in allowed_hosts}
        self._token = token.encode() if token else None
        # A connection must deliver a whole request head this soon after it opens or after
        # its previous answer (slow-header clients are cut off).
        self.header_timeout_s = header_timeout_s
        self.refused: Counter[Refusal] = Counter()

    @classmethod
    def for_daemon(cls, api: ApiConfig, environ: Mapping[str, str] = os.environ) -> EdgePolicy:
        """The policy ``service.api`` sets, the token from ``GASOLINE_TOKEN`` if set."""
        return cls(
            allowed_hosts=api.allowed_hosts,
            token=environ.get(TOKEN_ENV) or api.auth.token,
            header_timeout_s=float(api.header_timeout),
        )

    def admit_binds(self, hosts: Iterable[str]) -> None:
        """Check the hosts the ports will bind, before any binds: one beyond loopback needs
        a token (``ConfigError`` otherwise), and a specific such address becomes a name
        the ports answer to."""
        exposed = sorted({h for h in hosts if not is_loopback(h)})
        if exposed and self._token is None:
            raise ConfigError(
                [
                    f"{TOKEN_KEY}: required when a port binds beyond loopback "
                    f"({', '.join(h or '*' for h in exposed)}): set it (16+ characters) or "
                    f"${TOKEN_ENV}, and give the same token to clients in ${TOKEN_ENV}"
                ]
            )
        self._hosts |= {host_name(h) for h in exposed if h not in _ANY_ADDRESS}

    @property
    def token_required(self) -> bool:
        return self._token is not None

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request naming ``header`` as its Host (or authority) is served."""
        return header is None or host_name(header) in self._hosts

    def authorized(self, authorization: str | None, cookie: str | None = None) -> bool:
        """Whether ``authorization`` (``Bearer <token>``) or the ``cookie`` holds the token;
        true when no token is set. Compared in constant time."""
        if self._token is None:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and self.is_token(given.strip()):
            return True
        return cookie is not None and self.is_token(cookie)

    def is_token(self, given: str) -> bool:
        return self._token is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogatepass"), self._token
        )

    def refuse(self, reason: Refusal) -> None:
        self.refused[reason] += 1

    def host_message(self, header: str) -> str:
        return (
            f"host {header!r} is not served here (a loopback name or address is expected); "
            f"add it to {HOSTS_KEY} if clients reach the daemon by that name"
        )

    def token_message(self) -> str:
        return (
            f"a bearer token is required ({TOKEN_KEY} or ${TOKEN_ENV} on the daemon; "
            f"clients send ${TOKEN_ENV}): none or a wrong one was sent"
        )

    def stats(self) -> dict[str, Any]:
        return {
            "allowed_hosts": sorted(self._hosts),
            "token_required": self.token_required,
            "refused": {reason.value: self.refused[reason] for reason in Refusal},
        }


def client_headers(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Headers a client of the daemon (CLI, ``gasoline mcp``, ``gasoline-run``) sends:
    the bearer token from ``GASOLINE_TOKEN`` when it is set."""
    token = environ.get(TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


def daemon_url(text: str) -> str:
    """A daemon's API URL as a client was given it (``--url``, ``GASOLINE_URL``), without a
    trailing slash. ``ValueError`` names what is wrong: ``localhost:7890`` would otherwise
    read as a scheme and fail later as a daemon that is down."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) URL (e.g. http://127.0.0.1:7890)")
    return text.strip().rstrip("/")


def same_origin(origin: str | None, host: str | None) -> bool:
    """The request comes from a page this port served itself (Origin is scheme://Host).
    Meaningful after the Host check: the Host is then a name this daemon answers to."""
    return origin is not None and host is not None and origin.lower() == f"http://{host.lower()}"
