"""The benchmark scripts run as their docstrings say and print the JSON docs/benchmarks.md quotes.

Tiny runs: what is checked is each script's contract (it starts its own
store, measures every row, cleans up, prints its figures), never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
RUN_TIMEOUT = 120


def run_json(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_throughput_measures_every_figure_on_a_store_of_its_own(backend: str) -> None:
    result = run_json("throughput.py", "--backend", backend, "--jobs", "200")
    assert result["backend"] == backend
    assert result["jobs"] == 200
    for figure in ("enqueue_per_s", "bulk_enqueue_per_s", "process_per_s"):
        assert result[figure] > 0, figure
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"] <= result["latency_max_ms"]


def test_enqueue_floor_measures_each_layer_and_the_ratios_between_them() -> None:
    result = run_json("enqueue_floor.py", "--calls", "100", "--runs", "1")
    assert result["calls"] == 100
    layers = ("round_trip", "lpush", "job_writes", "job_writes_lua", "conveyor")
    for layer in layers:
        row = result[layer]
        assert row["per_s"] > 0, layer
        assert row["client_cpu_us"] > 0, layer
        assert row["server_cpu_us"] >= 0, layer
    rate = {layer: result[layer]["per_s"] for layer in layers}
    assert result["conveyor_vs_lpush"] == pytest.approx(rate["conveyor"] / rate["lpush"], abs=0.01)
    assert result["job_writes_lua_vs_lpush"] == pytest.approx(
        rate["job_writes_lua"] / rate["lpush"], abs=0.01
    )


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_api_load_offers_reads_with_and_without_streams(backend: str) -> None:
    args = ("--backend", backend, "--streams", "3", "--rate", "30", "--seconds", "2", "--churn", "5")
    result = run_json("api_load.py", *args)
    assert (result["backend"], result["streams"]) == (backend, 3)
    for phase in ("without_streams", "with_streams"):
        figures = result[phase]
        assert figures["offered"] == 60
        assert figures["answered_per_s"] > 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
        assert set(figures["by_read"]) == {"job", "list", "status"}
    assert result["stream_events"] > 0
    assert result["idle_server_cpu_percent"] >= 0
