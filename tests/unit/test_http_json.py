"""The GraphQL endpoint's JSON: orjson, with json's behaviour where orjson would refuse."""

from __future__ import annotations

import json

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


def test_a_body_that_is_not_json_is_a_bad_request(view: GatewayGraphQL) -> None:
    assert view.parse_json(b'{"query": "{ __typename }"}') == {"query": "{ __typename }"}
    with pytest.raises(HTTPException) as refused:
        view.parse_json(b'{"query": ')
    assert refused.value.status_code == 400
