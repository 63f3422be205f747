"""Structured (JSON) logs, each line with the request id; identifiers are never logged in clear."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from dsr_gateway.http.middleware.request_id import request_id_var

# Paths that carry bearer credentials (download and unsubscribe tokens) must not reach the logs.
_TOKEN_IN_PATH = re.compile(r"(/(?:exports|unsubscribe|reconfirm)/)[^\s\"?/]+")


# A GraphQL query sent with GET carries its variables (external ids, emails) in the query string.
_GRAPHQL_QUERY_STRING = re.compile(r"(/graphql)\?[^\s\"]+")


# PostgreSQL's DETAIL of a constraint violation repeats the values: the key ("Key (external_id)=(...)
# already exists", also of a foreign key) or the whole row ("Failing row contains (...)").
_KEY_VALUES = re.compile(r"(Key \((?:[^()]|\([^()]*\))*\))=\((?:[^()]|\([^()]*\))*\)")
_FAILING_ROW = re.compile(r"(Failing row contains )\(.*\)")


def redact_database_values(text: str) -> str:
    """A database error's text with the values of its DETAIL replaced; the constraint stays."""
    text = _KEY_VALUES.sub(r"\1=([redacted])", text)
    return _FAILING_ROW.sub(r"\1([redacted])", text)


def redact_tokens(message: str) -> str:
    message = _GRAPHQL_QUERY_STRING.sub(r"\1?[redacted]", message)
    return _TOKEN_IN_PATH.sub(r"\1[redacted]", message)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_database_values(redact_tokens(record.getMessage())),
            "request_id": request_id_var.get(),
        }
        if record.exc_info:
            entry["exception"] = redact_database_values(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
