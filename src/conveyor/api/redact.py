"""Keep secrets out of responses: by the key a value sits under, and by the shape of the text itself.

Payloads should reference secrets, never carry them (the commerce layer
stores `env:NAME` references only); this is the net for when one gets in
anyway: an `api_key` pasted into an import job, a URL with its password in an
error message, an `Authorization` header in a log line. Two rules:

- a value under a secret-looking key (case, `-` and `_` ignored, at any depth)
  is replaced whole; names are matched as words, so a harmless `key` (a family
  code, a rate-limit key) or `monkey` stays as it is;
- in every string, anywhere, known secret shapes are replaced and the rest of
  the text kept: URL user info passwords, secret query parameters,
  `Bearer`/`Basic` credentials, JSON Web Tokens, Conveyor's own tokens,
  vendors' token formats (Shopify, OpenAI, Slack, GitHub, Amazon LWA, AWS
  access keys) and card numbers (a card brand's prefix, 15 or 16 digits and
  the Luhn check, so product barcodes stay).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "cookie",
        "session",
        "sessionid",
        "signature",
        "sig",
        "pin",
        "cvv",
        "cvc",
        "otp",
        "jwt",
        "dsn",
        "bearer",
    }
)
"""Key words that make the whole key secret wherever they stand in it (`shopify_access_token`)."""
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key")})
"""Two words that are secret together though neither is alone (`api_key`, `privateKey`)."""
_SECRET_JOINED = frozenset(a + b for a, b in _SECRET_PAIRS)
"""The same pairs written as one word (`apikey`, `accesskey`)."""
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host  ->  scheme://user:[redacted]@host
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+(?=@)", re.I), rf"\g<keep>{REDACTED}"),
    # ?access_token=...&sig=...  (query strings and form bodies)
    (
        re.compile(
            r"(?P<keep>[?&;](?:access_?token|refresh_?token|id_?token|token|api_?key|apikey|key|secret"
            r"|client_?secret|password|passwd|pwd|sig|signature|auth)=)[^&#\s\"']+",
            re.I,
        ),
        rf"\g<keep>{REDACTED}",
    ),
    # Authorization: Bearer ..., Basic ...
    (
        re.compile(r"(?P<keep>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I),
        rf"\g<keep>{REDACTED}",
    ),
    # JSON Web Tokens: three base64url segments, the first two starting with '{"'
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Conveyor's own API tokens
    (re.compile(r"\bcvy_[A-Za-z0-9]+_[A-Za-z0-9_-]{8,}"), REDACTED),
    # vendors' token formats
    (
        re.compile(
            r"\b(?:shp(?:at|ca|pa|ss)_[a-fA-F0-9]{16,}|sk-[A-Za-z0-9_-]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}"
            r"|gh[pousr]_[A-Za-z0-9]{20,}|Atz[ar]\|[A-Za-z0-9|_-]{16,}|A(?:KIA|SIA)[A-Z0-9]{16})"
        ),
        REDACTED,
    ),
)
_CARD = re.compile(r"(?<![\d-])(?:3[47]|4|5[1-5]|2[2-7]|6(?:011|5))(?:[ -]?\d){11,15}(?![\d-])")
"""Visa, Mastercard, American Express and Discover prefixes; 15 or 16 digits that pass Luhn count."""


def is_secret_key(key: str) -> bool:
    words = [w.lower() for w in _WORD.findall(key)]
    if any(w in _SECRET_WORDS for w in words) or "".join(words) in _SECRET_JOINED:
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def redact_text(text: str) -> str:
    """The text with every known secret shape in it replaced."""
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return _CARD.sub(_card, text)


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _card(found: re.Match[str]) -> str:
    digits = [int(c) for c in found.group() if c.isdigit()]
    return REDACTED if len(digits) in (15, 16) and _luhn(digits) else found.group()


def _luhn(digits: list[int]) -> bool:
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0
