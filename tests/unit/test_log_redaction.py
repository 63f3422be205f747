"""Tokens in paths never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest

from dsr_gateway.http.logging import JsonFormatter, redact_database_values, redact_tokens


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "DETAIL:  Key (external_id)=(cust-42) already exists.",
            "DETAIL:  Key (external_id)=([redacted]) already exists.",
        ),
        (
            "DETAIL:  Key (subject_id, sequence)=(7, 3) already exists.",
            "DETAIL:  Key (subject_id, sequence)=([redacted]) already exists.",
        ),
        (
            'DETAIL:  Key (lower(email::text))=(a(b)@x.org) is not present in table "subject".',
            'DETAIL:  Key (lower(email::text))=([redacted]) is not present in table "subject".',
        ),
        (
            "DETAIL:  Failing row contains (1, alice@example.com, null).",
            "DETAIL:  Failing row contains ([redacted]).",
        ),
        ('duplicate key value violates unique constraint "ix_purpose_key"', None),
    ],
)
def test_database_values_in_error_details_are_redacted(text: str, expected: str | None) -> None:
    assert redact_database_values(text) == (expected if expected is not None else text)
