"""The baseline of ``ads-infra bench fastapi``: a minimal FastAPI app on a raw asyncpg pool.

What a small service without ads-infra looks like: one pool opened in the
lifespan, and ``GET /ads/{ad_id}`` reading the ad from PostgreSQL on every
request (the caller named by ``X-User-Id``, as in the example app). The
bench starts it with uvicorn, the DSN in ADS_BENCH_MINIMAL_DSN.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Header, HTTPException, Request

POOL = int(os.environ.get("ADS_BENCH_MINIMAL_POOL", "5"))
SELECT_AD = (
    "SELECT id, user_id, campaign_id, group_id, name, ad_type, status, headline, description, "
    "final_url, creative_key, metadata, created_at, updated_at "
    "FROM ads WHERE id = $1 AND user_id = $2"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["ADS_BENCH_MINIMAL_DSN"], min_size=POOL, max_size=POOL
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/ads/{ad_id}")
async def get_ad(
    ad_id: int, request: Request, user_id: Annotated[int, Header(alias="X-User-Id")]
) -> dict[str, Any]:
    row = await request.app.state.pool.fetchrow(SELECT_AD, ad_id, user_id)
    if row is None:
        raise HTTPException(404, "ad not found")
    return dict(row)
