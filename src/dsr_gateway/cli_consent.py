"""`dsr-gateway import-consents FILE.csv [--dry-run] [--strict]`: the file, the progress, the report.

Exit status: 0 every row imported (or would be, with --dry-run); 3 some rows rejected, the others
imported; 1 nothing imported (a fatal error, or a rejected row with --strict); 2 the file or its
header cannot be used.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.migrate import upgrade
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.consent_import import header_problems
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.services.consent_import import ConsentImportService, ImportReport

PROGRESS_EVERY_SECONDS = 2.0
MAX_REPORTED = 1000


async def import_consents(database_url: str, file: str, dry_run: bool, strict: bool) -> int:
    path = Path(file)
    if not path.is_file():  # noqa: ASYNC240 - a command line tool, one file at start
        print(f"error: no file {file}", file=sys.stderr)
        return 2
    # A plain file read between awaits: this is a command, not a server, so nothing else waits on it.
    with path.open(newline="", encoding="utf-8-sig") as handle:  # noqa: ASYNC230
        reader = csv.reader(handle)
        header = next(reader, None)
        problems = header_problems(header)
        if problems:
            print(f"error: {file}: " + "; ".join(problems), file=sys.stderr)
            return 2
        engine = make_engine(database_url)
        started = time.monotonic()
        last = [started]

        def progress(rows: int, imported: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_SECONDS:
                last[0] = now
                rate = rows / max(now - started, 1e-9)
                print(f"... {rows:,} rows read, {imported:,} valid ({rate:,.0f} rows/s)", file=sys.stderr)

        try:
            await upgrade(engine)
            factory = make_session_factory(engine)
            service = ConsentImportService(lambda: SqlUnitOfWork(factory), lambda: datetime.now(UTC))
            report = await service.run(
                _rows(reader, header or []), dry_run=dry_run, strict=strict, progress=progress
            )
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        except Exception as exc:  # a database or file error: the transaction was rolled back
            print(f"error: {type(exc).__name__}: {exc}\nNothing was imported.", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
    _print_report(report, time.monotonic() - started)
    return 3 if report.rejected else 0


def _rows(reader: Any, names: list[str]) -> Iterator[tuple[int, Mapping[str, str | None]]]:
    """Rows as csv.DictReader gives them (extra cells under None, missing ones None, blank lines
    skipped), without its per-row overhead."""
    width = len(names)
    for cells in reader:
        if not cells:
            continue
        row: dict[Any, Any] = dict(zip(names, cells, strict=False))
        if len(cells) > width:
            row[None] = cells[width:]
        elif len(cells) < width:
            row.update(dict.fromkeys(names[len(cells) :]))
        # The line where the record ends (a quoted cell may span lines).
        yield reader.line_num, row


def _print_report(report: ImportReport, seconds: float) -> None:
    verb = "would be imported" if report.dry_run else "imported"
    rate = report.rows / max(seconds, 1e-9)
    print(
        f"{report.imported:,} of {report.rows:,} rows {verb} for {report.subjects:,} subjects "
        f"in {seconds:.1f} s ({rate:,.0f} rows/s); {len(report.rejected):,} rejected."
    )
    for rejection in report.rejected[:MAX_REPORTED]:
        print(f"line {rejection.line}: {rejection.reason}", file=sys.stderr)
    if len(report.rejected) > MAX_REPORTED:
        print(f"... and {len(report.rejected) - MAX_REPORTED:,} more rejected rows", file=sys.stderr)
