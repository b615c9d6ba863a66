"""The small subset of GraphQL the Shopify simulator needs: one operation, fields, arguments, aliases.

Enough to read a connector's `productSet` mutation or a product query, work
out which root fields it calls and what it selects, and answer with exactly
the selected fields. Fragments, directives and multiple operations are
refused with a GraphQL error rather than half-supported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\.\.\.|\$?[A-Za-z_]\w*|-?\d+(?:\.\d+)?|[{}()\[\]:!=,@]|\S')
_COMMENT = re.compile(r"#[^\n]*")


class GraphQLSyntaxError(ValueError):
    pass


@dataclass
class Field:
    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    selections: list[Field] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class Operation:
    kind: str
    """`query` or `mutation`."""
    fields: list[Field]


class Connection:
    """A list exposed as a Relay connection; `first`/`last` are applied when projected."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def page(self, args: dict[str, Any]) -> dict[str, Any]:
        first, last = args.get("first"), args.get("last")
        items = self.items[:first] if isinstance(first, int) else self.items
        items = items[-last:] if isinstance(last, int) and last > 0 else items
        return {
            "nodes": items,
            "edges": [{"node": item, "cursor": str(item.get("id", ""))} for item in items],
            "pageInfo": {"hasNextPage": len(items) < len(self.items), "hasPreviousPage": False},
        }


def parse(query: str, variables: dict[str, Any]) -> Operation:
    tokens = _TOKEN.findall(_COMMENT.sub("", query))
    parser = _Parser(tokens, variables)
    operation = parser.operation()
    if parser.pos != len(tokens):
        raise GraphQLSyntaxError("only one operation per document is supported")
    return operation


def project(value: Any, selections: list[Field]) -> Any:
    """The part of `value` a selection set asks for, with aliases, like a GraphQL server answers."""
    if isinstance(value, list):
        return [project(item, selections) for item in value]
    if isinstance(value, Connection):
        raise TypeError("project a connection through its field, which carries the page arguments")
    if not isinstance(value, dict) or not selections:
        return value
    out: dict[str, Any] = {}
    for selected in selections:
        item = value.get(selected.name)
        if isinstance(item, Connection):
            item = item.page(selected.args)
        out[selected.key] = project(item, selected.selections) if selected.selections else item
    return out


def requested_cost(selected: Field) -> int:
    """Shopify's published rule: an object costs 1, a connection 2 + `first` x its node's cost, scalars 0."""
    if not selected.selections:
        return 0
    size = selected.args.get("first", selected.args.get("last"))
    if isinstance(size, int):
        return 2 + size * sum(_node_cost(child) for child in selected.selections)
    return 1 + sum(requested_cost(child) for child in selected.selections)


def _node_cost(child: Field) -> int:
    if child.name == "nodes":
        return requested_cost(child)
    if child.name == "edges":
        return sum(requested_cost(node) for node in child.selections if node.name == "node")
    return 0


class _Parser:
    def __init__(self, tokens: list[str], variables: dict[str, Any]) -> None:
        self.tokens = tokens
        self.variables = variables
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if not token or (expected is not None and token != expected):
            raise GraphQLSyntaxError(f"expected {expected or 'a token'}, found {token or 'end of document'}")
        self.pos += 1
        return token

    def operation(self) -> Operation:
        kind = "query"
        if self.peek() in ("query", "mutation", "subscription"):
            kind = self.take()
            if self.peek() not in ("{", "("):
                self.take()
            if self.peek() == "(":
                self.skip_balanced("(", ")")
        if kind == "subscription":
            raise GraphQLSyntaxError("subscriptions are not supported")
        return Operation(kind, self.selection_set())

    def skip_balanced(self, opening: str, closing: str) -> None:
        depth = 0
        while True:
            token = self.take()
            depth += (token == opening) - (token == closing)
            if depth == 0:
                return

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields: list[Field] = []
        while self.peek() != "}":
            if self.peek() in ("...", "@"):
                raise GraphQLSyntaxError("fragments and directives are not supported")
            fields.append(self.field())
        self.take("}")
        return fields

    def field(self) -> Field:
        name = self.name()
        alias = None
        if self.peek() == ":":
            self.take(":")
            alias, name = name, self.name()
        args: dict[str, Any] = {}
        if self.peek() == "(":
            self.take("(")
            while self.peek() != ")":
                arg = self.name()
                self.take(":")
                args[arg] = self.value()
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
        selections = self.selection_set() if self.peek() == "{" else []
        return Field(name, alias, args, selections)

    def name(self) -> str:
        token = self.take()
        if not re.fullmatch(r"[A-Za-z_]\w*", token):
            raise GraphQLSyntaxError(f"expected a name, found {token}")
        return token

    def value(self) -> Any:
        token = self.take()
        if token.startswith("$"):
            return self.variables.get(token[1:])
        if token.startswith('"'):
            return json.loads(token)
        if token == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return items
        if token == "{":
            obj = {}
            while self.peek() != "}":
                key = self.name()
                self.take(":")
                obj[key] = self.value()
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            return obj
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        if re.fullmatch(r"-?\d+\.\d+", token):
            return float(token)
        return {"true": True, "false": False, "null": None}.get(token, token)
