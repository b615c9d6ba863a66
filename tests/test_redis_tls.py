"""`rediss://` URLs: the Redis backend works over TLS, and refuses a server it cannot trust."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from conveyor import BackendUnavailable, Conveyor, FakeClock, JobState

from .redis_server import RedisServer, TlsFiles


def tls_files(folder: Path, ca: trustme.CA) -> TlsFiles:
    server_cert = ca.issue_cert("127.0.0.1")
    files = TlsFiles(cert=folder / "server.pem", key=folder / "server.key", ca=folder / "ca.pem")
    server_cert.cert_chain_pems[0].write_to_path(str(files.cert))
    server_cert.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    return files


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    folder = tmp_path_factory.mktemp("redis-tls")
    server = RedisServer(folder, password="tls-pass", tls=tls_files(folder, trustme.CA()))
    server.start()
    yield server
    server.stop()


async def test_jobs_run_over_tls_with_a_password(tls_server: RedisServer) -> None:
    url = tls_server.url("tls")
    assert url.startswith("rediss://:tls-pass@127.0.0.1:")
    app = Conveyor(url, clock=FakeClock())

    @app.job("catalog:ping")
    async def ping(sku: str) -> str:
        return f"pong {sku}"

    ids = await app.enqueue_many("catalog:ping", [{"sku": f"p{n}"} for n in range(20)])
    summary = await app.worker(burst=True).run()
    done = [await app.get_job(job_id) for job_id in ids]
    await app.close()
    assert summary.outcomes == {"complete": 20}
    assert [job.state for job in done] == [JobState.COMPLETED] * 20
    assert done[7].result == "pong p7"


async def test_a_plain_connection_to_a_tls_port_is_a_clear_start_up_error(tls_server: RedisServer) -> None:
    app = Conveyor(f"redis://:tls-pass@127.0.0.1:{tls_server.port}/0", clock=FakeClock())
    with pytest.raises(BackendUnavailable, match=r"Redis at redis://:\*\*\*@127\.0\.0\.1:\d+/0"):
        await app.backend()


async def test_a_server_signed_by_an_unknown_ca_is_refused(tls_server: RedisServer, tmp_path: Path) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    url = f"rediss://:tls-pass@127.0.0.1:{tls_server.port}/0?ssl_ca_certs={stranger}"
    app = Conveyor(url, clock=FakeClock())
    with pytest.raises(BackendUnavailable, match="certificate verify failed"):
        await app.backend()
