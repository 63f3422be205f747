"""The gateway's own records as a data system (`kind = "gateway"` in the systems file).

Access returns the subject's consents, consent events and privacy requests, and nothing about anyone else.

Erasure removes what the gateway may remove and keeps, with the reason in the result and the certificate:
- contact details (encrypted email and phone of the subject's identities) are removed; an email still
  needed to send the answer to an open request (the erasure request itself included) is kept until then;
- the free-text details of the subject's closed requests (they may hold the values of a rectification)
  are emptied;
- KEPT: the request rows and their events, the minimum proof that a request was made and answered
  (types, statuses, dates, no personal values);
- KEPT: the consent ledger and its projection: the controller must be able to show consent and its
  withdrawal (GDPR Art. 7(1)), and erasing a withdrawal could let a system that lost sync contact the
  person again. It holds the purpose keys and methods, not contact data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.repositories.gateway_records import SqlGatewayRecords
from dsr_gateway.services.fulfilment_ports import (
    ConsentChange,
    ConsentNotification,
    ErasureAction,
    ErasureResult,
    FieldErasure,
    FieldRectification,
    LegalHold,
    RecordBatch,
    RectifyOutcome,
    RectifyResult,
    RetryableConnectorError,
    StepRef,
    SubjectIdentifiers,
)

LEDGER_KEPT = (
    "the consent ledger proves consent and its withdrawal (GDPR Art. 7(1)); it holds no contact data"
)
EVENTS_KEPT = "minimum proof of the request: types, statuses and dates, no personal values"
EMAIL_KEPT = "needed to send the answer to an open request; removed by the next erasure after it closes"


class GatewayRecordsConnector:
    def __init__(self, name: str, records: SqlGatewayRecords) -> None:
        self._name = name
        self._records = records

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        """The engine is the gateway's own, closed by the composition root."""

    async def access(
        self, subject: SubjectIdentifiers, step: StepRef | None = None
    ) -> AsyncIterator[RecordBatch]:
        try:
            async for table, columns, rows in self._records.read(subject.external_id):
                yield RecordBatch(self._name, table, tuple(columns), tuple(rows))
        except SQLAlchemyError as exc:
            raise RetryableConnectorError(
                self._name, f"the gateway database failed: {type(exc).__name__}"
            ) from exc

    async def rectify(
        self, subject: SubjectIdentifiers, changes: Mapping[str, object], step: StepRef | None = None
    ) -> RectifyResult:
        fields = tuple(
            FieldRectification(self._name, None, f, RectifyOutcome.NOT_HELD, new_value=v)
            for f, v in changes.items()
        )
        return RectifyResult(self._name, fields)

    async def erase(
        self, subject: SubjectIdentifiers, holds: Sequence[LegalHold], step: StepRef | None = None
    ) -> ErasureResult:
        held = {h.category: h.reason for h in holds}
        request_id = step.request_id if step else None
        try:
            changed = await self._records.erase(subject.external_id, request_id, "requests" not in held)
        except SQLAlchemyError as exc:
            raise RetryableConnectorError(
                self._name, f"the gateway database failed: {type(exc).__name__}"
            ) from exc
        items = [
            FieldErasure(
                "subject_identity", "phone", ErasureAction.NULLED, changed.get("phone", 0), "contact"
            ),
            FieldErasure(
                "subject_identity", "email", ErasureAction.NULLED, changed.get("email", 0), "contact"
            ),
            FieldErasure("subject_identity", "email", ErasureAction.KEPT, 0, "contact", EMAIL_KEPT),
        ]
        if "requests" in held:
            reason = f"legal hold on requests: {held['requests']}"
            items.append(
                FieldErasure("privacy_request", "details", ErasureAction.KEPT, 0, "requests", reason)
            )
        else:
            items.append(
                FieldErasure(
                    "privacy_request", "details", ErasureAction.ERASED, changed.get("details", 0), "requests"
                )
            )
        items += [
            FieldErasure("privacy_request", None, ErasureAction.KEPT, 0, "requests", EVENTS_KEPT),
            FieldErasure("privacy_request_event", None, ErasureAction.KEPT, 0, "requests", EVENTS_KEPT),
            FieldErasure("consent_event", None, ErasureAction.KEPT, 0, "consent", LEDGER_KEPT),
            FieldErasure("consent_state", None, ErasureAction.KEPT, 0, "consent", LEDGER_KEPT),
        ]
        return ErasureResult(self._name, tuple(items))

    async def notify_consent_change(
        self,
        subject: SubjectIdentifiers,
        purposes: Sequence[str],
        change: ConsentChange,
        step: StepRef | None = None,
    ) -> ConsentNotification:
        detail = "the gateway's consent ledger is the record of the change"
        return ConsentNotification(self._name, tuple(purposes), change, False, detail)


def gateway_connectors(systems: Mapping[str, str], engine: AsyncEngine) -> dict[str, GatewayRecordsConnector]:
    """A connector for every `kind = "gateway"` system (name -> kind), on the gateway's own engine."""
    records = SqlGatewayRecords(engine)
    return {
        name: GatewayRecordsConnector(name, records) for name, kind in systems.items() if kind == "gateway"
    }
