"""`conveyor sandbox`: simulators served from the command line, answering like the real APIs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx


def test_conveyor_sandbox_serves_the_named_simulators_until_interrupted() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "sandbox", "jumpseller", "promidata"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        urls = dict(proc.stdout.readline().split() for _ in range(2))
        assert sorted(urls) == ["jumpseller", "promidata"]
        refused = httpx.get(f"{urls['jumpseller']}/products.json", auth=("nobody", "wrong"))
        assert refused.status_code == 401  # Jumpseller's answer to bad credentials
        index = httpx.get(f"{urls['promidata']}/Import/Import.txt")
        assert index.status_code == 200
        assert index.text.strip()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 0


def test_an_unknown_simulator_is_one_clear_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", "sandbox", "etsy"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "unknown simulator etsy; choose from akeneo, amazon" in proc.stderr
    assert "Traceback" not in proc.stderr
