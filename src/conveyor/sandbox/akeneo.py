"""Akeneo PIM REST API simulator: OAuth token endpoint, product and category reads with pagination.

Reproduces `../shared/marketplace-apis.md` section 5: `POST /api/oauth/v1/token`
(Basic client credentials + password grant, 3600 s tokens, refresh tokens);
Bearer auth with 401 `Authentication is required`; `GET /api/rest/v1/products`
with offset (`pagination_type=page`, `with_count`) and `search_after`
pagination, both via `_links.next.href`; `limit` above 100 refused with 422;
`GET /api/rest/v1/categories` (offset only); the per-instance request limit
answered with 429 + `Retry-After` + `{"code": 429, "message": ...}`; every error
body as `{"code": <status>, "message": "..."}`.

Assumptions where the facts are silent (all in `AkeneoConfig`):
- wrong client or user credentials at the token endpoint answer 422 with
  `{"code": 422, "message": "No user found for the given username and password"}`
  (the documents only say 4xx);
- the `search_after` cursor is the last identifier of the page, base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response

from conveyor import Clock

from .base import Gate, Reply, Sandbox, json_response
from .faults import FaultConfig
from .limits import FixedWindow

TOKEN_PATH = "/api/oauth/v1/token"
MAX_LIMIT = 100
DEFAULT_LIMIT = 10


@dataclass(frozen=True)
class AkeneoConfig:
    client_id: str = "sandbox_client"
    secret: str = "sandbox-secret"
    username: str = "sandbox_user"
    password: str = "sandbox-password"
    token_ttl: float = 3600.0
    requests_per_second: int = 100
    retry_after: int = 15
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass
class AkeneoStore:
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Products in the standard format, by identifier."""
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Categories (`code`, `parent`, `labels`) by code."""

    def add_product(
        self, identifier: str, *, name: str, price: str, currency: str = "EUR", **extra: Any
    ) -> dict[str, Any]:
        """A product with `name` and `price` values, as a catalog would hold it."""
        values = {
            "name": [{"locale": None, "scope": None, "data": name}],
            "price": [{"locale": None, "scope": None, "data": [{"amount": price, "currency": currency}]}],
        }
        product = {
            "identifier": identifier,
            "enabled": True,
            "family": None,
            "categories": [],
            "groups": [],
            "parent": None,
            "values": values,
            "associations": {},
            "quantified_associations": {},
            "created": "2026-01-01T00:00:00+00:00",
            "updated": "2026-01-01T00:00:00+00:00",
            **extra,
        }
        self.products[identifier] = product
        return product

    def add_category(self, code: str, label: str, parent: str | None = None) -> dict[str, Any]:
        category = {"code": code, "parent": parent, "labels": {"en_US": label}}
        self.categories[code] = category
        return category


class AkeneoSandbox(Sandbox):
    name = "akeneo"
    exempt = frozenset({f"POST {TOKEN_PATH}"})

    def __init__(self, config: AkeneoConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or AkeneoConfig()
        self.store = AkeneoStore()
        self.tokens: dict[str, float] = {}
        """Access token -> expiry (clock time)."""
        self.refresh_tokens: set[str] = set()
        super().__init__(self.config.faults, clock)
        self.window = FixedWindow(self.config.requests_per_second, 1.0, self.clock)

    # -- gate -----------------------------------------------------------------------------------

    def admit(self, request: Request, endpoint: str) -> Gate:
        if endpoint == f"POST {TOKEN_PATH}":
            return Gate()
        if not self.window.try_take():
            self.counters.violations += 1
            return Gate(self.throttled(endpoint))
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, -math.inf) <= self.clock.now():
            return Gate(self.error(401, "Authentication is required"))
        return Gate()

    def throttled(self, endpoint: str) -> Response:
        self.counters.rate_limited += 1
        body = {"code": 429, "message": "You have exceeded the limit of API requests per second."}
        return json_response(429, body, {"Retry-After": str(self.config.retry_after)})

    def error(self, status: int, message: str) -> Response:
        return json_response(status, {"code": status, "message": message})

    # -- routes ---------------------------------------------------------------------------------

    def routes(self, app: FastAPI) -> None:
        app.add_api_route(TOKEN_PATH, self.token, methods=["POST"])
        app.add_api_route("/api/rest/v1/products", self.list_products, methods=["GET"])
        app.add_api_route("/api/rest/v1/products/{code}", self.get_product, methods=["GET"])
        app.add_api_route("/api/rest/v1/categories", self.list_categories, methods=["GET"])
        app.add_api_route("/api/rest/v1/categories/{code}", self.get_category, methods=["GET"])

    async def token(self, request: Request) -> Response:
        c = self.config
        expected = base64.b64encode(f"{c.client_id}:{c.secret}".encode()).decode()
        body = await self.read_json(request)
        if not isinstance(body, dict):
            raise Reply(self.error(400, "Invalid json message received"))
        grant = body.get("grant_type")
        if request.headers.get("authorization") != f"Basic {expected}":
            message = 'Parameter "client_id" is missing or does not match any client, or secret is invalid'
            raise Reply(self.error(422, message))
        if grant == "password":
            if (body.get("username"), body.get("password")) != (c.username, c.password):
                raise Reply(self.error(422, "No user found for the given username and password"))
        elif grant == "refresh_token":
            if body.get("refresh_token") not in self.refresh_tokens:
                raise Reply(self.error(422, "Refresh token is invalid or has expired"))
        else:
            raise Reply(self.error(422, 'Parameter "grant_type" is missing, empty or invalid'))
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.tokens[access] = self.clock.now() + c.token_ttl
        self.refresh_tokens.add(refresh)
        answer = {
            "access_token": access,
            "expires_in": int(c.token_ttl),
            "token_type": "bearer",
            "scope": None,
            "refresh_token": refresh,
        }
        return json_response(200, answer)

    async def list_products(
        self,
        request: Request,
        limit: int = DEFAULT_LIMIT,
        page: int = 1,
        pagination_type: str = "page",
        search_after: str = "",
        with_count: bool = False,
    ) -> Response:
        self._check_limit(limit)
        rows = [self._product_view(request, p) for _, p in sorted(self.store.products.items())]
        if pagination_type == "search_after":
            if with_count:
                raise Reply(self.error(422, "Parameter `with_count` is not supported with search_after."))
            return self._search_after_page(request, rows, limit, search_after)
        if pagination_type != "page":
            message = 'Pagination type does not exist. Expected "page" or "search_after".'
            raise Reply(self.error(422, message))
        return self._offset_page(request, rows, limit, page, with_count)

    async def get_product(self, request: Request, code: str) -> Response:
        if code not in self.store.products:
            raise Reply(
                self.error(
                    404, f'Product "{code}" does not exist or you do not have permission to access it.'
                )
            )
        return json_response(200, self._product_view(request, self.store.products[code]))

    async def list_categories(
        self, request: Request, limit: int = DEFAULT_LIMIT, page: int = 1, with_count: bool = False
    ) -> Response:
        self._check_limit(limit)
        rows = [
            {**c, "_links": {"self": {"href": self._href(request, f"/api/rest/v1/categories/{code}")}}}
            for code, c in sorted(self.store.categories.items())
        ]
        return self._offset_page(request, rows, limit, page, with_count)

    async def get_category(self, code: str) -> Response:
        if code not in self.store.categories:
            raise Reply(self.error(404, f"Category '{code}' does not exist."))
        return json_response(200, self.store.categories[code])

    # -- pagination -----------------------------------------------------------------------------

    def _check_limit(self, limit: int) -> None:
        if limit > MAX_LIMIT:
            raise Reply(self.error(422, f"You cannot request more than {MAX_LIMIT} items."))
        if limit < 1:
            raise Reply(self.error(422, "Parameter `limit` must be greater than 0."))

    def _offset_page(
        self, request: Request, rows: list[dict[str, Any]], limit: int, page: int, with_count: bool
    ) -> Response:
        if page < 1:
            raise Reply(self.error(422, "Parameter `page` must be greater than 0."))
        start = (page - 1) * limit
        links = {
            "self": self._link(request, page=page, limit=limit),
            "first": self._link(request, page=1, limit=limit),
        }
        if page > 1:
            links["previous"] = self._link(request, page=page - 1, limit=limit)
        if start + limit < len(rows):
            links["next"] = self._link(request, page=page + 1, limit=limit)
        body: dict[str, Any] = {"_links": links, "current_page": page}
        if with_count:
            body["items_count"] = len(rows)
        body["_embedded"] = {"items": rows[start : start + limit]}
        return json_response(200, body)

    def _search_after_page(
        self, request: Request, rows: list[dict[str, Any]], limit: int, cursor: str
    ) -> Response:
        after = _decode(cursor) if cursor else None
        if cursor and after is None:
            raise Reply(self.error(422, "Parameter `search_after` is invalid."))
        page = [r for r in rows if after is None or r["identifier"] > after][:limit]
        base = {"pagination_type": "search_after", "limit": limit}
        links = {
            "self": self._link(request, **base, **({"search_after": cursor} if cursor else {})),
            "first": self._link(request, **base),
        }
        if page and page[-1]["identifier"] != rows[-1]["identifier"]:
            links["next"] = self._link(request, **base, search_after=_encode(page[-1]["identifier"]))
        return json_response(200, {"_links": links, "_embedded": {"items": page}})

    def _href(self, request: Request, path: str) -> str:
        return str(request.base_url).rstrip("/") + path

    def _link(self, request: Request, **query: Any) -> dict[str, str]:
        return {"href": f"{self._href(request, request.url.path)}?{urlencode(query)}"}

    def _product_view(self, request: Request, product: dict[str, Any]) -> dict[str, Any]:
        href = self._href(request, f"/api/rest/v1/products/{product['identifier']}")
        return {"_links": {"self": {"href": href}}, **product}


def _encode(identifier: str) -> str:
    return base64.urlsafe_b64encode(identifier.encode()).decode()


def _decode(cursor: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
