"""A :class:`~ads_infra.domain.ports.CreativeStore` over the file storage manager."""

from __future__ import annotations

from ads_infra.storage import FileStorageManager

__all__ = ["StorageCreativeStore"]


class StorageCreativeStore:
    """A :class:`~ads_infra.domain.ports.CreativeStore` over the file storage manager."""

    def __init__(self, storage: FileStorageManager) -> None:
        self.storage = storage

    async def save_creative(self, content: bytes, filename: str) -> str:
        return await self.storage.save_file(content, filename, metadata={"kind": "creative"})

    async def delete_creative(self, key: str) -> None:
        await self.storage.delete_file(key)
