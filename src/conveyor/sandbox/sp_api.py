"""What every Selling Partner API simulator answers alike: request ids, error bodies, throttling.

Amazon's APIs share one envelope: `x-amzn-RequestId` on every answer,
`{"errors": [{"code", "message", "details"}]}` bodies, a 429 without a rate
header, and `x-amzn-RateLimit-Limit` only on 2xx, 400 and 404 answers. The
Listings Items and the Orders/Inventory simulators both speak it.
"""

from __future__ import annotations

import itertools
from typing import Any

from fastapi import Response

from .base import Gate, Sandbox, json_response


def error_entry(code: str, message: str, details: str = "") -> dict[str, str]:
    return {"code": code, "message": message, "details": details}


def error_body(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [error_entry(code, message, details)]}


class SpApiSandbox(Sandbox):
    """A `Sandbox` answering in the Selling Partner API's envelope."""

    _ids: itertools.count[int]
    """Set by the subclass: numbers request ids (and whatever else it numbers)."""

    def decorate(self, response: Response, gate: Gate) -> None:
        response.headers["x-amzn-RequestId"] = f"sandbox-{next(self._ids):08d}"
        status = response.status_code
        if 200 <= status < 300 or status in (400, 404):
            super().decorate(response, gate)

    def denied(self, details: str) -> Response:
        body = error_body("Unauthorized", "Access to requested resource is denied.", details)
        return json_response(403, body, {"x-amzn-ErrorType": "AccessDeniedException"})

    def throttled(self, endpoint: str) -> Response:
        self.counters.rate_limited += 1
        return json_response(
            429, error_body("QuotaExceeded", "The frequency of requests was greater than allowed.")
        )

    def error(self, status: int, message: str) -> Response:
        code = {400: "InvalidInput", 403: "Unauthorized", 404: "NotFound"}.get(status, "InternalFailure")
        if status >= 500:
            message = "We encountered an internal error. Please try again."
        return json_response(status, error_body(code, message))
