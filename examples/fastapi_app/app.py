"""A host application on ads-infra's container (a subclass of it, ``AppContainer``).

Run it with ``uvicorn examples.fastapi_app.app:app`` from the repository root
(config from ADS_INFRA_CONFIG or ./config.yml; ``kill -HUP`` reloads it). The
container's resources start in the app's lifespan and stop with it; errors map to HTTP status codes
in one place (:func:`ads_infra.errors.http_status`): bad input is a 4xx, 503
only for an outage, and a 5xx never shows database or upstream text.

The caller is named by the ``X-User-Id`` header: a stand-in for real
authentication (a verified token's subject) that only a demo may trust.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ads_infra.containers import create_container
from ads_infra.core.lifecycle import running
from ads_infra.domain import DomainError, ValidationError
from ads_infra.errors import InfrastructureError, http_status, public_detail
from examples.fastapi_app import endpoints
from examples.fastapi_app.containers import AppContainer

logger = logging.getLogger(__name__)


def create_app(container: AppContainer | None = None) -> FastAPI:
    """The app around ``container`` (default: built from the configuration file)."""
    if container is None:
        container = cast(AppContainer, create_container(container_cls=AppContainer))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with running(container):
            # SIGHUP reloads the configuration file (docs/reload.md); removed at shutdown.
            container.reloader().install_sighup()
            yield

    app = FastAPI(title="ads-infra example host app", lifespan=lifespan)
    app.state.container = container
    app.include_router(endpoints.router)

    @app.exception_handler(DomainError)
    @app.exception_handler(InfrastructureError)
    async def mapped(_request: Request, exc: Exception) -> JSONResponse:
        # Bad input is a 4xx naming the field; 503 only for what a retry may fix.
        status = http_status(exc)
        body: dict[str, Any] = {"detail": public_detail(exc)}
        if isinstance(exc, ValidationError):
            body["field"] = exc.field
        if status >= 500:
            logger.error("%s %s failed: %s", _request.method, _request.url.path, exc)
        return JSONResponse(body, status_code=status)

    return app


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``app`` for uvicorn: built once, on first access (importing this module reads no config)."""
    global _app
    if name == "app":
        if _app is None:
            # Run by uvicorn: the app's own log lines (a reload's) go to stderr;
            # uvicorn configures only its own loggers.
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
            _app = create_app()
        return _app
    raise AttributeError(name)
