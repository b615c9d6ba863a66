"""`conveyor demo --keep` stopped by a signal leaves no process behind, walked over the process tree.

Every process the demo started (the API server, the workers) must be gone
once the demo exits: SIGTERM and SIGINT in the foreground, SIGINT in the
background (where the shell starts the demo with SIGINT ignored), and even
SIGKILL, which gives the demo no chance to stop anything itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

READY = "workers and dashboard keep running"
START_TIMEOUT = 180.0
GONE_TIMEOUT = 30.0


def children_of() -> dict[int, list[int]]:
    """Every live process's children, read from /proc (a zombie has exited, so it is left out)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            tree.setdefault(int(ppid), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = children_of(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    living = {p for kids in children_of().values() for p in kids}
    return pids & living


def start_demo(tmp_path: Path, output: Path, *, sigint_ignored: bool) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    demo = [sys.executable, "-m", "conveyor", "demo", "--keep", "--products", "4", "--families", "1"]
    # A non-interactive shell starts a background job (`cmd &`) with SIGINT ignored; so does this.
    command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *demo] if sigint_ignored else demo
    with output.open("wb") as sink:
        return subprocess.Popen(
            command,
            cwd=tmp_path,
            env={**env, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def wait_until_kept(proc: subprocess.Popen[bytes], output: Path) -> None:
    """Wait until the demo says the workers stay up: every pipeline has finished."""
    deadline = time.monotonic() + START_TIMEOUT
    while READY not in output.read_text("utf-8"):
        assert proc.poll() is None, f"the demo exited early:\n{output.read_text('utf-8')}"
        assert time.monotonic() < deadline, f"not done in {START_TIMEOUT:g}s:\n{output.read_text('utf-8')}"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("signum", "sigint_ignored"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGKILL, False)],
    ids=["sigterm", "sigint", "sigint-background", "sigkill"],
)
def test_a_stopped_demo_leaves_no_process_behind(
    tmp_path: Path, signum: signal.Signals, sigint_ignored: bool
) -> None:
    output = tmp_path / "demo.out"
    proc = start_demo(tmp_path, output, sigint_ignored=sigint_ignored)
    try:
        wait_until_kept(proc, output)
        started = descendants(proc.pid)
        # The API server and two workers (each `python -m conveyor ...`), nothing less.
        commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in started}
        kinds = sorted(cmd[5].decode() for cmd in commands.values() if cmd[2:4] == [b"conveyor", b"--app"])
        assert kinds == ["serve", "worker", "worker"], commands

        proc.send_signal(signum)
        code = proc.wait(timeout=GONE_TIMEOUT)
        deadline = time.monotonic() + GONE_TIMEOUT
        while alive(started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(started), f"still running after the demo exited ({code}): {alive(started)}"
        if signum is signal.SIGKILL:
            assert code == -signal.SIGKILL
        else:
            said = output.read_text("utf-8")
            assert f"{signum.name}: stopping the workers and the dashboard" in said
            assert code == 0, said
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
