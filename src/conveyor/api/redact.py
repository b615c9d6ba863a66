"""Keep secrets out of responses: values under secret-looking keys are replaced.

Payloads should reference secrets, never carry them; this is the net for when
one does anyway (an `api_key` pasted into an import job). Matching is on the
key, normalised (case, '-' and '_' ignored), at any depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

_MARKERS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "authorization",
    "cookie",
    "sessionid",
    "signature",
)
_EXACT = frozenset({"pwd", "auth", "pin", "cvv", "key"})


def is_secret_key(key: str) -> bool:
    norm = key.lower().replace("-", "").replace("_", "")
    return norm in _EXACT or any(marker in norm for marker in _MARKERS)


def redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
