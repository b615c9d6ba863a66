"""The processes `conveyor demo` starts: worker processes and one API server, as production runs them.

Separate processes (not tasks in the demo's own) make the demo honest: jobs
travel through the backend exactly as they would in production, and the API
answers from its own process, apart from the workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

STOP_TIMEOUT = 15.0
API_START_TIMEOUT = 30.0


class _Children:
    """Child processes logging to files, stopped with SIGTERM (then SIGKILL) on exit.

    Each child also stops on its own if the demo dies without a chance to stop it
    (SIGKILL): it is started with `--stop-with-parent`.
    """

    def __init__(self, app_ref: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.app_ref = app_ref
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def spawn(self, log_name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / log_name).open("wb")
        self._logs.append(log)
        command = [sys.executable, "-m", "conveyor", "--app", self.app_ref, *args]
        self.procs.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT))
        return self.procs[-1]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()

    @contextmanager
    def _stopped_if_interrupted(self) -> Iterator[None]:
        """A failure or a signal while entering leaves no child behind: `__exit__` would not run."""
        try:
            yield
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class WorkerFleet(_Children):
    """`conveyor worker` processes, each logging to `worker-N.log`."""

    def __init__(self, count: int, app_ref: str, env: Mapping[str, str], log_dir: Path) -> None:
        super().__init__(app_ref, env, log_dir)
        self.count = count

    def __enter__(self) -> WorkerFleet:
        with self._stopped_if_interrupted():
            for n in range(1, self.count + 1):
                self.spawn(f"worker-{n}.log", "worker", "--stop-with-parent")
        return self

    @property
    def all_exited(self) -> bool:
        return all(p.poll() is not None for p in self.procs)

    def wait(self) -> None:
        for proc in self.procs:
            proc.wait()


class ApiServer(_Children):
    """`conveyor serve` on loopback (API and dashboard), logging to `api.log`; entered once it answers."""

    def __init__(self, app_ref: str, env: Mapping[str, str], log_dir: Path, port: int) -> None:
        super().__init__(app_ref, env, log_dir)
        self.url = f"http://127.0.0.1:{port}"
        self.port = port

    def __enter__(self) -> ApiServer:
        with self._stopped_if_interrupted():
            proc = self.spawn(
                "api.log", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--stop-with-parent"
            )
            deadline = time.monotonic() + API_START_TIMEOUT
            while True:
                try:
                    if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the API server did not start; see {self.log_dir / 'api.log'}")
                time.sleep(0.1)
