"""One instance of a stand-in HTTP service that registers itself in etcd: a test subprocess.

``python -m tests.discovery_instance NAME PORT ETCD_URL SERVICE TTL`` serves,
on 127.0.0.1:PORT, an OpenAI-compatible ``POST /v1/chat/completions`` whose
copy starts with NAME, and ``POST /hooks/...`` answering ``{"instance": NAME}``;
it registers ``SERVICE=http://127.0.0.1:PORT`` through the library's etcd
discovery (``discovery.register``, a lease of TTL seconds kept alive), prints
``ready`` and runs until killed. SIGTERM deregisters; SIGKILL leaves the lease
to expire, which is what the tests exercise.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid

from aiohttp import web

from ads_infra.core.settings import DiscoveryConfig
from ads_infra.discovery.etcd import EtcdDiscovery


def _app(name: str) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"{name}: {prompt}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    async def hook(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.json_response({"instance": name})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/hooks/{path:.*}", hook)
    return app


async def main(name: str, port: int, etcd_url: str, service: str, ttl: int) -> None:
    runner = web.AppRunner(_app(name), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    discovery = EtcdDiscovery(
        DiscoveryConfig(
            backend="etcd",  # type: ignore[arg-type]  (coerced like a config file's value)
            etcd_url=etcd_url,
            register=[f"{service}=http://127.0.0.1:{port}"],
            ttl=ttl,
        )
    )
    await discovery.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await discovery.close()
        await runner.cleanup()


if __name__ == "__main__":
    name, port, etcd_url, service, ttl = sys.argv[1:6]
    asyncio.run(main(name, int(port), etcd_url, service, int(ttl)))
