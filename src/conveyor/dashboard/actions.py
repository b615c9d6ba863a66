"""The dashboard's buttons: retry, cancel, pause, resume. Each is a POST form with a CSRF token.

Scopes follow the API: retry and cancel need a write token; pausing a queue
affects every tenant, so it needs an admin token bound to no tenant.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from ..api.tokens import Scope
from .core import Dashboard, Viewer, base
from .session import same_token


def action_routes(dash: Dashboard) -> APIRouter:
    router = APIRouter()
    app, jobs = dash.app, dash.jobs
    SignedIn = Annotated[Viewer, Depends(dash.viewer)]  # noqa: N806 (a type alias)
    CsrfField = Annotated[str, Form()]  # noqa: N806 (a type alias)

    def refused(
        request: Request, viewer: Viewer, csrf: str, scope: Scope, untenanted: bool
    ) -> Response | None:
        if not same_token(viewer.session.csrf, csrf):
            return dash.render(request, "error.html", 403, title="Forbidden", message="Missing CSRF token.")
        token = viewer.caller.token
        if not token.scope.allows(scope) or (untenanted and token.tenant is not None):
            message = f"This needs a {scope} token" + (" bound to no tenant." if untenanted else ".")
            return dash.render(request, "error.html", 403, title="Forbidden", message=message)
        return None

    @router.post("/jobs/{job_id}/retry")
    async def retry(request: Request, job_id: str, viewer: SignedIn, csrf: CsrfField = "") -> Response:
        if (answer := refused(request, viewer, csrf, Scope.WRITE, False)) is not None:
            return answer
        job = await jobs.get(viewer.caller, job_id)
        await app.retry(job.id)
        return RedirectResponse(f"{base(request)}/jobs/{job.id}", status_code=303)

    @router.post("/jobs/{job_id}/cancel")
    async def cancel(request: Request, job_id: str, viewer: SignedIn, csrf: CsrfField = "") -> Response:
        if (answer := refused(request, viewer, csrf, Scope.WRITE, False)) is not None:
            return answer
        job = await jobs.get(viewer.caller, job_id)
        await app.cancel(job.id)
        return RedirectResponse(f"{base(request)}/jobs/{job.id}", status_code=303)

    @router.post("/queues/{queue}/pause")
    async def pause(request: Request, queue: str, viewer: SignedIn, csrf: CsrfField = "") -> Response:
        if (answer := refused(request, viewer, csrf, Scope.ADMIN, True)) is not None:
            return answer
        await app.pause(queue)
        return RedirectResponse(f"{base(request)}/queues", status_code=303)

    @router.post("/queues/{queue}/resume")
    async def resume(request: Request, queue: str, viewer: SignedIn, csrf: CsrfField = "") -> Response:
        if (answer := refused(request, viewer, csrf, Scope.ADMIN, True)) is not None:
            return answer
        await app.resume(queue)
        return RedirectResponse(f"{base(request)}/queues", status_code=303)

    return router
