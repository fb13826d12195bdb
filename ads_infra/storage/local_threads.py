"""Local storage's worker threads: one hop per operation, and writes that finish.

Every operation of :mod:`.local` is one blocking function of
:mod:`.local_files` run here in one thread hop, the cost of
``asyncio.to_thread``. The pool is the strategy's own, for two reasons: a
write is handed over as a ``concurrent.futures.Future``, which stays
reachable when the awaiting task is cancelled, so that the write can be
awaited to its end and undone (a cancelled create leaves nothing behind,
like :func:`~ads_infra.storage.base.complete_or_undo`, without the extra
task and loop turns that function costs for any awaitable); and storage's
fsyncs neither queue behind nor hold up other users of the loop's default
executor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["WorkerThreads"]

T = TypeVar("T")


async def _finished(future: Future[T]) -> None:
    """Wait until ``future`` is done, whatever cancellations arrive meanwhile."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([asyncio.wrap_future(future)])


class WorkerThreads:
    """A thread pool started on first use and shut down by :meth:`close` (and
    started again by a later use), or the ``executor`` given, used as it is."""

    def __init__(self, name: str, executor: Executor | None = None) -> None:
        self._name = name
        self._given = executor
        self._pool: ThreadPoolExecutor | None = None

    def _submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        if self._given is not None:
            return self._given.submit(fn, *args)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(thread_name_prefix=self._name)
        return self._pool.submit(fn, *args)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread. Cancelling the caller abandons it if it has
        not started; for work that must not be abandoned midway, use :meth:`complete`."""
        return await asyncio.wrap_future(self._submit(fn, *args))

    async def complete(
        self, fn: Callable[..., T], *args: object, undo: Callable[[T], object] | None = None
    ) -> T:
        """``fn(*args)`` in a worker thread, awaited to its end even if the caller is
        cancelled meanwhile; then ``undo(result)`` (blocking, run here too) removes
        what it did if it succeeded, and the CancelledError is re-raised.

        A job still queued when the caller is cancelled never runs.
        """
        future = self._submit(fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            await _finished(future)
            if undo is not None and not future.cancelled() and future.exception() is None:
                # The caller is owed its CancelledError, not the undo's error: if the
                # undo fails, what was written stays, as it would have without it.
                with contextlib.suppress(Exception):
                    await _finished(self._submit(undo, future.result()))
            raise

    def close(self) -> None:
        """Let running jobs finish in the background and stop the threads after them."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
