"""/metrics after real activity: GraphQL operations, open requests, the outbox backlog, worker counters."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from dsr_gateway.app import create_app
from dsr_gateway.graphql.observability import GraphQLMetrics
from dsr_gateway.services.outbox import DeliveryRun
from dsr_gateway.worker.loops import deliver, run_periodically
from tests.support.accountability_factories import Live
from tests.support.app import GraphQLClient, make_settings, subject_token
from tests.support.consent_factories import choice, seed_catalogue, set_consents
from tests.support.request_factories import create_request, submit


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None when it is not there."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return None


async def scrape(gql: GraphQLClient) -> str:
    response = await gql.http.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_graphql_operations_are_counted_and_timed_by_name(gql: GraphQLClient) -> None:
    await gql("query Purposes { purposes { key } }")
    await gql("query Purposes { purposes { key } }")
    await gql("{ purposes { key } }")
    await gql.post("query Broken { privacyRequests { edges { cursor } } }")  # refused: not staff
    text = await scrape(gql)
    ok = {"operation": "Purposes", "type": "query", "outcome": "ok"}
    assert sample(text, "dsr_graphql_operations_total", **ok) == 2
    assert sample(text, "dsr_graphql_operations_total", operation="anonymous", outcome="ok") == 1
    assert sample(text, "dsr_graphql_operations_total", operation="Broken", outcome="error") == 1
    assert sample(text, "dsr_graphql_operation_seconds_count", operation="Purposes", type="query") == 2


def test_operation_names_are_bounded() -> None:
    metrics = GraphQLMetrics(CollectorRegistry(), max_names=2)
    assert [metrics.label(n) for n in ("A", "B", "C", "A", None, "not a name!")] == [
        "A", "B", "other", "A", "anonymous", "other",
    ]  # fmt: skip


async def test_open_requests_and_the_outbox_backlog_are_read_at_scrape_time(gql: GraphQLClient) -> None:
    text = await scrape(gql)
    assert sample(text, "dsr_outbox_backlog") == 0
    assert sample(text, "dsr_open_requests", status="SUBMITTED") is None
    await create_request(gql, "customer-1")
    await create_request(gql, "customer-2", type="PORTABILITY")
    await submit(gql, None, email="amy@example.com")  # anonymous: a verification code waits in the outbox
    text = await scrape(gql)
    assert sample(text, "dsr_open_requests", status="SUBMITTED", sla_status="ON_TRACK") == 2
    assert sample(text, "dsr_open_requests", status="AWAITING_VERIFICATION") == 1
    assert sample(text, "dsr_outbox_backlog") == 1
    assert (sample(text, "dsr_outbox_oldest_pending_seconds") or 0) >= 0


async def test_worker_failures_and_retries_are_counted(live: Live) -> None:
    gql, metrics = live.gql, live.state["worker_metrics"]
    calls = 0
    stop = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")
        stop.set()

    await run_periodically("sla-sweep", flaky, 0.001, stop, metrics)

    class Outbox:
        async def deliver_due(self, mailer: object) -> DeliveryRun:
            return DeliveryRun(sent=1, failed=2, held=0, retried=3)

    await deliver(Outbox(), object(), metrics)  # type: ignore[arg-type]
    text = await scrape(gql)
    assert sample(text, "dsr_worker_step_failures_total", step="sla-sweep") == 1
    assert sample(text, "dsr_worker_step_retries_total", step="sla-sweep") == 1
    assert sample(text, "dsr_worker_step_failures_total", step="outbox-delivery") == 2
    assert sample(text, "dsr_worker_step_retries_total", step="outbox-delivery") == 3


@pytest.fixture
async def failing_smtp_app(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    # A port nobody listens on: every delivery fails at once; the in-process worker polls quickly.
    settings = make_settings(
        database_url, worker_in_process=True, smtp_host="127.0.0.1", smtp_port=9, outbox_poll_seconds=0.05
    )
    application = create_app(settings)
    async with (
        LifespanManager(application) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        yield http


async def test_the_in_process_worker_counts_failed_deliveries(failing_smtp_app: httpx.AsyncClient) -> None:
    gql = GraphQLClient(failing_smtp_app, None)  # type: ignore[arg-type]
    await submit(gql, None, email="amy@example.com")
    for _ in range(200):  # wait for the loop's first pass (not a timing assertion: only a bound)
        text = (await failing_smtp_app.get("/metrics")).text
        if sample(text, "dsr_worker_step_failures_total", step="outbox-delivery"):
            break
        await asyncio.sleep(0.05)
    assert sample(text, "dsr_worker_step_failures_total", step="outbox-delivery") == 1
    assert sample(text, "dsr_outbox_backlog") == 1  # still pending: retried later with backoff


async def test_setconsents_batches_are_measured(gql: GraphQLClient) -> None:
    await seed_catalogue(gql)
    subjects = [f"m-{i}" for i in range(6)]
    for subject in subjects:
        await set_consents(gql, choice(), token=subject_token(subject))  # one at a time: batches of 1
    together = [set_consents(gql, choice(granted=False), token=subject_token(s)) for s in subjects]
    assert {r["__typename"] for r in await asyncio.gather(*together)} == {"SetConsentsSuccess"}
    text = await scrape(gql)
    batches = sample(text, "dsr_consent_write_batch_size_count")
    assert sample(text, "dsr_consent_write_batch_size_sum") == 12
    assert batches is not None
    assert 6 < batches < 12  # the six calls made together shared transactions
    assert (sample(text, "dsr_consent_write_batch_size_bucket", le="1.0") or 0) >= 6  # the lone ones
