"""Tokens in paths never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest

from dsr_gateway.http.logging import JsonFormatter, redact_tokens


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            '127.0.0.1:1 - "GET /exports/abc.DEF-123 HTTP/1.1" 200',
            '127.0.0.1:1 - "GET /exports/[redacted] HTTP/1.1" 200',
        ),
        ('"POST /unsubscribe/tok_en HTTP/1.1" 200', '"POST /unsubscribe/[redacted] HTTP/1.1" 200'),
        ('"GET /reconfirm/xyz?x=1 HTTP/1.1" 200', '"GET /reconfirm/[redacted]?x=1 HTTP/1.1" 200'),
        ('"POST /graphql HTTP/1.1" 200', '"POST /graphql HTTP/1.1" 200'),
        # A query sent with GET carries its variables (external ids, emails) in the query string.
        (
            '"GET /graphql?query=%7Bsubject(externalId%3A%22cust-42%22)%7D&variables=%7B%7D HTTP/1.1" 200',
            '"GET /graphql?[redacted] HTTP/1.1" 200',
        ),
        ('"GET /graphql?query={me{externalId}} HTTP/1.1" 200', '"GET /graphql?[redacted] HTTP/1.1" 200'),
    ],
)
def test_tokens_in_paths_are_redacted(message: str, expected: str) -> None:
    assert redact_tokens(message) == expected


def test_the_json_formatter_redacts() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '"GET /exports/%s HTTP/1.1"', ("secret",), None
    )
    line = json.loads(JsonFormatter().format(record))
    assert "secret" not in line["message"]
    assert line["message"] == '"GET /exports/[redacted] HTTP/1.1"'
