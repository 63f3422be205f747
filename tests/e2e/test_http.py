"""The HTTP edge end to end, on SQLite and PostgreSQL: probes, metrics, request ids, limits,
GraphQL over HTTP, error masking, and what development and production expose."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from dsr_gateway.app import create_app
from dsr_gateway.http.logging import JsonFormatter
from dsr_gateway.http.middleware.metrics import route_of
from dsr_gateway.services.catalogue import CatalogueService
from tests.support.app import GraphQLClient, admin_token, make_settings
from tests.support.factories import UPSERT_PURPOSE, create_purpose, purpose_input

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


@asynccontextmanager
async def client_for(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app built with settings of the test's choosing."""
    application = create_app(make_settings(database_url, **overrides))
    async with (
        LifespanManager(application) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        yield http


# --- probes and metrics --------------------------------------------------------------------------


async def test_healthz_and_readyz(gql: GraphQLClient) -> None:
    health = await gql.http.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await gql.http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok"})


@pytest.mark.parametrize(
    "unreachable",
    [
        "sqlite+aiosqlite:////nonexistent-directory/for/sure/dsr.db",
        pytest.param("postgresql+asyncpg://nobody@127.0.0.1:1/nothing", marks=pytest.mark.postgres),
    ],
    ids=["sqlite", "postgres"],
)
async def test_readyz_is_503_when_the_database_is_unreachable(
    unreachable: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(unreachable) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "unreachable"}
    assert "the database does not answer" in caplog.text


def counter(metrics_text: str, route: str, method: str, status: str) -> float:
    pattern = r"^dsr_http_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$"
    for match in re.finditer(pattern, metrics_text, re.MULTILINE):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels == {"route": route, "method": method, "status": status}:
            return float(match["value"])
    return 0.0


async def test_metrics_count_the_requests_made(gql: GraphQLClient) -> None:
    for _ in range(3):
        await gql("{ purposes { key } }")
    await gql.http.get("/healthz")
    await gql.post("{ nope }")
    response = await gql.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE dsr_http_requests_total counter" in text
    assert counter(text, "/graphql", "POST", "200") == 3
    assert counter(text, "/graphql", "POST", "400") == 1
    assert counter(text, "/healthz", "GET", "200") == 1
    assert 'dsr_http_request_seconds_count{route="/graphql"} 4.0' in text


async def test_metrics_never_label_raw_paths(gql: GraphQLClient) -> None:
    await gql.http.get("/unsubscribe/secret-token-in-path")
    await gql.http.get("/no/such/page")
    text = (await gql.http.get("/metrics")).text
    assert "secret-token-in-path" not in text
    assert counter(text, "/unsubscribe", "GET", "404") == 1
    assert counter(text, "other", "GET", "404") == 1


async def test_metrics_count_unknown_methods_under_one_label(gql: GraphQLClient) -> None:
    # A client may send any token as the method: each would be a new series kept for the process's life.
    for method in ("BREW", "X-SCAN-1", "X-SCAN-2"):
        await gql.http.request(method, "/healthz")
    text = (await gql.http.get("/metrics")).text
    assert "BREW" not in text
    assert "X-SCAN" not in text
    assert counter(text, "/healthz", "OTHER", "405") == 3


# --- request ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("abcdef12-3456", True),
        ("trace.id_0123456789", True),
        ("short", False),
        ("has spaces in it", False),
        ("x" * 65, False),
        ("<script>alert(1)</script>", False),
        (None, False),
    ],
)
async def test_the_request_id_is_echoed_when_sane_and_generated_otherwise(
    gql: GraphQLClient, sent: str | None, echoed: bool
) -> None:
    headers = {"X-Request-ID": sent} if sent else {}
    for response in (
        await gql.http.get("/healthz", headers=headers),
        await gql.post("{ purposes { key } }", headers=headers),
    ):
        request_id = response.headers["x-request-id"]
        if echoed:
            assert request_id == sent
        else:
            assert re.fullmatch(r"[0-9a-f]{32}", request_id)


# --- body size limit -----------------------------------------------------------------------------


def padded_mutation(size: int) -> bytes:
    body = {"query": UPSERT_PURPOSE, "variables": {"input": purpose_input()}, "padding": "x" * size}
    return json.dumps(body).encode()


async def test_a_body_over_the_limit_is_413_and_nothing_runs(database_url: str) -> None:
    async with client_for(database_url, max_body_bytes=4096) as http:
        headers = {"Authorization": f"Bearer {admin_token()}", "Content-Type": "application/json"}
        declared = await http.post("/graphql", content=padded_mutation(8000), headers=headers)

        async def chunks() -> AsyncIterator[bytes]:
            body = padded_mutation(8000)
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        streamed = await http.post("/graphql", content=chunks(), headers=headers)
        for response in (declared, streamed):
            assert response.status_code == 413
            assert response.json() == {
                "errors": [
                    {
                        "message": "The request body is larger than 4096 bytes.",
                        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                    }
                ]
            }
        purposes = await http.post("/graphql", json={"query": "{ purposes { key } }"})
        assert purposes.json() == {"data": {"purposes": []}}
        # Just under the limit still works.
        small = await http.post("/graphql", content=padded_mutation(100), headers=headers)
        assert small.json()["data"]["upsertPurpose"]["__typename"] == "UpsertPurposeSuccess"


# --- GraphQL over HTTP ---------------------------------------------------------------------------


async def test_get_runs_queries(gql: GraphQLClient) -> None:
    await create_purpose(gql)
    response = await gql.http.get("/graphql", params={"query": "{ purposes { key } }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"purposes": [{"key": "marketing_email"}]}}


async def test_get_refuses_mutations_and_runs_nothing(gql: GraphQLClient) -> None:
    response = await gql.http.get(
        "/graphql",
        params={"query": UPSERT_PURPOSE, "variables": json.dumps({"input": purpose_input()})},
        headers={"Authorization": f"Bearer {admin_token()}"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {"errors": [{"message": "mutations are not allowed when using GET"}]}
    assert (await gql("{ purposes { key } }"))["purposes"] == []


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        ("application/json", "application/json"),
        (None, "application/json"),
    ],
)
async def test_the_response_media_type_follows_accept(
    gql: GraphQLClient, accept: str | None, content_type: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    ok = await gql.post("{ purposes { key } }", headers=headers)
    assert ok.status_code == 200
    assert ok.headers["content-type"].split(";")[0] == content_type
    assert ok.json() == {"data": {"purposes": []}}
    bad = await gql.post("{ purposes { nope } }", headers=headers)
    assert bad.status_code == 400
    assert bad.headers["content-type"].split(";")[0] == content_type


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Unable to parse request body as JSON"),
        (b'{"variables": {}}', "No GraphQL query found in the request"),
    ],
)
async def test_a_malformed_request_is_400(gql: GraphQLClient, body: bytes, message: str) -> None:
    response = await gql.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert message in response.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "{ " + " ".join(f"a{i}: purposes {{ key }}" for i in range(31)) + " }",
            "31 aliases found. Allowed: 30",
        ),
        ("{ purposes { " + "key " * 5000 + "} }", "Document contains more than 5000 tokens"),
    ],
    ids=["aliases", "tokens"],
)
async def test_query_limits_give_a_clear_400(gql: GraphQLClient, query: str, message: str) -> None:
    response = await gql.post(query)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["data"] is None
    assert message in body["errors"][0]["message"]


async def test_queries_within_the_limits_run(gql: GraphQLClient) -> None:
    await gql("{ " + " ".join(f"a{i}: purposes {{ key }}" for i in range(30)) + " }")
    await gql("{ purposes { " + "key " * 100 + "} }")


async def test_the_depth_limit_gives_a_clear_400(database_url: str) -> None:
    # The schema is shallow (upsertPurpose > purpose > topics > key is the deepest), so the limit
    # is set low here to reach it.
    async with client_for(database_url, max_query_depth=2) as http:
        headers = {"Authorization": f"Bearer {admin_token()}"}
        deep = await http.post(
            "/graphql",
            json={"query": UPSERT_PURPOSE, "variables": {"input": purpose_input()}},
            headers=headers,
        )
        assert deep.status_code == 400
        assert deep.json()["errors"][0]["message"] == "'anonymous' exceeds maximum operation depth of 2"
        shallow = await http.post("/graphql", json={"query": "{ purposes { topics { key } } }"})
        assert shallow.json() == {"data": {"purposes": []}}


# --- unexpected errors ---------------------------------------------------------------------------


class JsonLines(logging.Handler):
    """Formats each record when it is emitted, so the request id of the moment is captured."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    handler = JsonLines()
    logger = logging.getLogger("dsr_gateway")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_an_unexpected_error_is_masked_and_logged_with_the_request_id(
    gql: GraphQLClient, json_logs: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: CatalogueService) -> list[object]:
        raise RuntimeError("connection to db-internal.corp:5432 failed for user secret_admin")

    monkeypatch.setattr(CatalogueService, "purposes", broken)
    response = await gql.post("{ purposes { key } }", headers={"X-Request-ID": "req-0123456789"})

    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": "Unexpected error; it was logged with this request's id.",
            "locations": [{"line": 1, "column": 3}],
            "path": ["purposes"],
        }
    ]
    assert "secret_admin" not in response.text
    assert "Traceback" not in response.text
    logged = [line for line in json_logs.lines if line["level"] == "ERROR"]
    assert len(logged) == 1
    assert logged[0]["request_id"] == "req-0123456789"
    assert "secret_admin" in logged[0]["exception"]  # the operator sees the cause, the caller does not


async def test_an_unexpected_error_in_a_mutation_is_masked_too(
    gql: GraphQLClient, json_logs: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: CatalogueService, *args: object) -> object:
        raise KeyError("internal-detail")

    monkeypatch.setattr(CatalogueService, "upsert_purpose", broken)
    response = await gql.post(UPSERT_PURPOSE, {"input": purpose_input()}, token=admin_token())
    assert response.status_code == 200
    assert "internal-detail" not in response.text
    assert (
        response.json()["errors"][0]["message"] == "Unexpected error; it was logged with this request's id."
    )
    assert [line["request_id"] for line in json_logs.lines if line["level"] == "ERROR"] == [
        response.headers["x-request-id"]
    ]


async def test_expected_errors_are_not_logged_as_errors(gql: GraphQLClient, json_logs: JsonLines) -> None:
    await gql.post("{ purposes { nope } }")
    await gql(UPSERT_PURPOSE, {"input": purpose_input(key="Bad Key")}, token=admin_token())
    assert [line for line in json_logs.lines if line["level"] == "ERROR"] == []


# --- development and production ------------------------------------------------------------------

INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_development_offers_introspection_and_graphiql(gql: GraphQLClient) -> None:
    assert (await gql(INTROSPECTION))["__schema"]["queryType"]["name"] == "Query"
    page = await gql.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_production_hides_introspection_graphiql_and_suggestions(database_url: str) -> None:
    async with client_for(database_url, env="production") as http:
        introspection = await http.post("/graphql", json={"query": INTROSPECTION})
        assert introspection.status_code == 400
        assert "introspection has been disabled" in introspection.text
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 404
        assert "graphiql" not in page.text.lower()
        typo = await http.post("/graphql", json={"query": "{ purpose { key } }"})
        assert typo.status_code == 400
        assert "Did you mean" not in typo.text
        works = await http.post("/graphql", json={"query": "{ purposes { key } }"})
        assert works.json() == {"data": {"purposes": []}}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/reconfirm/not-a-token"),
        ("GET", "/unsubscribe/not-a-token"),
        ("POST", "/callbacks/fulfilment/1/2"),
    ],
)
async def test_link_and_callback_routes_ignore_another_systems_authorization_header(
    gql: GraphQLClient, method: str, path: str
) -> None:
    # They carry their own proof (a signed link, a signed body): a foreign bearer token is not a 401.
    response = await gql.http.request(method, path, headers={"Authorization": "Bearer someone-elses-token"})
    assert response.status_code != 401, response.text
    assert response.status_code in (400, 403, 404)


def test_link_routes_have_their_own_metrics_label() -> None:
    assert route_of("/reconfirm/abc") == "/reconfirm"
    assert route_of("/callbacks/fulfilment/1/2") == "/callbacks"
