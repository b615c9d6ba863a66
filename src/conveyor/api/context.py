"""What every router needs, built once per API app (never module globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..app import Conveyor
from .auth import Authenticator, Dependency
from .models import ErrorBody, ValidationErrorBody
from .service import Jobs
from .tokens import Scope


@dataclass(frozen=True, slots=True)
class ApiContext:
    app: Conveyor
    auth: Authenticator
    jobs: Jobs
    events_interval: float

    def reader(self) -> Dependency:
        return self.auth.require(Scope.READ)

    def writer(self) -> Dependency:
        return self.auth.require(Scope.WRITE)

    def admin(self) -> Dependency:
        return self.auth.require(Scope.ADMIN)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give, on top of the auth ones."""
    described: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody, "description": "Missing, invalid or revoked token."},
        403: {"model": ErrorBody, "description": "The token's scope or tenant does not allow this."},
        422: {"model": ValidationErrorBody, "description": "Invalid parameters or body."},
        429: {"model": ErrorBody, "description": "Too many failed authentications from this address."},
        503: {"model": ErrorBody, "description": "The job backend cannot be reached."},
    }
    notes = {
        404: "No such job (or another tenant's).",
        409: "The job's state does not allow this (enqueue: the dedup key is taken).",
    }
    for code in codes:
        described[code] = {"model": ErrorBody, "description": notes[code]}
    return described
