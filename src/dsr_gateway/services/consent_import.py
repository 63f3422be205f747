"""Bulk import of consents from an earlier system: one transaction, rejected rows reported, IMPORT method.

Valid rows are recorded in chunks (COPY on PostgreSQL, multi-row inserts elsewhere) inside ONE transaction,
on PostgreSQL each chunk written while the next ones are sealed and checked: a fatal error anywhere (the
database, a strict-mode rejection) rolls back the whole file, so nothing is half-imported. Afterwards the
planner's statistics are refreshed for the tables the import outdated (domain rule
`outdated_statistics`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

from dsr_gateway.domain.consent_import import ImportRow, RowParser, RowRejected, outdated_statistics
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

CHUNK_ROWS = 5000
YIELD_EVERY_ROWS = 250  # rows checked between turns of the chunk being written
Progress = Callable[[int, int], None]  # rows read, rows valid (recorded, or being written)


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
            # A chunk may still be being written when `record` returns: the unit of work's commit writes
            # the rest, and leaving it without a commit (an error, a strict rejection) rolls it all back.
            importer = uow.consent_import
            for batch in _batches(iter(rows), chunk_rows):
                valid: list[ImportRow] = []
                for line, row in batch:
                    report.rows += 1
                    if report.rows % YIELD_EVERY_ROWS == 0:
                        await asyncio.sleep(0)  # a chunk being written sends its next buffer
                    try:
                        valid.append(parse(line, row))
                    except RowRejected as exc:
                        report.rejected.append(Rejection(line, str(exc)))
                        if strict:
                            raise ImportAborted(f"line {line}: {exc}; nothing was imported (strict)") from exc
                subjects.update(r.external_id for r in valid)
                report.imported += len(valid)
                if not dry_run and valid:
                    await importer.record(valid, now)
                if progress:
                    progress(report.rows, report.imported)
            report.subjects = len(subjects)
            if not dry_run:
                await uow.commit()
        if not dry_run:
            outdated = outdated_statistics(importer.growth())
            if outdated:
                # Plans for the consent check are poor until the statistics know the imported rows.
                async with self._uow() as uow:
                    await uow.consent_import.analyze(outdated)
                    await uow.commit()
        return report


async def _notice_versions(uow: UnitOfWork) -> list[int]:
    latest = await uow.notices.latest_version()
    return list(range(1, latest + 1)) if latest else []


def _batches(
    iterator: Iterator[tuple[int, Mapping[str, str | None]]], size: int
) -> Iterator[list[tuple[int, Mapping[str, str | None]]]]:
    while batch := list(islice(iterator, size)):
        yield batch
