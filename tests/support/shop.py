"""A sample shop in a real second database (customers, addresses, orders, newsletter) for the connectors.

`shop_engine` runs each test on a fresh SQLite file and on a PostgreSQL database of its own (created on the
test server, dropped at the end of the run). Import the fixture into a test module to use it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    insert,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support import databases

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SYSTEMS = ROOT / "examples" / "systems.toml"

shop = MetaData()
customers = Table(
    "customers",
    shop,
    Column("id", Integer, primary_key=True),
    Column("external_ref", String(64), unique=True),
    Column("email", String(255)),
    Column("name", String(255)),
    Column("phone", String(64)),
    Column("birth_date", Date),
)
addresses = Table(
    "addresses",
    shop,
    Column("id", Integer, primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("street", String(255)),
    Column("city", String(255)),
    Column("postcode", String(32)),
)
orders = Table(
    "orders",
    shop,
    Column("id", Integer, primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("placed_at", DateTime),
    Column("total_cents", Integer),
    Column("shipping_name", String(255)),
)
newsletter = Table(
    "newsletter_subscriptions",
    shop,
    Column("id", Integer, primary_key=True),
    Column("email", String(255)),
    Column("opted_in", Boolean),
    Column("subscribed_at", DateTime),
)

JANE = {
    "id": 1,
    "external_ref": "cust-1",
    "email": "jane@example.com",
    "name": "Jane Doe",
    "phone": "+44 20 7946 0000",
    "birth_date": date(1990, 5, 17),
}
JOHN = {
    "id": 2,
    "external_ref": "cust-2",
    "email": "john@example.com",
    "name": "John Roe",
    "phone": "+44 20 7946 0001",
    "birth_date": date(1985, 1, 2),
}


async def seed_shop(engine: AsyncEngine) -> None:
    """Jane (cust-1) and John (cust-2), each with addresses, orders and a newsletter subscription."""
    at = datetime(2025, 3, 1, 12, 0)
    async with engine.begin() as connection:
        await connection.run_sync(shop.drop_all)
        await connection.run_sync(shop.create_all)
        await connection.execute(insert(customers), [JANE, JOHN])
        await connection.execute(
            insert(addresses),
            [
                {"id": 1, "customer_id": 1, "street": "1 High St", "city": "London", "postcode": "N1 1AA"},
                {"id": 2, "customer_id": 1, "street": "2 Low Rd", "city": "Leeds", "postcode": "LS1 1AA"},
                {"id": 3, "customer_id": 2, "street": "3 Mid Ln", "city": "York", "postcode": "YO1 1AA"},
            ],
        )
        await connection.execute(
            insert(orders),
            [
                {
                    "id": 10,
                    "customer_id": 1,
                    "placed_at": at,
                    "total_cents": 1999,
                    "shipping_name": "Jane Doe",
                },
                {
                    "id": 11,
                    "customer_id": 1,
                    "placed_at": at,
                    "total_cents": 500,
                    "shipping_name": "Jane Doe",
                },
                {
                    "id": 12,
                    "customer_id": 2,
                    "placed_at": at,
                    "total_cents": 700,
                    "shipping_name": "John Roe",
                },
            ],
        )
        await connection.execute(
            insert(newsletter),
            [
                # Jane's second subscription differs only in case: it is hers all the same.
                {"id": 1, "email": "jane@example.com", "opted_in": True, "subscribed_at": at},
                {"id": 2, "email": "JANE@Example.com", "opted_in": True, "subscribed_at": at},
                {"id": 3, "email": "john@example.com", "opted_in": True, "subscribed_at": at},
            ],
        )


@pytest.fixture(scope="session")
def shop_postgres_url() -> Iterator[str]:
    server = databases.skip_or_fail_without_postgres()
    name = f"dsr_shop_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(databases.asyncpg_dsn(server))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    databases.run_blocking(create)
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    yield url
    databases.run_blocking(lambda: databases.drop_postgres_database(server, url))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def shop_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The seeded sample shop, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    else:
        url = request.getfixturevalue("shop_postgres_url")
    engine = create_async_engine(url)
    await seed_shop(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
