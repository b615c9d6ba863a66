"""The `conveyor` command line, in-process (CliRunner) and as real processes (worker, demo)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from conveyor.cli import cli
from conveyor.cli.loading import mask_url
from conveyor.cli.params import parse_duration

APP_SOURCE = """
import asyncio

from conveyor import Conveyor, JobContext

app = Conveyor({url!r}, lease_seconds=5, grace_seconds=5)


@app.job("catalog:echo")
async def echo(ctx: JobContext, sku: str, qty: int = 1) -> dict:
    ctx.progress(50, f"echoing {{sku}}")
    ctx.log(f"echo {{sku}} x{{qty}}")
    return {{"sku": sku, "qty": qty}}


@app.job("catalog:boom", attempts=1)
def boom(sku: str) -> None:
    raise ValueError(f"bad sku {{sku}}")


@app.job("catalog:slow", queue="slow")
async def slow(ctx: JobContext, seconds: float) -> str:
    steps = int(seconds * 10)
    for step in range(steps):
        ctx.progress(done=step, total=steps, message=f"step {{step}}")
        await asyncio.sleep(0.1)
    return "slept"
"""


@dataclass
class Env:
    """A test app module and its database in tmp_path."""

    path: Path
    module: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "sqlite:///" + str(self.path / "jobs.db")

    def run(self, *args: str, app: bool = True) -> Result:
        prefix = ["--app", f"{self.module}:app"] if app else ["--url", self.url]
        return CliRunner().invoke(cli, [*prefix, *args])

    def ok(self, *args: str, app: bool = True) -> Result:
        result = self.run(*args, app=app)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def json(self, *args: str, app: bool = True) -> Any:
        return json.loads(self.ok(*args, "--json", app=app).stdout)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "--app", f"{self.module}:app", *args],
            cwd=self.path,
            env=child_env(self.path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc


def child_env(path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_") and k != "COLUMNS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name in [k for k in os.environ if k.startswith("CONVEYOR_")] + ["COLUMNS"]:
        monkeypatch.delenv(name, raising=False)
    module = f"cliapp_{uuid.uuid4().hex[:8]}"
    environment = Env(tmp_path, module)
    (tmp_path / f"{module}.py").write_text(APP_SOURCE.format(url=environment.url))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield environment
    sys.modules.pop(module, None)
    for proc in environment.procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def default_row(table: str) -> list[str]:
    return next(line.split() for line in table.splitlines() if line.split()[:1] == ["default"])


def test_round_trip_enqueue_inspect_and_administer(env: Env) -> None:
    first = env.json(
        "enqueue", "catalog:echo", "--data", '{"sku": "A-1", "qty": 2}',
        "--tenant", "acme", "--tag", "x", "--tag", "y", "--priority", "2", "--user", "u-7",
    )  # fmt: skip
    assert (first["state"], first["tenant"], first["tags"], first["priority"], first["user_id"]) == (
        "pending", "acme", ["x", "y"], 2, "u-7",
    )  # fmt: skip
    later = env.json("enqueue", "catalog:echo", "--data", '{"sku": "B-2"}', "--delay", "1h")
    assert later["state"] == "scheduled"
    assert later["run_at"] - later["created_at"] == pytest.approx(3600)
    dedup = [env.ok("enqueue", "catalog:echo", "--data", '{"sku": "C"}', "--dedup-key", "c").stdout]
    dedup.append(env.ok("enqueue", "catalog:echo", "--data", '{"sku": "C"}', "--dedup-key", "c").stdout)
    assert dedup[0] == dedup[1]
    assert re.fullmatch(r"[0-9A-Z]{26}\n", dedup[0])

    listed = env.json("jobs")
    assert [j["id"] for j in listed][-1] == first["id"]
    assert len(listed) == 3
    assert [j["id"] for j in env.json("jobs", "--state", "scheduled", "--tenant", "acme")] == []
    assert [j["id"] for j in env.json("jobs", "--state", "scheduled")] == [later["id"]]
    table = env.ok("jobs", "--type", "catalog:echo", "--limit", "2").stdout
    assert later["id"] in table
    assert "scheduled" in table
    assert first["id"] not in table
    assert "raise --limit" in table

    detail = env.ok("job", first["id"]).stdout
    for expected in ('"sku": "A-1"', "acme", "x, y", "0 of 4", "pending"):
        assert expected in detail
    assert env.json("job", first["id"])["payload"] == {"sku": "A-1", "qty": 2}

    stats = env.json("status", app=False)
    assert (stats["totals"]["pending"], stats["totals"]["scheduled"]) == (2, 1)
    assert (stats["total"], stats["success_rate"], stats["is_running"]) == (3, None, False)
    assert "success rate n/a" in env.ok("status").stdout

    assert env.json("cancel", later["id"], app=False)["state"] == "cancelled"
    assert env.json("retry", later["id"], app=False)["state"] == "pending"
    assert "cancelled job" in env.ok("cancel", later["id"], app=False).stdout

    env.ok("pause", "default", app=False)
    assert env.json("status")["queues"][0]["paused"] is True
    assert default_row(env.ok("status").stdout)[-1] == "paused"
    env.ok("resume", "default", app=False)
    assert env.json("status")["queues"][0]["paused"] is False
    assert default_row(env.ok("status").stdout)[-1] == "1"  # no longer "paused": the cancelled count

    assert env.json("cleanup", "--keep-last", "0", app=False) == {"removed": 1}
    missing = env.run("job", later["id"])
    assert missing.exit_code == 1
    assert "no job with id" in missing.stderr
    assert env.ok("remove", first["id"], app=False).stdout == f"removed job {first['id']}\n"
    assert [j["id"] for j in env.json("jobs")] == [dedup[0].strip()]
    assert env.json("cleanup", "--max-age", "7d") == {"removed": 0}


def test_worker_burst_processes_jobs_in_a_subprocess(env: Env) -> None:
    ids = [
        env.ok("enqueue", "catalog:echo", "--data", json.dumps({"sku": f"S-{n}"})).stdout.strip()
        for n in range(3)
    ]
    boom = env.ok("enqueue", "catalog:boom", "--data", '{"sku": "X-9"}').stdout.strip()

    proc = env.spawn("worker", "--burst", "--concurrency", "2", "--queues", "default,slow")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert re.search(
        r"conveyor worker \S+: queues default=2, slow=2 on sqlite:////\S+jobs\.db \(burst\)", out
    )
    assert "worker stopped after 4 attempt(s): 3 complete, 1 fail" in out
    assert "Traceback" not in err

    stats = env.json("status")
    assert (stats["totals"]["completed"], stats["totals"]["failed"], stats["workers"]) == (3, 1, [])
    assert "success rate 75.00%" in env.ok("status").stdout
    done = env.json("job", ids[0])
    assert (done["state"], done["result"], done["logs"][0]["line"]) == (
        "completed",
        {"sku": "S-0", "qty": 1},
        "echo S-0 x1",
    )
    failed = env.ok("job", boom).stdout
    assert "ValueError: bad sku X-9" in failed
    assert 'raise ValueError(f"bad sku {sku}")' in failed  # the handler's traceback, per attempt
    assert [j["id"] for j in env.json("jobs", "--state", "failed")] == [boom]


def test_worker_stops_gracefully_on_sigterm_and_at_once_on_a_second_sigint(env: Env) -> None:
    graceful = env.json("enqueue", "catalog:slow", "--data", '{"seconds": 1.5}')["id"]
    proc = env.spawn("worker")
    wait_for(lambda: env.json("job", graceful)["state"] == "running")
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping" in err
    assert env.json("job", graceful)["state"] == "completed"  # the grace period let it finish

    stuck = env.json("enqueue", "catalog:slow", "--data", '{"seconds": 60}')["id"]
    proc = env.spawn("worker")
    wait_for(lambda: env.json("job", stuck)["state"] == "running")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=5)
    assert proc.returncode == 130
    assert "quitting now" in err
    assert "Traceback" not in err
    assert env.json("job", stuck)["state"] == "running"  # left to lease expiry, as documented


def test_enqueue_file_in_bulk_and_bad_lines(env: Env) -> None:
    good = env.path / "jobs.jsonl"
    good.write_text('{"sku": "F-1"}\n\n{"sku": "F-2", "qty": 3}\n   \n{"sku": "F-3"}\n')
    ids = env.json("enqueue", "catalog:echo", "--file", str(good), "--tag", "bulk")
    assert len(ids) == len(set(ids)) == 3
    assert env.ok("enqueue", "catalog:echo", "--file", str(good)).stdout == "enqueued 3 catalog:echo job(s)\n"
    assert {tuple(j["tags"]) for j in env.json("jobs", "--limit", "10")} == {("bulk",), ()}

    bad_json = env.path / "bad.jsonl"
    bad_json.write_text('{"sku": "G-1"}\n\n{"sku": "G-2",\n')
    bad_payload = env.path / "invalid.jsonl"
    bad_payload.write_text('{"sku": "H-1"}\n{"qty": 2}\n')
    for path, line, reason in ((bad_json, 3, "not valid JSON"), (bad_payload, 2, "sku: Field required")):
        result = env.run("enqueue", "catalog:echo", "--file", str(path))
        assert result.exit_code == 1
        assert f"{path.name} line {line}:" in result.stderr
        assert reason in result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert env.json("status")["total"] == 6  # a bad file enqueues nothing


def with_app(*args: str) -> Callable[[Env], list[str]]:
    return lambda e: ["--app", f"{e.module}:app", *args]


def with_url(*args: str) -> Callable[[Env], list[str]]:
    return lambda e: ["--url", e.url, *args]


def corrupt_db(env: Env) -> list[str]:
    (env.path / "garbage.db").write_bytes(b"this is not a database" * 100)
    return ["--url", "sqlite:///" + str(env.path / "garbage.db"), "jobs"]


def broken_app(env: Env) -> list[str]:
    (env.path / f"{env.module}_broken.py").write_text("import os\n\nVALUE = 1 / 0\n")
    return ["--app", f"{env.module}_broken", "status"]


def data_and_file(env: Env) -> list[str]:
    (env.path / "one.jsonl").write_text('{"sku": "a"}\n')
    return with_app("enqueue", "catalog:echo", "--data", "{}", "--file", str(env.path / "one.jsonl"))(env)


def retry_scheduled(env: Env) -> list[str]:
    job_id = env.json("enqueue", "catalog:echo", "--data", '{"sku": "p"}', "--delay", "1h")["id"]
    return with_url("retry", job_id)(env)


ECHO = ("enqueue", "catalog:echo")
ERROR_CASES: dict[str, tuple[Callable[[Env], list[str]], int, str]] = {
    "bad json": (with_app(*ECHO, "--data", "{oops"), 2, "not valid JSON"),
    "json not an object": (with_app(*ECHO, "--data", "[1]"), 2, "must be a JSON object"),
    "invalid payload": (with_app(*ECHO, "--data", '{"sku": 5}'), 1, "sku: Input should be a valid string"),
    "unknown job type": (
        with_app("enqueue", "nope"),
        1,
        "unknown job type 'nope' (registered: catalog:boom, catalog:echo, catalog:slow)",
    ),
    "unknown job id": (with_url("job", "NOPE"), 1, "no job with id 'NOPE'"),
    "retry unknown id": (with_url("retry", "NOPE"), 1, "no job with id 'NOPE'"),
    "cancel unknown id": (with_url("cancel", "NOPE"), 1, "no job with id 'NOPE'"),
    "remove unknown id": (with_url("remove", "NOPE"), 1, "no job with id 'NOPE'"),
    "missing db folder": (
        lambda e: ["--url", "sqlite:///" + str(e.path / "nowhere" / "x.db"), "status"],
        1,
        "does not exist",
    ),
    "db is a folder": (lambda e: ["--url", "sqlite:///" + str(e.path), "status"], 1, "cannot open SQLite"),
    "corrupt db": (corrupt_db, 1, "is it corrupt?"),
    "unsupported url": (
        lambda e: ["--url", "ftp://example.com/jobs", "status"],
        1,
        "unsupported backend URL",
    ),
    "app module missing": (
        lambda e: ["--app", "no_such_mod_zz:app", "jobs"],
        2,
        "'no_such_mod_zz' not found",
    ),
    "app attribute missing": (lambda e: ["--app", f"{e.module}:nope", "jobs"], 2, "has no attribute 'nope'"),
    "app not a Conveyor": (
        lambda e: ["--app", f"{e.module}:echo", "jobs"],
        2,
        "is a JobType, not a Conveyor",
    ),
    "app malformed": (lambda e: ["--app", "my-app:x", "jobs"], 2, "not of the form package.module:attribute"),
    "app import fails": (broken_app, 1, "ZeroDivisionError: division by zero at"),
    "worker without app": (with_url("worker"), 2, "needs the app that registers the job types"),
    "enqueue without app": (with_url(*ECHO), 2, "needs the app"),
    "limit out of range": (with_url("jobs", "--limit", "0"), 2, "'--limit': 0 is not in the range"),
    "unknown state": (with_url("jobs", "--state", "bogus"), 2, "'bogus' is not one of"),
    "bad duration": (with_url("cleanup", "--max-age", "7x"), 2, "'7x' is not a duration"),
    "cleanup without limits": (with_url("cleanup"), 2, "give --keep-last and/or --max-age"),
    "bad priority": (with_app(*ECHO, "--priority", "11"), 2, "'--priority': 11 is not in the range"),
    "bad concurrency": (with_app("worker", "-c", "images=zero"), 2, "'zero' is not a whole number"),
    "unserved queue": (with_app("worker", "-c", "images=2"), 2, "does not serve: images"),
    "data and file": (data_and_file, 2, "either --data or --file"),
    "retry a scheduled job": (
        retry_scheduled,
        1,
        "is scheduled; only failed or cancelled jobs can be retried",
    ),
    "unknown command": (lambda e: ["frobnicate"], 2, "No such command 'frobnicate'"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_are_one_line_without_traceback(env: Env, case: str) -> None:
    make_args, code, fragment = ERROR_CASES[case]
    result = CliRunner().invoke(cli, make_args(env))
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    if code == 2:
        assert lines[0].endswith(" --help)")


def test_every_command_explains_itself() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    assert "--app MODULE:ATTR" in top.stdout
    assert runner.invoke(cli, []).stdout == top.stdout
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help
        assert " ".join(command.help.split("\n\n")[0].split()) in " ".join(result.stdout.split())
        assert all(p.help for p in command.params if isinstance(p, click.Option)), name
        assert f"Usage: conveyor {name}" in result.stdout


def test_urls_are_masked_and_durations_parsed() -> None:
    assert mask_url("redis://admin:s3cret@cache.local:6379/0") == "redis://admin:***@cache.local:6379/0"
    assert mask_url("sqlite:////srv/conveyor.db") == "sqlite:////srv/conveyor.db"
    assert [parse_duration(t) for t in ("90", "90s", "30m", "12h", "7d", "1.5h")] == [
        90, 90, 1800, 43200, 604800, 5400,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("7 days")


def test_job_text_is_printed_as_text_with_control_characters_shown(env: Env) -> None:
    hostile = "[bold red]fake[/bold red] \x1b]8;;http://evil.test\x07click\x1b]8;;\x07 \x1b[2J"
    job_id = env.ok("enqueue", "catalog:boom", "--data", json.dumps({"sku": hostile})).stdout.strip()
    env.ok("worker", "--burst")
    detail = env.ok("job", job_id).stdout
    assert "[bold red]fake[/bold red]" in detail  # shown as written, not as red text
    assert "\\x1b]8;;http://evil.test\\x07click" in detail  # the link sequence, made visible
    listing = env.ok("jobs", "--state", "failed").stdout
    for shown in (detail, listing):
        assert "\x1b" not in shown
        assert "\x07" not in shown
