"""Redaction by rule: secret keys as words, secret shapes anywhere in text, harmless look-alikes kept."""

from __future__ import annotations

import pytest

from conveyor import Conveyor, JobContext
from conveyor.api.redact import REDACTED, is_secret_key, redact, redact_text

from .conftest import Client, Tokens

SECRET_KEYS = [
    "password", "passphrase", "api_key", "x-api-key", "apikey", "AccessKeyId", "privateKey",
    "client_secret", "clientSecret", "refresh_token", "authToken", "Authorization", "dsn",
    "jwt", "otp", "sessionid", "cvv", "pin",
]  # fmt: skip
HARMLESS_KEYS = [
    "key",
    "family_key",
    "rate_limit_key",
    "monkey",
    "author",
    "signal",
    "tokens_used",
    "keywords",
]

# (text with a secret, what must be left of it)
SHAPES = [
    (
        "postgresql://shop:hunter2@db.internal:5432/catalog",
        "postgresql://shop:[redacted]@db.internal:5432/catalog",
    ),
    (
        "GET https://api.test/x?access_token=abc123&page=2",
        "GET https://api.test/x?access_token=[redacted]&page=2",
    ),
    ("https://maps.test/?key=AIzaSyA-secret&q=berlin", "https://maps.test/?key=[redacted]&q=berlin"),
    ("Authorization: Bearer 0123456789abcdefXYZ", "Authorization: Bearer [redacted]"),
    ("header Basic dXNlcjpwYXNzd29yZA==", "header Basic [redacted]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl done", "jwt [redacted] done"),
    ("token cvy_3f9a1c2b7d4e_Th8mQ2xLr0aBcDeFgHiJ used", "token [redacted] used"),
    ("shopify shpat_0123456789abcdef0123456789abcdef", "shopify [redacted]"),
    ("openai sk-proj-ABCDEFGHIJKLMNOPQRSTUV", "openai [redacted]"),
    ("lwa Atza|IwEBIA0123456789abcdefghij", "lwa [redacted]"),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws [redacted]"),
    ("card 4111 1111 1111 1111 charged", "card [redacted] charged"),
    ("amex 378282246310005", "amex [redacted]"),
]
HARMLESS_TEXT = [
    "Importing products: 234/500",
    "ean 4006381333931 and gtin 00012345678905",  # barcodes are not cards
    "order 4111111111111112 shipped",  # a card prefix, but not a valid card number
    "https://shop.test/products?page=2&sort=price",
    "family A23-4711 written",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys_hide_their_value(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: "value"}) == {key: REDACTED}


@pytest.mark.parametrize("key", HARMLESS_KEYS)
def test_harmless_keys_keep_their_value(key: str) -> None:
    assert not is_secret_key(key)
    assert redact({key: "A23"}) == {key: "A23"}


@pytest.mark.parametrize(("text", "left"), SHAPES)
def test_secret_shapes_are_cut_out_of_any_text(text: str, left: str) -> None:
    assert redact_text(text) == left
    assert redact({"message": text, "lines": [text]}) == {"message": left, "lines": [left]}


@pytest.mark.parametrize("text", HARMLESS_TEXT)
def test_harmless_text_is_left_as_it_is(text: str) -> None:
    assert redact_text(text) == text


async def test_a_secret_in_a_message_a_log_or_an_error_never_reaches_a_response(
    app: Conveyor, client_for: Client, tokens: Tokens
) -> None:
    leaked = "postgresql://shop:hunter2@db.internal/catalog"

    @app.job("catalog:leaky", attempts=1)
    async def leaky(ctx: JobContext) -> None:
        ctx.progress(50, f"connecting to {leaked}")
        ctx.log(f"Authorization: Bearer sk-proj-ABCDEFGHIJKLMNOPQRSTUV via {leaked}")
        raise ConnectionError(f"could not reach {leaked}")

    job = await leaky.enqueue()
    await app.worker(burst=True).run()
    admin = client_for(tokens.admin)
    answers = [
        await admin.get(f"/api/jobs/{job.id}"),
        await admin.get(f"/api/background-jobs/{job.id}/status"),
        await admin.get("/api/jobs", params={"type": "catalog:leaky"}),
    ]
    for answer in answers:
        assert answer.status_code == 200
        assert "hunter2" not in answer.text, answer.url
        assert "sk-proj-ABCDEFGHIJKLMNOPQRSTUV" not in answer.text, answer.url
    detail = answers[0].json()
    assert (
        detail["logs"][0]["line"]
        == f"Authorization: Bearer {REDACTED} via postgresql://shop:{REDACTED}@db.internal/catalog"
    )
    assert "shop:[redacted]@db.internal" in detail["job"]["error"]["message"]
