"""Settings: constructor arguments, each overridable by a CONVEYOR_* environment variable.

The environment wins so that one deployed artifact can be tuned per host
(`CONVEYOR_CONCURRENCY_IMAGES=10`) without a code change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigurationError
from .limits import RateLimit

DEFAULT_URL = "sqlite:///conveyor.db"
_CONCURRENCY_PREFIX = "CONVEYOR_CONCURRENCY_"


def queue_env_key(queue: str) -> str:
    """'product-family' -> 'PRODUCT_FAMILY', the suffix of its concurrency variable."""
    return re.sub(r"[^A-Za-z0-9]", "_", queue).upper()


@dataclass(frozen=True, slots=True)
class Settings:
    url: str = DEFAULT_URL
    lease_seconds: float = 30.0
    grace_seconds: float = 30.0
    default_concurrency: int = 10
    concurrency: Mapping[str, int] = field(default_factory=dict)
    max_payload_bytes: int = 1 << 20
    retention_keep_last: int | None = None
    retention_max_age: float | None = None
    queue_rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    fair_queues: str = ""  # comma-separated; CONVEYOR_FAIR_QUEUES="store-jobs,marketplace"
    archive_url: str | None = None  # CONVEYOR_ARCHIVE_URL: finished jobs copied there (conveyor.archive)

    def __post_init__(self) -> None:
        if self.lease_seconds < 1:
            raise ConfigurationError(f"lease_seconds must be >= 1, got {self.lease_seconds}")
        if self.grace_seconds < 0:
            raise ConfigurationError(f"grace_seconds must be >= 0, got {self.grace_seconds}")
        if self.default_concurrency < 1:
            raise ConfigurationError("default_concurrency must be >= 1")
        if self.max_payload_bytes < 1024:
            raise ConfigurationError("max_payload_bytes must be at least 1024")
        for queue, n in self.concurrency.items():
            if not isinstance(n, int) or n < 1:
                raise ConfigurationError(f"concurrency for queue {queue!r} must be an integer >= 1")

    @property
    def fair_queue_set(self) -> frozenset[str]:
        return frozenset(q.strip() for q in self.fair_queues.split(",") if q.strip())

    @property
    def heartbeat_seconds(self) -> float:
        """Renew leases (and look for cancellations) often enough that one missed beat is harmless."""
        return min(1.0, self.lease_seconds / 3)

    def concurrency_for(self, queue: str) -> int:
        wanted = queue_env_key(queue)
        for name, n in self.concurrency.items():
            if queue_env_key(name) == wanted:
                return n
        return self.default_concurrency

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **given: Any) -> Settings:
        env = os.environ if env is None else env
        given = {k: v for k, v in given.items() if v is not None}
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = cls(**given)
        overrides: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("concurrency", "queue_rate_limits"):
                continue
            name = f"CONVEYOR_{f.name.upper()}"
            if name in env:
                overrides[f.name] = _parse(name, env[name], f.type)
        if "CONVEYOR_CONCURRENCY" in env:
            overrides["default_concurrency"] = _parse(
                "CONVEYOR_CONCURRENCY", env["CONVEYOR_CONCURRENCY"], "int"
            )
        concurrency = dict(settings.concurrency)
        for name, value in env.items():
            if name.startswith(_CONCURRENCY_PREFIX) and len(name) > len(_CONCURRENCY_PREFIX):
                concurrency[name[len(_CONCURRENCY_PREFIX) :]] = _parse(name, value, "int")
        return replace(settings, concurrency=concurrency, **overrides)


def _parse(name: str, raw: str, kind: object) -> Any:
    kind = str(kind)
    try:
        if raw.strip() == "" and "None" in kind:
            return None
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        return raw
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a valid {kind}") from None
