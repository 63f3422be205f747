"""The SQL connector against a real sample shop on SQLite and PostgreSQL, declared as in the example."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.connectors.erasure_values import HASH_PREFIX, hash_value
from dsr_gateway.connectors.sql_connector import SqlConnector
from dsr_gateway.connectors.systems_config import SqlSystem, load_systems
from dsr_gateway.services.fulfilment_ports import (
    ConsentChange,
    ErasureAction,
    LegalHold,
    RecordBatch,
    RectifyOutcome,
    SubjectIdentifiers,
)
from tests.support.shop import EXAMPLE_SYSTEMS, JANE, JOHN, addresses, customers, newsletter, orders
from tests.support.shop import shop_engine as shop_engine  # the fixtures
from tests.support.shop import shop_postgres_url as shop_postgres_url

HASH_KEY = b"test-hash-key"
JANE_ID = SubjectIdentifiers("cust-1", "jane@example.com")
BILLING_HOLD = LegalHold("billing", "tax law: 10 years")


def connector(engine: AsyncEngine, **system_overrides: Any) -> SqlConnector:
    system = load_systems(EXAMPLE_SYSTEMS).systems["shop"]
    assert isinstance(system, SqlSystem)
    if system_overrides:
        system = system.model_copy(update=system_overrides)
    return SqlConnector("shop", system, engine, HASH_KEY, owns_engine=False)


async def collect(shop: SqlConnector, subject: SubjectIdentifiers) -> dict[str, list[dict[str, object]]]:
    tables: dict[str, list[dict[str, object]]] = {}
    async for batch in shop.access(subject):
        assert isinstance(batch, RecordBatch)
        tables.setdefault(batch.table, []).extend(
            dict(zip(batch.columns, row, strict=True)) for row in batch.rows
        )
    return tables


async def rows(engine: AsyncEngine, table: Any) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(select(table).order_by(table.c.id))
        return [dict(r._mapping) for r in result]


async def test_access_returns_exactly_the_subjects_rows(shop_engine: AsyncEngine) -> None:
    tables = await collect(connector(shop_engine), JANE_ID)
    assert [r["external_ref"] for r in tables["customers"]] == ["cust-1"]
    assert [r["id"] for r in tables["customers"]] == [1]
    assert [r["street"] for r in tables["addresses"]] == ["1 High St", "2 Low Rd"]
    assert [r["total_cents"] for r in tables["orders"]] == [1999, 500]
    assert [r["email"] for r in tables["newsletter"]] == ["jane@example.com", "JANE@Example.com"]
    everything = repr(tables)
    for other in ("cust-2", "john@example.com", "John Roe", "York", "700"):
        assert other not in everything


async def test_access_pages_through_a_table_in_batches(shop_engine: AsyncEngine) -> None:
    shop = connector(shop_engine, batch_size=1)
    batches = [b async for b in shop.access(JANE_ID)]
    assert [(b.table, len(b.rows)) for b in batches] == [
        ("customers", 1),
        ("addresses", 1),
        ("addresses", 1),
        ("orders", 1),
        ("orders", 1),
        ("newsletter", 1),
        ("newsletter", 1),
    ]


async def test_access_by_external_id_alone_misses_tables_found_only_by_email(
    shop_engine: AsyncEngine,
) -> None:
    tables = await collect(connector(shop_engine), SubjectIdentifiers("cust-1"))
    assert set(tables) == {"customers", "addresses", "orders"}
    assert await collect(connector(shop_engine), SubjectIdentifiers("nobody")) == {}


async def test_erasure_without_holds_deletes_the_rows_and_touches_no_one_else(
    shop_engine: AsyncEngine,
) -> None:
    result = await connector(shop_engine).erase(JANE_ID, [])
    done = {(i.table, i.field): i for i in result.items}
    assert done["customers", None].action is ErasureAction.DELETED
    assert done["customers", None].rows == 1
    assert done["orders", None].rows == 2
    assert done["addresses", None].rows == 2
    assert done["newsletter", None].rows == 2
    assert [r["external_ref"] for r in await rows(shop_engine, customers)] == ["cust-2"]
    assert [r["customer_id"] for r in await rows(shop_engine, orders)] == [2]
    assert [r["customer_id"] for r in await rows(shop_engine, addresses)] == [2]
    assert [r["email"] for r in await rows(shop_engine, newsletter)] == ["john@example.com"]


async def test_erasure_keeps_what_a_legal_hold_covers_and_says_why(shop_engine: AsyncEngine) -> None:
    result = await connector(shop_engine).erase(JANE_ID, [BILLING_HOLD])
    done = {(i.table, i.field): i for i in result.items}
    # Orders are billing data: kept, with the reason; the parcel name on them is contact data: masked.
    assert done["orders", "id"].action is ErasureAction.KEPT
    assert "legal hold on billing" in (done["orders", "id"].reason or "")
    assert done["orders", "shipping_name"].action is ErasureAction.MASKED
    # The customer row stays because kept orders refer to it, and its fields are erased as declared.
    assert done["customers", "id"].action is ErasureAction.KEPT
    assert "rows of orders refer to it" in (done["customers", "id"].reason or "")
    assert done["customers", "email"].action is ErasureAction.HASHED
    assert done["customers", "name"].action is ErasureAction.MASKED
    assert done["customers", "phone"].action is ErasureAction.NULLED
    assert done["customers", "external_ref"].action is ErasureAction.KEPT
    assert done["addresses", None].action is ErasureAction.DELETED
    assert done["newsletter", None].action is ErasureAction.DELETED

    jane, john = await rows(shop_engine, customers)
    assert jane["email"] == hash_value(HASH_KEY, "jane@example.com")
    assert jane["email"].startswith(HASH_PREFIX)
    assert jane["name"] == "J***"
    assert jane["phone"] is None
    assert jane["birth_date"] is None
    assert john == {**JOHN, "birth_date": john["birth_date"]}
    assert str(john["birth_date"]) == "1985-01-02"
    kept_orders = await rows(shop_engine, orders)
    assert [(o["id"], o["total_cents"], o["shipping_name"]) for o in kept_orders] == [
        (10, 1999, "J***"),
        (11, 500, "J***"),
        (12, 700, "John Roe"),
    ]
    assert [a["customer_id"] for a in await rows(shop_engine, addresses)] == [2]


async def test_erasure_twice_is_harmless(shop_engine: AsyncEngine) -> None:
    shop = connector(shop_engine)
    await shop.erase(JANE_ID, [BILLING_HOLD])
    after_first = [await rows(shop_engine, t) for t in (customers, orders, addresses, newsletter)]
    second = await shop.erase(JANE_ID, [BILLING_HOLD])
    assert [await rows(shop_engine, t) for t in (customers, orders, addresses, newsletter)] == after_first
    assert {i.action for i in second.items} <= set(ErasureAction)


async def test_rectification_changes_only_allowed_fields_of_the_subject(shop_engine: AsyncEngine) -> None:
    result = await connector(shop_engine).rectify(
        JANE_ID, {"name": "Jane Smith", "phone": "+44 1", "birth_date": "2000-01-01", "shoe_size": "38"}
    )
    by = {(r.table, r.field): r for r in result.fields}
    assert by["customers", "name"].outcome is RectifyOutcome.APPLIED
    assert by["customers", "name"].old_values == ("Jane Doe",)
    assert by["customers", "phone"].outcome is RectifyOutcome.APPLIED
    assert by["customers", "phone"].for_history()["old"] == ["[redacted]"]
    assert by["customers", "phone"].for_history()["new"] == "[redacted]"
    assert by["customers", "birth_date"].outcome is RectifyOutcome.NOT_ALLOWED
    assert by[None, "shoe_size"].outcome is RectifyOutcome.NOT_HELD
    jane, john = await rows(shop_engine, customers)
    assert (jane["name"], jane["phone"], str(jane["birth_date"])) == ("Jane Smith", "+44 1", "1990-05-17")
    assert john["name"] == JOHN["name"]
    assert JANE["name"] == "Jane Doe"


async def test_rectification_of_a_related_table_and_of_a_subject_without_rows(
    shop_engine: AsyncEngine,
) -> None:
    shop = connector(shop_engine)
    result = await shop.rectify(JANE_ID, {"city": "Bath"})
    assert [(r.table, r.outcome, r.rows) for r in result.fields] == [("addresses", RectifyOutcome.APPLIED, 2)]
    assert [a["city"] for a in await rows(shop_engine, addresses)] == ["Bath", "Bath", "York"]
    nobody = await shop.rectify(SubjectIdentifiers("nobody"), {"city": "Bath"})
    assert [r.outcome for r in nobody.fields] == [RectifyOutcome.NOT_HELD]


async def test_a_consent_withdrawal_clears_the_declared_column(shop_engine: AsyncEngine) -> None:
    shop = connector(shop_engine)
    told = await shop.notify_consent_change(JANE_ID, ["newsletter"], ConsentChange.WITHDRAWN)
    assert told.told
    assert [n["opted_in"] for n in await rows(shop_engine, newsletter)] == [False, False, True]
    other = await shop.notify_consent_change(JANE_ID, ["profiling"], ConsentChange.WITHDRAWN)
    assert not other.told
    assert "no consent column" in other.detail
