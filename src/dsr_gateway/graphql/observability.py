"""Per-operation metrics and the personal-data access record, as one schema extension.

Resolvers that return a subject's personal data call `note_access` (collected on the context); after the
operation the extension records them all with one INSERT and observes the operation's count and latency.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from strawberry.extensions import SchemaExtension

from dsr_gateway.graphql.context import Info
from dsr_gateway.services.audit_trail import AccessNote, is_recorded

logger = logging.getLogger("dsr_gateway.graphql")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
MAX_OPERATION_NAMES = 200
ACCESS_KEY = "personal_data_access"


class GraphQLMetrics:
    """Operation counts and latencies, labelled by operation name with a bounded set of names.

    Names are the client's: only well-formed names are used, and after MAX_OPERATION_NAMES distinct ones
    every new name counts as "other", so a client cannot grow the label set without limit.
    """

    def __init__(self, registry: CollectorRegistry, max_names: int = MAX_OPERATION_NAMES) -> None:
        self.operations = Counter(
            "dsr_graphql_operations",
            "GraphQL operations by operation name, type and outcome (ok, error)",
            ["operation", "type", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "dsr_graphql_operation_seconds",
            "GraphQL operation latency by operation name and type",
            ["operation", "type"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._names: set[str] = set()
        self._max_names = max_names
        self._children: dict[tuple[str, str, bool], tuple[Any, Any]] = {}

    def label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _NAME.fullmatch(name):
            return "other"
        if name not in self._names:
            if len(self._names) >= self._max_names:
                return "other"
            self._names.add(name)
        return name

    def observe(self, name: str | None, kind: str, ok: bool, seconds: float) -> None:
        # The labelled children kept here: prometheus_client's `labels()` checks and locks on every call
        # (the label set is bounded by `label`).
        key = (self.label(name), kind, ok)
        children = self._children.get(key)
        if children is None:
            label = key[0]
            children = self._children[key] = (
                self.operations.labels(label, kind, "ok" if ok else "error"),
                self.latency.labels(label, kind),
            )
        children[0].inc()
        children[1].observe(seconds)


def note_access(
    info: Info, what: str, subject_external_id: str | None = None, request_id: str | None = None
) -> None:
    """Remember that this operation read a subject's (or a request's) personal data."""
    notes: list[AccessNote] = info.context.loaders.setdefault(ACCESS_KEY, [])
    notes.append(AccessNote(what, subject_external_id, request_id))


def note_checks(info: Info, what: str, subject_external_ids: Collection[str]) -> None:
    """The consentCheck hot path: noted for a background write (one set update), never awaited."""
    ctx = info.context
    batcher = getattr(ctx.request.state, "access_batcher", None)
    principal = ctx.principal
    if batcher is None or not is_recorded(principal):
        return
    assert principal.id is not None
    name = info.operation.name.value if info.operation.name else "anonymous"
    batcher.note(principal.kind.value, principal.id, name, what, subject_external_ids)


class ObservabilityExtension(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        started = time.perf_counter()
        yield
        execution = self.execution_context
        context: Any = execution.context
        name = execution.operation_name
        errors = bool(execution.pre_execution_errors) or bool(
            execution.result is not None and execution.result.errors
        )
        try:
            kind = execution.operation_type.value
        except RuntimeError:  # the document did not parse
            kind = "unknown"
        state = getattr(getattr(context, "request", None), "state", None)
        metrics = getattr(state, "graphql_metrics", None)
        if metrics is not None:
            metrics.observe(name, kind, not errors, time.perf_counter() - started)
        await _record_reads(context, name)

    async def on_stream_result(self, result: Any) -> AsyncIterator[None]:
        # A subscription sends many results from one operation (and a WebSocket keeps one context for
        # all its operations): each event's reads are recorded, once, before it is sent (after it, a
        # client closing the subscription would cancel the recording).
        await _record_reads(self.execution_context.context, self.execution_context.operation_name)
        yield


async def _record_reads(context: Any, name: str | None) -> None:
    """Record the reads noted so far and forget them, so a later event or operation on the same
    context does not record them again."""
    notes = context.loaders.pop(ACCESS_KEY, None) if context is not None else None
    if notes:
        try:
            await context.services.audit_trail.record(context.principal, name or "anonymous", notes)
        except Exception:
            logger.exception("could not record %d personal-data reads", len(notes))
