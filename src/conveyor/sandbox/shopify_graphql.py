"""The Shopify simulator's GraphQL face: cost-based throttling and `productSet`.

Cost follows the published rules (objects 1, connections 2 + `first` x node,
mutations a flat `mutation_cost`); the bucket must hold the requested cost
before a query runs, every answer carries `extensions.cost` with
`throttleStatus`, and an empty bucket answers the `THROTTLED` error with no
`data`. The sandbox's actual cost equals the requested cost, so there is no
refund to model.

`productSet` follows the facts: scalar fields not sent are left alone, a list
field sent (`productOptions` + `variants`, `files`) replaces the old list, and
validation failures come back as `userErrors` in an HTTP 200. Variants are
matched to existing ones by id or by option values, images by URL, so
re-sending the same state keeps ids stable. The `userErrors` codes are the
sandbox's choice (the facts give the shape, not the code list).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .base import iso
from .graphql import Connection, Field, GraphQLSyntaxError, parse, project, requested_cost
from .shopify_store import MAX_OPTIONS, graphql_view, handle_of, is_url, money, parse_gid

if TYPE_CHECKING:
    from .shopify import ShopifySandbox

Body = dict[str, Any]
_SCALARS = {
    "title": "title",
    "descriptionHtml": "body_html",
    "vendor": "vendor",
    "productType": "product_type",
}


class _Abort(Exception):
    """A top-level GraphQL error that stops the whole request (bad variables)."""

    def __init__(self, error: Body) -> None:
        super().__init__(error["message"])
        self.error = error


class ShopifyGraphQL:
    def __init__(self, sandbox: ShopifySandbox) -> None:
        self.sandbox = sandbox
        self.resolvers: dict[str, dict[str, Callable[[Field], Any]]] = {
            "mutation": {"productSet": self.product_set},
            "query": {
                "product": self.product,
                "products": self.products,
                "productVariants": self.product_variants,
            },
        }

    def execute(self, body: Any) -> tuple[int, Body]:
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, {"errors": [{"message": "No query string was present"}]}
        variables = body.get("variables") or {}
        try:
            operation = parse(body["query"], variables if isinstance(variables, dict) else {})
        except GraphQLSyntaxError as e:
            return 200, {"errors": [{"message": str(e), "extensions": {"code": "parseError"}}]}
        root = "Mutation" if operation.kind == "mutation" else "QueryRoot"
        resolvers = self.resolvers[operation.kind]
        for field in operation.fields:
            if field.name not in resolvers:
                message = f"Field '{field.name}' doesn't exist on type '{root}'"
                code = {"code": "undefinedField", "typeName": root, "fieldName": field.name}
                return 200, {"errors": [{"message": message, "extensions": code}]}
        config = self.sandbox.config
        requested = sum(
            config.mutation_cost if operation.kind == "mutation" else requested_cost(f)
            for f in operation.fields
        )
        if requested > config.max_query_cost:
            message = (
                f"Query cost is {requested}, which exceeds the single query max cost limit "
                f"({config.max_query_cost})."
            )
            limit: Body = {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": config.max_query_cost}
            return 200, {
                "errors": [{"message": message, "extensions": limit}],
                "extensions": self.cost(requested),
            }
        if not self.sandbox.graphql_bucket.try_take(requested):
            self.sandbox.counters.violations += 1
            return self.throttled(requested)
        scope = "write_products" if operation.kind == "mutation" else "read_products"
        data: Body = {}
        errors: list[Body] = []
        try:
            for field in operation.fields:
                if scope in config.scopes:
                    data[field.key] = resolvers[field.name](field)
                else:
                    data[field.key] = None
                    errors.append(_access_denied(field, scope))
        except _Abort as abort:
            return 200, {"errors": [abort.error], "extensions": self.cost(requested, requested)}
        out: Body = {"data": data, "extensions": self.cost(requested, requested)}
        if errors:
            out["errors"] = errors
        return 200, out

    def cost(self, requested: int, actual: int | None = None) -> Body:
        bucket = self.sandbox.graphql_bucket
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": bucket.capacity,
                    "currentlyAvailable": round(bucket.available(), 1),
                    "restoreRate": bucket.rate,
                },
            }
        }

    def throttled(self, requested: int) -> tuple[int, Body]:
        self.sandbox.counters.rate_limited += 1
        error = {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
        return self.sandbox.config.throttle_status, {"errors": [error], "extensions": self.cost(requested)}

    # -- resolvers ------------------------------------------------------------------------------

    def product(self, field: Field) -> Any:
        pid = parse_gid(field.args.get("id"), "Product")
        product = self.sandbox.store.products.get(pid) if pid is not None else None
        return project(graphql_view(product), field.selections) if product else None

    def products(self, field: Field) -> Any:
        views = [graphql_view(p) for p in sorted(self.sandbox.store.products.values(), key=lambda p: p["id"])]
        return project(Connection(views).page(field.args), field.selections)

    def product_variants(self, field: Field) -> Any:
        """Variants with their product; `query` understands `sku:` terms joined by OR (exact match)."""
        wanted = _sku_terms(field.args.get("query"))
        views = []
        for product in sorted(self.sandbox.store.products.values(), key=lambda p: p["id"]):
            if wanted is not None and not any(v["sku"] in wanted for v in product["variants"]):
                continue
            view = graphql_view(product)
            views += [
                {**variant, "product": view}
                for variant in view["variants"].items
                if wanted is None or variant["sku"] in wanted
            ]
        return project(Connection(views).page(field.args), field.selections)

    def product_set(self, field: Field) -> Any:
        data = field.args.get("input")
        if not isinstance(data, dict):
            raise _Abort(
                {
                    "message": "Variable $input of type ProductSetInput! was provided invalid value",
                    "extensions": {"code": "INVALID_VARIABLE"},
                }
            )
        errors, product = self._validate(data)
        view = None
        if not errors:
            product = self._apply(data, product)
            view = graphql_view(product)
        if field.args.get("synchronous") is False and view is not None:
            operation = {"id": f"gid://shopify/ProductSetOperation/{product['id']}", "status": "COMPLETE"}
            payload: Body = {
                "product": None,
                "productSetOperation": {**operation, "product": view},
                "userErrors": [],
            }
        else:
            payload = {"product": view, "productSetOperation": None, "userErrors": errors}
        return project(payload, field.selections)

    def _validate(self, data: Body) -> tuple[list[Body], Any]:
        store, config = self.sandbox.store, self.sandbox.config
        product: Any = None
        if "id" in data:
            product = store.products.get(parse_gid(data["id"], "Product") or -1)
            if product is None:
                return [_user_error(["id"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")], None
        errors = []
        if (product is None or "title" in data) and not (
            isinstance(data.get("title"), str) and data["title"].strip()
        ):
            errors.append(_user_error(["title"], "Title can't be blank", "BLANK"))
        options, variants = data.get("productOptions"), data.get("variants")
        if (options is None) != (variants is None):
            errors.append(
                _user_error(["variants"], "productOptions and variants go together", "INVALID_INPUT")
            )
        elif not (isinstance(options, list) and isinstance(variants, list) and variants):
            if variants is not None:
                errors.append(_user_error(["variants"], "At least one variant is required", "INVALID_INPUT"))
        elif len(variants) > config.max_variants:
            message = f"The number of variants exceeds the limit of {config.max_variants}"
            errors.append(_user_error(["variants"], message, "VARIANTS_OVER_LIMIT"))
        else:
            errors += _variant_errors(options, variants)
        files = data.get("files")
        if files is not None:
            if not isinstance(files, list) or len(files) > config.max_images:
                errors.append(_user_error(["files"], f"At most {config.max_images} files", "INVALID_INPUT"))
            else:
                for n, item in enumerate(files):
                    if not (isinstance(item, dict) and is_url(item.get("originalSource"))):
                        errors.append(
                            _user_error(
                                ["files", str(n), "originalSource"], "Image URL is invalid", "INVALID_INPUT"
                            )
                        )
        return errors, product

    def _apply(self, data: Body, product: Any) -> Body:
        store = self.sandbox.store
        now = iso(self.sandbox.clock.now())
        creating = product is None
        if product is None:
            product = store.new_product(now)
            store.products[product["id"]] = product
            product["handle"] = handle_of(data["title"])
            if "variants" not in data:
                store.default_variant(product)
        for key, column in _SCALARS.items():
            if key in data:
                product[column] = data[key] or ""
        if isinstance(data.get("handle"), str):
            product["handle"] = data["handle"]
        if data.get("status") in ("ACTIVE", "DRAFT", "ARCHIVED"):
            product["status"] = data["status"].lower()
        if isinstance(data.get("tags"), list):
            product["tags"] = ", ".join(str(t) for t in data["tags"])
        if "variants" in data:
            self._replace_variants(product, data["productOptions"], data["variants"])
        if creating:
            store.created.update({v["sku"] for v in product["variants"] if v["sku"]})
        if "files" in data:
            product["images"] = [
                store.image(product, f["originalSource"], n, f.get("alt"))
                for n, f in enumerate(data["files"], 1)
            ]
        store.wrote(product, now)
        return product  # type: ignore[no-any-return]

    def _replace_variants(self, product: Body, options: list[Body], variants: list[Body]) -> None:
        store = self.sandbox.store
        names = [o["name"] for o in options]
        product["options"] = [
            store.option(product, o["name"], n, [v["name"] for v in o["values"]])
            for n, o in enumerate(options, 1)
        ]
        old = {tuple(v[f"option{n}"] for n in range(1, len(names) + 1)): v["id"] for v in product["variants"]}
        product["variants"] = []
        for item in variants:
            chosen = {ov["optionName"]: ov["name"] for ov in item["optionValues"]}
            values = [chosen[name] for name in names]
            sku = item.get("sku") or (item.get("inventoryItem") or {}).get("sku") or ""
            fields = {"price": money(item.get("price", "0")), "sku": sku, "barcode": item.get("barcode")}
            if item.get("compareAtPrice") is not None:
                fields["compare_at_price"] = money(item["compareAtPrice"])
            vid = parse_gid(item.get("id"), "ProductVariant") or old.get(tuple(values))
            product["variants"].append(store.variant(product, values, id=vid, **fields))


def _sku_terms(query: Any) -> set[str] | None:
    """The SKUs of a search like `sku:A OR sku:"B 2"`; None when there is no query."""
    if query is None:
        return None
    terms = [term.strip() for term in str(query).split(" OR ")]
    if not all(term.startswith("sku:") for term in terms):
        raise _Abort({"message": f"the sandbox searches variants by sku only, not {query!r}"})
    return {term.removeprefix("sku:").strip('"') for term in terms}


def _user_error(path: list[str], message: str, code: str) -> Body:
    return {"field": ["input", *path], "message": message, "code": code}


def _access_denied(field: Field, scope: str) -> Body:
    return {
        "message": f"Access denied for {field.name} field. Required access: `{scope}` access scope.",
        "path": [field.key],
        "extensions": {"code": "ACCESS_DENIED", "requiredAccess": f"`{scope}` access scope."},
    }


def _variant_errors(options: list[Any], variants: list[Any]) -> list[Body]:
    errors = []
    if len(options) > MAX_OPTIONS:
        errors.append(_user_error(["productOptions"], f"At most {MAX_OPTIONS} options", "INVALID_INPUT"))
    allowed: dict[str, set[Any]] = {}
    for n, option in enumerate(options):
        values = option.get("values") if isinstance(option, dict) else None
        if not (
            isinstance(option, dict)
            and isinstance(option.get("name"), str)
            and isinstance(values, list)
            and values
        ):
            errors.append(
                _user_error(["productOptions", str(n)], "Option needs a name and values", "INVALID_INPUT")
            )
            continue
        allowed[option["name"]] = {v.get("name") for v in values if isinstance(v, dict)}
    seen: set[tuple[str, ...]] = set()
    for n, variant in enumerate(variants):
        where = ["variants", str(n)]
        pairs = variant.get("optionValues") if isinstance(variant, dict) else None
        if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
            errors.append(_user_error(where, "Variant needs optionValues", "INVALID_VARIANT"))
            continue
        chosen = {p.get("optionName"): p.get("name") for p in pairs}
        if set(chosen) != set(allowed):
            errors.append(
                _user_error(
                    [*where, "optionValues"],
                    "Option values must name every option once",
                    "OPTION_DOES_NOT_EXIST",
                )
            )
        elif any(value not in allowed[name] for name, value in chosen.items()):
            errors.append(
                _user_error(
                    [*where, "optionValues"], "Option value does not exist", "OPTION_VALUE_DOES_NOT_EXIST"
                )
            )
        elif (key := tuple(str(chosen[name]) for name in allowed)) in seen:
            errors.append(
                _user_error(
                    where, f"The variant '{' / '.join(key)}' already exists.", "DUPLICATED_OPTION_VALUE"
                )
            )
        else:
            seen.add(key)
        if money(variant.get("price", "0")) is None:
            errors.append(
                _user_error([*where, "price"], "Price must be greater than or equal to 0", "INVALID_VARIANT")
            )
    return errors
