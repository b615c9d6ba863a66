"""Run simulators on loopback in background threads, for tests, `conveyor demo` and `conveyor sandbox`.

Each simulator gets its own uvicorn server on its own socket; binding the
socket here (port 0 = a free port) means the URL is known before the server
thread starts, with no race over "which port did it get".
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import uvicorn

from conveyor import Clock

from .base import Sandbox
from .faults import FaultConfig


@dataclass
class RunningSandbox:
    sandbox: Sandbox
    base_url: str
    """`http://127.0.0.1:<port>`; `api_url` adds the API's own root path."""
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _socket: socket.socket = field(repr=False)

    @property
    def api_url(self) -> str:
        """What a connector takes as its base URL (the simulator's stand-in for the real host)."""
        return self.base_url + self.sandbox.api_root

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve `sandbox` in a daemon thread; returns once it accepts connections."""
    # proto=IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and without it every answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        sandbox.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.name = f"sandbox-{sandbox.name}"
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the {sandbox.name} sandbox did not start")
        time.sleep(0.005)
    bound_host, bound_port = sock.getsockname()[:2]
    return RunningSandbox(sandbox, f"http://{bound_host}:{bound_port}", server, thread, sock)


def serve(
    names: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    faults: FaultConfig | None = None,
    clock: Clock | None = None,
    on_ready: Callable[[RunningSandbox], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the named simulators until `stop` is set or Ctrl-C; with a fixed `port`, they take port, port+1, …

    `on_ready` is called once per simulator with its URL (the CLI prints it).
    """
    from . import create

    running: list[RunningSandbox] = []
    try:
        for offset, name in enumerate(names):
            sandbox = create(name, faults=faults, clock=clock)
            running.append(start(sandbox, host, port + offset if port else 0))
            if on_ready is not None:
                on_ready(running[-1])
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in running:
            server.stop()
