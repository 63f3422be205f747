"""Benchmark: export an access package of one subject with 100,000 rows across tables.

    PYTHONPATH=src python scripts/bench/export.py [--rows 100000] [--database-url postgresql+asyncpg://...]

Seeds the sample shop (examples/systems.toml) in a fresh SQLite file (or in the given PostgreSQL database,
whose shop tables it drops and recreates), then in one run reports, beside baselines measured the same way:
  - the idle process RSS (after imports and seeding, before anything is read),
  - a plain SELECT of the same rows through the same engine (fetchall: every row in memory at once),
  - the export through the SQL connector and the streamed zip: rows/s, peak RSS growth, traced peak.
Peak RSS (ru_maxrss) never goes down, so the export runs BEFORE the plain SELECT baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.shop import addresses, newsletter, orders, seed_shop  # noqa: E402

from dsr_gateway.connectors.export_package import ZipPackageWriter  # noqa: E402
from dsr_gateway.connectors.export_storage import LocalDirectoryStorage  # noqa: E402
from dsr_gateway.connectors.sql_connector import SqlConnector  # noqa: E402
from dsr_gateway.connectors.systems_config import SqlSystem, load_systems  # noqa: E402
from dsr_gateway.services.fulfilment_ports import SubjectIdentifiers  # noqa: E402

SUBJECT = SubjectIdentifiers("cust-1", "jane@example.com")
MIB = 1024 * 1024


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def current_rss() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()
    except OSError:
        return peak_rss()


async def seed(engine: AsyncEngine, rows: int) -> int:
    """Jane gets `rows` rows: 70% orders, 20% addresses, 10% newsletter entries (plus the shop's own)."""
    await seed_shop(engine)
    split = {orders: rows * 7 // 10, addresses: rows * 2 // 10}
    split[newsletter] = rows - sum(split.values())
    chunk = 5000
    async with engine.begin() as connection:
        for table, count in split.items():
            for start in range(0, count, chunk):
                batch = []
                for i in range(start, min(start + chunk, count)):
                    key = 1000 + i
                    if table is orders:
                        batch.append(
                            {"id": key, "customer_id": 1, "total_cents": i, "shipping_name": f"Jane {i}"}
                        )
                    elif table is addresses:
                        batch.append(
                            {"id": key, "customer_id": 1, "street": f"{i} High St", "city": "London"}
                        )
                    else:
                        batch.append({"id": key, "email": "jane@example.com", "opted_in": True})
                await connection.execute(insert(table), batch)
    async with engine.connect() as connection:
        total = 0
        for table in (orders, addresses, newsletter):
            total += (await connection.execute(select(func.count()).select_from(table))).scalar_one()
    return total


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="a PostgreSQL (asyncpg) URL; default: a temporary SQLite file")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'shop.db'}"
        engine = create_async_engine(url)
        seeded = await seed(engine, args.rows)
        system = load_systems(ROOT / "examples" / "systems.toml").systems["shop"]
        assert isinstance(system, SqlSystem)
        system = system.model_copy(update={"batch_size": args.batch_size})
        description = next(
            d for d in load_systems(ROOT / "examples" / "systems.toml").describe() if d.name == "shop"
        )
        connector = SqlConnector("shop", system, engine, b"bench-key", owns_engine=False)
        writer = ZipPackageWriter(
            LocalDirectoryStorage(Path(directory) / "exports"), lambda: datetime.now(UTC)
        )

        # Warm up the engine (pool, dialect) so that the idle baseline includes it.
        async with engine.connect() as connection:
            await connection.execute(select(1))
        idle_rss, idle_peak = current_rss(), peak_rss()

        started = time.perf_counter()
        stored = await writer.write("0" * 32, "bench", SUBJECT, [(description, connector)])
        export_seconds = time.perf_counter() - started
        export_peak = peak_rss()

        tracemalloc.start()
        await writer.write("1" * 32, "bench", SUBJECT, [(description, connector)])
        _, traced_export = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        exported = 0
        started = time.perf_counter()
        async with engine.connect() as connection:
            for table in (orders, addresses, newsletter):
                where = (
                    table.c.customer_id == 1
                    if table is not newsletter
                    else table.c.email == "jane@example.com"
                )
                exported += len((await connection.execute(select(table).where(where))).all())
        select_seconds = time.perf_counter() - started
        select_peak = peak_rss()
        await engine.dispose()

    rows = exported + 1  # and Jane's customer row
    print(
        f"database          {url.split('://')[0]}  ({seeded:,} rows in the big tables, "
        f"{rows:,} of them the subject's)"
    )
    print(
        f"idle process RSS  {idle_rss / MIB:8.1f} MiB  (peak so far {idle_peak / MIB:.1f} MiB, after seeding)"
    )
    print(
        f"export            {rows / export_seconds:10,.0f} rows/s  {export_seconds:6.2f} s  "
        f"zip {stored.size / MIB:.1f} MiB"
    )
    print(
        f"  peak RSS        {export_peak / MIB:8.1f} MiB  "
        f"(+{(export_peak - max(idle_peak, idle_rss)) / MIB:.1f} MiB "
        f"above the idle peak; aim: < 64 MiB)"
    )
    print(f"  traced peak     {traced_export / MIB:8.1f} MiB  (Python allocations during a second export)")
    print(
        f"plain SELECT      {rows / select_seconds:10,.0f} rows/s  {select_seconds:6.2f} s  "
        "(all rows in memory)"
    )
    print(
        f"  peak RSS        {select_peak / MIB:8.1f} MiB  "
        f"(+{(select_peak - export_peak) / MIB:.1f} MiB above the export)"
    )


if __name__ == "__main__":
    asyncio.run(main())
