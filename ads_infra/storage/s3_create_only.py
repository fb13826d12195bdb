"""Create-only writes on S3 servers that may ignore ``If-None-Match: *``.

S3, MinIO and R2 refuse a ``PUT`` carrying ``If-None-Match: *`` when the key
exists (412), which is what makes a create-only write safe against a
concurrent writer. Some S3-compatible servers (s3rver, old MinIO releases)
ignore the header and overwrite. :class:`CreateOnly` finds out which kind of
server it talks to, with a probe object written twice, and then, per
``storage.s3_create_only``:

- ``verify`` (default): a server ignoring the header is refused, at
  ``start()`` or the first create-only write, with a message saying what to do;
- ``emulate``: there, each create-only write is preceded by a HEAD and
  refused if the key exists. Between the HEAD and the PUT another writer can
  create the key, and then both writes succeed and the last one wins: the
  race the header exists to close, documented in docs/storage.md;
- ``trust``: no probe (AWS S3 is known to honour it).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Literal

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError, PreconditionError
from obstore.store import S3Store

from ads_infra.core.errors import StorageError

__all__ = ["PROBE_PREFIX", "CreateOnly"]

PROBE_PREFIX = "ads-create-only-probe-"


class CreateOnly:
    """What a create-only write does on one bucket's server."""

    def __init__(self, policy: str, target: str) -> None:
        self.policy = policy
        self.target = target
        # Whether the server honours If-None-Match: * (None: not checked yet).
        self.honoured: bool | None = True if policy == "trust" else None

    async def check(self, store: S3Store) -> None:
        """Probe the server once (obstore's BaseError if it fails); StorageError
        under ``verify`` when it ignores the header."""
        if self.honoured is None:
            probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
            try:
                await obstore.put_async(store, probe, b"1", mode="create")
                try:
                    await obstore.put_async(store, probe, b"2", mode="create")
                except (AlreadyExistsError, PreconditionError):
                    self.honoured = True
                else:
                    self.honoured = False
            finally:
                with contextlib.suppress(BaseError, FileNotFoundError):
                    await obstore.delete_async(store, probe)
        if self.honoured is False and self.policy == "verify":
            raise StorageError(
                f"the S3 server at {self.target} ignores If-None-Match, so a create-only "
                "write there would silently overwrite an existing object. Use a server that "
                "honours it (AWS S3, MinIO, R2), or set storage.s3_create_only: emulate to "
                "check before each write (two concurrent writers of one name can then both "
                "succeed, the last one winning)"
            )

    async def mode(
        self, store: S3Store, key: str, *, overwrite: bool
    ) -> Literal["create", "overwrite"]:
        """The put mode of a write to ``key``: ``create`` where the server enforces it;
        else, after a HEAD found no object, ``overwrite`` (AlreadyExistsError if one)."""
        if overwrite:
            return "overwrite"
        await self.check(store)
        if self.honoured:
            return "create"
        try:
            await obstore.get_async(store, key, options={"head": True})
        except (NotFoundError, FileNotFoundError):
            return "overwrite"
        raise AlreadyExistsError(f"{key} exists")
