"""Credentials resolved from a reference, so secrets never travel in job payloads or logs.

A job payload carries only a reference — `env:JUMPSELLER_CREDENTIALS` or
`file:/run/secrets/marketplaces.json#store-42` — and the handler resolves it
where it runs. An environment variable holds either a JSON object of fields
or a bare token (read as the field `token`); a secrets file holds a JSON
object, optionally with one section per account selected after `#`.
`Credentials` never shows its values in `repr`/`str`, and resolution errors
name the reference and the field, never a value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from conveyor import ConfigurationError


class CredentialsError(ConfigurationError):
    """A credentials reference that cannot be resolved, or lacks a field a connector needs."""


class Credentials(Mapping[str, str]):
    """Secret fields by name (`login`, `authtoken`, `access_token`, …), redacted when printed."""

    __slots__ = ("_fields", "reference")

    def __init__(self, fields: Mapping[str, str], reference: str = "<inline>") -> None:
        self._fields = dict(fields)
        self.reference = reference

    def __getitem__(self, name: str) -> str:
        try:
            return self._fields[name]
        except KeyError:
            raise CredentialsError(f"credentials {self.reference} have no field {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def require(self, *names: str) -> None:
        missing = [name for name in names if not self._fields.get(name)]
        if missing:
            raise CredentialsError(f"credentials {self.reference} lack {', '.join(missing)}")

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}=***" for name in self._fields)
        return f"Credentials({self.reference!r}, {fields})"

    __str__ = __repr__


def resolve_credentials(reference: str, *, environ: Mapping[str, str] | None = None) -> Credentials:
    """Turn `env:NAME` or `file:PATH[#SECTION]` into `Credentials`."""
    scheme, _, target = reference.partition(":")
    if scheme == "env" and target:
        env = os.environ if environ is None else environ
        if target not in env:
            raise CredentialsError(f"credentials {reference}: environment variable is not set")
        raw = env[target]
        data: Any = _json(raw, reference) if raw.lstrip().startswith("{") else {"token": raw}
    elif scheme == "file" and target:
        path, _, section = target.partition("#")
        try:
            data = _json(Path(path).read_text(encoding="utf-8"), reference)
        except OSError as e:
            raise CredentialsError(f"credentials {reference}: cannot read file ({e.strerror})") from None
        if section:
            if not isinstance(data, dict) or section not in data:
                raise CredentialsError(f"credentials {reference}: no section {section!r}")
            data = data[section]
    else:
        raise CredentialsError(f"credentials reference {reference!r} must start with env: or file:")
    if not isinstance(data, dict) or not all(isinstance(v, str | int) for v in data.values()):
        raise CredentialsError(f"credentials {reference}: expected an object of string fields")
    return Credentials({str(k): str(v) for k, v in data.items()}, reference)


def _json(text: str, reference: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        # `from None`: a JSONDecodeError keeps the whole document, secrets included.
        raise CredentialsError(f"credentials {reference}: not valid JSON") from None
