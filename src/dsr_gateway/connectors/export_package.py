"""The access package: one zip, streamed from the connectors to storage, whatever its size.

Members: `<system>/<table>.json` (an array of objects) and `<system>/<table>.csv` per table that holds rows
of the subject, then `manifest.json` (systems, data categories, purposes, recipients, retention, and the
files with their row counts). Rows flow batch by batch: the JSON member is written while the same rows are
spooled to a temporary file as JSON lines, from which the CSV member is written next (its header is every
column seen). Memory stays bounded by one batch plus the zip window.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any
from uuid import UUID

from stream_zip import ZIP_64, async_stream_zip

from dsr_gateway.services.fulfilment_ports import (
    Connector,
    ExportStorage,
    RecordBatch,
    StoredFile,
    SubjectIdentifiers,
    SystemDescription,
)

FORMAT = "dsr-gateway access package v1"
FILE_MODE = 0o600
COMPRESSION_LEVEL = 6  # zlib's default: level 9 costs about twice the CPU for a few percent


@dataclass
class _TableFile:
    system: str
    table: str
    name: str
    rows: int = 0
    columns: dict[str, None] = field(default_factory=dict)


class ZipPackageWriter:
    def __init__(self, storage: ExportStorage, clock: Callable[[], datetime]) -> None:
        self._storage = storage
        self._clock = clock

    async def write(
        self,
        export_id: str,
        request_id: str,
        subject: SubjectIdentifiers,
        sources: Sequence[tuple[SystemDescription, Connector]],
    ) -> StoredFile:
        created_at = self._clock()
        members = self._members(request_id, subject, sources, created_at)
        zipped = async_stream_zip(members, get_compressobj=_compressor)
        return await self._storage.save(f"{export_id}.zip", zipped)

    async def _members(
        self,
        request_id: str,
        subject: SubjectIdentifiers,
        sources: Sequence[tuple[SystemDescription, Connector]],
        created_at: datetime,
    ) -> AsyncIterator[tuple[str, datetime, int, Any, AsyncIterator[bytes]]]:
        stamp = created_at.replace(tzinfo=None)
        files: list[_TableFile] = []
        used: set[str] = set()
        for _description, connector in sources:
            batches = _Peekable(connector.access(subject))
            while (first := await batches.peek()) is not None:
                name = _unique(f"{_safe(first.system)}/{_safe(first.table)}", used)
                table_file = _TableFile(first.system, first.table, name)
                files.append(table_file)
                with tempfile.TemporaryFile() as spool:
                    yield f"{name}.json", stamp, FILE_MODE, ZIP_64, _json_member(batches, table_file, spool)
                    yield f"{name}.csv", stamp, FILE_MODE, ZIP_64, _csv_member(spool, table_file)
        manifest = _manifest(request_id, created_at, sources, files)
        yield "manifest.json", stamp, FILE_MODE, ZIP_64, _once(manifest)


async def _json_member(batches: _Peekable, table_file: _TableFile, spool: IO[bytes]) -> AsyncIterator[bytes]:
    yield b"["
    separator = b"\n"
    while (batch := await batches.peek()) is not None and batch.table == table_file.table:
        await batches.next()
        table_file.columns.update(dict.fromkeys(batch.columns))
        out: list[bytes] = []
        for row in batch.rows:
            line = json.dumps(
                dict(zip(batch.columns, row, strict=True)), default=_jsonable, ensure_ascii=False
            )
            encoded = line.encode()
            spool.write(encoded + b"\n")
            out.append(separator + encoded)
            separator = b",\n"
        table_file.rows += len(batch.rows)
        yield b"".join(out)
    yield b"\n]\n"


async def _csv_member(spool: IO[bytes], table_file: _TableFile) -> AsyncIterator[bytes]:
    columns = list(table_file.columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    spool.seek(0)
    for count, line in enumerate(spool, start=1):
        record = json.loads(line)
        writer.writerow([_csv_cell(record.get(c)) for c in columns])
        if count % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _compressor() -> Any:
    return zlib.compressobj(level=COMPRESSION_LEVEL, wbits=-zlib.MAX_WBITS)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _manifest(
    request_id: str,
    created_at: datetime,
    sources: Sequence[tuple[SystemDescription, Connector]],
    files: Sequence[_TableFile],
) -> bytes:
    systems = []
    for description, _connector in sources:
        mine = [f for f in files if f.system == description.name]
        systems.append(
            {
                "name": description.name,
                "kind": description.kind,
                "description": description.description,
                "data_categories": list(description.data_categories),
                "purposes": list(description.purposes),
                "recipients": list(description.recipients),
                "retention": description.retention,
                "files": [
                    {"table": f.table, "json": f"{f.name}.json", "csv": f"{f.name}.csv", "rows": f.rows}
                    for f in mine
                ],
            }
        )
    manifest = {
        "format": FORMAT,
        "request_id": request_id,
        "created_at": created_at.isoformat(),
        "systems": systems,
    }
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode()


class _Peekable:
    def __init__(self, source: AsyncIterator[RecordBatch]) -> None:
        self._source = source
        self._head: RecordBatch | None = None
        self._done = False

    async def peek(self) -> RecordBatch | None:
        if self._head is None and not self._done:
            try:
                self._head = await anext(self._source)
            except StopAsyncIteration:
                self._done = True
        return self._head

    async def next(self) -> RecordBatch | None:
        head = await self.peek()
        self._head = None
        return head


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "_"


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 1
    while candidate in used:
        number += 1
        candidate = f"{name}-part{number}"
    used.add(candidate)
    return candidate
