"""Bulk import of consents from an earlier system: one transaction, rejected rows reported, IMPORT method.

Valid rows are recorded in chunks (multi-row inserts) inside ONE transaction: a fatal error anywhere
(the database, a strict-mode rejection) rolls back the whole file, so nothing is half-imported.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from dsr_gateway.domain.consent import ConsentRecord, Scope, apply
from dsr_gateway.domain.consent_import import ImportRow, RowParser, RowRejected
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

CHUNK_ROWS = 5000
ANALYZE_AFTER_ROWS = 10_000
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
            iterator = iter(rows)
            for batch in _batches(iterator, chunk_rows):
                valid: list[ImportRow] = []
                for line, row in batch:
                    report.rows += 1
                    try:
                        valid.append(parse(line, row))
                    except RowRejected as exc:
                        report.rejected.append(Rejection(line, str(exc)))
                        if strict:
                            raise ImportAborted(f"line {line}: {exc}; nothing was imported (strict)") from exc
                subjects.update(r.external_id for r in valid)
                if not dry_run and valid:
                    await _record(uow, valid, now)
                report.imported += len(valid)
                if progress:
                    progress(report.rows, report.imported)
            report.subjects = len(subjects)
            if not dry_run:
                await uow.commit()
        if not dry_run and report.imported >= ANALYZE_AFTER_ROWS:
            # Plans for the consent check are poor until the statistics know the imported rows.
            async with self._uow() as uow:
                await uow.consents.analyze()
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


async def _record(uow: UnitOfWork, rows: list[ImportRow], now: datetime) -> None:
    """Subjects, events and projection of one chunk; the fold continues from the stored state."""
    ids = await uow.consents.ensure_subjects([r.external_id for r in rows], now)
    pairs = [(ids[r.external_id], r.event) for r in rows]
    current = await uow.consents.states(set(ids.values()), {e.scope.purpose for _, e in pairs})
    state: dict[tuple[int, Scope], ConsentRecord] = {
        (subject, record.scope): record for subject, records in current.items() for record in records
    }
    changed: dict[tuple[int, Scope], ConsentRecord] = {}
    for event in await uow.consents.append(pairs):
        key = (event.subject_id, event.scope)
        after = apply(state.get(key), event)
        if after is not state.get(key):
            state[key] = changed[key] = after
    await uow.consents.save_states([(subject, record) for (subject, _), record in changed.items()])
