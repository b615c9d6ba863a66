"""Alembic environment for the catalog: runs on the connection `conveyor.commerce.db` hands over.

There is no alembic.ini and no URL here on purpose: `migrate()` opens the
connection (with the dialect settings the ledger relies on) and the
transaction, so upgrades are atomic and serialised across processes.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from conveyor.commerce import catalog, ledger  # noqa: F401 (importing them registers their tables)
from conveyor.commerce.db import Base, UTCDateTime
from conveyor.commerce.seller_data import models as seller_data_models  # noqa: F401
from conveyor.commerce.store_jobs import tables as store_jobs_tables  # noqa: F401
from conveyor.commerce.suppliers import models as supplier_models  # noqa: F401

if context.is_offline_mode():
    raise RuntimeError("catalog migrations run online only: call conveyor.commerce.db.migrate(url)")


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write UTCDateTime as the plain DateTime it stores, so revisions never import application code."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime()"
    return False


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by rebuilding them
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
