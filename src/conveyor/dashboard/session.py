"""Dashboard sessions: a login with an API token becomes a random session id in a cookie.

The token itself stays on the server, so the cookie is worthless once the
session ends, and every request re-verifies the token: revoking it in
`conveyor tokens revoke` ends its dashboard sessions too. Sessions live in
memory; a restart logs everyone out, which is the safe failure.

Each session carries its own CSRF token, which every POST form must echo.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass

from ..api.auth import Authenticator, Caller, brake_keys
from ..clock import Clock

COOKIE = "conveyor_session"
LOGIN_CSRF_COOKIE = "conveyor_login_csrf"


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    csrf: str
    expires_at: float


class Sessions:
    """Session ids to tokens, bounded in size and lifetime."""

    def __init__(self, auth: Authenticator, *, lifetime: float, max_sessions: int = 10_000) -> None:
        self.auth = auth
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}

    @property
    def clock(self) -> Clock:
        return self.auth.config.clock

    async def login(self, token: str, address: str) -> str | float:
        """A new session id for a valid token; else the seconds to wait (0: just wrong).

        The API's brake on guessing applies: a failure counts against the address and
        the token id, and a valid token is let in even while they are braked.
        """
        info = await asyncio.to_thread(self.auth.config.tokens.verify, token.strip())
        if info is None:
            keys = brake_keys(address, token.strip())
            self.auth.throttle.record_failure(*keys)
            return self.auth.throttle.blocked_for(*keys)
        now = self.clock.now()
        self._forget_expired(now)
        while len(self._sessions) >= self.max_sessions:
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = Session(token.strip(), secrets.token_urlsafe(32), now + self.lifetime)
        return session_id

    def logout(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    async def caller(self, session_id: str | None) -> tuple[Caller, Session] | None:
        """Who holds this session, if it is live and its token still valid."""
        session = self._sessions.get(session_id) if session_id else None
        if session is None or session.expires_at <= self.clock.now():
            self.logout(session_id)
            return None
        info = await asyncio.to_thread(self.auth.config.tokens.verify, session.token)
        if info is None:
            self.logout(session_id)
            return None
        return Caller(info), session

    def _forget_expired(self, now: float) -> None:
        for session_id, session in list(self._sessions.items()):
            if session.expires_at <= now:
                del self._sessions[session_id]


def same_token(expected: str, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected, given)
