"""Conveyor and its Python peers on one private Redis: the same three workloads, medians of 3 runs.

    python benchmarks/peers/run.py                       # about 10 minutes; writes docs/benchmarks.md
    python benchmarks/peers/run.py --quick               # 1 run, fewer jobs; prints the table only
    python benchmarks/peers/run.py --only conveyor,huey  # prints the table only

Each engine runs as its own script (<engine>_redis.py; the shared
measurement is in _harness.py): 20,000 noop jobs drained by one worker process
at the engine's default concurrency; 2,000 jobs sleeping 10 ms at concurrency
50 or its closest equivalent; enqueue -> start latency of 200 single jobs on
an idle worker. Engines take turns in a different order each run, every
script gets a freshly flushed server, and every figure is the median of the
runs. A full run of every engine replaces the table between the markers in
docs/benchmarks.md; partial or quick runs only print it.

Needs the `peers` extra (pip install -e '.[peers]') and redis-server.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- peers:start -->", "<!-- peers:end -->"
sys.path.insert(0, str(HERE.parent))  # benchmarks/, for the private redis-server

from _redis import private_redis, server_version  # noqa: E402

PEERS = ("conveyor", "huey", "rq", "arq", "saq", "dramatiq", "celery")
WORKLOADS = ("noop", "io", "latency")
RUNS = 3
SIZES = {"noop": 20_000, "io": 2_000, "latency": 200}  # jobs, or latency samples
QUICK_SIZES = {"noop": 2_000, "io": 500, "latency": 50}
# Engines paced by forking or polling rather than by their own code run fewer jobs:
# their rates are steady from the first jobs, and the full sizes would take minutes per run.
CAPS = {"rq": {"noop": 1_000, "io": 500}, "arq": {"noop": 2_000, "latency": 50}}
PEER_TIMEOUT = 300.0
PINGS = 2_000
STOP_TIMEOUT = 15.0
DISTRIBUTIONS = {"conveyor": "conveyor-jobs"}
FIGURES = ("enqueue_per_s", "process_per_s", "repeats", "latency_p50_ms", "latency_p99_ms")


def run_peer(peer: str, workload: str, url: str, size: int) -> dict[str, Any]:
    """One script run, bounded; on any exit its worker is gone (the script stops it, or dies with us)."""
    flag = "--samples" if workload == "latency" else "--jobs"
    cmd = [sys.executable, str(HERE / f"{peer}_redis.py"), "--url", url, "--workload", workload]
    proc = subprocess.Popen([*cmd, flag, str(size)], stdout=subprocess.PIPE, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=PEER_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.terminate()  # the script stops its worker and removes its temp files
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{peer} {workload}: exited with status {proc.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result


def measure(peers: list[str], runs: int, sizes: dict[str, int], url: str) -> tuple[dict[str, Any], list[str]]:
    """Every figure of every engine, as a list over runs; and what failed."""
    figures: dict[str, Any] = defaultdict(lambda: defaultdict(list))
    failures = []
    with redis.Redis.from_url(url) as client:
        for run in range(runs):
            for peer in peers[run % len(peers) :] + peers[: run % len(peers)]:
                for workload in WORKLOADS:
                    size = min(sizes[workload], CAPS.get(peer, {}).get(workload, sizes[workload]))
                    print(f"... run {run + 1}/{runs}: {peer} {workload} ({size:,})", file=sys.stderr)
                    try:
                        result = run_peer(peer, workload, url, size)
                    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                        failures.append(f"run {run + 1}: {peer} {workload}: {exc}")
                        print(f"!!! {failures[-1]}", file=sys.stderr)
                        continue
                    finally:
                        client.flushall()
                    got = figures[peer]
                    got["version"] = result["version"]
                    got[f"settings_{workload}"] = result["settings"]
                    got[f"size_{workload}"] = size
                    for key in FIGURES:
                        if key in result:
                            got[f"{workload}_{key}"].append(result[key])
    return figures, failures


def round_trip_us(url: str) -> float:
    """One PING from redis-py, the floor under every figure: it varies a lot between (virtual) machines."""
    with redis.Redis.from_url(url) as client:
        client.ping()
        start = time.perf_counter()
        for _ in range(PINGS):
            client.ping()
        return (time.perf_counter() - start) / PINGS * 1e6


def table(
    figures: dict[str, Any], peers: list[str], runs: int, sizes: dict[str, int], url: str, ping: float
) -> str:
    def median(peer: str, key: str, digits: int = 0) -> str:
        values = figures[peer].get(key)
        if not values:
            return "failed"
        value = statistics.median(values)
        return f"{value:,.{digits}f}" if digits else f"{round(value):,}"

    def sized(peer: str, workload: str, cell: str) -> str:
        size = figures[peer].get(f"size_{workload}", sizes[workload])
        return cell if size == sizes[workload] or cell == "failed" else f"{cell} ({size:,})"

    hiredis = "hiredis " + metadata.version("hiredis") if _installed("hiredis") else "no hiredis"
    lines = [
        f"Measured {datetime.date.today().isoformat()} by `benchmarks/peers/run.py`: "
        f"{'median of ' + str(runs) + ' runs' if runs > 1 else 'one run'}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Redis {server_version(url)} (AOF, `appendfsync everysec`), "
        f"redis-py {metadata.version('redis')} with {hiredis}; a redis-py PING took {ping:.0f} µs.",
        "",
        f"| engine | worker (noop, latency) | noop jobs/s ({sizes['noop']:,}) "
        f"| enqueue/s, one call each | io jobs/s ({sizes['io']:,}; ceiling 5,000) | worker (io) "
        f"| latency p50 / p99 ms ({sizes['latency']} samples) |",
        "|---|---|--:|--:|--:|---|--:|",
    ]
    for peer in peers:
        got = figures.get(peer)
        if got is None:
            lines.append(f"| {peer} | failed | | | | | |")
            continue
        latency = f"{median(peer, 'latency_latency_p50_ms', 2)} / {median(peer, 'latency_latency_p99_ms', 2)}"
        lines.append(
            f"| {peer} {got['version']} | {got.get('settings_noop', '')} "
            f"| {sized(peer, 'noop', median(peer, 'noop_process_per_s'))} "
            f"| {median(peer, 'noop_enqueue_per_s')} "
            f"| {sized(peer, 'io', median(peer, 'io_process_per_s'))} | {got.get('settings_io', '')} "
            f"| {sized(peer, 'latency', latency)} |"
        )
    repeats = [
        f"{peer} {workload} {sum(figures[peer][f'{workload}_repeats'])}"
        for peer in peers
        for workload in ("noop", "io")
        if peer in figures and sum(figures[peer].get(f"{workload}_repeats", []))
    ]
    if repeats:
        lines += ["", f"Jobs run twice (at-least-once delivery), over all runs: {', '.join(repeats)}."]
    return "\n".join(lines)


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if doc.count(START) != 1 or doc.count(END) != 1:
        raise RuntimeError(f"{DOC.relative_to(REPO)} needs exactly one {START} and one {END}")
    before, rest = doc.split(START)
    _, after = rest.split(END)
    DOC.write_text(f"{before}{START}\n{text}\n{END}{after}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help=f"comma-separated, from: {','.join(PEERS)}")
    parser.add_argument("--quick", action="store_true", help="one run, fewer jobs and samples")
    args = parser.parse_args(argv)
    args.peers = list(PEERS) if args.only is None else [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.peers) - set(PEERS)
    if unknown or not args.peers:
        parser.error(f"--only takes engines from: {', '.join(PEERS)} (unknown: {', '.join(sorted(unknown))})")
    missing = [p for p in args.peers if not _installed(DISTRIBUTIONS.get(p, p))]
    if missing:
        parser.error(f"not installed: {', '.join(missing)} (pip install -e '.[peers]')")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs, sizes = (1, QUICK_SIZES) if args.quick else (RUNS, SIZES)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl-C
    try:
        with private_redis() as url:
            ping = round_trip_us(url)
            figures, failures = measure(args.peers, runs, sizes, url)
            text = table(figures, args.peers, runs, sizes, url, (ping + round_trip_us(url)) / 2)
    except KeyboardInterrupt:
        print("interrupted; workers stopped, redis-server stopped, temp files removed", file=sys.stderr)
        return 130
    print(text)
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    if not args.quick and args.only is None and not failures:
        write_doc(text)
        print(f"table written to {DOC.relative_to(REPO)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
