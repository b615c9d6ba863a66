"""A private, throw-away `redis-server` for benchmarks (a small copy of tests/redis_server.py).

Benchmarks never touch a shared server unless given --url: every engine is
measured on a server nothing else uses, on a free loopback port, with its
files in a temporary directory removed afterwards.

The server runs as production should (docs/backends.md): AOF on with
`appendfsync everysec`, no RDB snapshots (a fork in the middle of a timed
section would say nothing about the engine), `maxmemory-policy noeviction`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_version(url: str) -> str:
    with redis.Redis.from_url(url, decode_responses=True) as client:
        return str(client.info("server")["redis_version"])


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """Yield the URL of a fresh redis-server; stop it and delete its files on any exit."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-redis-", ignore_cleanup_errors=True) as tmp:
        cmd = [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--dir", tmp,
            "--logfile", "redis.log",
        ]  # fmt: skip
        # A session of its own, so a Ctrl-C meant for the benchmark does not stop the server first.
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"redis://127.0.0.1:{port}/0"
            _wait_ready(url, proc, Path(tmp) / "redis.log")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with redis.Redis.from_url(url) as client:
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(f"redis-server did not start:\n{tail}") from None
                time.sleep(0.02)
