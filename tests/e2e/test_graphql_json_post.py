"""The common GraphQL request (one operation POSTed as JSON) takes a shorter way through the view; every
request must get the same answer (status, content type, body) as through Strawberry's general `run`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from dsr_gateway.http.graphql_app import NOT_AN_OBJECT, GatewayGraphQL
from tests.support.app import GraphQLClient, admin_token, subject_token

JSON = "application/json"
SUBSCRIPTION = "subscription { privacyNoticePublished { __typename } }"
SET_UNKNOWN = (
    "mutation($i: SetConsentsInput!) { setConsents(input: $i) { __typename ... on UserError { message } } }"
)

# (id, body as sent, content type, accept header, whether the shorter way takes it)
CASES: list[tuple[str, bytes, str, str, bool]] = [
    ("typename", b'{"query": "{ __typename }"}', JSON, "", True),
    ("charset", b'{"query": "{ __typename }"}', "application/json; charset=utf-8", "", True),
    (
        "graphql-response accept",
        b'{"query": "{ __typename }"}',
        JSON,
        "application/graphql-response+json",
        True,
    ),
    ("syntax error", b'{"query": "{"}', JSON, "", True),
    ("validation error", b'{"query": "{ nope }"}', JSON, "", True),
    ("no query", b"{}", JSON, "", True),
    ("null query", b'{"query": null}', JSON, "", True),
    (
        "operation by name",
        b'{"query": "query A { __typename } query B { b: __typename }", "operationName": "B"}',
        JSON,
        "",
        True,
    ),
    ("unknown operation name", b'{"query": "query A { __typename }", "operationName": "Z"}', JSON, "", True),
    (
        "two operations, no name",
        b'{"query": "query A { __typename } query B { __typename }"}',
        JSON,
        "",
        True,
    ),
    ("subscription over POST", json.dumps({"query": SUBSCRIPTION}).encode(), JSON, "", True),
    ("extensions object", b'{"query": "{ __typename }", "extensions": {"x": 1}}', JSON, "", True),
    ("query not a string", b'{"query": 1}', JSON, "", False),
    ("variables not an object", b'{"query": "{ __typename }", "variables": [1]}', JSON, "", False),
    ("extensions not an object", b'{"query": "{ __typename }", "extensions": "x"}', JSON, "", False),
    ("batch", b'[{"query": "{ __typename }"}]', JSON, "", False),
    ("not JSON", b"{", JSON, "", True),
    ("NaN (json accepts it)", b'{"query": "{ __typename }", "variables": {"x": NaN}}', JSON, "", True),
    (
        "big integer",
        b'{"query": "{ __typename }", "variables": {"x": 123456789012345678901234567890}}',
        JSON,
        "",
        True,
    ),
    ("plain text", b"{ __typename }", "text/plain", "", False),
    ("media type in capitals", b'{"query": "{ __typename }"}', "Application/JSON", "", False),
    ("capitals and charset", b'{"query": "{ __typename }"}', "APPLICATION/JSON; charset=utf-8", "", False),
    ("space before", b'{"query": "{ __typename }"}', " application/json", "", True),
    ("event stream accepted", b'{"query": "{ __typename }"}', JSON, "text/event-stream", False),
    (
        "multipart accepted",
        b'{"query": "{ __typename }"}',
        JSON,
        "multipart/mixed;subscriptionSpec=1.0",
        False,
    ),
]


async def _answer(http: httpx.AsyncClient, body: bytes, content_type: str, accept: str, token: str) -> Any:
    headers = {"content-type": content_type, "authorization": f"Bearer {token}"}
    if accept:
        headers["accept"] = accept
    response = await http.post("/graphql", content=body, headers=headers)
    try:
        payload: Any = response.json()
    except ValueError:
        payload = response.text
    return response.status_code, response.headers.get("content-type"), payload


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "shorter"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
async def test_the_same_answer_either_way(
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    content_type: str,
    accept: str,
    shorter: bool,
) -> None:
    taken: list[bool] = []
    shorter_way = GatewayGraphQL._run_json_post

    async def spied(self: GatewayGraphQL, request: Any) -> Any:
        try:
            response = await shorter_way(self, request)
        except Exception:  # a refusal (400) raised on the way is taken too
            taken.append(True)
            raise
        taken.append(response is not None)
        return response

    monkeypatch.setattr(GatewayGraphQL, "_run_json_post", spied)
    token = admin_token()
    answer = await _answer(gql.http, body, content_type, accept, token)
    assert taken == [shorter]

    async def never(self: GatewayGraphQL, request: Any) -> None:
        return None

    monkeypatch.setattr(GatewayGraphQL, "_run_json_post", never)
    assert await _answer(gql.http, body, content_type, accept, token) == answer


async def test_a_mutation_and_its_typed_error_the_same_either_way(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.dumps(
        {
            "query": SET_UNKNOWN,
            "variables": {
                "i": {
                    "noticeVersion": 1,
                    "method": "CHECKBOX",
                    "choices": [{"purpose": "no_such", "granted": True}],
                }
            },
        }
    ).encode()
    token = subject_token("json-post-subject")
    answer = await _answer(gql.http, body, JSON, "", token)
    assert answer[0] == 200
    assert answer[2]["data"]["setConsents"]["__typename"] in {"ValidationError", "NotFoundError"}

    async def never(self: GatewayGraphQL, request: Any) -> None:
        return None

    monkeypatch.setattr(GatewayGraphQL, "_run_json_post", never)
    assert await _answer(gql.http, body, JSON, "", token) == answer


@pytest.mark.parametrize(
    "body", [b'"{ __typename }"', b"42", b"null", b"true"], ids=["string", "number", "null", "true"]
)
@pytest.mark.parametrize("accept", ["", "text/event-stream", "multipart/mixed"])
async def test_a_body_that_is_not_an_object_is_refused_with_what_to_send(
    gql: GraphQLClient, body: bytes, accept: str
) -> None:
    # Whatever the client accepts (Strawberry's own dispatch failed on these with a 500).
    status, _, payload = await _answer(gql.http, body, JSON, accept, admin_token())
    assert status == 400
    assert payload == {"errors": [{"message": NOT_AN_OBJECT}]}
