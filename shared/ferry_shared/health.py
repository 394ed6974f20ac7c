"""The HTTP surface every service shares: ``/healthz``, ``/readyz``, ``/metrics`` and the
API documents (``/openapi.json``, ``/docs``).

Services add their own routers to the app this returns. With an API guard, the metrics
and documents need a token (``ferry_shared.api_auth``); health answers anyone.
"""

from collections.abc import Mapping

from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ferry_shared.api_auth.access import AUTHENTICATED, METRICS, OPEN, declared
from ferry_shared.api_auth.guard import ApiGuard, install_guard
from ferry_shared.api_errors import install_error_handlers
from ferry_shared.readiness import ReadinessCheck


def health_app(service: str, checks: Mapping[str, ReadinessCheck], guard: ApiGuard | None = None) -> FastAPI:
    """A FastAPI app answering liveness, readiness (running ``checks`` at each request; a
    :class:`~ferry_shared.readiness.Readiness` may still grow after this), metrics and its
    API documents; ``guard`` checks the requests of every route but health."""
    app = FastAPI(title=f"Ferry {service}", version="0.1.0", openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    if guard is not None:
        install_guard(app, guard)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[declared(AUTHENTICATED)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[declared(AUTHENTICATED)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"Ferry {service} API")

    @app.get("/healthz", tags=["health"], dependencies=[declared(OPEN)])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["health"], dependencies=[declared(OPEN)])
    def readyz() -> JSONResponse:
        failing = {name: reason for name, check in checks.items() if (reason := check()) is not None}
        body = {"status": "not ready" if failing else "ready", "service": service, "failing": failing}
        return JSONResponse(body, status_code=503 if failing else 200)

    @app.get("/metrics", tags=["health"], dependencies=[declared(METRICS)])
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
