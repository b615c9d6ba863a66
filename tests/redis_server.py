"""A real, throw-away `redis-server` process for tests (never fakeredis, never a shared server)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS-only server: its certificate and key, and the CA clients must trust."""

    cert: Path
    key: Path
    ca: Path


class RedisServer:
    """One server on 127.0.0.1, its files in `folder`; `restart` keeps port and data (with AOF).

    With `tls`, the server speaks only TLS (its plain port is off) and `url`
    says `rediss://`, naming the CA to trust. With `unix_socket`, it also
    listens on `redis.sock` in its folder, which `unix_url` names.
    """

    def __init__(
        self,
        folder: Path,
        *,
        appendonly: bool = False,
        password: str | None = None,
        tls: TlsFiles | None = None,
        unix_socket: bool = False,
    ) -> None:
        self.folder = folder
        self.appendonly = appendonly
        self.password = password
        self.tls = tls
        self.socket = folder / "redis.sock" if unix_socket else None
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def url(self, prefix: str | None = None) -> str:
        auth = "" if self.password is None else f":{self.password}@"
        if self.tls is None:
            url, query = f"redis://{auth}127.0.0.1:{self.port}/0", {}
        else:
            url, query = f"rediss://{auth}127.0.0.1:{self.port}/0", {"ssl_ca_certs": str(self.tls.ca)}
        if prefix is not None:
            query["prefix"] = prefix
        return f"{url}?{urlencode(query)}" if query else url

    def unix_url(self, query: str = "") -> str:
        assert self.socket is not None, "started without unix_socket=True"
        return f"unix://{self.socket}{query}"

    def client(self) -> redis.Redis:
        tls = {} if self.tls is None else {"ssl": True, "ssl_ca_certs": str(self.tls.ca)}
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, decode_responses=True, **tls
        )

    def _listen(self) -> list[str]:
        socket = [] if self.socket is None else ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        if self.tls is None:
            return ["--port", str(self.port), *socket]
        return [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.tls.cert),
            "--tls-key-file", str(self.tls.key),
            "--tls-ca-cert-file", str(self.tls.ca),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                *self._listen(),
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
