"""Login with Amazon as the SP-API simulators serve it: the token endpoint and the access-token check.

One authority can stand behind several simulators, as one LWA host serves
every region: a refresh token a seller's consent gave is exchanged for
short-lived access tokens, which the SP-API hosts check on every call.
Sources: `../shared/marketplace-apis.md` section 7.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from fastapi import Response

from .base import json_response

TOKEN_PATH = "/auth/o2/token"


@dataclass
class LwaAuthority:
    """Refresh tokens per seller, and the access tokens they were exchanged for."""

    client_id: str = "amzn1.application-oa2-client.sandbox"
    client_secret: str = "sandbox-client-secret"
    token_ttl: float = 3600.0
    grants: dict[str, str] = field(default_factory=dict)
    """Refresh token -> seller id."""
    access: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Access token -> (seller id, expiry on the clock)."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def authorize(self, seller_id: str) -> str:
        """The refresh token a seller's consent gives this application (the same every time)."""
        digest = hashlib.sha256(f"{self.client_id}:{seller_id}".encode()).hexdigest()[:32]
        token = f"Atzr|{digest}"
        self.grants[token] = seller_id
        return token

    def revoke(self, seller_id: str) -> None:
        """The seller withdrew consent: its refresh token and access tokens stop working."""
        self.grants = {t: s for t, s in self.grants.items() if s != seller_id}
        self.access = {t: v for t, v in self.access.items() if v[0] != seller_id}

    def exchange(self, body: bytes, now: float, *, label: str = "sandbox") -> Response:
        """`POST /auth/o2/token` with a refresh-token grant, answered as LWA does, errors included."""
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response(
                401, {"error": "invalid_client", "error_description": "Client authentication failed"}
            )
        if form.get("grant_type") != "refresh_token":
            return json_response(
                400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant"}
            )
        seller = self.grants.get(form.get("refresh_token", ""))
        if seller is None:
            description = "The request has an invalid grant parameter : refresh_token"
            return json_response(400, {"error": "invalid_grant", "error_description": description})
        token = f"Atza|{label}-{next(self._ids)}"
        self.access[token] = (seller, now + self.token_ttl)
        body_out = {"access_token": token, "token_type": "bearer", "expires_in": int(self.token_ttl)}
        return json_response(200, {**body_out, "refresh_token": form["refresh_token"]})

    def seller_of(self, token: str | None, now: float) -> tuple[str | None, str]:
        """The seller an `x-amz-access-token` speaks for, or None and SP-API's 403 details."""
        if not token:
            return None, "Access token is missing in the request header."
        grant = self.access.get(token)
        if grant is None:
            return None, "The access token you provided is revoked, malformed or invalid."
        seller, expires = grant
        if expires <= now:
            return None, "The access token you provided has expired."
        return seller, ""
