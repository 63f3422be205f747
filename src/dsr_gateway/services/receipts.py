"""Consent receipts: build, sign, keep, list and verify them.

The changes feed's follower (services/consent_followups.py, through services/consent_receipts.py) calls
`issue_many(uow, receipts)` INSIDE its unit of work, so the receipts commit (or roll back) with the
follower's new position.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from dsr_gateway.domain.access import require_subject_access
from dsr_gateway.domain.errors import NotFound, PermissionDenied
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.receipts import (
    Controller,
    ReceiptInput,
    StoredReceipt,
    build_receipt,
    missing_members,
)
from dsr_gateway.services.audit_ports import ReceiptUnitOfWork, SignatureInvalid, Signer
from dsr_gateway.services.ports import Clock

READ_SCOPE = "consent:read"
MAX_RECEIPTS = 200


def new_receipt_id() -> str:
    return str(uuid.uuid4())


class ReceiptService:
    def __init__(
        self,
        uow: Callable[[], ReceiptUnitOfWork],
        signer: Signer,
        controller: Controller,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._signer = signer
        self._controller = controller
        self._clock = clock

    def sign(self, data: ReceiptInput) -> str:
        """The receipt as a compact JWS (EdDSA, kid = the published key's thumbprint)."""
        return self._signer.sign(build_receipt(data, self._controller, self._signer.public_jwk))

    async def issue_many(
        self, uow: ReceiptUnitOfWork, receipts: Sequence[tuple[int, ReceiptInput]]
    ) -> list[StoredReceipt]:
        """Sign and add a receipt for each (subject id, receipt) pair, inserted together, in the caller's
        unit of work; the caller commits."""
        now = self._clock()
        stored = [StoredReceipt(d.receipt_id, s, now, self.sign(d)) for s, d in receipts]
        if stored:
            await uow.consent_receipts.add_many(stored)
        return stored

    async def list_for(
        self, principal: Principal, external_id: str, limit: int = 50
    ) -> Sequence[StoredReceipt]:
        """The subject's receipts, newest first (the subject itself, staff, or a client with consent:read)."""
        require_subject_access(principal, external_id, READ_SCOPE)
        async with self._uow() as uow:
            subject = await uow.subjects.get(external_id)
            if subject is None:
                return []
            return await uow.consent_receipts.list_for_subject(subject.id, min(max(limit, 1), MAX_RECEIPTS))

    async def lists_for(
        self, principal: Principal, external_ids: Sequence[str], limit: int = 50
    ) -> dict[str, Sequence[StoredReceipt] | PermissionDenied]:
        """`list_for` for many subjects at once (a DataLoader calls it): two statements for any number.
        A subject the caller may not read gets its PermissionDenied, the others their receipts."""
        answers: dict[str, Sequence[StoredReceipt] | PermissionDenied] = {}
        readable: list[str] = []
        for external_id in external_ids:
            try:
                require_subject_access(principal, external_id, READ_SCOPE)
                readable.append(external_id)
            except PermissionDenied as exc:
                answers[external_id] = exc
        async with self._uow() as uow:
            subjects = await uow.subjects.many(readable)
            found = await uow.consent_receipts.list_for_subjects(
                [s.id for s in subjects.values()], min(max(limit, 1), MAX_RECEIPTS)
            )
        for external_id in readable:
            subject = subjects.get(external_id)
            answers[external_id] = found.get(subject.id, []) if subject else []
        return answers

    async def get(self, principal: Principal, receipt_id: str) -> StoredReceipt:
        """One receipt by its consentReceiptID; NotFound also when it is someone else's."""
        async with self._uow() as uow:
            receipt = await uow.consent_receipts.get(receipt_id)
            subject = await uow.subjects.get_by_id(receipt.subject_id) if receipt else None
        if receipt is None or subject is None:
            raise NotFound("consent receipt", receipt_id)
        try:
            require_subject_access(principal, subject.external_id, READ_SCOPE)
        except PermissionDenied as exc:
            raise NotFound("consent receipt", receipt_id) from exc
        return receipt

    def verify(self, jws: str) -> dict[str, object]:
        """The receipt's claims if it is ours and complete; SignatureInvalid otherwise."""
        claims = self._signer.verify(jws)
        missing = missing_members(claims)
        if missing:
            raise SignatureInvalid(
                f"the signed document is not a consent receipt (missing {', '.join(missing)})"
            )
        return claims
