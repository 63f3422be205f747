"""Reviews: what falls due for reconfirmation, and the campaign that asks subjects to reconfirm.

The campaign reads the due grants page by page (keyset over ix_consent_state_review), skips subjects
reminded about the purpose within `campaign_min_interval`, and queues one reminder per subject with a
signed one-click reconfirmation link, an unsubscribe link and List-Unsubscribe headers. Each page is one
transaction: its reminders and the record of their sending commit together, so a re-run (or a crash
half-way) never messages a subject twice within the interval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from dsr_gateway.domain.access import require_admin, require_staff
from dsr_gateway.domain.calendar_math import require_aware
from dsr_gateway.domain.errors import NotFound
from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.domain.reviews import ReviewCursor, due_within, page_size, review_period
from dsr_gateway.domain.unsubscribe import ReconfirmClaims, UnsubscribeClaims
from dsr_gateway.services.comms.compose import Composer
from dsr_gateway.services.comms.ports import Contact, DueConsent
from dsr_gateway.services.ports import Clock, NewMessage, UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger("dsr_gateway.reviews")
CAMPAIGN_PAGE = 500
RECONFIRM_CAMPAIGN = "reconfirm"


@dataclass(frozen=True, slots=True)
class DuePage:
    items: list[tuple[str, DueConsent]]
    has_next_page: bool
    end_cursor: str | None


@dataclass(frozen=True, slots=True)
class CampaignResult:
    purpose: str
    due_subjects: int
    queued: int
    skipped_recently_sent: int
    no_address: int


class ReviewService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, composer: Composer) -> None:
        self._uow = uow
        self._clock = clock
        self._composer = composer

    async def due_for_review(
        self,
        principal: Principal,
        purpose_key: str,
        due_before: datetime,
        first: int | None,
        after: str | None,
    ) -> DuePage:
        """Granted consents of the purpose due (given + period) before `due_before`, soonest first."""
        require_staff(principal)
        require_aware(due_before, "dueBefore")
        size = page_size(first)
        cursor = ReviewCursor.decode(after) if after else None
        async with self._uow() as uow:
            purpose = await _purpose(uow, purpose_key)
            period = review_period(purpose)
            rows = await uow.comms.granted_given_before(
                purpose.key,
                due_before - period,
                (cursor.given_at, cursor.subject_id, cursor.topic, cursor.channel) if cursor else None,
                size + 1,
            )
        items = [
            (
                ReviewCursor(given, subject_id, topic, channel).encode(),
                DueConsent(subject_id, external_id, purpose.key, topic, channel, given, given + period),
            )
            for subject_id, external_id, topic, channel, given in rows[:size]
        ]
        return DuePage(items, len(rows) > size, items[-1][0] if items else None)

    async def start_campaign(
        self, principal: Principal, purpose_key: str, due_within_days: int
    ) -> CampaignResult:
        """Queue a reconfirmation reminder to each subject whose grant falls due within the days."""
        if principal.kind is not PrincipalKind.SYSTEM:  # the CLI runs as the system
            require_admin(principal)
        window = due_within(due_within_days)
        now = self._clock()
        config = self._composer.config
        due_subjects = queued = skipped = no_address = 0
        after: tuple[datetime, int, str, str] | None = None
        while True:
            async with self._uow() as uow:
                purpose = await _purpose(uow, purpose_key)
                period = review_period(purpose)
                rows = await uow.comms.granted_given_before(
                    purpose.key, now + window - period, after, CAMPAIGN_PAGE
                )
                if not rows:
                    break
                last = rows[-1]
                after = (last[4], last[0], last[2], last[3])
                # A subject's earliest due date in this page (pages are in given_at order).
                due: dict[int, tuple[str, datetime]] = {}
                for subject_id, external_id, _topic, _channel, given in rows:
                    due.setdefault(subject_id, (external_id, given + period))
                recent = await uow.comms.recently_sent(purpose.key, due, now - config.campaign_min_interval)
                targets = [s for s in due if s not in recent]
                due_subjects += len(due)
                skipped += len(due) - len(targets)
                contacts = await uow.comms.contacts(targets)
                messages = [
                    self._reminder(purpose, s, due[s][0], due[s][1], contacts.get(s), now) for s in targets
                ]
                ids = await uow.outbox.add_many(messages, now)
                await uow.comms.record_sends(
                    RECONFIRM_CAMPAIGN, purpose.key, list(zip(targets, ids, strict=True)), now
                )
                await uow.commit()
                queued += len(messages)
                no_address += sum(1 for m in messages if m.recipient_encrypted is None)
            if len(rows) < CAMPAIGN_PAGE:
                break
        logger.info(
            "reconfirmation campaign %s: %d due, %d queued (%d without address), %d reminded recently",
            purpose_key, due_subjects, queued, no_address, skipped,
        )  # fmt: skip
        return CampaignResult(purpose_key, due_subjects, queued, skipped, no_address)

    def _reminder(
        self, purpose: Purpose, subject_id: int, external_id: str, lapses_on: datetime,
        contact: Contact | None, now: datetime,
    ) -> NewMessage:  # fmt: skip
        links = self._composer.links
        expires = now + timedelta(days=self._composer.config.reconfirm_link_days)
        unsubscribe = UnsubscribeClaims(external_id, purpose.key)
        context = {
            "purpose_title": purpose.title,
            "reconfirm_url": links.reconfirm_url(ReconfirmClaims(external_id, purpose.key), expires),
            "lapses_on": lapses_on,
            "unsubscribe_url": links.unsubscribe_url(unsubscribe),
        }
        return self._composer.to_contact(
            MessageKind.RECONFIRMATION_REMINDER,
            context,
            contact,
            subject_id,
            headers=links.headers(unsubscribe),
        )


async def _purpose(uow: UnitOfWork, key: str) -> Purpose:
    purpose = await uow.purposes.get(key)
    if purpose is None:
        raise NotFound("purpose", key)
    return purpose
