"""``gasoline test`` and git watching: what they cost. Prints figures; asserts nothing.

1. ``--tests`` (2,000) quick pytest tests, run bare (``python -m pytest -q``) and through
   ``gasoline test`` against a running ``gasoline serve`` (ports 0), round-robin,
   ``--repeat`` times each; median and fastest wall time of each, and the overhead. The
   wrapped time includes delivering every test case's span and event to the daemon.
   Installed pytest plugins are not loaded (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), so the
   figures compare pytest alone with pytest and Gasoline's plugin.
2. A repository of ``--files`` (50,000) committed files: the cost of one idle poll of the
   watcher (three stats), of the ``git status`` + ``git diff --numstat`` the slow cadence
   runs, and the CPU the daemon spends over ``--idle`` seconds watching it with the default
   cadence (poll 1 s, status every 30 s) against the same daemon watching nothing.

    python bench/test_run_bench.py [--tests 2000] [--repeat 5] [--files 50000] [--idle 60]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from receivers.git_watch.repo import find_repo  # noqa: E402
from receivers.git_watch.watch import RepoWatch  # noqa: E402

GASOLINE = str(Path(sys.executable).with_name("gasoline"))
_API_RE = re.compile(r"API\s+(http://\S+)")
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def start_daemon(tmp: Path, config: str) -> tuple[subprocess.Popen[str], str]:
    path = tmp / f"gasoline-{time.monotonic_ns()}.yaml"
    path.write_text(config)
    proc = subprocess.Popen(
        [GASOLINE, "serve", "--config", str(path), "--grpc-port", "0", "--http-port", "0",
         "--api-port", "0"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "HOME": str(tmp)},
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        match = _API_RE.search(line)
        if match:
            return proc, match.group(1)
    raise SystemExit("gasoline serve exited without printing its API URL")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(2)
    proc.communicate(timeout=30)


def bench_tests(tmp: Path, count: int, repeat: int) -> None:
    project = tmp / "suite"
    project.mkdir()
    body = "".join(f"def test_{i}():\n    assert {i} + 1 == {i + 1}\n\n" for i in range(count))
    (project / "test_many.py").write_text(body)
    proc, url = start_daemon(tmp, "{}\n")
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_many.py"]
    wrapped = [GASOLINE, "test", "--url", url, "--spool-dir", str(tmp / "spool"), *pytest]
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEPARENT", "PYTEST_PLUGINS")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the venv's own plugins would be noise
    times: dict[str, list[float]] = {"bare": [], "gasoline test": []}
    cpu: dict[str, list[float]] = {"bare": [], "gasoline test": []}
    try:
        for _ in range(repeat):
            for name, argv in (("bare", pytest), ("gasoline test", wrapped)):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run(argv, cwd=project, env=env, stdout=subprocess.DEVNULL, check=True)
                times[name].append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(
                    after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                )
        with urllib.request.urlopen(f"{url}/buffers/timeline?source=test&limit=1") as answer:
            assert answer.status == 200
    finally:
        stop(proc)
    bare, wrap = statistics.median(times["bare"]), statistics.median(times["gasoline test"])
    cpu_bare = statistics.median(cpu["bare"])
    print(f"\n{count} quick pytest tests, {repeat} runs each (round-robin):")
    for name, values in times.items():
        print(
            f"  {name:14s} wall median {statistics.median(values):.3f} s, fastest "
            f"{min(values):.3f} s; CPU (user+sys, every process) median "
            f"{statistics.median(cpu[name]):.3f} s"
        )
    print(
        f"  overhead       wall median {100 * (wrap / bare - 1):+.1f}%, "
        f"fastest {100 * (min(times['gasoline test']) / min(times['bare']) - 1):+.1f}%; "
        f"CPU median {100 * (statistics.median(cpu['gasoline test']) / cpu_bare - 1):+.1f}%"
    )


def make_repo(path: Path, files: int) -> None:
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for i in range(files):
        d = path / f"pkg{i // 500:03d}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i}.py").write_text(f"VALUE = {i}\n")
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "big"], check=True, env=GIT_ENV)


def bench_idle(tmp: Path, files: int, idle: float) -> None:
    repo_path = tmp / "big"
    started = time.perf_counter()
    make_repo(repo_path, files)
    print(
        f"\nrepository of {files} committed files (made in {time.perf_counter() - started:.0f} s):"
    )
    repo = find_repo(repo_path)
    assert repo is not None
    watch = RepoWatch(repo, status_interval=30.0, debounce=2.0)
    watch.poll(0.0)
    calls = 20_000
    started = time.perf_counter()
    for i in range(calls):
        watch.due(1.0 + i * 1e-6)
    per_poll = (time.perf_counter() - started) / calls
    print(f"  idle poll (stat HEAD, reflog, index): {per_poll * 1e6:.1f} us")
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        repo.status()
        runs.append(time.perf_counter() - started)
    print(
        "  git status + diff --numstat (slow cadence): "
        f"median {statistics.median(runs) * 1e3:.0f} ms, "
        f"fastest {min(runs) * 1e3:.0f} ms"
    )
    for label, config in (
        ("watching nothing", "{}\n"),
        (
            "watching the repository",
            f"receivers: {{gitwatch: {{repositories: [{repo_path}]}}}}\n"
            "service: {pipelines: {logs: {receivers: [otlp, gitwatch]}}}\n",
        ),
    ):
        proc, _ = start_daemon(tmp, config)
        try:
            ps = psutil.Process(proc.pid)
            time.sleep(3.0)  # past the first look at the repository
            before = ps.cpu_times()
            time.sleep(idle)
            after = ps.cpu_times()
        finally:
            stop(proc)
        cpu = (after.user + after.system) - (before.user + before.system)
        print(
            f"  daemon CPU idle, {label}: {cpu * 1e3:.0f} ms over {idle:.0f} s "
            f"({100 * cpu / idle:.2f}% of a core)"
        )
    print(
        "  (git runs in child processes: their CPU is in the status figure above, once "
        "per status_interval)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--skip", choices=("tests", "idle"), action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gasoline-test-bench-") as tmp:
        if "tests" not in args.skip:
            bench_tests(Path(tmp), args.tests, args.repeat)
        if "idle" not in args.skip:
            bench_idle(Path(tmp), args.files, args.idle)


if __name__ == "__main__":
    main()
