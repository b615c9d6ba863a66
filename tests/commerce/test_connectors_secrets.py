"""Credentials references (`env:`, `file:`), redaction, and the hook that feeds the engine's key limiter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor import ConfigurationError
from conveyor.commerce.connectors import RateLimitInfo, key_limiter_hook
from conveyor.commerce.secrets import Credentials, CredentialsError, resolve_credentials

SECRET = "s3cr3t-authtoken-0123456789abcdef"


def test_env_reference_holds_a_json_object_or_a_bare_token() -> None:
    environ = {"JS": json.dumps({"login": "store", "authtoken": SECRET}), "SHOP": SECRET}
    js = resolve_credentials("env:JS", environ=environ)
    shop = resolve_credentials("env:SHOP", environ=environ)
    assert (js["login"], js["authtoken"]) == ("store", SECRET)
    assert dict(shop) == {"token": SECRET}


def test_file_reference_with_a_section_per_account(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"store-1": {"access_token": SECRET}, "store-2": {"access_token": "other"}}))
    assert resolve_credentials(f"file:{path}#store-1")["access_token"] == SECRET
    with pytest.raises(CredentialsError, match="no section 'store-3'"):
        resolve_credentials(f"file:{path}#store-3")


def test_repr_and_errors_never_show_values(tmp_path: Path) -> None:
    credentials = Credentials({"login": "store", "authtoken": SECRET}, "env:JS")
    assert repr(credentials) == str(credentials) == "Credentials('env:JS', login=***, authtoken=***)"
    bad = tmp_path / "bad.json"
    bad.write_text('{"authtoken": "' + SECRET + '"')
    with pytest.raises(CredentialsError) as caught:
        resolve_credentials(f"file:{bad}")
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("env:MISSING", "environment variable is not set"),
        ("vault:x", "must start with env: or file:"),
        ("file:/nonexistent/secrets.json", "cannot read file"),
        ("env:LIST", "expected an object of string fields"),
    ],
)
def test_unresolvable_references_are_configuration_errors(reference: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve_credentials(reference, environ={"LIST": '{"a": ["b"]}'})


def test_require_names_the_missing_fields_only() -> None:
    credentials = Credentials({"login": "store", "authtoken": ""}, "env:JS")
    with pytest.raises(CredentialsError, match=r"^credentials env:JS lack authtoken, refresh_token$"):
        credentials.require("login", "authtoken", "refresh_token")
    with pytest.raises(CredentialsError, match="no field 'token'"):
        credentials["token"]


async def test_key_limiter_hook_feeds_the_job_context() -> None:
    fed: list[dict[str, float | None]] = []

    class Context:
        async def feed_limiter(
            self,
            *,
            remaining: float | None = None,
            reset_at: float | None = None,
            retry_after: float | None = None,
        ) -> None:
            fed.append({"remaining": remaining, "reset_at": reset_at, "retry_after": retry_after})

    hook = key_limiter_hook(Context())  # type: ignore[arg-type]
    await hook(RateLimitInfo(remaining=0, reset_at=123.0, retry_after=2.5, limit=20, scope="per_second"))  # type: ignore[misc]
    assert fed == [{"remaining": 0, "reset_at": 123.0, "retry_after": 2.5}]
