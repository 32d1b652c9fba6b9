"""Baselines: what "normal" looked like, to compare against later.

A baseline is a summary of recent traffic per operation (service and span name of
SERVER spans and trace roots): count, latency percentiles, error rate. It is written as
JSON under ``.gasoline/checkpoints/`` in the working directory (to a temp file, synced,
then renamed, with ``"version": 1``), so it survives restarts and can be committed.
The tools call a named one a checkpoint (``configure save_checkpoint``) and the one named
``baseline`` the baseline (``configure set_baseline``), which ``analyze regression``
compares against by default. These are not the file tailers' read offsets.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from collector.bounded import Answer
from collector.model import SpanKind, StatusCode
from collector.store import Store

__all__ = [
    "BASELINE",
    "BaselineError",
    "RegressionAnswer",
    "compare",
    "load_baseline",
    "save_baseline",
    "snapshot",
]


class RegressionAnswer(Answer):
    """``analyze type=regression``: operations slower or failing more than in the baseline."""

    regressions: list[dict[str, Any]]
    unchanged: int
    not_seen: list[str]  # operations of the baseline not seen since (the first 20)
    summary: str


BASELINE = "baseline"
_VERSION = 1
_MAX_SPANS = 200_000  # a snapshot summarises at most this many of the newest spans
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # fullmatch: no trailing newline
# A regression: p95 up by both this factor and this many ms, or error rate up this much.
_SLOWER_FACTOR = 1.2
_SLOWER_MS = 5.0
_MORE_ERRORS = 0.01


class BaselineError(ValueError):
    """A baseline cannot be read or written; the message says which and why."""


def snapshot(store: Store) -> dict[str, Any]:
    """Per-operation figures over the newest spans."""
    durations: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for i, span in enumerate(store.spans.iter_newest_first()):
        if i >= _MAX_SPANS:
            break
        if span.kind not in (SpanKind.SERVER, SpanKind.CONSUMER) and not span.is_root:
            continue
        key = f"{span.service} {span.name}"
        durations[key].append(span.duration_ns / 1e6)
        errors[key] += span.status == StatusCode.ERROR
    operations = {}
    for key, values in sorted(durations.items()):
        values.sort()
        operations[key] = {
            "count": len(values),
            "p50_ms": _pct(values, 0.5),
            "p95_ms": _pct(values, 0.95),
            "p99_ms": _pct(values, 0.99),
            "error_rate": round(errors[key] / len(values), 4),
        }
    return {"version": _VERSION, "created_at": time.time(), "operations": operations}


def _pct(ordered: list[float], q: float) -> float:
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _path(directory: Path, name: str) -> Path:
    if not _NAME.fullmatch(name):
        raise BaselineError(
            f"name: {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return directory / f"{name}.json"


def save_baseline(directory: Path, name: str, data: dict[str, Any]) -> Path:
    """Write atomically: temp file, fsync, rename. Blocks on disk: call off the loop."""
    path = _path(directory, name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        with tmp.open("w") as f:
            json.dump({**data, "name": name}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise BaselineError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def load_baseline(directory: Path, name: str) -> dict[str, Any]:
    path = _path(directory, name)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        hint = (
            "set one with configure action='set_baseline'"
            if name == BASELINE
            else "configure action='save_checkpoint' writes one"
        )
        raise BaselineError(f"no checkpoint {name!r} in {directory} ({hint})") from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        raise BaselineError(f"{path} is not a version {_VERSION} checkpoint")
    return data


def compare(baseline: dict[str, Any], current: dict[str, Any]) -> RegressionAnswer:
    """Operations that got slower or fail more often than in the baseline."""
    regressions = []
    unchanged = 0
    before_ops: dict[str, Any] = baseline["operations"]
    for key, now in current["operations"].items():
        before = before_ops.get(key)
        if before is None:
            if now["error_rate"] > 0:
                regressions.append({"operation": key, "kind": "new_failing_operation", **now})
            continue
        findings = []
        if (
            now["p95_ms"] > before["p95_ms"] * _SLOWER_FACTOR
            and now["p95_ms"] - before["p95_ms"] > _SLOWER_MS
        ):
            findings.append(f"p95 {before['p95_ms']} -> {now['p95_ms']} ms")
        if now["error_rate"] - before["error_rate"] > _MORE_ERRORS:
            findings.append(f"error rate {before['error_rate']:.1%} -> {now['error_rate']:.1%}")
        if findings:
            regressions.append(
                {
                    "operation": key,
                    "kind": "regression",
                    "findings": findings,
                    "baseline": before,
                    "current": now,
                }
            )
        else:
            unchanged += 1
    missing = sorted(set(before_ops) - set(current["operations"]))
    summary = (
        f"{len(regressions)} operation(s) regressed against baseline {baseline.get('name')!r}"
        if regressions
        else f"No regression against baseline {baseline.get('name')!r}"
    ) + f"; {unchanged} unchanged, {len(missing)} not seen since."
    return {
        "regressions": regressions,
        "unchanged": unchanged,
        "not_seen": missing[:20],
        "summary": summary,
    }
