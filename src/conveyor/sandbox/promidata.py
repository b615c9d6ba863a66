"""Promidata supplier feed simulator: Import.txt, one JSON file per product family, images, CAT.csv.

Reproduces `../shared/marketplace-apis.md` section 6 (facts from one
third-party integration, so field names are "as observed"): static files
under a profile folder, `Import/Import.txt` with one `<file URL>|<hash>` line
per product family plus a `CAT.csv` line, `<supplier>/<family SKU>.json`
files whose `ChildProducts` are the variants (one self-child with the
parent's SKU when `variants_per_family` is 1, otherwise colour/size children),
multilingual `ProductDetails`, region-keyed price tiers and image URLs that
this server also answers (under `/Images/`).

Choices where the facts say [not found] (configurable in `PromidataConfig`):
- the Import.txt hash is the hex digest of the file's bytes with
  `hash_algorithm` (MD5 by default, what S3 reports as the ETag of a
  single-part upload);
- being S3 hosting, errors answer S3's XML body (`<Error><Code>…`), and a
  throttle is S3's `503 SlowDown`; no rate limit applies unless injected;
- a listed file may be missing (404) or truncated (invalid JSON), and a
  referenced picture missing (404), when a test plants it with `break_file`
  or `break_image`;
- there is no authentication: the profile id in the path is the only secret.

A test changes families between syncs with `change_families` (new name,
prices and hash; optionally a new first picture) and reads
`counters.by_endpoint` (see `FILE_ENDPOINT`, `IMAGE_ENDPOINT`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request, Response

from conveyor import Clock

from .base import Gate, Reply, Sandbox
from .faults import FaultConfig
from .promidata_data import PromidataCatalog

PROFILE = "7c1e4b2a-5d3f-4e8a-9b6c-0f2d1a3e5c47"
"""The profile id in the simulated feed URL (the real one is an unguessable GUID per customer)."""

INDEX_ENDPOINT = f"GET /Profiles/Live/{PROFILE}/Import/Import.txt"
FILE_ENDPOINT = f"GET /Profiles/Live/{PROFILE}/{{supplier}}/{{filename}}"
IMAGE_ENDPOINT = "GET /Images/{supplier}/{filename}"


@dataclass(frozen=True)
class PromidataConfig:
    seed: int = 0
    suppliers: tuple[str, ...] = ("A23",)
    """Supplier codes (`^[A-Z]\\d+$`); each is a folder of product files."""
    families: int = 20
    """Product families per supplier."""
    variants_per_family: int = 3
    images_per_variant: int = 2
    languages: tuple[str, ...] = ("de", "en", "fr", "nl")
    regions: tuple[str, ...] = ("GERMANY", "BENELUX", "FRANCE")
    image_bytes: int = 512
    hash_algorithm: str = "md5"
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        for code in self.suppliers:
            if not (code[:1].isalpha() and code[:1].isupper() and code[1:].isdigit()):
                raise ValueError(f"supplier code {code!r} must look like A23 (a capital letter, then digits)")
        if self.families < 0 or self.variants_per_family < 1 or self.images_per_variant < 0:
            raise ValueError(
                "families >= 0, variants_per_family >= 1 and images_per_variant >= 0 are required"
            )
        if not self.languages:
            raise ValueError("at least one language is required")
        hashlib.new(self.hash_algorithm)  # raises ValueError for an unknown algorithm


class PromidataSandbox(Sandbox):
    name = "promidata"
    api_root = f"/Profiles/Live/{PROFILE}"

    def __init__(self, config: PromidataConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or PromidataConfig()
        c = self.config
        self.catalog = PromidataCatalog(
            c.seed, c.suppliers, c.families, c.variants_per_family, c.images_per_variant,
            c.languages, c.regions, c.image_bytes,
        )  # fmt: skip
        super().__init__(c.faults, clock)

    # -- what tests use ------------------------------------------------------------------------

    def family_skus(self) -> list[str]:
        return [ref.sku for ref in self.catalog.refs()]

    def change_families(self, count: int, *, images: bool = True, start: int = 0) -> list[str]:
        """Give `count` families (from position `start` in the index) new content and hashes."""
        skus = self.family_skus()[start : start + count]
        if len(skus) < count:
            raise ValueError(f"the feed has only {len(self.family_skus())} families")
        self.catalog.change(skus, images=images)
        return skus

    def break_file(self, sku: str, how: Literal["missing", "truncated"]) -> None:
        """Keep `sku` listed in Import.txt but answer its file with 404, or with half of its JSON."""
        (self.catalog.missing if how == "missing" else self.catalog.truncated).add(sku)

    def break_image(self, name: str, *, broken: bool = True) -> None:
        """Answer 404 for a referenced picture (`broken=False` serves it again)."""
        if broken:
            self.catalog.missing_images.add(name)
        else:
            self.catalog.missing_images.discard(name)

    def image_names(self) -> list[str]:
        """Every picture the feed currently references, as `<supplier>/<file name>`."""
        return [
            f"{ref.supplier}/{name}" for ref in self.catalog.refs() for name in self.catalog.image_names(ref)
        ]

    def image_bytes(self, supplier: str, name: str) -> bytes | None:
        return self.catalog.image(supplier, name)

    @property
    def image_requests(self) -> int:
        return self.counters.by_endpoint[IMAGE_ENDPOINT]

    @property
    def file_requests(self) -> int:
        return self.counters.by_endpoint[FILE_ENDPOINT]

    # -- routes --------------------------------------------------------------------------------

    def routes(self, app: FastAPI) -> None:
        root = self.api_root

        @app.get(f"{root}/Import/Import.txt")
        async def index(request: Request) -> Response:
            return Response(self._index(_origin(request)), media_type="text/plain; charset=utf-8")

        @app.get(f"{root}/CAT.csv")
        @app.get(f"{root}/Import/CAT.csv")
        async def categories() -> Response:
            return Response(self.catalog.categories_csv(), media_type="text/csv; charset=utf-8")

        @app.get(f"{root}/{{supplier}}/{{filename}}")
        async def product_file(request: Request, supplier: str, filename: str) -> Response:
            ref = self.catalog.ref(supplier, filename.removesuffix(".json"))
            if ref is None or not filename.endswith(".json") or ref.sku in self.catalog.missing:
                raise Reply(self.error(404, "The specified key does not exist."))
            body = self.catalog.product_file(ref, _origin(request) + "/Images")
            if ref.sku in self.catalog.truncated:
                body = body[: len(body) // 2]
            return Response(body, media_type="application/json")

        @app.get("/Images/{supplier}/{filename}")
        async def image(supplier: str, filename: str) -> Response:
            body = self.catalog.image(supplier, filename)
            if body is None:
                raise Reply(self.error(404, "The specified key does not exist."))
            return Response(body, media_type="image/jpeg")

    def _index(self, origin: str) -> bytes:
        lines = []
        for ref in self.catalog.refs():
            body = self.catalog.product_file(ref, origin + "/Images")
            digest = hashlib.new(self.config.hash_algorithm, body).hexdigest()
            lines.append(f"{origin}{self.api_root}/{ref.supplier}/{ref.sku}.json|{digest}")
        categories = hashlib.new(self.config.hash_algorithm, self.catalog.categories_csv()).hexdigest()
        lines.append(f"{origin}{self.api_root}/CAT.csv|{categories}")
        return ("\r\n".join(lines) + "\r\n").encode()

    # -- the Sandbox contract ---------------------------------------------------------------------

    def admit(self, request: Request, endpoint: str) -> Gate:
        return Gate()

    def error(self, status: int, message: str) -> Response:
        code = _S3_CODES.get(status, "InternalError")
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        )
        return Response(body, status_code=status, media_type="application/xml")

    def throttled(self, endpoint: str) -> Response:
        self.counters.rate_limited += 1
        return self.error(503, "Please reduce your request rate.")


_S3_CODES = {
    400: "InvalidRequest",
    403: "AccessDenied",
    404: "NoSuchKey",
    500: "InternalError",
    502: "InternalError",
    503: "SlowDown",
    504: "RequestTimeout",
}


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")
