"""Each tool's answer on real data carries only the keys its declared type allows, and
every key the type requires: a key added to an answer without declaring it fails here."""

from __future__ import annotations

import types
import typing
from typing import (
    Any,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from opentelemetry.trace import SpanKind

from collector.pulse.engine import FeedbackAnswer, PulseReport
from collector.tools import (
    Analysis,
    ConfigureAnswer,
    GenerateAnswer,
    Generator,
    InteractAnswer,
    ObserveAnswer,
    View,
)
from collector.tools.analyze import (
    CausalityAnswer,
    ChangesAnswer,
    CompareAnswer,
    CorrelateAnswer,
    LatencyAnswer,
    RegressionAnswer,
)
from tests.conftest import Running
from tests.scenarios import Scenario, db, http_server
from tests.test_pulse import MAP, Chain, NowScenario, reports_of


def shape_errors(value: Any, declared: Any, path: str) -> list[str]:
    """Where ``value`` strays from ``declared``, following nested TypedDicts and lists."""
    if get_origin(declared) in (Union, types.UnionType):
        options = [t for t in get_args(declared) if t is not type(None)]
        return [] if value is None else shape_errors(value, options[0], path)
    if get_origin(declared) is list and isinstance(value, list):
        [item] = get_args(declared)
        return [e for i, v in enumerate(value) for e in shape_errors(v, item, f"{path}[{i}]")]
    if not is_typeddict(declared):
        return []
    assert isinstance(value, dict), f"{path}: expected a mapping, got {value!r:.80}"
    hints = get_type_hints(declared)
    errors = [f"{path}.{k}: not declared in {declared.__name__}" for k in value if k not in hints]
    errors += [f"{path}.{k}: required, missing" for k in required_keys(declared) - set(value)]
    for key, item in value.items():
        if key in hints:
            errors += shape_errors(item, hints[key], f"{path}.{key}")
    return errors


def required_keys(declared: Any) -> set[str]:
    """``__required_keys__``, with ``Required[...]`` read from the annotations: under
    ``from __future__ import annotations`` the class cannot see it at creation."""
    extras = get_type_hints(declared, include_extras=True)
    marked = {k: get_origin(t) for k, t in extras.items()}
    return {k for k, m in marked.items() if m is Required} | {
        k for k in declared.__required_keys__ if marked[k] is not NotRequired
    }


async def tool(gasoline: Running, name: str, args: dict[str, Any]) -> dict[str, Any]:
    status, answer = await gasoline.post_json(f"/v1/tools/{name}", args)
    assert status == 200, answer
    return answer


async def test_every_answer_carries_exactly_its_declared_keys(
    start_daemon: typing.Callable[..., typing.Awaitable[Running]],
) -> None:
    gasoline = await start_daemon('interact: {commands: {hello: {run: "echo hello"}}}\n')
    s = Scenario()
    server = s.span(
        "api", "GET /feed", 0, 60, kind=SpanKind.SERVER, attrs=http_server("GET", "/feed", 500)
    )
    for i in range(5):
        s.span(
            "api",
            "SELECT author",
            5 + i * 10,
            14 + i * 10,
            parent=server,
            kind=SpanKind.CLIENT,
            attrs=db("SELECT * FROM users"),
        )
    s.span("db", "lock", 52, 58, parent=server, error="deadlock detected")
    s.log("api", server, "request failed")
    bad = await s.send(gasoline)
    ok = Scenario()
    ok.span("api", "GET /feed", 0, 20, kind=SpanKind.SERVER, attrs=http_server("GET", "/feed", 200))
    good = await ok.send(gasoline)
    trace = {"trace_id": bad}
    checks: list[tuple[str, dict[str, Any], Any]] = [
        *[("observe", {"what": str(w)}, ObserveAnswer) for w in View if w != View.TRACE],
        ("observe", {"what": "trace", "filter": trace}, ObserveAnswer),
        ("observe", {"event_ids": ["1", "999999"]}, ObserveAnswer),
        ("configure", {"action": "save_checkpoint", "name": "before"}, ConfigureAnswer),
        ("configure", {"action": "set_baseline"}, ConfigureAnswer),
        ("configure", {"action": "noise_rule", "rule": {"pattern": "x"}}, ConfigureAnswer),
        ("configure", {"action": "noise_rule", "op": "list"}, ConfigureAnswer),
        (
            "configure",
            {"action": "noise_rule", "op": "remove", "rule_id": "noise-1"},
            ConfigureAnswer,
        ),
        ("configure", {"action": "custom_event", "event": {"message": "m"}}, ConfigureAnswer),
        ("configure", {"action": "redaction"}, ConfigureAnswer),
        ("analyze", {"type": "causality", **trace}, CausalityAnswer),
        ("analyze", {"type": "causality", "since": "2020-01-01T00:00:00Z"}, CausalityAnswer),
        ("analyze", {"type": "latency", **trace}, LatencyAnswer),
        ("analyze", {"type": "correlate", **trace}, CorrelateAnswer),
        ("analyze", {"type": "regression"}, RegressionAnswer),
        ("analyze", {"type": "changes"}, ChangesAnswer),
        ("analyze", {"type": "compare", **trace, "compare_to": good}, CompareAnswer),
        ("analyze", {"type": "compare", **trace, "baseline": "before"}, CompareAnswer),
        *[("generate", {"type": str(g), **trace}, GenerateAnswer) for g in Generator],
        ("interact", {"action": "run_command", "name": "hello"}, InteractAnswer),
        ("configure", {"action": "clear"}, ConfigureAnswer),
    ]
    asked = {(name, args.get("type")) for name, args, _ in checks}
    assert {("analyze", str(a)) for a in Analysis if a != Analysis.REPORT} <= asked
    seen: set[str] = set()
    for name, args, declared in checks:
        answer = await tool(gasoline, name, args)
        assert shape_errors(answer, declared, f"{name}{args}") == []
        assert "query_time_ms" in answer["metadata"]
        seen.update(answer)
    # The answers were real ones: the check walked their main keys.
    assert {"hypotheses", "root_cause", "repeated_calls", "linked", "content"} <= seen


async def test_tracepulse_answers_carry_exactly_their_declared_keys(
    start_daemon: typing.Callable[..., typing.Awaitable[Running]],
) -> None:
    running = await start_daemon(
        MAP + "  rules:\n    - {event_type: CHARGE_FAILED, kind: trace, service: ServiceA}\n"
    )
    scenario = NowScenario()
    Chain("cid-typed", fail={"ServiceB": "db down"}).build(scenario)
    await scenario.send(running)
    [kept] = await reports_of(running)
    listing = await tool(running, "observe", {"what": "reports"})
    assert shape_errors(listing, ObserveAnswer, "observe reports") == []
    assert [r["id"] for r in listing["reports"]] == [kept["id"]]
    report = await tool(running, "analyze", {"type": "report", "report_id": kept["id"]})
    assert shape_errors(report, PulseReport, "analyze report") == []
    assert report["hypotheses"] and report["delivery"] == {}
    key = report["hypotheses"][0]["key"]
    args = {"action": "feedback", "report_id": kept["id"], "hypothesis": key, "verdict": "confirm"}
    feedback = await tool(running, "configure", args)
    assert shape_errors(feedback, FeedbackAnswer, "configure feedback") == []
    assert feedback["feedback"][0]["verdict"] == "confirm"


def test_the_check_fails_on_an_undeclared_or_missing_key() -> None:
    assert shape_errors({"trace_id": "t", "extra": 1}, CausalityAnswer, "a") == [
        "a.extra: not declared in CausalityAnswer"
    ]
    assert shape_errors({"hypotheses": []}, CausalityAnswer, "a") == [
        "a.trace_id: required, missing"
    ]
    hypothesis = {"cause": {}, "confidence": 1.0, "evidence": [], "reasoning": "r"}
    assert shape_errors({"trace_id": "t", "hypotheses": [hypothesis]}, CausalityAnswer, "a") == [
        "a.hypotheses[0].service: required, missing"
    ]
