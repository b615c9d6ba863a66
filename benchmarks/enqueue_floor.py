"""What one enqueue call at a time can reach on this machine's Redis, layer by layer.

    python benchmarks/enqueue_floor.py          # a table
    python benchmarks/enqueue_floor.py --json   # one JSON object

Issue 3's single-enqueue target (9,000/s) comes from a reference machine
where redis-py's round trip allowed ~11,000/s and Huey enqueued 10,700/s. On
another machine, only the layers under `enqueue_per_s` say how far from the
floor Conveyor is and which layer costs what. Each row is one call per job,
awaited before the next, on a private redis-server configured as for
throughput.py (AOF on, appendfsync everysec):

- round_trip: PING from the leanest client Python has, a blocking socket with
  hiredis parsing; no client can make one call per job faster.
- lpush: one LPUSH of a 200-byte message, all that Huey's enqueue asks of Redis.
- job_writes: every write Conveyor's enqueue makes for a job (its id lookup,
  its hash with the fields the backend stores, the listing and ready indexes,
  the "added" event, the pending count, the wake-up) as a plain pipeline:
  computed by the client, not atomic, no Lua.
- job_writes_lua: the same commands run by a Lua script that does nothing
  else: what atomicity in Lua (issue 3, point 1) costs before any logic.
- conveyor: `await job_type.enqueue()`, the engine's checks and the atomic
  enqueue script over Conveyor's own connection.
- huey: a Huey task call (RedisHuey; only with the `peers` extra installed),
  the peer the target was set against, in the same run.

The raw rows pack their commands before the clock starts. For each row:
calls per second, the client's CPU per call (process time, system calls
included) and redis-server's CPU per call (its whole process: reading,
commands, AOF, replies). Medians of --runs runs. CONVEYOR_* environment
variables are removed first, as throughput.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import hiredis
import redis
from _redis import private_redis, server_version
from throughput import drop_conveyor_env, report

from conveyor import Conveyor, JobState
from conveyor.backends.redis.keys import KeyLayout
from conveyor.backends.redis.records import new_job_record
from conveyor.events import DEFAULT_EVENTS_MAX
from conveyor.job import NewJob

QUEUE = "bench-floor"
HUEY_SIZED_MESSAGE = "x" * 200


class RawClient:
    """A blocking socket and hiredis: the cheapest round trip Python can make."""

    def __init__(self, url: str) -> None:
        where = redis.connection.parse_url(url)
        self._socket = socket.create_connection((where["host"], where["port"]))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = hiredis.Reader()

    def round_trip(self, packed: bytes, replies: int) -> None:
        self._socket.sendall(packed)
        while replies:
            reply = self._reader.gets()
            if reply is False:
                self._reader.feed(self._socket.recv(65536))
            elif isinstance(reply, hiredis.ReplyError):
                raise reply
            else:
                replies -= 1

    def close(self) -> None:
        self._socket.close()


Command = tuple[str | int | float, ...]


def pack(*commands: Command) -> bytes:
    return b"".join(hiredis.pack_command(command) for command in commands)


def job_writes(layout: KeyLayout, seq: int) -> list[Command]:
    """The writes of enqueue.lua for one plain job (keys from keys.py)."""
    now = time.time()
    job = NewJob(
        id=uuid.uuid4().hex, type="noop", queue=QUEUE, payload_json="{}", state=JobState.PENDING,
        priority=0, max_attempts=3, run_at=now, created_at=now,
    )  # fmt: skip
    record = new_job_record(job)
    fields = record[10 : 10 + int(record[9])]  # the hash as stored (records.py)
    queue = layout.queue(QUEUE)
    return [
        ("HSET", layout.ids, job.id, QUEUE),
        ("INCRBY", f"{queue}:seq", 1),
        ("HSET", f"{queue}:job:{job.id}", "seq", seq, "attempts", "0", *fields),
        ("ZADD", f"{queue}:jobs", seq, job.id),
        ("ZADD", f"{queue}:ready", seq, job.id),
        ("XADD", f"{queue}:events", "MAXLEN", "~", DEFAULT_EVENTS_MAX, "*", "kind", "added",
         "job", job.id, "type", job.type, "state", "pending", "percent", "0", "at", repr(now)),
        ("HINCRBY", f"{queue}:counts", "pending", 1),
        ("PUBLISH", layout.wake, QUEUE),
    ]  # fmt: skip


# Runs the commands its ARGV lists (each as its length, then its items) and nothing else:
# the price of making job_writes atomic in Lua, without enqueue.lua's logic.
RUN_IN_LUA = """
local at = 1
while at <= #ARGV do
    local n = tonumber(ARGV[at])
    redis.call(unpack(ARGV, at + 1, at + n))
    at = at + n + 1
end
"""


def in_lua(script_sha: str, commands: list[Command]) -> bytes:
    return pack(("EVALSHA", script_sha, 0, *(item for c in commands for item in (len(c), *c))))


def server_cpu(server: redis.Redis) -> float:
    info = server.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def timed(server: redis.Redis, calls: int, run_all: Callable[[], None]) -> dict[str, float]:
    server_before, wall, cpu = server_cpu(server), time.perf_counter(), time.process_time()
    run_all()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server_used = server_cpu(server) - server_before
    return {
        "per_s": calls / wall,
        "client_cpu_us": cpu / calls * 1e6,
        "server_cpu_us": server_used / calls * 1e6,
    }


def raw_rows(url: str, server: redis.Redis, calls: int) -> dict[str, dict[str, float]]:
    client = RawClient(url)
    layout = KeyLayout(f"floor-{uuid.uuid4().hex[:8]}")
    script = server.script_load(RUN_IN_LUA)
    plans = {
        "round_trip": ([pack(("PING",))] * calls, 1),
        "lpush": ([pack(("LPUSH", f"{layout.base}:huey", HUEY_SIZED_MESSAGE))] * calls, 1),
        "job_writes": ([pack(*job_writes(layout, seq)) for seq in range(calls)], 8),
        "job_writes_lua": ([in_lua(script, job_writes(layout, seq)) for seq in range(calls)], 1),
    }
    rows = {}
    try:
        for name, (packed, replies) in plans.items():

            def run_all(packed: list[bytes] = packed, replies: int = replies) -> None:
                for one in packed:
                    client.round_trip(one, replies)

            rows[name] = timed(server, calls, run_all)
        stored = server.zcard(f"{layout.queue(QUEUE)}:jobs")
        if stored != 2 * calls:  # job_writes and job_writes_lua each store every job
            raise RuntimeError(f"the raw rows stored {stored} jobs, not {2 * calls}")
    finally:
        client.close()
        server.flushdb()
    return rows


def conveyor_row(url: str, server: redis.Redis, calls: int) -> dict[str, float]:
    layout = KeyLayout("bench-floor")
    app = Conveyor(f"{url}?prefix={layout.prefix}")

    @app.job("noop")
    async def noop() -> None:
        return None

    bound = app.job_type("noop").options(queue=QUEUE)

    async def enqueue_all() -> None:
        for _ in range(calls):
            await bound.enqueue()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(app.backend())  # opened outside the timed section
        loop.run_until_complete(bound.enqueue())  # the queue is known to the backend
        row = timed(server, calls, lambda: loop.run_until_complete(enqueue_all()))
        stored = server.hlen(layout.ids)
        if stored != calls + 1:
            raise RuntimeError(f"Conveyor stored {stored} jobs, not {calls + 1}")
        return row
    finally:
        loop.run_until_complete(app.close())
        loop.close()
        server.flushdb()


def huey_row(url: str, server: redis.Redis, calls: int) -> dict[str, float] | None:
    try:
        from huey import RedisHuey
    except ImportError:
        return None
    huey = RedisHuey(QUEUE, url=url)
    task = huey.task(name="noop")(lambda number: None)

    def run_all() -> None:
        for number in range(calls):
            task(number)

    try:
        row = timed(server, calls, run_all)
        if huey.pending_count() != calls:
            raise RuntimeError(f"Huey queued {huey.pending_count()} jobs, not {calls}")
        return row
    finally:
        huey.flush()


RATIOS = [("conveyor", "lpush"), ("job_writes", "lpush"), ("job_writes_lua", "lpush"), ("conveyor", "huey")]


def measure(url: str, calls: int, runs: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, float]]] = {}
    with redis.Redis.from_url(url) as server:
        for _ in range(runs):
            rows = {**raw_rows(url, server, calls), "conveyor": conveyor_row(url, server, calls)}
            if (huey := huey_row(url, server, calls)) is not None:
                rows["huey"] = huey
            for name, row in rows.items():
                samples.setdefault(name, []).append(row)
    rows = {
        name: {key: round(statistics.median(s[key] for s in runs_of), 1) for key in runs_of[0]}
        for name, runs_of in samples.items()
    }
    for row in rows.values():
        row["per_s"] = round(row["per_s"])
    result: dict[str, Any] = {"redis_version": server_version(url), "calls": calls, "runs": runs, **rows}
    for layer, base in RATIOS:
        if base in rows:  # huey only with the peers extra
            result[f"{layer}_vs_{base}"] = round(rows[layer]["per_s"] / rows[base]["per_s"], 2)
    return result


def print_table(result: dict[str, Any]) -> None:
    calls, runs = result["calls"], result["runs"]
    print(f"Redis {result['redis_version']}, {calls:,} calls one at a time, median of {runs}")
    print(f"{'':15} {'calls/s':>9} {'client µs':>10} {'redis µs':>9}")
    for name, row in result.items():
        if not isinstance(row, dict):
            continue
        print(f"{name:15} {row['per_s']:>9,} {row['client_cpu_us']:>10} {row['server_cpu_us']:>9}")
    ratios = [f"{layer} / {base}: {result[f'{layer}_vs_{base}']}" for layer, base in RATIOS if base in result]
    print("; ".join(ratios))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5_000, help="calls per row and run (default 5,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs; each figure is their median (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.runs < 1:
        parser.error("--calls and --runs must be >= 1")
    drop_conveyor_env()
    with private_redis() as url:
        result = measure(url, args.calls, args.runs)
    report(result, args.json, print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
