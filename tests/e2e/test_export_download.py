"""GET /exports/{token}: streams the package, counts downloads, refuses forged (403) and expired (410)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.app import create_app
from dsr_gateway.connectors.export_package import ZipPackageWriter
from dsr_gateway.connectors.export_storage import LocalDirectoryStorage
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.services.export_links import ExpiredExportLink
from dsr_gateway.services.exports import ExportService
from dsr_gateway.services.fulfilment_ports import SubjectIdentifiers
from tests.integration.test_access_package import shop_source
from tests.support.app import make_settings
from tests.support.shop import shop_engine as shop_engine  # the fixtures
from tests.support.shop import shop_postgres_url as shop_postgres_url

JANE = SubjectIdentifiers("cust-1", "jane@example.com")


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, export_dir=tmp_path / "exports")
    async with (
        LifespanManager(create_app(settings)) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        yield http


@pytest.fixture
async def exports(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[ExportService, list[datetime]]]:
    """The service the worker will use (same database, directory, key as the app), with a settable clock."""
    settings = make_settings(database_url)
    assert settings.hmac_key is not None
    engine = make_engine(database_url)
    storage = LocalDirectoryStorage(tmp_path / "exports")
    clock = [datetime.now(UTC)]
    service = ExportService(
        lambda: SqlUnitOfWork(make_session_factory(engine)),
        ZipPackageWriter(storage, lambda: clock[0]),
        storage,
        lambda: clock[0],
        settings.hmac_key.get_secret_value().encode(),
        "http://testserver",
    )
    yield service, clock
    await engine.dispose()


async def test_a_package_downloads_through_its_link_and_each_download_counts(
    client: httpx.AsyncClient, exports: tuple[ExportService, list[datetime]], shop_engine: AsyncEngine
) -> None:
    service, _ = exports
    link = await service.create_package("req-1", JANE, [shop_source(shop_engine)])
    assert link.url.startswith("http://testserver/exports/")
    assert link.expires_at - datetime.now(UTC) > timedelta(days=6, hours=23)
    for round_number in (1, 2):
        response = await client.get(f"/exports/{link.token}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        assert response.headers["cache-control"] == "no-store"
        assert f"access-package-{link.export_id}.zip" in response.headers["content-disposition"]
        assert hashlib.sha256(response.content).hexdigest() == link.sha256
        assert int(response.headers["content-length"]) == link.size
        download = await service.open_download(link.token)
        # Each round counts two downloads: the one over HTTP and this one.
        assert download.download_count == 2 * round_number
        async for _ in download.chunks:
            pass
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["request_id"] == "req-1"


async def test_a_forged_link_is_403_and_an_expired_one_410(
    client: httpx.AsyncClient, exports: tuple[ExportService, list[datetime]], shop_engine: AsyncEngine
) -> None:
    service, clock = exports
    link = await service.create_package("req-2", JANE, [shop_source(shop_engine)])
    export_id, expiry, signature = link.token.split(".")
    for forged in (
        f"{export_id}.{int(expiry) + 86400}.{signature}",
        f"{'f' * 32}.{expiry}.{signature}",
        f"{export_id}.{expiry}.{signature[:-1]}A"
        if not signature.endswith("A")
        else f"{export_id}.{expiry}.{signature[:-1]}B",
        "not-a-token",
    ):
        response = await client.get(f"/exports/{forged}")
        assert response.status_code == 403, forged
        assert "not valid" in response.json()["message"]

    clock[0] = datetime.now(UTC) - timedelta(days=8)  # a package made 8 days ago: its 7-day link has expired
    old = await service.create_package("req-3", JANE, [shop_source(shop_engine)])
    response = await client.get(f"/exports/{old.token}")
    assert response.status_code == 410
    assert "expired on" in response.json()["message"]
    assert "new access request" in response.json()["message"]


async def test_a_genuine_link_to_a_removed_file_is_410(
    client: httpx.AsyncClient,
    exports: tuple[ExportService, list[datetime]],
    shop_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    service, _ = exports
    link = await service.create_package("req-4", JANE, [shop_source(shop_engine)])
    (tmp_path / "exports" / f"{link.export_id}.zip").unlink()
    response = await client.get(f"/exports/{link.token}")
    assert response.status_code == 410


async def test_expired_packages_and_unrecorded_files_are_deleted_and_the_record_kept(
    client: httpx.AsyncClient,
    exports: tuple[ExportService, list[datetime]],
    shop_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    service, clock = exports
    directory = tmp_path / "exports"
    started = clock[0]
    old = await service.create_package("req-old", JANE, [shop_source(shop_engine)])
    clock[0] = started + timedelta(days=3)
    young = await service.create_package("req-young", JANE, [shop_source(shop_engine)])
    old_record, young_record = await service.record(old.export_id), await service.record(young.export_id)
    assert old_record is not None
    assert young_record is not None
    # Left behind by a crash: a package written but never recorded, a partial write; and one being written.
    never_recorded, crashed, being_recorded = (f"{i:032x}.zip" for i in (1, 2, 3))
    crashed += ".partial"
    for name in (never_recorded, crashed, being_recorded):
        (directory / name).write_bytes(b"personal data")
    long_ago = (started - timedelta(days=2)).timestamp()
    for name in (never_recorded, crashed, old_record.path, young_record.path):
        os.utime(directory / name, (long_ago, long_ago))
    for foreign in ("not-ours~", "notes.txt", "backup.zip"):  # not named like a package: left alone
        (directory / foreign).write_bytes(b"")
        os.utime(directory / foreign, (long_ago, long_ago))

    clock[0] = started + timedelta(days=8)  # the old link (7 days) has expired, the young one not
    just_now = clock[0].timestamp()
    os.utime(directory / being_recorded, (just_now, just_now))
    cleaned = await service.delete_expired()

    assert (cleaned.expired, cleaned.orphans) == (1, 2)
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [young_record.path, being_recorded, "not-ours~", "notes.txt", "backup.zip"]
    )
    kept = await service.record(old.export_id)
    assert kept is not None
    assert kept.deleted_at == clock[0]
    assert (kept.size, kept.sha256) == (old_record.size, old_record.sha256)  # the record of delivery
    with pytest.raises(ExpiredExportLink):
        await service.open_download(old.token)
    assert (await service.open_download(young.token)).download_count == 1
    # A second run finds nothing left to do.
    again = await service.delete_expired()
    assert (again.expired, again.orphans) == (0, 0)


async def test_the_clean_up_deletes_in_batches_until_none_is_left(
    exports: tuple[ExportService, list[datetime]], shop_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, clock = exports
    monkeypatch.setattr("dsr_gateway.services.exports.CLEANUP_BATCH", 2)
    links = [await service.create_package(f"req-{i}", JANE, [shop_source(shop_engine)]) for i in range(5)]
    clock[0] += timedelta(days=8)
    assert (await service.delete_expired()).expired == 5
    for link in links:
        record = await service.record(link.export_id)
        assert record is not None
        assert record.deleted_at is not None


async def test_two_clean_ups_at_once_delete_and_count_each_package_once(
    exports: tuple[ExportService, list[datetime]], shop_engine: AsyncEngine
) -> None:
    service, clock = exports
    links = [await service.create_package(f"req-{i}", JANE, [shop_source(shop_engine)]) for i in range(3)]
    clock[0] += timedelta(days=8)
    first, second = await asyncio.gather(service.delete_expired(), service.delete_expired())
    assert first.expired + second.expired == 3
    for link in links:
        record = await service.record(link.export_id)
        assert record is not None
        assert record.deleted_at == clock[0]


async def test_a_file_that_cannot_be_deleted_is_left_for_the_next_run_and_the_others_go(
    exports: tuple[ExportService, list[datetime]], shop_engine: AsyncEngine, tmp_path: Path
) -> None:
    service, clock = exports
    stuck, fine = [await service.create_package(f"req-{i}", JANE, [shop_source(shop_engine)]) for i in (1, 2)]
    stuck_record = await service.record(stuck.export_id)
    assert stuck_record is not None
    path = tmp_path / "exports" / stuck_record.path
    path.unlink()
    path.mkdir()  # unlink() of a directory fails: an undeletable file
    clock[0] += timedelta(days=8)
    assert (await service.delete_expired()).expired == 1  # the other one; the stuck one is logged
    assert (await service.delete_expired()).expired == 0  # tried again, still stuck
    kept, gone = await service.record(stuck.export_id), await service.record(fine.export_id)
    assert kept is not None
    assert kept.deleted_at is None
    assert gone is not None
    assert gone.deleted_at is not None


async def test_a_download_started_before_the_clean_up_deletes_its_file_reads_to_the_end(
    exports: tuple[ExportService, list[datetime]], shop_engine: AsyncEngine, tmp_path: Path
) -> None:
    service, _ = exports
    link = await service.create_package("req-race", JANE, [shop_source(shop_engine)])
    record = await service.record(link.export_id)
    assert record is not None
    download = await service.open_download(link.token)  # counted, the file opened
    (tmp_path / "exports" / record.path).unlink()  # the clean-up (or anything) deletes it now
    body = b"".join([chunk async for chunk in download.chunks])
    assert hashlib.sha256(body).hexdigest() == link.sha256
    with pytest.raises(ExpiredExportLink):  # the next download finds it gone
        await service.open_download(link.token)
