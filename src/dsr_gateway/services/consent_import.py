"""Bulk import of consents from an earlier system: one transaction, rejected rows reported, IMPORT method.

Valid rows are recorded in chunks (COPY on PostgreSQL, multi-row inserts elsewhere) inside ONE transaction,
each chunk written while the next is checked: a fatal error anywhere (the database, a strict-mode
rejection) rolls back the whole file, so nothing is half-imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from dsr_gateway.domain.consent_import import ImportRow, RowParser, RowRejected
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

CHUNK_ROWS = 5000
ANALYZE_AFTER_ROWS = 10_000
YIELD_EVERY_ROWS = 250  # rows checked between turns of the chunk being recorded
Progress = Callable[[int, int], None]  # rows read, rows imported


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    imported: int = 0
    subjects: int = 0
    rejected: list[Rejection] = field(default_factory=list)


class ImportAborted(DomainError):
    """Strict mode met a rejected row: nothing was imported."""


class ConsentImportService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def run(
        self,
        rows: Iterable[tuple[int, Mapping[str, str | None]]],
        *,
        dry_run: bool = False,
        strict: bool = False,
        progress: Progress | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ) -> ImportReport:
        """Import (line number, CSV row) pairs; with `dry_run` check every row and record nothing."""
        report = ImportReport(dry_run=dry_run)
        now = self._clock()
        subjects: set[str] = set()
        async with self._uow() as uow:
            purposes = {p.key: p for p in await uow.purposes.list_all()}
            notices: dict[int, Collection[str] | None] = {}
            for version in await _notice_versions(uow):
                notices[version] = await uow.consents.notice_purposes(version)
            parse = RowParser(purposes, notices.get, now)
            writer = _ChunkWriter(uow, now, progress)
            try:
                for batch in _batches(iter(rows), chunk_rows):
                    valid: list[ImportRow] = []
                    for line, row in batch:
                        report.rows += 1
                        if report.rows % YIELD_EVERY_ROWS == 0:
                            await writer.let_run()
                        try:
                            valid.append(parse(line, row))
                        except RowRejected as exc:
                            report.rejected.append(Rejection(line, str(exc)))
                            if strict:
                                raise ImportAborted(
                                    f"line {line}: {exc}; nothing was imported (strict)"
                                ) from exc
                    subjects.update(r.external_id for r in valid)
                    report.imported += len(valid)
                    if not dry_run and valid:
                        await writer.write(valid, report.rows, report.imported)
                    elif progress:
                        progress(report.rows, report.imported)
                await writer.wait()
            finally:
                await writer.settle()
            report.subjects = len(subjects)
            if not dry_run:
                await uow.commit()
        if not dry_run and report.imported >= ANALYZE_AFTER_ROWS:
            # Plans for the consent check are poor until the statistics know the imported rows.
            async with self._uow() as uow:
                await uow.consent_import.analyze()
                await uow.commit()
        return report


class _ChunkWriter:
    """Records a chunk while the service checks the next one: PostgreSQL writes as Python parses.

    One chunk at a time is in flight (the unit of work has one connection); `write` first waits for the
    one before. Progress is reported once a chunk is recorded.
    """

    def __init__(self, uow: UnitOfWork, now: datetime, progress: Progress | None) -> None:
        self._uow = uow
        self._now = now
        self._progress = progress
        self._pending: asyncio.Task[None] | None = None

    async def write(self, rows: list[ImportRow], read: int, imported: int) -> None:
        await self.wait()
        self._pending = asyncio.create_task(self._record(rows, read, imported))
        await asyncio.sleep(0)  # let it send its first statement

    async def _record(self, rows: list[ImportRow], read: int, imported: int) -> None:
        await self._uow.consent_import.record(rows, self._now)
        if self._progress:
            self._progress(read, imported)

    async def let_run(self) -> None:
        """Give a chunk in flight its turn (it waits on the database most of the time)."""
        if self._pending is not None:
            await asyncio.sleep(0)

    async def wait(self) -> None:
        """Until the chunk in flight is recorded; its error, if any, is raised here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def settle(self) -> None:
        """After a failure elsewhere: let the chunk in flight end (its own error no longer matters),
        so the rollback finds the connection free."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await asyncio.gather(pending, return_exceptions=True)


async def _notice_versions(uow: UnitOfWork) -> list[int]:
    latest = await uow.notices.latest_version()
    return list(range(1, latest + 1)) if latest else []


def _batches(
    iterator: Iterator[tuple[int, Mapping[str, str | None]]], size: int
) -> Iterator[list[tuple[int, Mapping[str, str | None]]]]:
    while batch := list(islice(iterator, size)):
        yield batch
