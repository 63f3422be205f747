"""Benchmark the consent hot paths against a real uvicorn server, beside a bare `{ __typename }` baseline.

    PYTHONPATH=src python scripts/bench/consent_check.py [--quick] [--subjects N] [--duration S] ...

1. Seeds N subjects x 4 purposes on DSR_DATABASE_URL (default: a fresh SQLite file in a temp directory)
   through the import service (idempotent: a database already seeded with N bench subjects is reused).
2. Starts `uvicorn dsr_gateway.app:app_from_environment` (one worker) in its own process.
3. Drives it from a SEPARATE load process (a bounded asyncio HTTP/1.1 keep-alive client, no library
   overhead) and reports requests/s, p50/p99 latency and the ratio to the baseline measured in this run:
   baseline, single-subject consentCheck, batch-of-1,000 consentCheck, single-purpose setConsents writes
   (at the same 50 connections, and again at 100: calls made together are written together, so the
   writes/s a worker sustains grow with concurrency).
4. Times `dsr-gateway import-consents` on a generated CSV (rows/s over the whole command, and as it reports
   them once started), then deletes what it imported so the database stays at its seeded size.
The machine is shared and noisy: the ratios matter more than the absolute figures. Beside them: the
server's CPU per request, PostgreSQL's (when its processes run on this machine), and how long a plain
Python loop takes here, to compare runs made on different machines.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"
PURPOSES = ("bench_email", "bench_sms", "bench_profiling", "bench_analytics")
CHECK = (
    "query($p: String!, $ids: [String!]!) { consentCheck(purpose: $p, subjectIds: $ids) { allowed reason } }"
)
SET = "mutation($i: SetConsentsInput!) { setConsents(input: $i) { __typename ... on UserError { message } } }"


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    items_per_request: int = 1
    server_cpu_seconds: float | None = None  # the server process's CPU time during the run (Linux)
    database_cpu_seconds: float | None = None  # local PostgreSQL processes' CPU time during the run

    @property
    def database_us_per_request(self) -> str:
        """PostgreSQL's CPU per request (its processes on this machine; blank for SQLite, whose work is
        the server's own, or a server elsewhere)."""
        if not self.database_cpu_seconds or not self.requests:
            return ""
        return f"{1e6 * self.database_cpu_seconds / self.requests:,.0f}"

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> str:
        """Server CPU per request: steadier than the rate on a shared machine (a busy neighbour slows the
        database and the load process, not the work the server does per request)."""
        if self.server_cpu_seconds is None or not self.requests:
            return ""
        return f"{1e6 * self.server_cpu_seconds / self.requests:,.0f}"


def _stat_cpu_seconds(stat: str, children: bool = False) -> float:
    """User + system CPU seconds from the text of /proc/<pid>/stat (after the command name's ")"); with
    `children`, plus those of its children that ended and were waited for."""
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds of the PostgreSQL processes on this machine, those that ended included (Linux /proc;
    none visible: 0). A backend that ends (its client disconnected) moves its CPU time into the
    postmaster's children's time, so the difference of two readings is exact: it counts the backends
    that began or ended between them for what they did between them."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        if "(postgres)" in text:
            total += _stat_cpu_seconds(text, children=True)
    return total


def python_loop_seconds() -> float:
    """A plain loop of ten million additions in a function: how fast this machine runs Python, run to run
    (the same loop at a module's top level, with global names, takes ~2.5x as long)."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def process_cpu_seconds(pid: int) -> float | None:
    try:
        return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return None


# --- seeding --------------------------------------------------------------------------------------------


async def seed(database_url: str, subjects: int) -> float:
    """Purposes, a notice and `subjects` x 4 consent rows; returns rows/s of the seeding import."""
    from dsr_gateway.db.engine import make_engine, make_session_factory
    from dsr_gateway.db.migrate import upgrade
    from dsr_gateway.db.uow import SqlUnitOfWork
    from dsr_gateway.domain.notices import DataCategory, NoticeDraft, NoticePurpose
    from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
    from dsr_gateway.domain.purposes import Channel, ConsentMechanism, LegalBasis, Purpose, PurposeCategory
    from dsr_gateway.services.catalogue import CatalogueService
    from dsr_gateway.services.consent_import import ConsentImportService

    engine = make_engine(database_url)
    await upgrade(engine)
    factory = make_session_factory(engine)

    def uow() -> Any:
        return SqlUnitOfWork(factory)

    def now() -> datetime:
        return datetime.now(UTC)

    class NoEvents:
        async def publish(self, channel: str, payload: dict[str, object]) -> None:
            return None

        def subscribe(self, channel: str) -> Any:
            raise NotImplementedError

    catalogue = CatalogueService(uow, now, NoEvents())
    admin = Principal(PrincipalKind.STAFF, id="bench", roles=frozenset({Role.ADMIN}))
    existing = {p.key for p in await catalogue.purposes()}
    for key in PURPOSES:
        if key in existing:
            continue
        opt_out = key == "bench_analytics"
        await catalogue.upsert_purpose(
            admin,
            Purpose(
                key=key,
                title=key.replace("_", " "),
                description="benchmark purpose",
                legal_basis=LegalBasis.LEGITIMATE_INTEREST if opt_out else LegalBasis.CONSENT,
                mechanism=ConsentMechanism.OPT_OUT if opt_out else ConsentMechanism.OPT_IN,
                category=PurposeCategory.ANALYTICS if opt_out else PurposeCategory.MARKETING,
                channels=() if opt_out else (Channel.EMAIL,),
                reconfirm_after_days=None if opt_out else 730,
            ),
        )
    notice = await catalogue.notice()
    if notice is None or not set(PURPOSES) <= {p.key for p in notice.purposes}:
        await catalogue.publish_notice(
            admin,
            NoticeDraft(
                summary="benchmark notice",
                data_categories=(DataCategory("contact", "email", PURPOSES, (), "a while"),),
                purposes=tuple(NoticePurpose(k, "", "", False) for k in PURPOSES),
            ),
        )
    from sqlalchemy import text

    async with engine.connect() as connection:
        query = text("SELECT count(*) FROM subject WHERE external_id LIKE 'bench-%'")
        seeded = (await connection.execute(query)).scalar_one()
    rate = 0.0
    if seeded < subjects:
        when = (datetime.now(UTC) - timedelta(days=10)).isoformat()
        rng = random.Random(7)
        header = ("subject_id", "purpose", "action", "occurred_at", "notice_version")

        def rows() -> Any:
            line = 1
            for i in range(seeded, subjects):
                for key in PURPOSES:
                    line += 1
                    action = (
                        "GRANT"
                        if rng.random() < 0.6
                        else ("OBJECT" if key == "bench_analytics" else "WITHDRAW")
                    )
                    yield line, dict(zip(header, (f"bench-{i}", key, action, when, "1"), strict=True))

        started = time.monotonic()
        report = await ConsentImportService(uow, now).run(rows(), chunk_rows=20_000)
        rate = report.imported / (time.monotonic() - started)
        print(
            f"seeded {report.imported:,} consent rows for {subjects - seeded:,} subjects ({rate:,.0f} rows/s)"
        )
    await engine.dispose()
    return rate


# --- the load process -------------------------------------------------------------------------------------


async def _connection_loop(
    host: str,
    port: int,
    bodies: list[bytes],
    token: str,
    deadline: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\n"
    ).encode()
    i = random.randrange(len(bodies))
    while time.monotonic() < deadline:
        body = bodies[i % len(bodies)]
        i += 1
        started = time.perf_counter()
        writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        payload = await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if b" 200 " not in status_line or b'"errors"' in payload or b"UserError" in payload:
            errors.append(1)
    writer.close()


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    bodies = [b.encode() for b in spec["bodies"]]
    latencies: list[float] = []
    errors: list[int] = []
    started = time.monotonic()
    deadline = started + spec["duration"]
    await asyncio.gather(
        *(
            _connection_loop(spec["host"], spec["port"], bodies, spec["token"], deadline, latencies, errors)
            for _ in range(spec["connections"])
        )
    )
    seconds = time.monotonic() - started
    ordered = sorted(latencies) or [0.0]
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def load_worker() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(_load(spec))))


def run_load(
    name: str,
    port: int,
    token: str,
    bodies: list[str],
    connections: int,
    duration: float,
    items: int = 1,
    server_pid: int | None = None,
    postgres: bool = False,
) -> Result:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "token": token,
        "bodies": bodies,
        "connections": connections,
        "duration": duration,
    }
    cpu_before = process_cpu_seconds(server_pid) if server_pid else None
    database_before = postgres_cpu() if postgres else 0.0
    done = subprocess.run(
        [sys.executable, __file__, "--load-worker"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    cpu_after = process_cpu_seconds(server_pid) if server_pid else None
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    database = postgres_cpu() - database_before if postgres else 0.0
    return Result(
        name,
        data["requests"],
        data["errors"],
        data["seconds"],
        data["p50_ms"],
        data["p99_ms"],
        items,
        cpu,
        database,
    )


# --- the server and the import ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "DSR_DATABASE_URL": database_url,
        "DSR_ENV": "production",
        "DSR_JWT_SECRET": SECRET,
        "DSR_ENCRYPTION_KEY": "bench-encryption-key-0123456789abcdef0123456789",
        "DSR_HMAC_KEY": "bench-hmac-key-0123456789abcdef0123456789abcdef",
        # A fixed raw Ed25519 key (32 bytes, base64): production requires one.
        "DSR_SIGNING_KEY": "YmVuY2gtc2lnbmluZy1rZXktMDEyMzQ1Njc4OWFiY2Q=",
        "DSR_LOG_LEVEL": "WARNING",
    }


def start_server(database_url: str, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "dsr_gateway.app:app_from_environment",
        "--factory",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    server = subprocess.Popen(command, env=server_env(database_url))
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return server
        except OSError:
            time.sleep(0.05)
    server.terminate()
    raise SystemExit("the server did not start")


@dataclass
class ImportResult:
    wall_rate: float  # rows/s over the command's whole run
    reported_rate: float  # rows/s as the command reports them
    cpu_us_per_row: float  # the command's own process
    database_us_per_row: float | None  # the PostgreSQL processes on this machine (None: SQLite)


def _children_cpu_seconds() -> float:
    """User + system CPU of this process's children that ended (and were waited for) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_import(database_url: str, rows: int, directory: Path) -> ImportResult:
    """Rows/s of `dsr-gateway import-consents` on a generated CSV of new subjects: over the command's whole
    run (the process start and its imports, ~0.5 s, included), and as the command reports it (from the
    file's header on); and the CPU per row of the command and of PostgreSQL (one transaction: PostgreSQL
    does its part on one core, the command on another; on two cores their sum bounds the rate). The
    imported rows are deleted afterwards, so the database stays at its seeded size and runs compare."""
    path = directory / "import.csv"
    # Each row its own time, as in a real system's export (rows sharing one time are cheaper to import:
    # the parser and the sealer reuse what they worked out for the time).
    first = datetime.now(UTC) - timedelta(days=5)
    prefix = f"imp-{int(time.time())}-"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["subject_id", "purpose", "action", "occurred_at", "notice_version"])
        for i in range(rows):
            when = (first - timedelta(seconds=i, microseconds=i % 997)).isoformat()
            out.writerow([f"{prefix}{i // 4}", PURPOSES[i % 4], "GRANT" if i % 3 else "WITHDRAW", when, 1])
    postgres = database_url.startswith("postgresql")
    database_before = postgres_cpu() if postgres else 0.0
    children_before = _children_cpu_seconds()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dsr_gateway", "import-consents", str(path)],
        env=server_env(database_url),
        check=True,
        capture_output=True,
        text=True,
    )
    wall = rows / (time.monotonic() - started)
    command_cpu = _children_cpu_seconds() - children_before  # the command: the only child reaped since
    database_cpu = postgres_cpu() - database_before if postgres else None
    reported = re.search(r"\(([\d,]+) rows/s\)", done.stdout)
    asyncio.run(forget_import(database_url, prefix))
    return ImportResult(
        wall,
        float(reported.group(1).replace(",", "")) if reported else 0.0,
        1e6 * command_cpu / rows,
        1e6 * database_cpu / rows if database_cpu is not None else None,
    )


async def forget_import(database_url: str, prefix: str) -> None:
    """Delete what the timed import recorded (benchmark data only; the gateway itself never deletes
    ledger rows), and on PostgreSQL vacuum the ledger's tables."""
    from sqlalchemy import text

    from dsr_gateway.db.engine import make_engine

    engine = make_engine(database_url)
    subjects = "SELECT id FROM subject WHERE external_id LIKE :pattern"
    try:
        async with engine.begin() as connection:
            for table in ("consent_state", "consent_event"):
                await connection.execute(
                    text(f"DELETE FROM {table} WHERE subject_id IN ({subjects})"),
                    {"pattern": prefix + "%"},
                )
            await connection.execute(
                text("DELETE FROM subject WHERE external_id LIKE :pattern"), {"pattern": prefix + "%"}
            )
        if engine.dialect.name == "postgresql":
            # The deleted rows' space and index entries are reclaimed now: a server without autovacuum
            # (or one slower than the benchmark) would otherwise make each run slower than the last.
            autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
            async with autocommit.connect() as connection:
                await connection.execute(text("VACUUM (ANALYZE) consent_state, consent_event, subject"))
    finally:
        await engine.dispose()


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--load-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (under a minute)")
    parser.add_argument("--database-url", default=os.environ.get("DSR_DATABASE_URL"))
    parser.add_argument("--subjects", type=int, default=250_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000, help="subject ids per batch check")
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument(
        "--busy-write-connections",
        type=int,
        default=100,
        help="a second setConsents run with this many connections (0: none): written together, writes "
        "cost less each under more concurrency",
    )
    parser.add_argument("--import-rows", type=int, default=200_000)
    args = parser.parse_args()
    if args.load_worker:
        load_worker()
        return
    if args.quick:
        args.subjects, args.duration, args.import_rows = min(args.subjects, 2_000), 3.0, 10_000
    directory = Path(tempfile.mkdtemp(prefix="dsr-bench-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{directory}/bench.db"
    print(f"database: {database_url.split('://')[0]}; {args.subjects:,} subjects x {len(PURPOSES)} purposes")
    asyncio.run(seed(database_url, args.subjects))

    from dsr_gateway.http.auth import mint_token

    token = mint_token(SECRET, "bench-client", scope="consent:read consent:write")
    rng = random.Random(1)
    ids = [f"bench-{i}" for i in range(args.subjects)]
    singles = [
        json.dumps({"query": CHECK, "variables": {"p": "bench_email", "ids": [rng.choice(ids)]}})
        for _ in range(2000)
    ]
    batches = [
        json.dumps(
            {
                "query": CHECK,
                "variables": {"p": "bench_email", "ids": rng.sample(ids, min(args.batch, len(ids)))},
            }
        )
        for _ in range(20)
    ]
    writes = [
        json.dumps(
            {
                "query": SET,
                "variables": {
                    "i": {
                        "subjectId": rng.choice(ids),
                        "noticeVersion": 1,
                        "method": "API",
                        "choices": [{"purpose": "bench_sms", "granted": bool(i % 2)}],
                    }
                },
            }
        )
        for i in range(2000)
    ]
    bare = [json.dumps({"query": "{ __typename }"})]

    loop = python_loop_seconds()
    port = free_port()
    server = start_server(database_url, port)
    try:
        c, d, pid = args.connections, args.duration, server.pid
        write_runs = [("setConsents, 1 purpose", c)]
        if busy := args.busy_write_connections:
            write_runs.append((f"setConsents, {busy} connections", busy))
        pg = database_url.startswith("postgresql")
        run_load("warm-up", port, token, singles, c, min(d, 2.0))
        results = [
            run_load("bare { __typename }", port, token, bare, c, d, server_pid=pid, postgres=pg),
            run_load("consentCheck, 1 subject", port, token, singles, c, d, server_pid=pid, postgres=pg),
            run_load(
                f"consentCheck, {args.batch} subjects",
                port,
                token,
                batches,
                args.batch_connections,
                d,
                args.batch,
                server_pid=pid,
                postgres=pg,
            ),
            *(
                run_load(name, port, token, writes, n, d, server_pid=pid, postgres=pg)
                for name, n in write_runs
            ),
            run_load("bare { __typename } (again)", port, token, bare, c, d, server_pid=pid, postgres=pg),
        ]
    finally:
        server.terminate()
        server.wait()
    imported = time_import(database_url, args.import_rows, directory)

    baseline = statistics.mean([results[0].rate, results[-1].rate])
    columns = (
        f"{'req/s':>9} {'x bare':>7} {'p50 ms':>8} {'p99 ms':>8} {'items/s':>10} {'errors':>7} "
        f"{'cpu us/req':>11} {'db us/req':>10}"
    )
    print(f"\n{'scenario':34} {columns}")
    for r in results:
        print(
            f"{r.name:34} {r.rate:9,.0f} {r.rate / baseline:7.2f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} "
            f"{r.rate * r.items_per_request:10,.0f} {r.errors:7} {r.cpu_us_per_request:>11} "
            f"{r.database_us_per_request:>10}"
        )
    blank = f"{'':9} {'':7} {'':8} {'':8}"
    database_per_row = f"{imported.database_us_per_row:,.0f}" if imported.database_us_per_row else ""
    print(
        f"{'import-consents (CLI, whole run)':34} {blank} {imported.wall_rate:10,.0f} {'':7} "
        f"{imported.cpu_us_per_row:>11,.0f} {database_per_row:>10}  (per row)"
    )
    print(f"{'import-consents (as it reports)':34} {blank} {imported.reported_rate:10,.0f} rows/s")
    connections = f"{c} connections, {args.batch_connections} for batches"
    if args.busy_write_connections:
        connections += f", {args.busy_write_connections} for the second writes run"
    print(f"\n(one uvicorn worker; {connections}; {d:.0f} s per scenario)")
    print(f"(this machine: 10M additions in a Python function took {loop:.2f} s; cpu: the server process,")
    print(" db: the PostgreSQL processes on this machine, per request; for the import, per row)")


if __name__ == "__main__":
    main()
