"""A registered job type: its handler, its defaults, and typed ways to enqueue it."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from .backoff import Backoff
from .context import JobContext
from .errors import ConfigurationError
from .job import DEFAULT_OPTIONS, Job, JobOptions
from .limits import Breaker, RateLimit
from .payload import HandlerSignature
from .tenancy import TenantGuard

if TYPE_CHECKING:
    from .app import Conveyor

P = ParamSpec("P")
R = TypeVar("R")


class JobType(Generic[P, R]):
    """What `@app.job(...)` returns. Calling it runs the handler directly (handy in tests)."""

    def __init__(
        self,
        app: Conveyor,
        fn: Callable[..., R] | Callable[..., Awaitable[R]],
        *,
        name: str,
        queue: str,
        priority: int,
        attempts: int,
        backoff: Backoff,
        timeout: float | None,
        rate_limit: RateLimit | None = None,
        group_concurrency: int | None = None,
        breaker: Breaker | None = None,
        tenant_guard: TenantGuard | None = None,
        tenants: bool = True,
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.priority = priority
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.rate_limit = rate_limit
        self.group_concurrency = group_concurrency
        self.breaker = breaker
        self.tenant_guard = tenant_guard
        self.tenants = tenants
        self.signature = HandlerSignature(fn, name)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.continuation: Callable[..., Any] | None = None
        self.continuation_signature: HandlerSignature | None = None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<JobType {self.name!r} queue={self.queue!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def on_children_done(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register the step that runs once every child this job spawned has ended.

        It takes the same payload as the handler (and a `JobContext` first, if
        it wants one); `await ctx.children()` gives the children's results.
        Without it, a parent simply completes when its children end.
        """
        signature = HandlerSignature(fn, f"{self.name} (on_children_done)")
        if [p.name for p in signature.parameters] != [p.name for p in self.signature.parameters]:
            raise ConfigurationError(
                f"on_children_done for {self.name!r} must take the same parameters as the handler"
            )
        self.continuation = fn
        self.continuation_signature = signature
        return fn

    def options(self, **options: Any) -> BoundJob[P, R]:
        """`export.options(priority=2, delay=30).enqueue(store_id=1)`; see `JobOptions`."""
        return BoundJob(self, JobOptions(**options))

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        return await BoundJob(self, DEFAULT_OPTIONS).enqueue(*args, **kwargs)

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """For synchronous producers (a Flask or Django view); never call it from async code."""
        return BoundJob(self, DEFAULT_OPTIONS).enqueue_sync(*args, **kwargs)

    async def enqueue_many(self, payloads: Iterable[Mapping[str, Any]]) -> list[str]:
        return await BoundJob(self, DEFAULT_OPTIONS).enqueue_many(payloads)


class BoundJob(Generic[P, R]):
    """A job type with per-call options fixed; options never mix with the handler's arguments."""

    def __init__(self, job_type: JobType[P, R], options: JobOptions) -> None:
        self.job_type = job_type
        self.job_options = options

    def options(self, **options: Any) -> BoundJob[P, R]:
        return BoundJob(self.job_type, replace(self.job_options, **options))

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        payload = self.job_type.signature.bind(args, kwargs)
        return (await self.job_type.app.submit(self.job_type.name, payload, self.job_options)).job

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        payload = self.job_type.signature.bind(args, kwargs)
        return self.job_type.app.enqueue_sync(self.job_type.name, payload, self.job_options)

    async def enqueue_many(self, payloads: Iterable[Mapping[str, Any]]) -> list[str]:
        return await self.job_type.app.enqueue_many(self.job_type.name, payloads, self.job_options)


class Registrar:
    """The decorator `app.job(...)` returns; its overloads keep the handler's signature typed.

    Handlers taking a `JobContext` first are enqueued without it: the worker supplies it.
    """

    def __init__(self, register: Callable[[Callable[..., Any]], JobType[Any, Any]]) -> None:
        self._register = register

    @overload
    def __call__(self, fn: Callable[Concatenate[JobContext, P], Awaitable[R]]) -> JobType[P, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[JobContext, P], R]) -> JobType[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> JobType[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> JobType[P, R]: ...

    def __call__(self, fn: Callable[..., Any]) -> JobType[Any, Any]:
        return self._register(fn)
