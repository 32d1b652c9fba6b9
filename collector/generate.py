"""Artifacts written from one trace: a reproduction script, a failing test, a PR summary,
a timeline report.

An agent that found a bug in a trace needs to hand it on: a script that replays what the
user did, a test that fails until the bug is fixed, a description for the pull request.
Everything here is derived from the span tree and its records, never from raw
timestamps alone, so skewed clocks between services do not reorder requests. Secrets
that redaction replaced are never written as if they were real values: scripts read
them from environment variables and say so in the notes.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from collector.analysis.causality import analyze_causality
from collector.analysis.signals import failure_of, http_method, http_status, is_browser
from collector.analysis.timing import LAYERS, aligned
from collector.model import Record, SpanKind
from collector.trace_tree import Node, TraceTree

__all__ = ["FORMATS", "GENERATORS", "REDACTED", "GenerateError", "generate"]

GENERATORS = ("reproduction", "test", "pr_summary", "timeline_report")
FORMATS: dict[str, tuple[str, ...]] = {
    "reproduction": ("curl", "playwright", "python"),
    "test": ("pytest", "playwright"),
    "pr_summary": ("markdown",),
    "timeline_report": ("markdown",),
}
REDACTED = "[REDACTED]"
"""What the redaction processor writes by default in place of a secret."""

_MAX_ITEMS = 200
_T = TypeVar("_T")
_PLACEHOLDER = "REPLACE_ME"
_SKIPPED_HEADERS = frozenset(
    {"host", "content-length", "connection", "traceparent", "tracestate", "baggage"}
)
_HEADER_PREFIX = "http.request.header."
_BODY_KEYS = ("http.request.body", "http.request.body.content", "request.body")
_FULL_URL_KEYS = ("url.full", "http.url", "url")
_ROUTE_KEYS = ("http.route",)
_FILL_ACTIONS = frozenset({"input", "fill", "type", "change"})
_CLICK_ACTIONS = frozenset({"click", "dblclick"})
_NAVIGATE_ACTIONS = frozenset({"navigate", "goto", "navigation", "load"})
_PRESS_ACTIONS = frozenset({"press", "keypress", "keydown"})
_SELECT_ACTIONS = frozenset({"select"})


class GenerateError(ValueError):
    """The request cannot be served as asked; the message says what to change."""


def generate(
    kind: str,
    tree: TraceTree,
    *,
    format: str | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """One artifact of ``kind`` (see ``GENERATORS``) for the trace, in ``format``.

    ``format`` defaults per kind (reproduction: ``playwright`` when the trace has browser
    actions, else ``curl``; test: ``pytest``; the reports: ``markdown``). ``base_url``
    (``scheme://host[:port]``) replaces the scheme, host and port of every request and
    page URL, to aim a reproduction or test at another deployment (a local server, a
    staging host). Returns ``{"type", "format", "filename", "content", "notes"}``.
    """
    if kind not in GENERATORS:
        raise GenerateError(f"unknown generator {kind!r}: use one of {', '.join(GENERATORS)}")
    allowed = FORMATS[kind]
    if format is not None and format not in allowed:
        raise GenerateError(
            f"{kind} cannot be written as {format!r}: use format {', '.join(allowed)}"
            " (or leave it out for the default)"
        )
    if base_url is not None:
        _check_base_url(base_url)
    facts = _Facts.of(tree, base_url)
    if kind not in ("reproduction", "test"):
        facts.notes.clear()  # notes about building requests concern scripts only
    short = tree.trace_id.hex()[:8]
    if kind == "reproduction":
        chosen = format or ("playwright" if facts.actions else "curl")
        content = _REPRODUCTIONS[chosen](facts)
        filename = {"curl": "sh", "python": "py", "playwright": "spec.js"}[chosen]
        filename = f"repro_{short}.{filename}"
    elif kind == "test":
        chosen = format or "pytest"
        content = _TESTS[chosen](facts)
        filename = f"test_trace_{short}.py" if chosen == "pytest" else f"trace_{short}.spec.js"
    elif kind == "pr_summary":
        chosen = "markdown"
        content = _pr_summary(facts)
        filename = f"pr_summary_{short}.md"
    else:
        chosen = "markdown"
        content = _timeline_report(facts)
        filename = f"timeline_{short}.md"
    return {
        "type": kind,
        "format": chosen,
        "filename": filename,
        "content": content,
        "notes": facts.notes,
    }


# -- what the generators share ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Secret:
    """A value redaction replaced: scripts read it from an environment variable."""

    env: str


_Value = str | _Secret


@dataclass(slots=True)
class _Request:
    """One client-visible HTTP request, placed on the tree-corrected clock."""

    node: Node
    time_ns: int
    method: str
    url: str
    route: str
    status: int | None
    failed: bool
    headers: list[tuple[str, _Value]]
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
class _Action:
    """A user action the browser reported: click, input, navigate, ..."""

    time_ns: int
    action: str
    selector: str | None
    value: _Value | None
    url: str | None
    record: Record


_Step = _Request | _Action


@dataclass(slots=True)
class _Facts:
    """What the generators need, computed once: corrected times, requests, actions."""

    tree: TraceTree
    base_url: str | None
    start_ns: int
    shift: dict[int, int]
    requests: list[_Request]
    actions: list[_Action]
    notes: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    _causality: dict[str, Any] | None = None

    @classmethod
    def of(cls, tree: TraceTree, base_url: str | None) -> _Facts:
        shift, by_service, browser_shift = _clock_shifts(tree)
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
    def causality(self) -> dict[str, Any]:
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

    def failing(self) -> list[_Request]:
        return [r for r in self.requests if r.failed]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def secret(self, what: str, hint: str) -> _Secret:
        env = "GASOLINE_" + (re.sub(r"[^0-9A-Za-z]+", "_", hint).strip("_").upper() or "SECRET")
        self.note(
            f"{what} was redacted in the trace ({REDACTED}); the script reads it from ${env}"
            f" and sends {_PLACEHOLDER!r} if that is not set"
        )
        return _Secret(env)

    def scrub(self, text: str, what: str) -> str:
        """Partially redacted text (a URL, a body): mark the hole, never send the marker."""
        if REDACTED not in text:
            return text
        self.note(f"{what} contained {REDACTED}: replace {_PLACEHOLDER} with the real value")
        return text.replace(REDACTED, _PLACEHOLDER)


def _clock_shifts(tree: TraceTree) -> tuple[dict[int, int], dict[str, int], int]:
    """How far each span must move to sit on its root's clock.

    ``aligned`` places a child from another service inside its parent; the move carries
    down to the child's own descendants, which share its clock. Orphans take the move
    of the first placed span of their service. Returns per-node moves, per-service moves
    and the browser's move (for browser records that name no service).
    """
    shift: dict[int, int] = {}
    by_service: dict[str, int] = {}
    browser: int | None = None
    for node in tree.walk():
        if node.parent is None:
            delta = by_service.get(node.span.service, 0) if node.orphan else 0
        else:
            delta = shift[id(node.parent)] + aligned(node)[0] - node.span.start_ns
        shift[id(node)] = delta
        by_service.setdefault(node.span.service, delta)
        if browser is None and is_browser(node):
            browser = delta
    return shift, by_service, browser or 0


def _check_base_url(base_url: str) -> None:
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


def _rebase(url: str, base_url: str | None) -> str:
    if base_url is None:
        return url
    base = urlsplit(base_url)
    parts = urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, parts.path or "/", parts.query, parts.fragment))


def _text(attributes: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _server_child(node: Node) -> Node | None:
    if node.kind != SpanKind.CLIENT:
        return None
    return next((c for c in node.children if c.kind == SpanKind.SERVER), None)


def _requests(facts: _Facts) -> list[_Request]:
    """Browser fetches if the browser sent spans, else the outermost HTTP spans."""
    tree = facts.tree
    http_nodes = [n for n in tree.walk() if http_method(n.detail().attributes) is not None]
    fetches = [n for n in http_nodes if n.kind == SpanKind.CLIENT and is_browser(n)]
    if fetches:
        chosen = _outermost(fetches)
    else:
        chosen = _outermost([n for n in http_nodes if n.kind in (SpanKind.SERVER, SpanKind.CLIENT)])
    requests = [_request(facts, n) for n in chosen]
    requests.sort(key=lambda r: r.time_ns)
    return requests


def _outermost(nodes: list[Node]) -> list[Node]:
    ids = {id(n) for n in nodes}
    return [n for n in nodes if not any(id(a) in ids for a in n.path_from_root()[:-1])]


def _request(facts: _Facts, node: Node) -> _Request:
    attributes = node.detail().attributes
    server = _server_child(node)
    server_attributes = server.detail().attributes if server is not None else {}
    method = http_method(attributes) or "GET"
    url = _url_of(facts, attributes, method)
    status = http_status(attributes)
    if status is None:
        status = http_status(server_attributes)
    route = (
        _text(attributes, *_ROUTE_KEYS)
        or _text(server_attributes, *_ROUTE_KEYS)
        or urlsplit(url).path
        or "/"
    )
    headers = _headers(facts, attributes, method, route) or _headers(
        facts, server_attributes, method, route
    )
    body = _text(attributes, *_BODY_KEYS) or _text(server_attributes, *_BODY_KEYS)
    if body is not None:
        body = facts.scrub(body, f"the body of {method} {route}")
    failed = node.is_error or (status is not None and status >= 400)
    return _Request(node, facts.corrected(node), method, url, route, status, failed, headers, body)


def _url_of(facts: _Facts, attributes: dict[str, Any], method: str) -> str:
    """The full URL, or one rebuilt from the server-side parts a SERVER span records."""
    full = _text(attributes, *_FULL_URL_KEYS)
    if full is not None and urlsplit(full).netloc:
        return _rebase(facts.scrub(full, f"the URL of {method} {full}"), facts.base_url)
    path = _text(attributes, "url.path")
    if path is not None:
        query = _text(attributes, "url.query")
        path = f"{path}?{query}" if query else path
    else:
        path = _text(attributes, "http.target") or full
    if path is None:
        path = _text(attributes, *_ROUTE_KEYS) or "/"
        if "{" in path or ":" in path:
            facts.note(
                f"{method} {path} is a route template (no concrete path was recorded):"
                " fill in its parameters"
            )
    path = facts.scrub(path if path.startswith("/") else f"/{path}", f"the URL of {method}")
    scheme = _text(attributes, "url.scheme", "http.scheme") or "http"
    host = _text(attributes, "server.address", "http.host", "net.host.name")
    port = attributes.get("server.port", attributes.get("net.host.port"))
    if host is None:
        host = "localhost"
        if facts.base_url is None:
            facts.note(
                f"the host of {method} {path} is not in the trace: localhost assumed;"
                " pass base_url to aim at the right server"
            )
    netloc = host if port is None or ":" in host else f"{host}:{port}"
    return _rebase(urlunsplit((scheme, netloc, *_split_path(path))), facts.base_url)


def _split_path(path: str) -> tuple[str, str, str]:
    parts = urlsplit(path)
    return parts.path, parts.query, parts.fragment


def _headers(
    facts: _Facts, attributes: dict[str, Any], method: str, route: str
) -> list[tuple[str, _Value]]:
    headers: list[tuple[str, _Value]] = []
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


def _actions(facts: _Facts) -> list[_Action]:
    actions: list[_Action] = []
    for record in facts.tree.records:
        action = record.attributes.get("action")
        if record.source != "browser" or not isinstance(action, str) or not action:
            continue
        selector = record.attributes.get("selector")
        raw_value = record.attributes.get("value")
        url = record.attributes.get("url")
        value: _Value | None = None
        if raw_value is not None:
            text = str(raw_value)
            if REDACTED in text:
                value = facts.secret(f"the value typed into {selector}", f"value {selector}")
            else:
                value = text
        actions.append(
            _Action(
                facts.corrected(record),
                action.lower(),
                str(selector) if selector is not None else None,
                value,
                _rebase(facts.scrub(str(url), "a navigated URL"), facts.base_url)
                if url is not None
                else None,
                record,
            )
        )
    actions.sort(key=lambda a: a.time_ns)
    return actions


def _capped(items: list[_T], facts: _Facts, what: str) -> tuple[list[_T], int]:
    if len(items) <= _MAX_ITEMS:
        return items, 0
    facts.note(f"only the first {_MAX_ITEMS} of {len(items)} {what} are included")
    return items[:_MAX_ITEMS], len(items) - _MAX_ITEMS


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _observed(request: _Request) -> str:
    if request.status is not None:
        return f"HTTP {request.status}"
    return "an error without HTTP status" if request.failed else "no status recorded"


def _root_cause_line(facts: _Facts) -> str | None:
    cause = facts.causality["root_cause"]
    if cause is None:
        return None
    where = f"{cause['service']} {cause['name']}" if cause.get("name") else cause["service"]
    return _one_line(f"{where}: {cause['message']}")


def _require_steps(facts: _Facts) -> None:
    if not facts.requests and not facts.actions:
        raise GenerateError(
            f"trace {facts.trace_hex} has no HTTP request (no span carries http.request.method)"
            " and no browser action (no browser event with an 'action'): choose a trace of an"
            " HTTP request, or use timeline_report"
        )


# -- reproduction -------------------------------------------------------------------


def _repro_curl(facts: _Facts) -> str:
    _require_steps(facts)
    if facts.actions:
        facts.note("curl replays only the HTTP requests; use format playwright for the actions")
    if not facts.requests:
        raise GenerateError(
            f"trace {facts.trace_hex} has browser actions but no HTTP request: use format"
            " playwright"
        )
    requests, more = _capped(facts.requests, facts, "requests")
    lines = [
        "#!/usr/bin/env bash",
        f"# Replays the HTTP requests of Gasoline trace {facts.trace_hex}, in time order.",
        "# The original trace id is kept here only: these requests start new traces.",
        "set -euo pipefail",
    ]
    for i, request in enumerate(requests, 1):
        lines += ["", f"# {i}. {_one_line(request.label)}: observed {_observed(request)}"]
        status_line = f"\\n{request.method} {request.path} -> HTTP %{{http_code}}\\n"
        args = [
            "curl -sS",
            f"-w {shlex.quote(status_line)}",
            f"-X {shlex.quote(request.method)} {shlex.quote(request.url)}",
        ]
        for name, value in request.headers:
            args.append(f"-H {_shell_header(name, value)}")
        if request.body is not None:
            args.append(f"--data-raw {shlex.quote(request.body)}")
        lines.append(" \\\n  ".join(args))
    if more:
        lines += ["", f"# ... {more} more requests"]
    return "\n".join(lines) + "\n"


def _shell_header(name: str, value: _Value) -> str:
    if isinstance(value, _Secret):
        return shlex.quote(f"{name}: ") + f'"${{{value.env}:-{_PLACEHOLDER}}}"'
    return shlex.quote(f"{name}: {value}")


def _py_value(value: _Value) -> str:
    if isinstance(value, _Secret):
        return f"os.environ.get({value.env!r}, {_PLACEHOLDER!r})"
    return repr(value)


def _py_headers(headers: list[tuple[str, _Value]]) -> str:
    return "{" + ", ".join(f"{name!r}: {_py_value(v)}" for name, v in headers) + "}"


def _uses_env(requests: Iterable[_Request]) -> bool:
    return any(isinstance(v, _Secret) for r in requests for _, v in r.headers)


_PY_SEND = '''

def send(method: str, url: str, headers: dict[str, str], body: str | None) -> tuple[int, bytes]:
    """Send one request; an HTTP error status is an answer here, not an exception."""
    data = None if body is None else body.encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
'''


def _repro_python(facts: _Facts) -> str:
    _require_steps(facts)
    if not facts.requests:
        raise GenerateError(
            f"trace {facts.trace_hex} has browser actions but no HTTP request: use format"
            " playwright"
        )
    if facts.actions:
        facts.note("the python script replays only the HTTP requests; use format playwright")
    requests, more = _capped(facts.requests, facts, "requests")
    lines = [
        "#!/usr/bin/env python3",
        f'"""Replays the HTTP requests of Gasoline trace {facts.trace_hex}, in time order.',
        "",
        "Standard library only. The original trace id is kept here only: these requests",
        'start new traces."""',
        "",
        *(["import os"] if _uses_env(requests) else []),
        "import urllib.error",
        "import urllib.request",
        "",
        "# (method, url, headers, body, observed status)",
        "REQUESTS = [",
    ]
    for i, request in enumerate(requests, 1):
        lines += [
            f"    # {i}. {_one_line(request.label)}: observed {_observed(request)}",
            "    (",
            f"        {request.method!r},",
            f"        {request.url!r},",
            f"        {_py_headers(request.headers)},",
            f"        {request.body!r},",
            f"        {request.status!r},",
            "    ),",
        ]
    if more:
        lines.append(f"    # ... {more} more requests")
    lines.append("]")
    lines.append(_PY_SEND)
    lines += [
        "",
        "def main() -> None:",
        "    for method, url, headers, body, observed in REQUESTS:",
        "        status, content = send(method, url, headers, body)",
        '        print(f"{method} {url} -> HTTP {status} (observed in the trace: {observed})")',
        "        if content:",
        '            print(content[:2000].decode(errors="replace"))',
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
    ]
    return "\n".join(lines) + "\n"


def _js(text: str) -> str:
    """A JavaScript string literal (JSON strings are valid JavaScript)."""
    return json.dumps(text)


def _js_value(value: _Value) -> str:
    if isinstance(value, _Secret):
        return f"(process.env.{value.env} ?? {_js(_PLACEHOLDER)})"
    return _js(value)


def _page_url(facts: _Facts) -> str | None:
    """Where the user was before the first action: a navigation, a page attribute, or
    the origin of the first fetch."""
    for action in facts.actions:
        if action.action in _NAVIGATE_ACTIONS and action.url:
            return None  # the replay navigates itself, in order
    for node in facts.tree.walk():
        if is_browser(node):
            page = _text(node.detail().attributes, "page.url", "location.href", "document.url")
            if page is not None:
                return _rebase(page, facts.base_url)
    for action in facts.actions:
        page = action.record.attributes.get("page") or action.record.attributes.get("page_url")
        if isinstance(page, str) and urlsplit(page).netloc:
            return _rebase(page, facts.base_url)
    if facts.requests:
        parts = urlsplit(facts.requests[0].url)
        facts.note(
            "the page URL is not in the trace: the replay opens the origin of the first request;"
            " change page.goto if the page lives elsewhere"
        )
        return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    facts.note("the page URL is not in the trace: set it in page.goto")
    return "http://localhost/"


def _js_action(facts: _Facts, action: _Action) -> str:
    selector = _js(action.selector or "")
    value = _js_value(action.value) if action.value is not None else _js("")
    if action.action in _NAVIGATE_ACTIONS and action.url:
        return f"await page.goto({_js(action.url)});"
    if action.action in _CLICK_ACTIONS and action.selector:
        return f"await page.{action.action}({selector});"
    if action.action in _FILL_ACTIONS and action.selector:
        return f"await page.fill({selector}, {value});"
    if action.action in _PRESS_ACTIONS and action.selector:
        key = value if action.value is not None else _js("Enter")
        return f"await page.press({selector}, {key});"
    if action.action in _SELECT_ACTIONS and action.selector:
        return f"await page.selectOption({selector}, {value});"
    facts.note(f"browser action {action.action!r} has no Playwright equivalent here: left out")
    return f"// unsupported action {_one_line(action.action)} on {_one_line(action.selector or '')}"


def _playwright_page(facts: _Facts, expect: Callable[[str, _Request], str | None]) -> list[str]:
    """The body of a page test: navigate, replay the actions in order, and wait for the
    responses of the fetches each action caused (``expect`` writes the assertion, or
    None to skip the fetch). A fetch is caused by the last action before it."""
    steps, more = _capped(facts.steps(), facts, "steps")
    groups: list[tuple[_Action | None, list[_Request]]] = [(None, [])]
    for step in steps:
        if isinstance(step, _Action):
            groups.append((step, []))
        else:
            groups[-1][1].append(step)
    first_url = _page_url(facts)
    body: list[str] = []
    counter = 0
    for action, fetches in groups:
        if action is not None:
            comment = f"{action.action} {action.selector or action.url or ''}".strip()
            statement = _js_action(facts, action)
        elif first_url is not None:
            comment, statement = "open the page", f"await page.goto({_js(first_url)});"
        else:
            if fetches:
                body += [f"  // {len(fetches)} request(s) before the first navigation: skipped", ""]
            continue
        waits: list[str] = []
        checks: list[str] = []
        for request in fetches:
            check = expect(f"response{counter + 1}", request)
            if check is None:
                continue
            counter += 1
            waits.append(
                f"  const responsePromise{counter} = page.waitForResponse((response) =>"
                f" response.url().includes({_js(request.path)})"
                f" && response.request().method() === {_js(request.method)});"
            )
            checks += [f"  const response{counter} = await responsePromise{counter};", f"  {check}"]
        body += [f"  // {_one_line(comment)}", *waits, f"  {statement}", *checks, ""]
    if more:
        body.append(f"  // ... {more} more steps")
    while body and not body[-1]:
        body.pop()
    return body


def _repro_playwright(facts: _Facts) -> str:
    _require_steps(facts)

    def observed(name: str, request: _Request) -> str:
        if request.status is None:
            return f"// {_one_line(request.path)}: no status in the trace"
        return (
            f"expect({name}.status()).toBe({request.status});"
            f" // {request.method} {_one_line(request.path)}: observed in the trace"
        )

    lines = [
        "import { test, expect } from '@playwright/test';",
        "",
        f"// Replays the browser session of Gasoline trace {facts.trace_hex}: the user's",
        "// actions in order, checking each fetch answers as it did in the trace.",
        f"test({_js(f'reproduce trace {facts.trace_hex[:8]}')}, async ({{ page }}) => {{",
        *_playwright_page(facts, observed),
        "});",
    ]
    return "\n".join(lines) + "\n"


_REPRODUCTIONS: dict[str, Callable[[_Facts], str]] = {
    "curl": _repro_curl,
    "python": _repro_python,
    "playwright": _repro_playwright,
}


# -- test ---------------------------------------------------------------------------


def _failing_or_raise(facts: _Facts) -> list[_Request]:
    failing = facts.failing()
    if failing:
        return failing
    cause = _root_cause_line(facts)
    inside = f" (the failure is inside: {cause})" if cause else ""
    raise GenerateError(
        f"no client-visible HTTP request failed in trace {facts.trace_hex}{inside}: a test"
        " needs a failing request to assert on; choose a failed trace, or generate a"
        " reproduction"
    )


def _test_name(request: _Request, taken: set[str]) -> str:
    base = re.sub(r"[^0-9a-z]+", "_", f"{request.method} {request.route}".lower()).strip("_")
    name = f"test_{base}" if base else "test_request"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _test_pytest(facts: _Facts) -> str:
    failing, more = _capped(_failing_or_raise(facts), facts, "failing requests")
    cause = _root_cause_line(facts)
    lines = [
        f'"""Regression tests for Gasoline trace {facts.trace_hex}.',
        "",
        "They fail while the bug is present and pass once it is fixed.",
        '"""',
        *([f"# Root cause (Gasoline): {cause}"] if cause else []),
        "",
        *(["import os"] if _uses_env(failing) else []),
        "import urllib.error",
        "import urllib.request",
        _PY_SEND.replace("def send(", "def _send(").rstrip(),
    ]
    taken: set[str] = set()
    for request in failing:
        limit = request.threshold
        lines += [
            "",
            "",
            f"def {_test_name(request, taken)}() -> None:",
            f"    # Observed in the trace: {request.method} {_one_line(request.path)} returned"
            f" {_observed(request)}.",
            *([f"    # Root cause: {cause}"] if cause else []),
            f"    status, content = _send({request.method!r}, {request.url!r},"
            f" {_py_headers(request.headers)}, {request.body!r})",
            f"    assert status < {limit}, (",
            f'        f"{request.method} {_fstring_safe(request.path)} returned HTTP {{status}},'
            f' expected < {limit}: {{content[:500]!r}}"',
            "    )",
        ]
    if more:
        lines += ["", f"# ... {more} more failing requests"]
    return "\n".join(lines) + "\n"


def _fstring_safe(text: str) -> str:
    """Text placed inside a double-quoted f-string literal."""
    return repr(text)[1:-1].replace('"', '\\"').replace("{", "{{").replace("}", "}}")


def _test_playwright(facts: _Facts) -> str:
    failing = _failing_or_raise(facts)
    cause = _root_cause_line(facts)
    header = [
        "import { test, expect } from '@playwright/test';",
        "",
        f"// Regression test for Gasoline trace {facts.trace_hex}: fails while the bug is",
        "// present and passes once it is fixed.",
        *([f"// Root cause (Gasoline): {cause}"] if cause else []),
    ]
    if facts.actions:
        failed_ids = {id(r) for r in failing}

        def fixed(name: str, request: _Request) -> str | None:
            if id(request) not in failed_ids:
                return None
            return (
                f"expect({name}.status()).toBeLessThan({request.threshold});"
                f" // observed {_observed(request)}"
            )

        lines = [
            *header,
            f"test({_js(f'trace {facts.trace_hex[:8]} no longer fails')}, async ({{ page }}) => {{",
            *_playwright_page(facts, fixed),
            "});",
        ]
        return "\n".join(lines) + "\n"
    requests, more = _capped(failing, facts, "failing requests")
    lines = header
    for request in requests:
        options = [f"method: {_js(request.method)}"]
        if request.headers:
            pairs = ", ".join(f"{_js(n)}: {_js_value(v)}" for n, v in request.headers)
            options.append(f"headers: {{ {pairs} }}")
        if request.body is not None:
            options.append(f"data: {_js(request.body)}")
        name = _js(f"{request.method} {request.route} succeeds")
        fetch = f"request.fetch({_js(request.url)}, {{ {', '.join(options)} }})"
        lines += [
            "",
            f"test({name}, async ({{ request }}) => {{",
            f"  // Observed in the trace: {_observed(request)}.",
            f"  const response = await {fetch};",
            f"  expect(response.status()).toBeLessThan({request.threshold});",
            "});",
        ]
    if more:
        lines += ["", f"// ... {more} more failing requests"]
    return "\n".join(lines) + "\n"


_TESTS: dict[str, Callable[[_Facts], str]] = {
    "pytest": _test_pytest,
    "playwright": _test_playwright,
}


# -- pr_summary ---------------------------------------------------------------------


def _md(text: str) -> str:
    """Inline code that survives backticks in the text."""
    text = _one_line(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _pr_summary(facts: _Facts) -> str:
    answer = facts.causality
    cause = answer["root_cause"]
    chain = answer["chain"]
    failing = facts.failing()
    symptom = failing[0] if failing else None
    if cause is None:
        title = f"# Trace {facts.trace_hex[:8]}: no failure"
    elif symptom is not None:
        title = (
            f"# Fix {symptom.method} {symptom.route} returning {_observed(symptom)}:"
            f" {_root_cause_line(facts)}"
        )
    else:
        title = f"# Fix {_root_cause_line(facts)}"
    lines = [_one_line(title, 160), "", "## What failed", ""]
    if symptom is not None:
        lines.append(
            f"{_md(f'{symptom.method} {symptom.url}')} returned **{_observed(symptom)}**"
            f" ({_md(symptom.label)}, {symptom.node.span.duration_ns / 1e6:.1f} ms)."
        )
        others = failing[1:]
        if others:
            lines.append(f"{len(others)} more request(s) failed as well.")
    elif chain:
        first = chain[0]
        status = f" (HTTP {first['http_status']})" if "http_status" in first else ""
        lines.append(f"{_md(first['service'] + ' ' + first['name'])} failed{status}.")
    elif cause is not None:
        lines.append("An error was logged; no request of this trace failed.")
    else:
        lines.append("Nothing failed in this trace.")
    lines += ["", "## Root cause", ""]
    if cause is None:
        lines.append("None found.")
    else:
        lines.append(f"- Service: {_md(cause['service'])}")
        if cause.get("name"):
            lines.append(f"- Span: {_md(cause['name'])} ({cause.get('kind', 'log')})")
        lines.append(f"- Message: {_one_line(cause['message'], 500)}")
        if cause.get("repeated"):
            lines.append(f"- Failed {cause['repeated']} times: retries did not help")
        evidence, more = _capped(list(cause.get("evidence", [])), facts, "evidence items")
        if evidence:
            lines.append("- Evidence:")
        for item in evidence:
            lines.extend(_evidence_lines(item))
        if more:
            lines.append(f"  - ... {more} more")
    lines += ["", "## Chain", ""]
    if chain:
        steps, more = _capped(chain, facts, "chain links")
        for i, link in enumerate(steps, 1):
            status = f", HTTP {link['http_status']}" if "http_status" in link else ""
            role = link["role"].replace("_", " ")
            lines.append(
                f"{i}. {_md(link['service'] + ' ' + link['name'])}"
                f" ({link['kind']}) — {link['duration_ms']:.1f} ms{status}, {role}"
            )
        if more:
            lines.append(f"... {more} more")
    else:
        lines.append("No chain of spans: nothing failed, or only a log line did.")
    breakdown = answer["latency_breakdown"]
    head = [*LAYERS, "total"]
    lines += [
        "",
        "## Latency breakdown",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---:|" * len(head),
        "| " + " | ".join(f"{breakdown[f'{k}_ms']:.1f} ms" for k in head) + " |",
        "",
        "## How to reproduce",
        "",
    ]
    lines.extend(_how_to_reproduce(facts))
    lines += ["", f"Trace id: `{facts.trace_hex}`", ""]
    return "\n".join(lines)


def _evidence_lines(item: dict[str, Any]) -> list[str]:
    kind = item.get("type")
    if kind == "exception":
        lines = [f"  - Exception {_md(str(item.get('exception_type')))}: {item.get('message', '')}"]
        stack = item.get("stacktrace")
        if isinstance(stack, str) and stack:
            lines += ["", "    ```", *(f"    {line}" for line in stack.splitlines()), "    ```"]
        return lines
    if kind == "log":
        return [f"  - Log line ({item.get('level')}): {_md(str(item.get('message', '')))}"]
    if kind == "http_status":
        peer = f" from {_md(str(item['peer']))}" if item.get("peer") else ""
        return [f"  - HTTP {item.get('status_code')}{peer}"]
    if kind == "grpc_status":
        return [f"  - gRPC status {item.get('status_code')}"]
    message = item.get("message") or "error status"
    return [f"  - Status: {_one_line(str(message))}"]


def _how_to_reproduce(facts: _Facts) -> list[str]:
    if not facts.requests and not facts.actions:
        return ["The trace holds no HTTP request or browser action to replay."]
    kind = "playwright" if facts.actions else "curl"
    script = {"playwright": "spec.js", "curl": "sh"}[kind]
    lines = [
        f"Gasoline's `reproduction` generator ({kind}) writes"
        f" `repro_{facts.trace_hex[:8]}.{script}`, which replays:",
        "",
    ]
    steps, more = _capped(facts.steps(), facts, "steps")
    for i, step in enumerate(steps, 1):
        if isinstance(step, _Request):
            lines.append(f"{i}. {_md(f'{step.method} {step.url}')} — observed {_observed(step)}")
        else:
            target = step.selector or step.url or ""
            lines.append(f"{i}. browser {step.action} {_md(target) if target else ''}".rstrip())
    if more:
        lines.append(f"... {more} more")
    if facts.failing():
        lines += ["", "The `test` generator writes a test that fails until this is fixed."]
    return lines


# -- timeline_report ----------------------------------------------------------------


def _timeline_report(facts: _Facts) -> str:
    tree = facts.tree
    items: list[tuple[int, int, str]] = []  # (corrected time, depth, text)
    for node in tree.walk():
        failure = failure_of(node)
        text = f"{node.span.service}  {node.span.name}  ({node.span.duration_ns / 1e6:.1f} ms)" + (
            f"  [ERROR: {_one_line(failure.message)}]" if failure is not None else ""
        )
        items.append((facts.corrected(node), node.depth, text))
        for record in node.records:
            items.append((facts.corrected(record), node.depth + 1, _record_text(record)))
    for record in tree.records:
        if record.span_id is None or record.span_id not in tree.nodes:
            items.append((facts.corrected(record), 0, _record_text(record)))
    items.sort(key=lambda item: item[0])  # stable: parents stay before children at ties
    shown, more = _capped(items, facts, "timeline items")
    if facts.moved:
        facts.note(
            f"clock skew: span times of {', '.join(facts.moved)} were moved to fit inside"
            " their callers (the span tree decides the order, not the raw timestamps)"
        )
    starts = [facts.corrected(n) for n in tree.nodes.values()]
    ends = [facts.corrected(n) + n.span.duration_ns for n in tree.nodes.values()]
    span_ms = (max(ends) - min(starts)) / 1e6 if starts else 0.0
    lines = [
        f"# Timeline of trace {facts.trace_hex}",
        "",
        f"{len(tree.nodes)} span(s) over {span_ms:.1f} ms, {len(tree.records)} record(s)."
        " Times are offsets from the trace start, corrected for clock skew along the span"
        " tree; indentation follows the tree.",
        "",
        "```text",
    ]
    for time_ns, depth, text in shown:
        offset = f"+{(time_ns - facts.start_ns) / 1e6:.1f} ms"
        lines.append(f"{offset:>12}  {'  ' * depth}{text}")
    if more:
        lines.append(f"... {more} more")
    lines += ["```", "", "## Summary", "", facts.causality["summary"], ""]
    return "\n".join(lines)


def _record_text(record: Record) -> str:
    who = record.service or record.source
    action = record.attributes.get("action")
    if record.source == "browser" and isinstance(action, str) and action:
        target = record.attributes.get("selector") or record.attributes.get("url") or ""
        text = f"{who}  action: {action} {target}".rstrip()
    else:
        text = f"{who}  {record.kind}: {_one_line(record.message)}"
    if record.level in ("error", "critical"):
        text += f"  [{record.level.upper()}]"
    return text
