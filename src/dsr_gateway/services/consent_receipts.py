"""The receipt of each consent change: built from the recorded events, signed, stored by the ledger's
follower after the change committed (services/consent_followups.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from dsr_gateway.domain.consent import GRANTING_ACTIONS, ConsentAction, ConsentEvent
from dsr_gateway.domain.consent_calls import ConsentCall
from dsr_gateway.domain.notices import PrivacyNotice
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.domain.receipts import (
    ConsentEventKind,
    PurposeState,
    ReceiptInput,
    ReceiptPurpose,
    StoredReceipt,
)
from dsr_gateway.services.audit_ports import ReceiptUnitOfWork
from dsr_gateway.services.ports import UnitOfWork
from dsr_gateway.services.receipts import ReceiptService, new_receipt_id


def event_kind(events: Sequence[ConsentEvent]) -> ConsentEventKind:
    actions = {e.action for e in events}
    if ConsentAction.GRANT in actions:
        return ConsentEventKind.GIVEN
    if ConsentAction.RECONFIRM in actions:
        return ConsentEventKind.RECONFIRMED
    return ConsentEventKind.WITHDRAWN


def receipt_purposes(
    events: Sequence[ConsentEvent], purposes: Mapping[str, Purpose], pii: Mapping[str, tuple[str, ...]]
) -> tuple[ReceiptPurpose, ...]:
    """One entry per purpose the change touched; its state is what the purpose-wide (else the last)
    event of that purpose in this change said."""
    by_purpose: dict[str, list[ConsentEvent]] = {}
    for event in events:
        by_purpose.setdefault(event.scope.purpose, []).append(event)
    found: list[ReceiptPurpose] = []
    for key, mine in by_purpose.items():
        purpose = purposes[key]
        wide = [e for e in mine if e.scope.is_purpose_wide]
        deciding = (wide or mine)[-1]
        found.append(
            ReceiptPurpose(
                key=key,
                title=purpose.title,
                category=purpose.category,
                legal_basis=purpose.legal_basis,
                mechanism=purpose.mechanism,
                state=PurposeState.GRANTED if deciding.action in GRANTING_ACTIONS else PurposeState.WITHDRAWN,
                pii_categories=pii.get(key, ()),
                recipients=purpose.recipients,
                termination=(
                    f"On withdrawal, or after {purpose.reconfirm_after_days} days without reconfirmation"
                    if purpose.reconfirm_after_days
                    else "On withdrawal"
                ),
                primary=len(by_purpose) == 1,
                topics=tuple(sorted({e.scope.topic for e in mine if e.scope.topic})),
                channels=tuple(sorted({e.scope.channel for e in mine if e.scope.channel})),
            )
        )
    return tuple(found)


class ConsentReceipts:
    def __init__(self, receipts: ReceiptService, jurisdiction: str) -> None:
        self._receipts = receipts
        self._jurisdiction = jurisdiction

    async def issue(
        self, uow: UnitOfWork, calls: Sequence[ConsentCall], purposes: Mapping[str, Purpose]
    ) -> list[StoredReceipt]:
        """Sign and add the receipt of each call in the caller's unit of work (the caller commits);
        each notice shown is read once."""
        notices: dict[int | None, PrivacyNotice | None] = {}
        pending: list[tuple[int, ReceiptInput]] = []
        for call in calls:
            events = call.events
            versions = [e.notice_version for e in events if e.notice_version is not None]
            version = versions[-1] if versions else None
            if version not in notices:
                notices[version] = await uow.notices.get(version)
            notice = notices[version]
            pii: dict[str, tuple[str, ...]] = {}
            for category in notice.data_categories if notice else ():
                for key in category.purposes:
                    pii[key] = (*pii.get(key, ()), category.key)
            last = events[-1]
            data = ReceiptInput(
                receipt_id=new_receipt_id(),
                subject_external_id=call.external_id,
                timestamp=last.occurred_at,
                event=event_kind(events),
                collection_method=f"{last.method.value} ({last.actor.kind.value.lower()})",
                jurisdiction=self._jurisdiction,
                notice_version=notice.version if notice else None,
                policy_url=notice.policy_url if notice else None,
                purposes=receipt_purposes(events, purposes, pii),
                ledger_chain=f"consent:{call.subject_id}",
                ledger_event_ids=tuple(str(e.id) for e in events),
            )
            pending.append((call.subject_id, data))
        return await self._receipts.issue_many(cast(ReceiptUnitOfWork, uow), pending)
