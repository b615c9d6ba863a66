"""`conveyor tokens`: create, list and revoke the API's bearer tokens.

Tokens live in their own SQLite file (CONVEYOR_AUTH_DB, else beside the SQLite
jobs database, else the working directory), so an operator manages them with
the same --url as everything else. A token is printed once, when created.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import click
from rich import box
from rich.table import Table

from .loading import Target
from .output import console, emit_json, json_option, timestamp

if TYPE_CHECKING:
    from ..api.tokens import TokenStore

# conveyor.api.Scope's values; spelled out so that every `conveyor` command does not import FastAPI.
SCOPES = ("read", "write", "admin")


def token_store(url: str) -> TokenStore:
    """The tokens of the deployment whose jobs live at `url`."""
    from ..api.tokens import TokenStore, default_auth_db

    return TokenStore(default_auth_db(url))


def _store(target: Target) -> TokenStore:
    return token_store(target.url or target.app().settings.url)


@click.group()
def tokens() -> None:
    """Manage API tokens (scopes: read < write < admin; optionally bound to one tenant)."""


@tokens.command("create")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    required=True,
    help="read: view jobs; write: also enqueue, retry, cancel, delete; admin: also bulk actions and queues.",
)
@click.option("--tenant", help="Bind the token to one tenant (store): it sees and touches only its jobs.")
@click.option("--name", default="", help="What the token is for, shown by `tokens list`.")
@click.pass_obj
def create(target: Target, scope: str, tenant: str | None, name: str) -> None:
    """Create a token; it is printed alone on the last line, and never shown again."""
    from ..api.tokens import Scope

    info, token = _store(target).create(scope=Scope(scope), tenant=tenant, name=name)
    bound = f", tenant {info.tenant}" if info.tenant else ""
    click.echo(f"created token {info.id} (scope {info.scope}{bound}); store it now, it is not shown again:")
    click.echo(token)


@tokens.command("list")
@json_option
@click.pass_obj
def list_tokens(target: Target, as_json: bool) -> None:
    """List tokens: id, name, scope, tenant, when created and last used (never the tokens themselves)."""
    found = _store(target).list()
    if as_json:
        emit_json([{**dataclasses.asdict(t), "scope": t.scope.value} for t in found])
        return
    if not found:
        click.echo("no tokens yet; create one with `conveyor tokens create --scope read`")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("id", "name", "scope", "tenant", "created", "last used"):
        table.add_column(column)
    for t in found:
        table.add_row(
            t.id, t.name, t.scope.value, t.tenant or "-", timestamp(t.created_at), timestamp(t.last_used_at)
        )
    console().print(table)


@tokens.command("revoke")
@click.argument("token_id")
@click.pass_obj
def revoke(target: Target, token_id: str) -> None:
    """Revoke the token with id TOKEN_ID (from `tokens list`); it stops working at once."""
    if not _store(target).revoke(token_id):
        raise click.ClickException(f"no token with id {token_id!r}")
    click.echo(f"revoked token {token_id}")
