"""What every generator starts from: the requests, browser actions, root cause and
clock corrections of one trace, and the secrets it must not write."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from collector.analysis.causality import CausalityAnswer, analyze_causality
from collector.analysis.signals import http_method, http_status, is_browser
from collector.analysis.timing import clock_shifts
from collector.model import Record, SpanKind
from collector.trace_tree import Node, TraceTree

__all__ = [
    "CLICK_ACTIONS",
    "FILL_ACTIONS",
    "FORMATS",
    "GENERATORS",
    "HOLE",
    "NAVIGATE_ACTIONS",
    "PLACEHOLDER",
    "PRESS_ACTIONS",
    "REDACTED",
    "SELECT_ACTIONS",
    "Action",
    "Facts",
    "Format",
    "GenerateError",
    "Generator",
    "Request",
    "Secret",
    "Value",
    "capped",
    "check_base_url",
    "display",
    "first_text",
    "observed_line",
    "one_line",
    "rebase",
    "require_steps",
    "root_cause_line",
    "split_secrets",
]


class Generator(StrEnum):
    """What ``generate`` writes; the MCP schema's ``type`` is generated from this."""

    REPRODUCTION = "reproduction"
    TEST = "test"
    PR_SUMMARY = "pr_summary"
    TIMELINE_REPORT = "timeline_report"


class Format(StrEnum):
    """What an artifact can be written as; ``FORMATS`` says which fit which generator."""

    CURL = "curl"
    PLAYWRIGHT = "playwright"
    PYTHON = "python"
    PYTEST = "pytest"
    MARKDOWN = "markdown"


GENERATORS = tuple(Generator)
FORMATS: dict[Generator, tuple[Format, ...]] = {
    Generator.REPRODUCTION: (Format.CURL, Format.PLAYWRIGHT, Format.PYTHON),
    Generator.TEST: (Format.PYTEST, Format.PLAYWRIGHT),
    Generator.PR_SUMMARY: (Format.MARKDOWN,),
    Generator.TIMELINE_REPORT: (Format.MARKDOWN,),
}
REDACTED = "[REDACTED]"
"""What the redaction processor writes by default in place of a secret."""

_MAX_ITEMS = 200
_T = TypeVar("_T")
PLACEHOLDER = "REPLACE_ME"
# Marks a redacted part of a URL or body: HOLE, the environment variable, HOLE.
HOLE = "\x00"
# The field name just before a redacted value: ``api_key=``, ``"password": "``, ``user:``.
_NAME_BEFORE = re.compile(r"([A-Za-z0-9_.-]+)[\"']?\s*[=:]\s*[\"']?$")
_SKIPPED_HEADERS = frozenset(
    {"host", "content-length", "connection", "traceparent", "tracestate", "baggage"}
)
_HEADER_PREFIX = "http.request.header."
_BODY_KEYS = ("http.request.body", "http.request.body.content", "request.body")
_FULL_URL_KEYS = ("url.full", "http.url", "url")
_ROUTE_KEYS = ("http.route",)
FILL_ACTIONS = frozenset({"input", "fill", "type", "change"})
CLICK_ACTIONS = frozenset({"click", "dblclick"})
NAVIGATE_ACTIONS = frozenset({"navigate", "goto", "navigation", "load"})
PRESS_ACTIONS = frozenset({"press", "keypress", "keydown"})
SELECT_ACTIONS = frozenset({"select"})


class GenerateError(ValueError):
    """The request cannot be served as asked; the message says what to change."""


# -- what the generators share ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Secret:
    """A value redaction replaced: scripts read it from an environment variable."""

    env: str


Value = str | Secret


@dataclass(slots=True)
class Request:
    """One client-visible HTTP request, placed on the tree-corrected clock."""

    node: Node
    time_ns: int
    method: str
    url: str
    route: str
    status: int | None
    failed: bool
    headers: list[tuple[str, Value]]
    body: str | None

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "") or "/"

    @property
    def label(self) -> str:
        return f"{self.node.span.service} {self.node.span.name}"

    @property
    def threshold(self) -> int:
        """The status a fixed request must stay below: 500 for a 5xx, 400 for a 4xx."""
        return 400 if self.status is not None and 400 <= self.status < 500 else 500


@dataclass(slots=True)
class Action:
    """A user action the browser reported: click, input, navigate, ..."""

    time_ns: int
    action: str
    selector: str | None
    value: Value | None
    url: str | None
    record: Record


_Step = Request | Action


@dataclass(slots=True)
class Facts:
    """What the generators need, computed once: corrected times, requests, actions."""

    tree: TraceTree
    base_url: str | None
    start_ns: int
    shift: dict[int, int]
    requests: list[Request]
    actions: list[Action]
    notes: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    _causality: CausalityAnswer | None = None

    @classmethod
    def of(cls, tree: TraceTree, base_url: str | None) -> Facts:
        shift, by_service, browser_shift = clock_shifts(tree)
        facts = cls(tree, base_url, 0, shift, [], [])
        times = [n.span.start_ns + shift[id(n)] for n in tree.nodes.values()]
        for record in tree.records:
            owner = tree.nodes.get(record.span_id) if record.span_id is not None else None
            if owner is not None and record.service in ("", owner.span.service):
                delta = shift[id(owner)]
            elif record.service:
                delta = by_service.get(record.service, 0)
            else:
                delta = browser_shift if record.source == "browser" else 0
            facts.shift[id(record)] = delta
            times.append(record.time_ns + delta)
        facts.start_ns = min(times, default=0)
        facts.moved = sorted({s for s, d in by_service.items() if d})
        facts.requests = _requests(facts)
        facts.actions = _actions(facts)
        return facts

    def corrected(self, item: Node | Record) -> int:
        if isinstance(item, Node):
            return item.span.start_ns + self.shift[id(item)]
        return item.time_ns + self.shift[id(item)]

    @property
    def causality(self) -> CausalityAnswer:
        if self._causality is None:
            self._causality = analyze_causality(self.tree)
        return self._causality

    @property
    def trace_hex(self) -> str:
        return self.tree.trace_id.hex()

    def steps(self) -> list[_Step]:
        """Requests and actions in the order they happened."""
        steps: list[_Step] = [*self.requests, *self.actions]
        steps.sort(key=lambda s: s.time_ns)
        return steps

    def failing(self) -> list[Request]:
        return [r for r in self.requests if r.failed]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def secret(self, what: str, hint: str) -> Secret:
        env = "GASOLINE_" + (re.sub(r"[^0-9A-Za-z]+", "_", hint).strip("_").upper() or "SECRET")
        self.note(
            f"{what} was redacted in the trace ({REDACTED}); the script reads it from ${env}"
            f" and sends {PLACEHOLDER!r} if that is not set"
        )
        return Secret(env)

    def template(self, text: str, what: str) -> str:
        """Partially redacted text (a URL, a body): each redacted part becomes a hole
        (``HOLE`` env ``HOLE``) that scripts fill from an environment variable named
        after the field before it; the marker is never sent as if it were real."""
        pieces = text.split(REDACTED)
        out = [pieces[0]]
        for before, piece in pairwise(pieces):
            name = _NAME_BEFORE.search(before)
            field_name = name[1] if name else "secret"
            env = self.secret(f"{field_name!r} in {what}", field_name).env
            out.append(f"{HOLE}{env}{HOLE}{piece}")
        return "".join(out)


def split_secrets(text: str) -> list[Value]:
    """Text with holes as literal pieces and the secrets that fill the holes."""
    pieces = text.split(HOLE)
    return [Secret(p) if i % 2 else p for i, p in enumerate(pieces) if i % 2 or p]


def display(text: str) -> str:
    """Text with holes shown as the environment variables that fill them."""
    return "".join(f"${v.env}" if isinstance(v, Secret) else v for v in split_secrets(text))


def check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise GenerateError(
            f"base_url {base_url!r} must be scheme://host[:port] (http or https, no path),"
            " e.g. http://127.0.0.1:8000"
        )


def rebase(url: str, base_url: str | None) -> str:
    if base_url is None:
        return url
    base = urlsplit(base_url)
    parts = urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, parts.path or "/", parts.query, parts.fragment))


def first_text(attributes: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _server_child(node: Node) -> Node | None:
    if node.kind != SpanKind.CLIENT:
        return None
    return next((c for c in node.children if c.kind == SpanKind.SERVER), None)


def _requests(facts: Facts) -> list[Request]:
    """Browser fetches if the browser sent spans, else the outermost HTTP spans."""
    tree = facts.tree
    http_nodes = [n for n in tree.walk() if http_method(n.detail().attributes) is not None]
    fetches = [n for n in http_nodes if n.kind == SpanKind.CLIENT and is_browser(n)]
    if fetches:
        chosen = _outermost(tree, fetches)
    else:
        chosen = _outermost(
            tree, [n for n in http_nodes if n.kind in (SpanKind.SERVER, SpanKind.CLIENT)]
        )
    requests = [_request(facts, n) for n in chosen]
    requests.sort(key=lambda r: r.time_ns)
    return requests


def _outermost(tree: TraceTree, nodes: list[Node]) -> list[Node]:
    """``nodes`` that have none of ``nodes`` above them; one walk, so deep trees stay linear."""
    ids = {id(n) for n in nodes}
    below: set[int] = set()  # nodes with one of ``nodes`` above them
    for node in tree.walk():  # parents before children
        parent = node.parent
        if parent is not None and (id(parent) in ids or id(parent) in below):
            below.add(id(node))
    return [n for n in nodes if id(n) not in below]


def _request(facts: Facts, node: Node) -> Request:
    attributes = node.detail().attributes
    server = _server_child(node)
    server_attributes = server.detail().attributes if server is not None else {}
    method = http_method(attributes) or "GET"
    url = _url_of(facts, attributes, method)
    status = http_status(attributes)
    if status is None:
        status = http_status(server_attributes)
    route = (
        first_text(attributes, *_ROUTE_KEYS)
        or first_text(server_attributes, *_ROUTE_KEYS)
        or urlsplit(url).path
        or "/"
    )
    headers = _headers(facts, attributes, method, route) or _headers(
        facts, server_attributes, method, route
    )
    body = first_text(attributes, *_BODY_KEYS) or first_text(server_attributes, *_BODY_KEYS)
    if body is not None:
        body = facts.template(body, f"the body of {method} {route}")
    failed = node.is_error or (status is not None and status >= 400)
    return Request(node, facts.corrected(node), method, url, route, status, failed, headers, body)


def _url_of(facts: Facts, attributes: dict[str, Any], method: str) -> str:
    """The full URL, or one rebuilt from the server-side parts a SERVER span records."""
    full = first_text(attributes, *_FULL_URL_KEYS)
    if full is not None and urlsplit(full).netloc:
        what = f"the URL of {method} {urlsplit(full).path or '/'}"
        return rebase(facts.template(full, what), facts.base_url)
    path = first_text(attributes, "url.path")
    if path is not None:
        query = first_text(attributes, "url.query")
        path = f"{path}?{query}" if query else path
    else:
        path = first_text(attributes, "http.target") or full
    if path is None:
        path = first_text(attributes, *_ROUTE_KEYS) or "/"
        if "{" in path or ":" in path:
            facts.note(
                f"{method} {path} is a route template (no concrete path was recorded):"
                " fill in its parameters"
            )
    path = facts.template(path if path.startswith("/") else f"/{path}", f"the URL of {method}")
    scheme = first_text(attributes, "url.scheme", "http.scheme") or "http"
    host = first_text(attributes, "server.address", "http.host", "net.host.name")
    port = attributes.get("server.port", attributes.get("net.host.port"))
    if host is None:
        host = "localhost"
        if facts.base_url is None:
            facts.note(
                f"the host of {method} {path} is not in the trace: localhost assumed;"
                " pass base_url to aim at the right server"
            )
    netloc = host if port is None or ":" in host else f"{host}:{port}"
    return rebase(urlunsplit((scheme, netloc, *_split_path(path))), facts.base_url)


def _split_path(path: str) -> tuple[str, str, str]:
    parts = urlsplit(path)
    return parts.path, parts.query, parts.fragment


def _headers(
    facts: Facts, attributes: dict[str, Any], method: str, route: str
) -> list[tuple[str, Value]]:

    headers: list[tuple[str, Value]] = []
    for key, raw in sorted(attributes.items()):
        if not key.startswith(_HEADER_PREFIX):
            continue
        name = key[len(_HEADER_PREFIX) :]
        if not name or name.lower() in _SKIPPED_HEADERS:
            continue
        values = [str(v) for v in raw] if isinstance(raw, list | tuple) else [str(raw)]
        text = ", ".join(values)
        if REDACTED in text:
            headers.append((name, facts.secret(f"header {name!r} of {method} {route}", name)))
        else:
            folded = re.sub(r"\s*[\r\n]+\s*", " ", text)
            if folded != text:
                facts.note(f"header {name!r} had line breaks, which HTTP forbids: folded")
            headers.append((name, folded))
    return headers


def _actions(facts: Facts) -> list[Action]:
    actions: list[Action] = []
    for record in facts.tree.records:
        action = record.attributes.get("action")
        if record.source != "browser" or not isinstance(action, str) or not action:
            continue
        selector = record.attributes.get("selector")
        raw_value = record.attributes.get("value")
        url = record.attributes.get("url")
        value: Value | None = None
        if raw_value is not None:
            text = str(raw_value)
            if REDACTED in text:
                value = facts.secret(f"the value typed into {selector}", f"value {selector}")
            else:
                value = text
        actions.append(
            Action(
                facts.corrected(record),
                action.lower(),
                str(selector) if selector is not None else None,
                value,
                rebase(facts.template(str(url), "a navigated URL"), facts.base_url)
                if url is not None
                else None,
                record,
            )
        )
    actions.sort(key=lambda a: a.time_ns)
    return actions


def capped(items: list[_T], facts: Facts, what: str) -> tuple[list[_T], int]:
    if len(items) <= _MAX_ITEMS:
        return items, 0
    facts.note(f"only the first {_MAX_ITEMS} of {len(items)} {what} are included")
    return items[:_MAX_ITEMS], len(items) - _MAX_ITEMS


def one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def observed_line(request: Request) -> str:
    if request.status is not None:
        return f"HTTP {request.status}"
    return "an error without HTTP status" if request.failed else "no status recorded"


def root_cause_line(facts: Facts) -> str | None:
    cause = facts.causality["root_cause"]
    if cause is None:
        return None
    where = f"{cause['service']} {cause['name']}" if cause.get("name") else cause["service"]
    return one_line(f"{where}: {cause['message']}")


def require_steps(facts: Facts) -> None:
    if not facts.requests and not facts.actions:
        raise GenerateError(
            f"trace {facts.trace_hex} has no HTTP request (no span carries http.request.method)"
            " and no browser action (no browser event with an 'action'): choose a trace of an"
            " HTTP request, or use timeline_report"
        )
