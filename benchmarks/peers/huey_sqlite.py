"""Huey's SqliteHuey on the noop workload, measured like Conveyor in throughput.py.

    python benchmarks/peers/huey_sqlite.py --jobs 20000
    -> {"peer": "huey", "version": ..., "process_per_s": ..., "enqueue_per_s": ...}

Huey runs with its defaults (SqliteHuey's storage settings, a consumer with
workers=1), since the comparison is against what a Huey user gets. Jobs are
enqueued one call each (Huey has no bulk enqueue), then drained by one
consumer in a child process. Huey keeps no start or finish times, so the
consumer records the first EXECUTING and the last COMPLETE signal; that span
matches Conveyor's "first started_at to last finished_at".

`--synchronous normal` runs Huey's SQLite with Conveyor's durability setting
instead of its own default (FULL: an fsync on every commit, so every dequeue),
to tell the engines apart from the setting.

Needs the `peers` extra: pip install -e '.[peers]'.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import huey
from huey import SqliteHuey, signals
from huey.api import TaskWrapper
from huey.storage import SqliteStorage

CONSUMER_TIMEOUT = 300.0


def noop() -> None:
    return None


class NormalSyncStorage(SqliteStorage):
    """Huey's storage with PRAGMA synchronous=NORMAL, which its `fsync` option cannot express."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn


def make_huey(db_path: str, synchronous: str) -> tuple[SqliteHuey, TaskWrapper]:
    """The producer and the consumer both run this file as __main__, so the task names match."""
    storage = NormalSyncStorage if synchronous == "normal" else None
    queue = SqliteHuey("bench", filename=db_path, storage_class=storage)
    return queue, queue.task(name="noop")(noop)


def consume(db_path: str, synchronous: str, expected: int) -> None:
    """Child process: drain the queue, then print the span from first start to last finish."""
    queue, _ = make_huey(db_path, synchronous)
    consumer = queue.create_consumer(workers=1)
    first_start: float | None = None
    last_finish = 0.0
    done = 0

    @queue.signal(signals.SIGNAL_EXECUTING)
    def executing(signal_name: str, task: object) -> None:
        nonlocal first_start
        if first_start is None:
            first_start = time.time()

    @queue.signal(signals.SIGNAL_COMPLETE)
    def complete(signal_name: str, task: object) -> None:
        nonlocal done, last_finish
        done += 1
        last_finish = time.time()
        if done == expected:
            os.kill(os.getpid(), signal.SIGINT)  # the consumer's graceful stop

    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
    consumer.run()
    print(json.dumps({"done": done, "first_start": first_start, "last_finish": last_finish}))


def _stop_when_orphaned(parent_pid: int) -> None:
    """A producer killed with SIGKILL must not leave a consumer polling a deleted file."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGINT)


def measure(jobs: int, synchronous: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="huey-bench-", ignore_cleanup_errors=True) as tmp:
        db_path = str(Path(tmp) / "huey.db")
        queue, noop_task = make_huey(db_path, synchronous)
        start = time.perf_counter()
        for _ in range(jobs):
            noop_task()
        enqueue_rate = jobs / (time.perf_counter() - start)
        queue.storage.close()
        cmd = [sys.executable, __file__, "--consume", db_path, "--jobs", str(jobs)]
        cmd += ["--synchronous", synchronous]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, start_new_session=True)
        try:
            out, _ = child.communicate(timeout=CONSUMER_TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        if child.returncode != 0:
            raise RuntimeError(f"huey consumer exited with status {child.returncode}")
        span = json.loads(out.decode().strip().splitlines()[-1])
    if span["done"] != jobs:
        raise RuntimeError(f"huey consumer completed {span['done']} of {jobs} tasks")
    seconds = span["last_finish"] - span["first_start"]
    return {
        "peer": "huey",
        "version": huey.__version__,
        "jobs": jobs,
        "synchronous": synchronous,
        "process_per_s": round(jobs / seconds),
        "process_seconds": round(seconds, 3),
        "enqueue_per_s": round(enqueue_rate),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--synchronous", choices=["default", "normal"], default="default")
    parser.add_argument("--consume", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        consume(args.consume, args.synchronous, args.jobs)
        return 0
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl-C
    try:
        print(json.dumps(measure(args.jobs, args.synchronous)))
    except KeyboardInterrupt:
        print("interrupted; consumer stopped and temp files removed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
