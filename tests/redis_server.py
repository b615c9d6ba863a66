"""A real, throw-away `redis-server` process for tests (never fakeredis, never a shared server)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One server on 127.0.0.1, its files in `folder`; `restart` keeps port and data (with AOF)."""

    def __init__(self, folder: Path, *, appendonly: bool = False, password: str | None = None) -> None:
        self.folder = folder
        self.appendonly = appendonly
        self.password = password
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def url(self, prefix: str | None = None) -> str:
        auth = "" if self.password is None else f":{self.password}@"
        url = f"redis://{auth}127.0.0.1:{self.port}/0"
        return url if prefix is None else f"{url}?prefix={prefix}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, decode_responses=True)

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "always",
                "--dir", str(self.folder),
                "--logfile", "redis.log",
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        with self.client() as client:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if self._process.poll() is not None or time.monotonic() > deadline:
                        log = self.folder / "redis.log"
                        tail = log.read_text()[-2000:] if log.exists() else ""
                        self.stop()
                        raise RuntimeError(
                            f"redis-server did not start on port {self.port}:\n{tail}"
                        ) from None
                    time.sleep(0.02)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()
