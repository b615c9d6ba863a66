"""A worker run as a child process that stops when told to, or when its parent goes.

Whatever starts worker processes itself (a crash test, a benchmark, a launcher
script) needs each child to finish its running jobs and exit on SIGTERM or
SIGINT. It also needs the child to stop on its own when the parent is killed
outright: SIGKILL gives the parent no chance to stop its children, and an
orphaned worker would go on polling a store that may be gone (a deleted temp
file, a redis-server the parent owned). `conveyor worker` and `conveyor
serve` watch their parent the same way when started with `--stop-with-parent`
(as `conveyor demo` starts them); under a supervisor they need not.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from .worker import Worker, WorkerSummary

PARENT_CHECK_SECONDS = 0.5
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_as_child(worker: Worker) -> WorkerSummary:
    """Run `worker` until SIGTERM or SIGINT, or until this process's parent exits.

    Either way the worker stops gracefully: it claims nothing more and lets
    its running jobs finish (or hand them back when their time is up).
    """
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, worker.request_stop)
    watcher = asyncio.create_task(stop_when_orphaned(worker.request_stop, os.getppid()))
    try:
        return await worker.run()
    finally:
        watcher.cancel()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def stop_when_orphaned(stop: Callable[[], None], parent_pid: int) -> None:
    """Call `stop` once this process is re-parented (to init or a subreaper): its parent has gone."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    stop()
