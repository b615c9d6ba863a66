"""The HTTP API: REST endpoints (the seeds' and more), server-sent events, metrics, token auth.

from conveyor.api import create_api
api = create_api(app)                 # tokens from CONVEYOR_AUTH_DB or beside the jobs database
host_app.mount("/jobs", api)          # or serve it alone: `conveyor serve`
"""

from .app import create_api
from .auth import AuthConfig, Caller
from .redact import redact
from .tokens import Scope, TokenInfo, TokenStorage, TokenStore, default_auth_db

__all__ = [
    "AuthConfig",
    "Caller",
    "Scope",
    "TokenInfo",
    "TokenStorage",
    "TokenStore",
    "create_api",
    "default_auth_db",
    "redact",
]
