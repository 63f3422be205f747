"""Access packages: build one for a request, record it, hand out its signed link, serve its download."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dsr_gateway.domain.errors import NotFound
from dsr_gateway.services.export_links import ExpiredExportLink, sign_export_token, verify_export_token
from dsr_gateway.services.fulfilment_ports import (
    AccessPackageWriter,
    Connector,
    ExportRecord,
    ExportStorage,
    ExportUnitOfWork,
    SubjectIdentifiers,
    SystemDescription,
)
from dsr_gateway.services.ports import Clock

DEFAULT_LINK_LIFETIME = timedelta(days=7)
# A file no kept package names is deleted once it is this old: a package written but never recorded (a
# crash between the two), or a partial write; younger ones may still be being recorded.
ORPHAN_GRACE = timedelta(days=1)
CLEANUP_BATCH = 500
# What a package's file is called (`<export id>.zip`, the id a uuid4 hex; `.partial` while written): the
# clean-up deletes nothing else from the directory.
PACKAGE_FILE = re.compile(r"^[0-9a-f]{32}\.zip(\.partial)?$")
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExportLink:
    export_id: str
    token: str
    url: str
    expires_at: datetime
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ExportCleanup:
    expired: int  # packages whose file was deleted after their link expired
    orphans: int  # files that no kept package names


@dataclass(frozen=True, slots=True)
class Download:
    filename: str
    size: int
    sha256: str
    download_count: int
    chunks: AsyncIterator[bytes]


class ExportService:
    def __init__(
        self,
        uow: Callable[[], ExportUnitOfWork],
        writer: AccessPackageWriter,
        storage: ExportStorage,
        clock: Clock,
        link_key: bytes,
        public_url: str,
        link_lifetime: timedelta = DEFAULT_LINK_LIFETIME,
    ) -> None:
        self._uow = uow
        self._writer = writer
        self._storage = storage
        self._clock = clock
        self._link_key = link_key
        self._public_url = public_url.rstrip("/")
        self._link_lifetime = link_lifetime

    async def create_package(
        self,
        request_id: str,
        subject: SubjectIdentifiers,
        sources: Sequence[tuple[SystemDescription, Connector]],
    ) -> ExportLink:
        """Gather from every source into one stored zip, record it, and return its signed link.

        Called by the request worker in the access step. Running it again makes a new package (and link);
        the worker records the link in the step's result so that a retried step does not repeat it.
        """
        export_id = uuid.uuid4().hex
        stored = await self._writer.write(export_id, request_id, subject, sources)
        now = self._clock()
        record = ExportRecord(
            export_id, request_id, stored.key, stored.size, stored.sha256, now, now + self._link_lifetime
        )
        async with self._uow() as uow:
            await uow.exports.add(record)
            await uow.commit()
        return self.link_for(record)

    async def record(self, export_id: str) -> ExportRecord | None:
        async with self._uow() as uow:
            return await uow.exports.get(export_id)

    async def records(self, export_ids: Collection[str]) -> dict[str, ExportRecord]:
        """Many records in one statement (the exportPackage DataLoader)."""
        async with self._uow() as uow:
            return await uow.exports.many(export_ids)

    def link_for(self, record: ExportRecord) -> ExportLink:
        token = sign_export_token(self._link_key, record.id, record.expires_at)
        return ExportLink(
            record.id,
            token,
            f"{self._public_url}/exports/{token}",
            record.expires_at,
            record.size,
            record.sha256,
        )

    async def open_download(self, token: str) -> Download:
        """Check the link, count the download, and stream the file; the typed errors say what is wrong."""
        now = self._clock()
        export_id = verify_export_token(self._link_key, token, now)
        async with self._uow() as uow:
            record = await uow.exports.get(export_id)
            if record is None:
                raise NotFound("export", export_id)
            if now >= record.expires_at or record.deleted_at is not None:
                raise ExpiredExportLink(record.expires_at)
            try:
                # Opened before the download is counted: the clean-up deleting it now does not cut it short.
                chunks = await self._storage.open(record.path)
            except FileNotFoundError as exc:
                raise ExpiredExportLink(record.expires_at) from exc
            count = await uow.exports.count_download(export_id)
            await uow.commit()
        return Download(f"access-package-{export_id}.zip", record.size, record.sha256, count, chunks)

    async def delete_expired(self) -> ExportCleanup:
        """Delete what is no longer to be handed out (storage limitation, GDPR Art. 5(1)(e)): the file of
        every package whose link has expired (its row stays, marked deleted, as the record of delivery), and
        package files older than ORPHAN_GRACE that no kept package names. The file goes first: a crash in
        between leaves a row the next run marks (deleting a missing file is a no-op). A file that cannot be
        deleted is logged and left for the next run; the others go on."""
        now = self._clock()
        expired = 0
        while True:
            async with self._uow() as uow:
                records = await uow.exports.expired(now, CLEANUP_BATCH)
            # Files are deleted with no transaction or pooled connection held (file I/O can be slow).
            deleted = [r for r in records if await self._deleted(r.path)]
            if deleted:
                async with self._uow() as uow:
                    # Counted as marked here: a clean-up running at the same time counts the others.
                    expired += await uow.exports.mark_deleted([r.id for r in deleted], now)
                    await uow.commit()
            # A short batch was the last; a batch with a failure would come back the same.
            if len(records) < CLEANUP_BATCH or len(deleted) < len(records):
                break
        orphans = 0
        stale = [k for k in await self._storage.stale_keys(now - ORPHAN_GRACE) if PACKAGE_FILE.match(k)]
        for start in range(0, len(stale), CLEANUP_BATCH):
            keys = stale[start : start + CLEANUP_BATCH]
            async with self._uow() as uow:
                kept = await uow.exports.kept_paths(keys)
            for key in keys:
                if key not in kept and await self._deleted(key):
                    orphans += 1
        return ExportCleanup(expired, orphans)

    async def _deleted(self, key: str) -> bool:
        try:
            await self._storage.delete(key)
        except (OSError, ValueError):
            logger.exception(
                "could not delete the access package file %s; the next clean-up tries again", key
            )
            return False
        return True
