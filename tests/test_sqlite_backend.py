"""What only the SQLite backend has: the database file itself.

Everything else it shares with Redis is in tests/conformance/.
"""

from __future__ import annotations

import stat
from pathlib import Path

from conveyor import Conveyor, FakeClock


def modes_of(folder: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.glob("jobs.db*")}


async def test_a_new_database_and_its_wal_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'jobs.db'}", clock=FakeClock())

    @app.job("catalog:echo")
    async def echo(sku: str) -> str:
        return sku

    await echo.enqueue(sku="secret-sku")
    modes = modes_of(tmp_path)
    await app.close()
    assert "jobs.db" in modes
    assert "jobs.db-wal" in modes
    assert set(modes.values()) == {0o600}, modes
