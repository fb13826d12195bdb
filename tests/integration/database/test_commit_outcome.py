"""A COMMIT whose reply is lost: the unit is not run again (it may have been applied)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from ads_infra.config import DatabaseConfig
from ads_infra.database import DatabaseManager, is_transient_error
from ads_infra.errors import CommitOutcomeUnknownError, DatabaseError

pytestmark = pytest.mark.integration


class CommitReplyEater:
    """A loopback TCP proxy to PostgreSQL that, once armed, forwards the next
    COMMIT and then cuts the connection before the server's reply gets back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.armed = False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.target)
        dropping = asyncio.Event()

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if self.armed and b"COMMIT" in data:
                    self.armed = False
                    dropping.set()  # before forwarding: no byte of the reply gets back
                    server_w.write(data)
                    await server_w.drain()
                    await asyncio.sleep(0.3)  # the server commits meanwhile
                    return
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            # Ends when the server closes, or with the first reply after COMMIT,
            # which is dropped: the connection is then cut with the reply unsent.
            while (data := await server_r.read(65536)) and not dropping.is_set():
                client_w.write(data)
                await client_w.drain()

        async def copy_until_either_side_closes() -> None:
            sides = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
            await asyncio.wait(sides, return_when=asyncio.FIRST_COMPLETED)
            for side in sides:
                side.cancel()

        try:
            await copy_until_either_side_closes()
        except OSError:
            pass
        finally:
            for writer in (client_w, server_w):
                writer.transport.abort()


@pytest.fixture
async def proxied(postgres_url: str) -> AsyncIterator[tuple[DatabaseManager, CommitReplyEater]]:
    url = make_url(postgres_url)
    eater = CommitReplyEater(url.host or "127.0.0.1", url.port or 5432)
    port = await eater.start()
    manager = DatabaseManager(
        DatabaseConfig(
            url=url.set(port=port).render_as_string(hide_password=False),
            retry_delay=0.01,
            retry_max_delay=0.05,
            pool_pre_ping=False,
        )
    )
    async with manager.get_session() as session:
        await session.execute(text("CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT)"))
    yield manager, eater
    await manager.close()
    await eater.close()


async def test_a_lost_commit_reply_is_not_retried(
    proxied: tuple[DatabaseManager, CommitReplyEater],
) -> None:
    db, eater = proxied
    calls = 0

    async def unit(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await session.execute(text("INSERT INTO notes (body) VALUES ('only once')"))

    eater.armed = True
    with pytest.raises(CommitOutcomeUnknownError, match="may or may not have been applied") as info:
        await db.run(unit)
    assert calls == 1 and db.retries == 0
    assert isinstance(info.value, DatabaseError) and not is_transient_error(info.value)
    async with db.get_session() as session:  # the server did commit it, once
        count = (await session.execute(text("SELECT count(*) FROM notes"))).scalar_one()
    assert count == 1


async def test_an_idempotent_unit_is_retried_after_a_lost_commit_reply(
    proxied: tuple[DatabaseManager, CommitReplyEater],
) -> None:
    db, eater = proxied
    calls = 0

    async def upsert(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await session.execute(
            text(
                "INSERT INTO notes (id, body) VALUES (7, 'same') "
                "ON CONFLICT (id) DO UPDATE SET body = excluded.body"
            )
        )

    eater.armed = True
    await db.run(upsert, idempotent=True)  # twice is the same as once: retried
    assert calls == 2 and db.retries == 1
    async with db.get_session() as session:
        rows = (await session.execute(text("SELECT id, body FROM notes"))).all()
    assert [tuple(row) for row in rows] == [(7, "same")]
