"""Runnable artifacts: reproductions (curl, Python, Playwright) and failing tests
(pytest, Playwright)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from collector.analysis.signals import is_browser
from collector.generate.facts import (
    CLICK_ACTIONS,
    FILL_ACTIONS,
    HOLE,
    NAVIGATE_ACTIONS,
    PLACEHOLDER,
    PRESS_ACTIONS,
    SELECT_ACTIONS,
    Action,
    Facts,
    GenerateError,
    Request,
    Secret,
    Value,
    capped,
    display,
    first_text,
    observed_line,
    one_line,
    rebase,
    require_steps,
    root_cause_line,
    split_secrets,
)

__all__ = ["REPRODUCTIONS", "TESTS"]

# -- reproduction -------------------------------------------------------------------


def _http_replay(facts: Facts, skipped_actions_note: str) -> tuple[list[Request], int]:
    """The requests a curl or python reproduction replays (capped), and how many it left out;
    a trace of browser actions alone cannot be replayed that way."""
    require_steps(facts)
    if not facts.requests:
        raise GenerateError(
            f"trace {facts.trace_hex} has browser actions but no HTTP request: use format"
            " playwright"
        )
    if facts.actions:
        facts.note(skipped_actions_note)
    return capped(facts.requests, facts, "requests")


def _repro_curl(facts: Facts) -> str:
    requests, more = _http_replay(
        facts, "curl replays only the HTTP requests; use format playwright for the actions"
    )
    lines = [
        "#!/usr/bin/env bash",
        f"# Replays the HTTP requests of Gasoline trace {facts.trace_hex}, in time order.",
        "# The original trace id is kept here only: these requests start new traces.",
        "set -euo pipefail",
    ]
    for i, request in enumerate(requests, 1):
        lines += ["", f"# {i}. {one_line(request.label)}: observed {observed_line(request)}"]
        status_line = f"\\n{request.method} {display(request.path)} -> HTTP %{{http_code}}\\n"
        args = [
            "curl -sS",
            f"-w {shlex.quote(status_line)}",
            f"-X {shlex.quote(request.method)} {_shell_text(request.url)}",
        ]
        for name, value in request.headers:
            args.append(f"-H {_shell_header(name, value)}")
        if request.body is not None:
            args.append(f"--data-raw {_shell_text(request.body)}")
        lines.append(" \\\n  ".join(args))
    if more:
        lines += ["", f"# ... {more} more requests"]
    return "\n".join(lines) + "\n"


def _shell_text(text: str) -> str:
    """A shell word: literal pieces quoted, holes filled from the environment."""
    return (
        "".join(
            f'"${{{part.env}:-{PLACEHOLDER}}}"' if isinstance(part, Secret) else shlex.quote(part)
            for part in split_secrets(text)
        )
        or "''"
    )


def _py_text(text: str | None) -> str:
    """A Python expression for ``text``, holes read from the environment."""
    if text is None:
        return "None"
    parts = split_secrets(text)
    if all(isinstance(part, str) for part in parts):
        return repr(text)
    return "(" + " + ".join(_py_value(part) for part in parts) + ")"


def _shell_header(name: str, value: Value) -> str:
    if isinstance(value, Secret):
        return shlex.quote(f"{name}: ") + f'"${{{value.env}:-{PLACEHOLDER}}}"'
    return shlex.quote(f"{name}: {value}")


def _py_value(value: Value) -> str:
    if isinstance(value, Secret):
        return f"os.environ.get({value.env!r}, {PLACEHOLDER!r})"
    return repr(value)


def _py_headers(headers: list[tuple[str, Value]]) -> str:
    return "{" + ", ".join(f"{name!r}: {_py_value(v)}" for name, v in headers) + "}"


def _uses_env(requests: Iterable[Request]) -> bool:
    return any(isinstance(v, Secret) for r in requests for _, v in r.headers) or any(
        HOLE in (r.url + (r.body or "")) for r in requests
    )


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


def _repro_python(facts: Facts) -> str:
    requests, more = _http_replay(
        facts, "the python script replays only the HTTP requests; use format playwright"
    )
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
            f"    # {i}. {one_line(request.label)}: observed {observed_line(request)}",
            "    (",
            f"        {request.method!r},",
            f"        {_py_text(request.url)},",
            f"        {_py_headers(request.headers)},",
            f"        {_py_text(request.body)},",
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


def _js_text(text: str) -> str:
    """A JavaScript expression for ``text``, holes read from the environment."""
    parts = split_secrets(text)
    if all(isinstance(part, str) for part in parts):
        return _js(text)
    return "(" + " + ".join(_js_value(part) for part in parts) + ")"


def _js_value(value: Value) -> str:
    if isinstance(value, Secret):
        return f"(process.env.{value.env} ?? {_js(PLACEHOLDER)})"
    return _js(value)


def _page_url(facts: Facts) -> str | None:
    """Where the user was before the first action: a navigation, a page attribute, or
    the origin of the first fetch."""
    for action in facts.actions:
        if action.action in NAVIGATE_ACTIONS and action.url:
            return None  # the replay navigates itself, in order
    for node in facts.tree.walk():
        if is_browser(node):
            page = first_text(node.detail().attributes, "page.url", "location.href", "document.url")
            if page is not None:
                return rebase(page, facts.base_url)
    for action in facts.actions:
        page = action.record.attributes.get("page") or action.record.attributes.get("page_url")
        if isinstance(page, str) and urlsplit(page).netloc:
            return rebase(page, facts.base_url)
    if facts.requests:
        parts = urlsplit(facts.requests[0].url)
        facts.note(
            "the page URL is not in the trace: the replay opens the origin of the first request;"
            " change page.goto if the page lives elsewhere"
        )
        return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    facts.note("the page URL is not in the trace: set it in page.goto")
    return "http://localhost/"


def _js_action(facts: Facts, action: Action) -> str:
    selector = _js(action.selector or "")
    value = _js_value(action.value) if action.value is not None else _js("")
    if action.action in NAVIGATE_ACTIONS and action.url:
        return f"await page.goto({_js_text(action.url)});"
    if action.action in CLICK_ACTIONS and action.selector:
        return f"await page.{action.action}({selector});"
    if action.action in FILL_ACTIONS and action.selector:
        return f"await page.fill({selector}, {value});"
    if action.action in PRESS_ACTIONS and action.selector:
        key = value if action.value is not None else _js("Enter")
        return f"await page.press({selector}, {key});"
    if action.action in SELECT_ACTIONS and action.selector:
        return f"await page.selectOption({selector}, {value});"
    facts.note(f"browser action {action.action!r} has no Playwright equivalent here: left out")
    return f"// unsupported action {one_line(action.action)} on {one_line(action.selector or '')}"


def _playwright_page(facts: Facts, expect: Callable[[str, Request], str | None]) -> list[str]:
    """The body of a page test: navigate, replay the actions in order, and wait for the
    responses of the fetches each action caused (``expect`` writes the assertion, or
    None to skip the fetch). A fetch is caused by the last action before it."""
    steps, more = capped(facts.steps(), facts, "steps")
    groups: list[tuple[Action | None, list[Request]]] = [(None, [])]
    for step in steps:
        if isinstance(step, Action):
            groups.append((step, []))
        else:
            groups[-1][1].append(step)
    first_url = _page_url(facts)
    body: list[str] = []
    counter = 0
    for action, fetches in groups:
        if action is not None:
            target = action.selector or display(action.url or "")
            comment = f"{action.action} {target}".strip()
            statement = _js_action(facts, action)
        elif first_url is not None:
            comment, statement = "open the page", f"await page.goto({_js_text(first_url)});"
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
                f" response.url().includes({_js_text(request.path)})"
                f" && response.request().method() === {_js(request.method)});"
            )
            checks += [f"  const response{counter} = await responsePromise{counter};", f"  {check}"]
        body += [f"  // {one_line(comment)}", *waits, f"  {statement}", *checks, ""]
    if more:
        body.append(f"  // ... {more} more steps")
    while body and not body[-1]:
        body.pop()
    return body


def _repro_playwright(facts: Facts) -> str:
    require_steps(facts)

    def observed(name: str, request: Request) -> str:
        if request.status is None:
            return f"// {one_line(display(request.path))}: no status in the trace"
        return (
            f"expect({name}.status()).toBe({request.status});"
            f" // {request.method} {one_line(display(request.path))}: observed in the trace"
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


REPRODUCTIONS: dict[str, Callable[[Facts], str]] = {
    "curl": _repro_curl,
    "python": _repro_python,
    "playwright": _repro_playwright,
}


# -- test ---------------------------------------------------------------------------


def _failing_or_raise(facts: Facts) -> list[Request]:
    failing = facts.failing()
    if failing:
        return failing
    cause = root_cause_line(facts)
    inside = f" (the failure is inside: {cause})" if cause else ""
    raise GenerateError(
        f"no client-visible HTTP request failed in trace {facts.trace_hex}{inside}: a test"
        " needs a failing request to assert on; choose a failed trace, or generate a"
        " reproduction"
    )


def _test_name(request: Request, taken: set[str]) -> str:
    base = re.sub(r"[^0-9a-z]+", "_", f"{request.method} {request.route}".lower()).strip("_")
    name = f"test_{base}" if base else "test_request"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _test_pytest(facts: Facts) -> str:
    failing, more = capped(_failing_or_raise(facts), facts, "failing requests")
    cause = root_cause_line(facts)
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
            f"    # Observed in the trace: {request.method} {one_line(display(request.path))}"
            f" returned {observed_line(request)}.",
            *([f"    # Root cause: {cause}"] if cause else []),
            f"    status, content = _send({request.method!r}, {_py_text(request.url)},"
            f" {_py_headers(request.headers)}, {_py_text(request.body)})",
            f"    assert status < {limit}, (",
            f'        f"{request.method} {_fstring_safe(display(request.path))}'
            " returned HTTP {status},"
            f' expected < {limit}: {{content[:500]!r}}"',
            "    )",
        ]
    if more:
        lines += ["", f"# ... {more} more failing requests"]
    return "\n".join(lines) + "\n"


def _fstring_safe(text: str) -> str:
    """Text placed inside a double-quoted f-string literal."""
    return repr(text)[1:-1].replace('"', '\\"').replace("{", "{{").replace("}", "}}")


def _test_playwright(facts: Facts) -> str:
    failing = _failing_or_raise(facts)
    cause = root_cause_line(facts)
    header = [
        "import { test, expect } from '@playwright/test';",
        "",
        f"// Regression test for Gasoline trace {facts.trace_hex}: fails while the bug is",
        "// present and passes once it is fixed.",
        *([f"// Root cause (Gasoline): {cause}"] if cause else []),
    ]
    if facts.actions:
        failed_ids = {id(r) for r in failing}

        def fixed(name: str, request: Request) -> str | None:
            if id(request) not in failed_ids:
                return None
            return (
                f"expect({name}.status()).toBeLessThan({request.threshold});"
                f" // observed {observed_line(request)}"
            )

        lines = [
            *header,
            f"test({_js(f'trace {facts.trace_hex[:8]} no longer fails')}, async ({{ page }}) => {{",
            *_playwright_page(facts, fixed),
            "});",
        ]
        return "\n".join(lines) + "\n"
    requests, more = capped(failing, facts, "failing requests")
    lines = header
    for request in requests:
        options = [f"method: {_js(request.method)}"]
        if request.headers:
            pairs = ", ".join(f"{_js(n)}: {_js_value(v)}" for n, v in request.headers)
            options.append(f"headers: {{ {pairs} }}")
        if request.body is not None:
            options.append(f"data: {_js_text(request.body)}")
        name = _js(f"{request.method} {request.route} succeeds")
        fetch = f"request.fetch({_js_text(request.url)}, {{ {', '.join(options)} }})"
        lines += [
            "",
            f"test({name}, async ({{ request }}) => {{",
            f"  // Observed in the trace: {observed_line(request)}.",
            f"  const response = await {fetch};",
            f"  expect(response.status()).toBeLessThan({request.threshold});",
            "});",
        ]
    if more:
        lines += ["", f"// ... {more} more failing requests"]
    return "\n".join(lines) + "\n"


TESTS: dict[str, Callable[[Facts], str]] = {
    "pytest": _test_pytest,
    "playwright": _test_playwright,
}
