"""An HTTP data system: the gateway POSTs signed JSON to the system's own endpoints.

Failures are classified for the worker: timeouts, connection errors, 429 and 5xx raise
RetryableConnectorError; other 4xx and answers that break the contract raise PermanentConnectorError. In
`callback` mode an endpoint may answer 202 and later POST the result to the `callback_url` it was given; the
result is then returned with `pending=True`. The wire format is documented in docs/fulfilment.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import httpx

from dsr_gateway.connectors.http_signing import signature_headers, verify_signature
from dsr_gateway.connectors.systems_config import HttpSystem
from dsr_gateway.services.fulfilment_ports import (
    ConsentChange,
    ConsentNotification,
    ErasureAction,
    ErasureResult,
    FieldErasure,
    FieldRectification,
    LegalHold,
    PermanentConnectorError,
    RecordBatch,
    RectifyOutcome,
    RectifyResult,
    RetryableConnectorError,
    StepRef,
    SubjectIdentifiers,
)

MAX_ACCESS_PAGES = 100_000
ERROR_BODY_SHOWN = 200


class HttpConnector:
    def __init__(
        self,
        name: str,
        config: HttpSystem,
        secret: bytes,
        client: httpx.AsyncClient,
        *,
        callback_base_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._config = config
        self._secret = secret
        self._client = client
        self._callback_base_url = callback_base_url.rstrip("/") if callback_base_url else None
        self._clock = clock

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        """The HTTP client is shared and closed by its owner (the composition root)."""

    async def access(
        self, subject: SubjectIdentifiers, step: StepRef | None = None
    ) -> AsyncIterator[RecordBatch]:
        path = self._config.endpoints.access
        if path is None:
            return
        cursor: str | None = None
        for _ in range(MAX_ACCESS_PAGES):
            body = await self._call(path, {"subject": _subject(subject), "cursor": cursor}, step)
            tables = body.get("tables")
            if not isinstance(tables, dict):
                raise self._contract("the access answer has no 'tables' object")
            for table, records in tables.items():
                if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                    raise self._contract(f"tables.{table} is not a list of objects")
                if records:
                    columns = tuple(dict.fromkeys(k for r in records for k in r))
                    rows = tuple(tuple(r.get(c) for c in columns) for r in records)
                    yield RecordBatch(self._name, str(table), columns, rows)
            cursor = body.get("next")
            if not cursor:
                return
        raise self._contract(f"the access answer kept paging past {MAX_ACCESS_PAGES} pages")

    async def rectify(
        self, subject: SubjectIdentifiers, changes: Mapping[str, object], step: StepRef | None = None
    ) -> RectifyResult:
        path = self._config.endpoints.rectification
        if path is None:
            fields = tuple(
                FieldRectification(self._name, None, f, RectifyOutcome.NOT_HELD, new_value=v)
                for f, v in changes.items()
            )
            return RectifyResult(self._name, fields)
        body = await self._call(path, {"subject": _subject(subject), "changes": dict(changes)}, step)
        if body.get("accepted") and "results" not in body:
            return RectifyResult(self._name, (), pending=True)
        return self.parse_rectification(body, changes)

    def parse_rectification(self, body: Mapping[str, Any], changes: Mapping[str, object]) -> RectifyResult:
        """A rectification answer (synchronous, or posted to the callback) as a result."""
        sensitive = set(self._config.sensitive_fields)
        results = []
        for item in self._results(body):
            try:
                outcome = RectifyOutcome(item["outcome"])
                field = str(item["field"])
            except (KeyError, ValueError) as exc:
                raise self._contract(f"a rectification result is not understood: {exc}") from None
            results.append(
                FieldRectification(
                    self._name,
                    item.get("table"),
                    field,
                    outcome,
                    int(item.get("rows", 0)),
                    tuple(item.get("old_values", ())),
                    changes.get(field),
                    field in sensitive,
                )
            )
        return RectifyResult(self._name, tuple(results))

    async def erase(
        self, subject: SubjectIdentifiers, holds: Sequence[LegalHold], step: StepRef | None = None
    ) -> ErasureResult:
        path = self._config.endpoints.erasure
        if path is None:
            reason = "the system declares no erasure endpoint"
            return ErasureResult(self._name, (FieldErasure("*", None, ErasureAction.KEPT, reason=reason),))
        payload = {
            "subject": _subject(subject),
            "holds": [{"category": h.category, "reason": h.reason} for h in holds],
        }
        body = await self._call(path, payload, step)
        if body.get("accepted") and "results" not in body:
            return ErasureResult(self._name, (), pending=True)
        return self.parse_erasure(body)

    def parse_erasure(self, body: Mapping[str, Any]) -> ErasureResult:
        """An erasure answer (synchronous, or posted to the callback) as a result."""
        items = []
        for item in self._results(body):
            try:
                action = ErasureAction(item["action"])
            except (KeyError, ValueError):
                raise self._contract(f"unknown erasure action {item.get('action')!r}") from None
            items.append(
                FieldErasure(
                    str(item.get("table", "*")),
                    item.get("field"),
                    action,
                    int(item.get("rows", 0)),
                    item.get("category"),
                    item.get("reason"),
                )
            )
        return ErasureResult(self._name, tuple(items))

    async def notify_consent_change(
        self,
        subject: SubjectIdentifiers,
        purposes: Sequence[str],
        change: ConsentChange,
        step: StepRef | None = None,
    ) -> ConsentNotification:
        path = self._config.endpoints.consent
        if path is None:
            detail = "the system declares no consent endpoint"
            return ConsentNotification(self._name, tuple(purposes), change, False, detail)
        payload = {"subject": _subject(subject), "purposes": list(purposes), "change": change.value}
        body = await self._call(path, payload, step)
        pending = bool(body.get("accepted")) and "told" not in body
        return ConsentNotification(
            self._name, tuple(purposes), change, True, str(body.get("detail", "")), pending=pending
        )

    def parse_consent(
        self, body: Mapping[str, Any], purposes: Sequence[str], change: ConsentChange
    ) -> ConsentNotification:
        return ConsentNotification(self._name, tuple(purposes), change, True, str(body.get("detail", "")))

    def verify_callback(self, body: bytes, timestamp: str | None, signature: str | None) -> None:
        """A callback is signed like our calls, with the same shared secret; raises InvalidSignature."""
        verify_signature(self._secret, body, timestamp, signature, self._clock())

    # -- the wire ---------------------------------------------------------------------------------------

    async def _call(self, path: str, payload: dict[str, Any], step: StepRef | None) -> dict[str, Any]:
        if step is not None:
            payload["request_id"] = step.request_id
            payload["step"] = step.step
            if self._config.mode == "callback" and self._callback_base_url:
                payload["callback_url"] = f"{self._callback_base_url}/{step.request_id}/{step.step}"
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        headers = {"Content-Type": "application/json", **signature_headers(self._secret, body, self._clock())}
        if step is not None:
            headers["Idempotency-Key"] = step.idempotency_key
        url = self._config.base_url + path
        try:
            response = await self._client.post(
                url, content=body, headers=headers, timeout=self._config.timeout_seconds
            )
        except httpx.TimeoutException:
            raise RetryableConnectorError(
                self._name, f"{path} did not answer within {self._config.timeout_seconds:g} s"
            ) from None
        except httpx.TransportError as exc:
            raise RetryableConnectorError(
                self._name, f"{path} is unreachable: {type(exc).__name__}"
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableConnectorError(self._name, f"{path} answered {status}: {_snippet(response)}")
        if status >= 400:
            raise PermanentConnectorError(
                self._name, f"{path} refused the call ({status}): {_snippet(response)}"
            )
        if status == 204 or not response.content:
            return {"accepted": True} if status == 202 else {}
        try:
            answer = response.json()
        except ValueError:
            raise self._contract(f"{path} answered {status} with a body that is not JSON") from None
        if not isinstance(answer, dict):
            raise self._contract(f"{path} answered with JSON that is not an object")
        if status == 202:
            answer.setdefault("accepted", True)
        return answer

    def _results(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        results = body.get("results")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise self._contract("the answer has no 'results' list of objects")
        return results

    def _contract(self, message: str) -> PermanentConnectorError:
        return PermanentConnectorError(self._name, message)


def _subject(subject: SubjectIdentifiers) -> dict[str, str | None]:
    return {"external_id": subject.external_id, "email": subject.email}


def _snippet(response: httpx.Response) -> str:
    return response.text[:ERROR_BODY_SHOWN].replace("\n", " ") or response.reason_phrase
