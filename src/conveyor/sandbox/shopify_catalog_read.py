"""The Shopify simulator's custom collections: what a catalog import reads besides products.

`GET /admin/api/{v}/custom_collections.json` answers
`{"custom_collections": [...]}` in the REST resource shape (`id`, `handle`,
`title`, `body_html`, `sort_order`, `published_at`, `updated_at`,
`admin_graphql_api_id`), paged like every REST list: `limit` up to 250 and an
opaque `page_info` cursor in a `link` header, absent when one page holds
everything (`../shared/marketplace-apis.md` section 2). The route goes through
the simulator's gate, so auth, the leaky bucket and faults apply as for
products. Collections live on the app's state, beside the simulator's own
product store, and `collections_of` hands them to tests and seeders.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response

from .base import Reply, json_response
from .shopify_store import gid, handle_of

if TYPE_CHECKING:
    from .shopify import ShopifySandbox

MAX_LIMIT = 250


@dataclass
class CollectionStore:
    collections: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_id: int = 9_000_000_000

    def add(
        self, title: str, *, body_html: str = "", now: str = "2026-01-01T00:00:00+00:00"
    ) -> dict[str, Any]:
        self.last_id += 1
        collection = {
            "id": self.last_id,
            "handle": handle_of(title),
            "title": title,
            "body_html": body_html,
            "sort_order": "manual",
            "template_suffix": None,
            "published_scope": "web",
            "published_at": now,
            "updated_at": now,
            "admin_graphql_api_id": gid("Collection", self.last_id),
        }
        self.collections[self.last_id] = collection
        return collection


def collections_of(sandbox: ShopifySandbox) -> CollectionStore:
    """The collection store `add_catalog_read_routes` attached to this simulator."""
    store: CollectionStore = sandbox.app.state.custom_collections
    return store


def add_catalog_read_routes(sandbox: ShopifySandbox, app: FastAPI) -> None:
    """Attach a collection store and the `custom_collections.json` list route to the simulator's app."""
    app.state.custom_collections = CollectionStore()

    async def list_custom_collections(request: Request, limit: int = 50, page_info: str = "") -> Response:
        rows = [c for _, c in sorted(collections_of(sandbox).collections.items())]
        return paged(request, "custom_collections", rows, limit, page_info)

    app.add_api_route(
        "/admin/api/{version}/custom_collections.json", list_custom_collections, methods=["GET"]
    )


def paged(request: Request, key: str, rows: list[dict[str, Any]], limit: int, page_info: str) -> Response:
    """One page of `rows` under `key`, with Shopify's `link` header when there is more than one page."""
    limit = max(1, min(limit, MAX_LIMIT))
    start = _offset(page_info) if page_info else 0
    base = str(request.url.replace(query=""))
    links = []
    if start + limit < len(rows):
        links.append(f'<{base}?limit={limit}&page_info={_cursor(start + limit)}>; rel="next"')
    if start > 0:
        links.append(f'<{base}?limit={limit}&page_info={_cursor(max(0, start - limit))}>; rel="previous"')
    headers = {"link": ", ".join(links)} if links else {}
    return json_response(200, {key: rows[start : start + limit]}, headers)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"collections:{offset}".encode()).decode().rstrip("=")


def _offset(page_info: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(page_info + "=" * (-len(page_info) % 4)).decode()
        return max(0, int(raw.removeprefix("collections:")))
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise Reply(json_response(400, {"errors": {"page_info": "Invalid value."}})) from e
