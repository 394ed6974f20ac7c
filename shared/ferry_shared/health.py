"""The HTTP surface every service shares: ``/healthz``, ``/readyz`` and ``/metrics``.

Services add their own routers to the app this returns.
"""

from collections.abc import Mapping

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ferry_shared.api_errors import install_error_handlers
from ferry_shared.readiness import ReadinessCheck


def health_app(service: str, checks: Mapping[str, ReadinessCheck]) -> FastAPI:
    """A FastAPI app answering liveness, readiness (running ``checks`` at each request; a
    :class:`~ferry_shared.readiness.Readiness` may still grow after this) and metrics."""
    app = FastAPI(title=f"Ferry {service}", version="0.1.0")
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        failing = {name: reason for name, check in checks.items() if (reason := check()) is not None}
        body = {"status": "not ready" if failing else "ready", "service": service, "failing": failing}
        return JSONResponse(body, status_code=503 if failing else 200)

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
