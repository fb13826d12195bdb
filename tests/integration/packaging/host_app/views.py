"""A FastAPI endpoint that takes ads-infra's providers through ``Provide[...]``."""

from typing import Annotated, Any

from dependency_injector.wiring import Provide, inject
from fastapi import Depends, FastAPI

from ads_infra.cache import CacheManager
from ads_infra.external_services import AIProviderService

app = FastAPI()


@app.get("/copy/{product}")
@inject
async def copy(
    product: str,
    ai: Annotated[AIProviderService, Depends(Provide["services.ai"])],
    cache: Annotated[CacheManager, Depends(Provide["cache.manager"])],
) -> dict[str, Any]:
    cached = await cache.get(f"copy:{product}")
    if cached is not None:
        return {**cached, "cached": True}
    response = await ai.generate_content(None, f"Write an ad for {product}")
    body = {"content": response.content, "provider": response.provider}
    await cache.set(f"copy:{product}", body)
    return {**body, "cached": False}
