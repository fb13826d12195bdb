"""The host app's own tests, on ads-infra's pytest plugin, with two providers overridden."""

from typing import Any

import httpx
from views import app

from ads_infra.cache import CacheManager
from ads_infra.external_services import AIResponse
from ads_infra.testing import override_providers


class CannedAI:
    calls = 0

    async def generate_content(self, provider: Any, prompt: str, *args: Any, **kw: Any) -> Any:
        CannedAI.calls += 1
        return AIResponse(content=f"canned: {prompt}", model="none", provider="canned")


async def get(path: str) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
        response = await client.get(path)
        response.raise_for_status()
        return dict(response.json())


async def test_the_container_is_the_hosts_and_serves_from_the_offline_provider(
    ads_container: Any,
) -> None:
    from containers import Container

    assert ads_container.declarative_parent is Container
    first = await get("/copy/shoes")
    assert first["provider"] == "offline" and not first["cached"]
    assert (await get("/copy/shoes"))["cached"]


async def test_two_providers_overridden(ads_container: Any) -> None:
    own_cache = CacheManager()
    with override_providers(ads_container, {"services.ai": CannedAI(), "cache.manager": own_cache}):
        body = await get("/copy/boots")
        assert body == {"content": "canned: Write an ad for boots", "provider": "canned",
                        "cached": False}  # fmt: skip
        assert await own_cache.get("copy:boots") is not None
    assert CannedAI.calls == 1
    assert (await get("/copy/boots"))["provider"] == "offline"  # the originals are back
