"""Intake of privacy requests and verification of anonymous requesters' identity."""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dsr_gateway.domain.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.domain.privacy_requests import (
    CODE_LENGTH,
    Challenge,
    PrivacyRequest,
    VerificationOutcome,
    normalise_email,
    normalise_phone,
)
from dsr_gateway.domain.requests import RejectionReason, RequestStatus, RequestType, validate_details
from dsr_gateway.domain.sla import Jurisdiction, sla_status
from dsr_gateway.domain.subjects import validate_external_id
from dsr_gateway.domain.workflow import Action, ActorRole, RequestEvent, apply
from dsr_gateway.services.comms.compose import Composer, language_of
from dsr_gateway.services.ports import Cipher, Clock, EventBus, UnitOfWork, UnitOfWorkFactory
from dsr_gateway.services.requests.clock import SlaClock
from dsr_gateway.services.requests.common import email_of, not_found, publish_event
from dsr_gateway.services.requests.messages import request_received, verification_code_message
from dsr_gateway.services.requests.status_webhooks import enqueue_status_changed

logger = logging.getLogger("dsr_gateway.requests")
IDEMPOTENCY_KEY_MAX = 200
# How far back an agent may date a request logged from post or phone.
MAX_BACKDATE = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class SubmitCommand:
    type: RequestType
    jurisdiction: Jurisdiction
    details: dict[str, Any] | None = None
    email: str | None = None
    phone: str | None = None
    subject_external_id: str | None = None
    received_at: datetime | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    request: PrivacyRequest
    created: bool  # False when the idempotency key found an earlier submission
    verification_required: bool


class RequestIntakeService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        events: EventBus,
        cipher: Cipher,
        sla: SlaClock,
        composer: Composer,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._events = events
        self._cipher = cipher
        self._sla = sla
        self._composer = composer

    async def submit(self, principal: Principal, command: SubmitCommand) -> Submitted:
        now = self._clock()
        details = validate_details(command.type, command.details)
        email = normalise_email(command.email) if command.email else None
        phone = normalise_phone(command.phone) if command.phone else None
        external_id, status, received_at = self._who_and_when(principal, command, email, now)
        email_hash = self._cipher.lookup_hash(f"email:{email}") if email else None
        key = self._scoped_key(principal, command.idempotency_key, email_hash)
        try:
            return await self._submit(
                principal, command, details.to_json(), external_id, status, received_at,
                email, phone, email_hash, key, now,
            )  # fmt: skip
        except Conflict:
            # Two submissions with the same key raced; the loser answers with the winner's request.
            if key is None:
                raise
            async with self._uow() as uow:
                earlier = await uow.requests.find_by_idempotency_key(key)
            if earlier is None or earlier.type is not command.type:
                raise
            return Submitted(earlier, False, earlier.status is RequestStatus.AWAITING_VERIFICATION)

    def _who_and_when(
        self, principal: Principal, command: SubmitCommand, email: str | None, now: datetime
    ) -> tuple[str | None, RequestStatus, datetime]:
        if command.received_at is not None and not principal.is_staff:
            raise ValidationFailed.single("receivedAt", "Only staff logging a request may set receivedAt.")
        if principal.kind is PrincipalKind.SUBJECT and principal.id:
            if command.subject_external_id not in (None, principal.id):
                raise PermissionDenied("You may submit requests only for yourself.")
            return principal.id, RequestStatus.SUBMITTED, now
        if principal.is_staff:
            external_id = command.subject_external_id
            if external_id is not None:
                validate_external_id(external_id, "subjectExternalId")
            elif email is None:
                raise ValidationFailed.single(
                    "subjectExternalId", "Name the subject (subjectExternalId) or give their email."
                )
            received_at = command.received_at or now
            if received_at.tzinfo is None:
                raise ValidationFailed.single(
                    "receivedAt", "Give a time zone offset, e.g. 2025-03-03T09:00Z."
                )
            if received_at > now:
                raise ValidationFailed.single("receivedAt", "Cannot be in the future.")
            if received_at < now - MAX_BACKDATE:
                raise ValidationFailed.single("receivedAt", "Cannot be more than a year ago.")
            return external_id, RequestStatus.SUBMITTED, received_at
        if principal.kind is PrincipalKind.ANONYMOUS:
            if command.subject_external_id is not None:
                raise ValidationFailed.single(
                    "subjectExternalId", "Sign in to submit for an account, or give only your email."
                )
            if email is None:
                raise ValidationFailed.single(
                    "email", "Give your email address: we send a code to it to confirm it is you."
                )
            return None, RequestStatus.AWAITING_VERIFICATION, now
        raise PermissionDenied("Only subjects, staff or anonymous requesters may submit privacy requests.")

    def _scoped_key(self, principal: Principal, key: str | None, email_hash: str | None) -> str | None:
        if key is None:
            return None
        key = key.strip()
        if not key or len(key) > IDEMPOTENCY_KEY_MAX:
            raise ValidationFailed.single(
                "idempotencyKey", f"Must be 1 to {IDEMPOTENCY_KEY_MAX} characters (a UUID is ideal)."
            )
        # Scoped by submitter so that nobody can find another person's request by guessing a key.
        owner = (
            f"anonymous:{email_hash}" if principal.kind is PrincipalKind.ANONYMOUS else principal.actor_label
        )
        return f"{owner}|{key}"

    async def _submit(
        self,
        principal: Principal,
        command: SubmitCommand,
        details: dict[str, Any],
        external_id: str | None,
        status: RequestStatus,
        received_at: datetime,
        email: str | None,
        phone: str | None,
        email_hash: str | None,
        key: str | None,
        now: datetime,
    ) -> Submitted:
        code: str | None = None
        async with self._uow() as uow:
            if key is not None:
                earlier = await uow.requests.find_by_idempotency_key(key)
                if earlier is not None:
                    if earlier.type is not command.type:
                        raise Conflict(
                            "This idempotency key was already used for another request; use a new key."
                        )
                    return Submitted(earlier, False, earlier.status is RequestStatus.AWAITING_VERIFICATION)
            subject = await uow.subjects.get_or_create(external_id, now) if external_id else None
            subject_id = subject.id if subject else None
            identity_id = await self._identity(uow, subject_id, email, email_hash, phone, now)
            duplicate = None
            if status is not RequestStatus.AWAITING_VERIFICATION:
                duplicate = await uow.requests.find_open_duplicate(command.type.value, subject_id, email_hash)
            deadline = self._sla.start(command.jurisdiction, received_at)
            request = PrivacyRequest(
                id=uuid.uuid4().hex,
                type=command.type,
                status=status,
                jurisdiction=command.jurisdiction,
                subject_id=subject_id,
                subject_external_id=external_id,
                identity_id=identity_id,
                details=details,
                received_at=received_at,
                idempotency_key=key,
                duplicate_of=duplicate.id if duplicate else None,
                assignee=None,
                submitted_by=principal.actor_label,
                version=1,
                due_at=deadline.due_at,
                original_due_at=deadline.original_due_at,
                acknowledge_by=deadline.acknowledge_by,
                sla_status=sla_status(deadline, now).value,
                sla_rule_id=deadline.rule_id,
                sla_inputs=dict(deadline.inputs),
                clock_started_at=received_at,
                extended=False,
                closed_at=None,
                created_at=now,
                updated_at=now,
            )
            await uow.requests.add(request)
            if status is RequestStatus.AWAITING_VERIFICATION:
                assert email is not None
                code = _new_code()
                await uow.identities.save_challenge(
                    Challenge.issue(request.id, self._code_hash(request.id, code), now)
                )
                await uow.outbox.add(verification_code_message(self._composer, request, email, code), now)
            elif email is not None:
                # The acknowledgement; an anonymous requester gets it once their address is verified.
                language = await language_of(uow, subject_id)
                await uow.outbox.add(request_received(self._composer, request, email, language), now)
            await uow.commit()
        logger.info(
            "privacy request %s received: %s under %s by %s%s",
            request.id, request.type.value, request.jurisdiction.value, principal.kind.value.lower(),
            f", duplicate of {request.duplicate_of}" if request.duplicate_of else "",
        )  # fmt: skip
        return Submitted(request, True, code is not None)

    async def _identity(
        self,
        uow: UnitOfWork,
        subject_id: int | None,
        email: str | None,
        email_hash: str | None,
        phone: str | None,
        now: datetime,
    ) -> int | None:
        if email is None and phone is None:
            return None
        if email_hash is not None and phone is None:
            known = await uow.identities.find_by_email_hash(email_hash)
            if known is not None and known.subject_id in (None, subject_id):
                return known.id
        return await uow.identities.add(
            subject_id,
            (self._cipher.encrypt(email), email_hash) if email and email_hash else None,
            (self._cipher.encrypt(phone), self._cipher.lookup_hash(f"phone:{phone}")) if phone else None,
            now,
        )

    def _code_hash(self, request_id: str, code: str) -> str:
        return self._cipher.lookup_hash(f"code:{request_id}:{code}")

    async def verify(self, principal: Principal, request_id: str, code: str) -> PrivacyRequest:
        """Check the emailed code; the 5th wrong one locks the challenge and rejects the request."""
        now = self._clock()
        code = code.strip()
        async with self._uow() as uow:
            request = await uow.requests.get(request_id)
            challenge = await uow.identities.challenge(request_id) if request else None
            if request is None or challenge is None:
                raise not_found(request_id)
            transition = apply(request.status, Action.VERIFY, ActorRole.SUBJECT)
            matches = hmac.compare_digest(challenge.code_hash, self._code_hash(request_id, code))
            challenge, outcome = challenge.attempt(matches, now)
            await uow.identities.save_challenge(challenge)
            failure: DomainError | None = None
            previous = request.status
            if outcome is VerificationOutcome.VERIFIED:
                request, event = await self._verified(uow, principal, request, transition, now)
                await self._acknowledge(uow, request, now)
            elif outcome is VerificationOutcome.LOCKED:
                request, event = await self._locked(uow, request, now)
                failure = Conflict("Too many wrong codes: the request was closed. Submit a new request.")
            elif outcome is VerificationOutcome.EXPIRED:
                raise ValidationFailed.single("code", "The code has expired; ask for a new one.")
            else:
                left = challenge.attempts_left
                raise_after = ValidationFailed.single(
                    "code", f"The code is not right; {left} attempt{'s' if left != 1 else ''} left."
                )
                await uow.commit()
                raise raise_after
            await enqueue_status_changed(uow, request, event, previous, now)
            await uow.commit()
        await publish_event(self._events, request, event)
        if failure is not None:
            raise failure
        return request

    async def _verified(
        self, uow: UnitOfWork, principal: Principal, request: PrivacyRequest, transition: Any, now: datetime
    ) -> tuple[PrivacyRequest, RequestEvent]:
        changes: dict[str, Any] = {"status": transition.to_status, "updated_at": now}
        if self._sla.stored_rule(request).starts_at_verification:
            # UK GDPR Art. 12A: the clock starts at the latest of receipt and receipt of the requested ID.
            deadline = self._sla.start(request.jurisdiction, now)
            changes.update(
                due_at=deadline.due_at,
                original_due_at=deadline.original_due_at,
                acknowledge_by=deadline.acknowledge_by,
                sla_inputs=dict(deadline.inputs),
                clock_started_at=now,
            )
        identity = (await uow.identities.many([request.identity_id or -1])).get(request.identity_id or -1)
        duplicate = await uow.requests.find_open_duplicate(
            request.type.value, request.subject_id, identity.email_hash if identity else None
        )
        if duplicate is not None and duplicate.id != request.id:
            changes["duplicate_of"] = duplicate.id
        updated = await uow.requests.save(request.evolve(**changes), request.version)
        event = RequestEvent.record(
            request.id, transition, actor_kind=ActorRole.SUBJECT, actor_id=principal.id, occurred_at=now
        )
        await uow.requests.add_event(event)
        return updated, event

    async def _locked(
        self, uow: UnitOfWork, request: PrivacyRequest, now: datetime
    ) -> tuple[PrivacyRequest, RequestEvent]:
        transition = apply(request.status, Action.REJECT, ActorRole.SYSTEM)
        event = RequestEvent.record(
            request.id,
            transition,
            actor_kind=ActorRole.SYSTEM,
            actor_id="system",
            occurred_at=now,
            reason=RejectionReason.IDENTITY_NOT_VERIFIED.value,
            data={"message": "Too many wrong verification codes."},
        )
        deadline = self._sla.as_deadline(request)
        updated = await uow.requests.save(
            request.evolve(
                status=transition.to_status,
                closed_at=now,
                updated_at=now,
                sla_status=sla_status(deadline, now, closed_at=now).value,
            ),
            request.version,
        )
        await uow.requests.add_event(event)
        return updated, event

    async def resend_code(self, principal: Principal, request_id: str) -> datetime:
        """Send a fresh code (the old one stops working); returns when the next resend is allowed."""
        now = self._clock()
        async with self._uow() as uow:
            request = await uow.requests.get(request_id)
            challenge = await uow.identities.challenge(request_id) if request else None
            if request is None or challenge is None:
                raise not_found(request_id)
            refusal = challenge.resend_refusal(now)
            if refusal is None and request.status is not RequestStatus.AWAITING_VERIFICATION:
                refusal = f"This request is {request.status.value}; it needs no code."
            if refusal is not None:
                raise Conflict(refusal)
            email = await email_of(uow, self._cipher, request)
            if email is None:
                raise Conflict("No email address is on file for this request.")
            code = _new_code()
            challenge = challenge.reissue(self._code_hash(request_id, code), now)
            await uow.identities.save_challenge(challenge)
            await uow.outbox.add(verification_code_message(self._composer, request, email, code), now)
            await uow.commit()
        return challenge.resend_available_at

    async def _acknowledge(self, uow: UnitOfWork, request: PrivacyRequest, now: datetime) -> None:
        email = await email_of(uow, self._cipher, request)
        if email is not None:
            language = await language_of(uow, request.subject_id)
            await uow.outbox.add(request_received(self._composer, request, email, language), now)


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_LENGTH):0{CODE_LENGTH}d}"
