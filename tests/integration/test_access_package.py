"""The access package: zip contents from the sample shop, and memory that does not grow with the rows."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dsr_gateway.connectors.export_package import ZipPackageWriter
from dsr_gateway.connectors.export_storage import LocalDirectoryStorage
from dsr_gateway.connectors.sql_connector import SqlConnector
from dsr_gateway.connectors.systems_config import SqlSystem, load_systems
from dsr_gateway.services.fulfilment_ports import RecordBatch, StepRef, SubjectIdentifiers, SystemDescription
from tests.support.shop import EXAMPLE_SYSTEMS, orders, seed_shop
from tests.support.shop import shop_engine as shop_engine  # the fixtures
from tests.support.shop import shop_postgres_url as shop_postgres_url

JANE = SubjectIdentifiers("cust-1", "jane@example.com")
EXPORT_ID = "0123456789abcdef0123456789abcdef"


def now() -> datetime:
    return datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def shop_source(engine: AsyncEngine, batch_size: int = 1000) -> tuple[SystemDescription, SqlConnector]:
    config = load_systems(EXAMPLE_SYSTEMS)
    system = config.systems["shop"]
    assert isinstance(system, SqlSystem)
    system = system.model_copy(update={"batch_size": batch_size})
    description = next(d for d in config.describe() if d.name == "shop")
    return description, SqlConnector("shop", system, engine, b"k", owns_engine=False)


class TwoPartTable:
    """A source whose table comes back in two separate runs, with a column only the second run has."""

    name = "crm"

    async def access(
        self, subject: SubjectIdentifiers, step: StepRef | None = None
    ) -> AsyncIterator[RecordBatch]:
        yield RecordBatch("crm", "tickets", ("id", "text"), ((1, 'hello, "world"'),))
        yield RecordBatch("crm", "contact", ("phone",), (("+1 555",),))
        yield RecordBatch("crm", "tickets", ("id", "text", "when"), ((2, "bye", "2026-01-01"),))


async def test_the_package_holds_a_manifest_and_json_and_csv_per_table(
    shop_engine: AsyncEngine, tmp_path: Path
) -> None:
    storage = LocalDirectoryStorage(tmp_path)
    writer = ZipPackageWriter(storage, now)
    crm = SystemDescription("crm", "http", ("support",), ("support",), ("CRM vendor",), "3 years")
    stored = await writer.write(EXPORT_ID, "req-1", JANE, [shop_source(shop_engine), (crm, TwoPartTable())])  # type: ignore[list-item]
    path = tmp_path / stored.key
    assert stored.key == f"{EXPORT_ID}.zip"
    assert stored.size == path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names == [
            "shop/customers.json",
            "shop/customers.csv",
            "shop/addresses.json",
            "shop/addresses.csv",
            "shop/orders.json",
            "shop/orders.csv",
            "shop/newsletter.json",
            "shop/newsletter.csv",
            "crm/tickets.json",
            "crm/tickets.csv",
            "crm/contact.json",
            "crm/contact.csv",
            "crm/tickets-part2.json",
            "crm/tickets-part2.csv",
            "manifest.json",
        ]
        manifest = json.loads(archive.read("manifest.json"))
        customers = json.loads(archive.read("shop/customers.json"))
        orders_csv = list(csv.reader(io.StringIO(archive.read("shop/orders.csv").decode())))
        tickets = list(csv.reader(io.StringIO(archive.read("crm/tickets.csv").decode())))
        second = list(csv.reader(io.StringIO(archive.read("crm/tickets-part2.csv").decode())))
        everything = b"".join(archive.read(n) for n in names)
    assert manifest["request_id"] == "req-1"
    shop = manifest["systems"][0]
    assert shop["name"] == "shop"
    assert shop["data_categories"] == ["identity", "contact", "billing", "marketing"]
    assert shop["recipients"][0].startswith("Parcel carriers")
    assert shop["retention"].startswith("Account data")
    assert {f["table"]: f["rows"] for f in shop["files"]} == {
        "customers": 1,
        "addresses": 2,
        "orders": 2,
        "newsletter": 2,
    }
    assert manifest["systems"][1]["purposes"] == ["support"]
    assert customers == [
        {
            "id": 1,
            "external_ref": "cust-1",
            "email": "jane@example.com",
            "name": "Jane Doe",
            "phone": "+44 20 7946 0000",
            "birth_date": "1990-05-17",
        }
    ]
    assert orders_csv[0] == ["id", "placed_at", "total_cents", "shipping_name"]
    assert [row[0] for row in orders_csv[1:]] == ["10", "11"]
    assert tickets == [["id", "text"], ["1", 'hello, "world"']]
    assert second == [["id", "text", "when"], ["2", "bye", "2026-01-01"]]
    assert b"john@example.com" not in everything
    assert b"John Roe" not in everything


async def test_memory_stays_bounded_when_exporting_many_rows(tmp_path: Path) -> None:
    rows = 100_000
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'big.db'}")
    await seed_shop(engine)
    async with engine.begin() as connection:
        chunk = 10_000
        for start in range(0, rows, chunk):
            await connection.execute(
                insert(orders),
                [
                    {"id": 1000 + i, "customer_id": 1, "total_cents": i, "shipping_name": f"Jane Doe {i:06d}"}
                    for i in range(start, start + chunk)
                ],
            )
    writer = ZipPackageWriter(LocalDirectoryStorage(tmp_path / "exports"), now)
    tracemalloc.start()
    try:
        stored = await writer.write(EXPORT_ID, "req-big", JANE, [shop_source(engine)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await engine.dispose()
    with zipfile.ZipFile(tmp_path / "exports" / stored.key) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        with archive.open("shop/orders.csv") as handle:
            lines = sum(1 for _ in handle)
    assert {f["table"]: f["rows"] for f in manifest["systems"][0]["files"]}["orders"] == rows + 2
    assert lines == rows + 2 + 1
    # The rows alone would take far more than this as Python objects (~100 MB); a batch and the zip
    # window are what stay in memory.
    assert peak < 16 * 1024 * 1024, f"peak traced memory {peak / 1024 / 1024:.1f} MiB"
