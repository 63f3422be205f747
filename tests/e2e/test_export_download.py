"""GET /exports/{token}: streams the package, counts downloads, refuses forged (403) and expired (410)."""

from __future__ import annotations

import hashlib
import io
import json
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
