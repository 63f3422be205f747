"""Access packages on the local disk (`DSR_EXPORT_DIR`), written atomically, read back in chunks.

An S3-compatible bucket would be a second class with the same methods (ExportStorage in
services/fulfilment_ports.py): `save` as a multipart upload, `open` as a ranged/streamed GET.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from dsr_gateway.services.fulfilment_ports import StoredFile

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
WRITE_BUFFER = 1024 * 1024
READ_CHUNK = 64 * 1024


class LocalDirectoryStorage:
    def __init__(self, directory: str | Path) -> None:
        self._directory = Path(directory)

    def _path(self, key: str) -> Path:
        if not KEY.match(key) or ".." in key:
            raise ValueError(f"not a storage key: {key!r}")
        return self._directory / key

    async def save(self, key: str, chunks: AsyncIterable[bytes]) -> StoredFile:
        target = self._path(key)
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        size = 0
        handle = await asyncio.to_thread(_open_private, partial)
        try:
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BUFFER:
                    await asyncio.to_thread(handle.write, b"".join(pending))
                    pending, pending_size = [], 0
            if pending:
                await asyncio.to_thread(handle.write, b"".join(pending))
            await asyncio.to_thread(handle.flush)
            await asyncio.to_thread(os.fsync, handle.fileno())
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        handle.close()
        await asyncio.to_thread(os.replace, partial, target)
        return StoredFile(key, size, digest.hexdigest())

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The file's chunks, the file opened now (FileNotFoundError when it is gone): a clean-up that deletes
        it afterwards does not cut a download short."""
        handle = await asyncio.to_thread(self._path(key).open, "rb")
        return _FileChunks(handle)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def stale_keys(self, before: datetime) -> list[str]:
        """Files of ours (named like a key) last written before `before`; none when there is no directory."""
        return await asyncio.to_thread(_stale_keys, self._directory, before.timestamp())


class _FileChunks:
    """The chunks of an open file; it is closed at its end, by `aclose`, or when dropped unread (a download
    whose client went away before the body)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def __aiter__(self) -> _FileChunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = b"" if self._handle.closed else await asyncio.to_thread(self._handle.read, READ_CHUNK)
        if not chunk:
            self._handle.close()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._handle.close()

    def __del__(self) -> None:
        self._handle.close()


def _stale_keys(directory: Path, before: float) -> list[str]:
    try:
        with os.scandir(directory) as listing:
            entries = list(listing)
    except FileNotFoundError:
        return []
    stale = []
    for entry in entries:
        if not KEY.match(entry.name):
            continue
        try:  # a file may go while we look (a partial write renamed, another clean-up)
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < before:
                stale.append(entry.name)
        except FileNotFoundError:
            continue
    return sorted(stale)


def _open_private(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb")
