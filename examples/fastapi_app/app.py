"""A host application wired to ads-infra the dependency-injector way.

Run it with ``uvicorn examples.fastapi_app.app:app`` from the repository root
(config from ADS_INFRA_CONFIG or ./config.yml). The container's resources
start in the app's lifespan and stop with it; domain errors map to HTTP
status codes in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ads_infra.containers import create_container
from ads_infra.core.lifecycle import running
from ads_infra.domain import NotFoundError, ValidationError
from ads_infra.errors import InfrastructureError, UpstreamError
from examples.fastapi_app import endpoints
from examples.fastapi_app.containers import AppContainer


def create_app(container: AppContainer | None = None) -> FastAPI:
    """The app around ``container`` (default: built from the configuration file)."""
    if container is None:
        container = cast(AppContainer, create_container(container_cls=AppContainer))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with running(container):
            yield

    app = FastAPI(title="ads-infra example host app", lifespan=lifespan)
    app.state.container = container
    app.include_router(endpoints.router)

    @app.exception_handler(NotFoundError)
    async def not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ValidationError)
    async def invalid(_request: Request, exc: ValidationError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc), "field": exc.field}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(UpstreamError)
    async def bad_gateway(_request: Request, exc: UpstreamError) -> JSONResponse:
        # The upstream answered, but not with something usable (an error, or AI
        # copy that was empty, refused or cut off): nothing was stored.
        return JSONResponse({"detail": str(exc)}, status_code=502)

    @app.exception_handler(InfrastructureError)
    async def unavailable(_request: Request, exc: InfrastructureError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    return app


def __getattr__(name: str) -> Any:
    """``app`` for uvicorn, built on first access so importing this module reads no config."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
