"""The GraphQL endpoint's JSON: written by orjson as json would write it; read by json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from cross_web import HTTPException

from dsr_gateway.graphql.schema import build_schema
from dsr_gateway.http.graphql_app import GatewayGraphQL


@pytest.fixture(scope="module")
def view() -> GatewayGraphQL:
    return GatewayGraphQL(build_schema())


@pytest.mark.parametrize(
    "data",
    [
        {"data": {"consentCheck": [{"allowed": True, "reason": "GRANTED"}] * 3}},
        {"data": None, "errors": [{"message": "Naïve “quotes” and 日本語 \u2028", "path": ["a", 0]}]},
        {"data": {"big": 2**70, "float": 0.1}},  # an integer orjson cannot encode: json's output
    ],
)
def test_encoded_text_reads_back_as_the_same_data(view: GatewayGraphQL, data: dict[str, object]) -> None:
    encoded = view.encode_json(data)
    assert isinstance(encoded, str)  # text: WebSocket messages stay text frames
    assert json.loads(encoded) == data


@pytest.mark.parametrize(
    "body",
    [
        b'{"variables": {"details": {"n": 123456789012345678901234567890}}}',  # past 64 bits: exact
        b'{"variables": {"n": -9223372036854775809, "m": 9223372036854775807}}',
        b'{"variables": {"x": NaN}}',  # json accepts it; orjson does not
        '{"query": "{ __typename }", "variables": {"name": "Zoë"}}'.encode(),
    ],
)
def test_bodies_read_as_json_reads_them(view: GatewayGraphQL, body: bytes) -> None:
    expected = json.loads(body)
    got = view.parse_json(body)
    assert json.dumps(got) == json.dumps(expected)  # NaN != NaN, so compare the text


def test_values_json_would_refuse_are_refused(view: GatewayGraphQL) -> None:
    @dataclass
    class Row:
        secret: str

    for value in (datetime(2026, 1, 1, tzinfo=UTC), Row("internal")):
        with pytest.raises(TypeError):
            view.encode_json({"data": {"x": value}})


def test_a_body_that_is_not_json_is_a_bad_request(view: GatewayGraphQL) -> None:
    assert view.parse_json(b'{"query": "{ __typename }"}') == {"query": "{ __typename }"}
    with pytest.raises(HTTPException) as refused:
        view.parse_json(b'{"query": ')
    assert refused.value.status_code == 400
