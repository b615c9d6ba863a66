"""Payloads are checked against the handler's signature when they are enqueued.

A missing or mistyped argument is refused by the producer, not discovered by a
worker hours later. The signature becomes a pydantic model: typed arguments
(pydantic models included) are validated, the payload is stored as JSON, and
the worker rebuilds typed arguments from that JSON. Nothing is ever pickled.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pydantic
from pydantic_core import PydanticSerializationError, to_json

from .context import JobContext
from .errors import ConfigurationError, PayloadError


def to_json_text(value: Any, *, what: str, limit: int | None = None) -> str:
    """Serialise a payload or result as JSON, naming what was wrong if it cannot be."""
    try:
        text = to_json(value).decode()
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise PayloadError(f"{what} is not JSON-serialisable: {exc}") from exc
    if limit is not None and len(text) > limit:
        raise PayloadError(f"{what} is {len(text):,} bytes of JSON, over the {limit:,}-byte limit")
    return text


def _error_summary(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class HandlerSignature:
    """The JSON-facing shape of one handler's arguments."""

    def __init__(self, fn: Callable[..., Any], job_name: str) -> None:
        self.job_name = job_name
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:
            raise ConfigurationError(f"cannot read type hints of handler for {job_name!r}: {exc}") from exc
        params = list(inspect.signature(fn).parameters.values())
        self.wants_context = bool(params) and (
            hints.get(params[0].name) is JobContext
            or (params[0].name == "ctx" and params[0].name not in hints)
        )
        if self.wants_context:
            params = params[1:]
        self.parameters = params
        fields: dict[str, Any] = {}
        extra: Literal["allow", "forbid"] = "forbid"
        for p in params:
            if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL):
                raise ConfigurationError(
                    f"handler for {job_name!r}: parameter {p.name!r} cannot be given by name;"
                    " payloads are JSON objects, so use named parameters"
                )
            if p.kind is p.VAR_KEYWORD:
                extra = "allow"
                continue
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), default)
        self._signature = inspect.Signature(params)
        self._names = frozenset(p.name for p in params if p.kind is not p.VAR_KEYWORD)
        self._any_names = extra == "allow"
        self.model = pydantic.create_model(
            f"{job_name}:payload",
            __config__=pydantic.ConfigDict(extra=extra, arbitrary_types_allowed=False),
            **fields,
        )
        self._validator = self.model.__pydantic_validator__
        self._serializer = self.model.__pydantic_serializer__

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Turn a Python call's arguments into a payload mapping."""
        if not args and (self._any_names or kwargs.keys() <= self._names):
            return dict(kwargs)  # what binding gives, without `inspect`'s cost on every enqueue
        try:
            bound = self._signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise PayloadError(f"bad arguments for {self.job_name!r}: {exc}") from exc
        arguments = dict(bound.arguments)
        for p in self.parameters:
            if p.kind is p.VAR_KEYWORD and p.name in arguments:
                arguments.update(arguments.pop(p.name))
        return arguments

    def dump(self, payload: Mapping[str, Any], *, limit: int) -> str:
        """Validate a payload and return the JSON to store."""
        if not isinstance(payload, Mapping):
            raise PayloadError(
                f"payload for {self.job_name!r} must be a JSON object, got {type(payload).__name__}"
            )
        # The model's own validator and serializer: what model_validate and model_dump_json
        # call, without their wrappers, which cost twice the work itself per enqueued job.
        try:
            model = self._validator.validate_python(payload if type(payload) is dict else dict(payload))
        except pydantic.ValidationError as exc:
            raise PayloadError(f"invalid payload for {self.job_name!r}: {_error_summary(exc)}") from None
        try:
            text: str = self._serializer.to_json(model).decode()
        except PydanticSerializationError as exc:
            raise PayloadError(f"payload for {self.job_name!r} is not JSON-serialisable: {exc}") from exc
        if len(text) > limit:
            raise PayloadError(
                f"payload for {self.job_name!r} is {len(text):,} bytes of JSON, over the {limit:,}-byte limit"
            )
        return text

    def load(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Typed keyword arguments for the handler, rebuilt from the stored JSON."""
        try:
            model = self.model.model_validate(dict(payload))
        except pydantic.ValidationError as exc:
            raise PayloadError(
                f"stored payload no longer fits {self.job_name!r}: {_error_summary(exc)}"
            ) from None
        kwargs = {name: getattr(model, name) for name in type(model).model_fields}
        if model.model_extra:
            kwargs.update(model.model_extra)
        return kwargs


def parse_json_object(text: str, *, what: str = "payload") -> dict[str, Any]:
    """For the CLI and HTTP: raw text in, a JSON object out, or one clear error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
