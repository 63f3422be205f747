"""Workflow actions on a request: every one goes through `workflow.apply`, the version guard, and history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dsr_gateway.domain.errors import Conflict, StaleVersion, ValidationFailed
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.privacy_requests import PrivacyRequest
from dsr_gateway.domain.requests import RejectionReason, validate_note
from dsr_gateway.domain.sla import begin_pause, check_extension, end_pause, is_paused, sla_status
from dsr_gateway.domain.workflow import Action, RequestEvent, Transition, apply
from dsr_gateway.services.comms.compose import Composer, language_of
from dsr_gateway.services.ports import Cipher, Clock, EventBus, UnitOfWork, UnitOfWorkFactory
from dsr_gateway.services.requests import messages
from dsr_gateway.services.requests.clock import SlaClock
from dsr_gateway.services.requests.common import actor_role, email_of, not_found, publish_event
from dsr_gateway.services.requests.status_webhooks import enqueue_status_changed

ASSIGNEE_MAX = 255


@dataclass
class _Change:
    """What an action's hook decided beyond the status: field changes, the event's reason and data."""

    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


Hook = Callable[[UnitOfWork, PrivacyRequest, Transition, datetime], Awaitable[_Change]]


class FulfilmentHooks(Protocol):
    """What approval and retry do to a request's fulfilment steps, in the same transaction
    (services/fulfilment/planner.py). Without it, requests are fulfilled by hand."""

    async def plan(self, uow: UnitOfWork, request: PrivacyRequest, now: datetime) -> dict[str, Any]: ...
    async def reset_failed(self, uow: UnitOfWork, request: PrivacyRequest, now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class CompletionLink:
    url: str
    expires_at: datetime


class RequestActionService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        events: EventBus,
        cipher: Cipher,
        sla: SlaClock,
        composer: Composer,
        fulfilment: FulfilmentHooks | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._events = events
        self._cipher = cipher
        self._sla = sla
        self._composer = composer
        self._fulfilment = fulfilment

    # --- the named actions ---------------------------------------------------------------------------

    async def approve(self, principal: Principal, request_id: str, expected_version: int | None = None,
                      note: str | None = None) -> PrivacyRequest:  # fmt: skip
        noted = _noted(note)
        fulfilment = self._fulfilment

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            change = await noted(uow, req, t, now)
            if fulfilment is not None:  # the steps are planned with the approval, or not at all
                change.data.update(await fulfilment.plan(uow, req, now))
            return change

        return await self._act(principal, request_id, Action.APPROVE, expected_version, hook)

    async def reject(
        self,
        principal: Principal,
        request_id: str,
        reason: RejectionReason,
        message: str,
        expected_version: int | None = None,
    ) -> PrivacyRequest:
        text = validate_note(message, "message")
        if not text:
            raise ValidationFailed.single("message", "Tell the subject why, in words they can act on.")

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            email, language = await email_of(uow, self._cipher, req), await language_of(uow, req.subject_id)
            message = messages.rejected(self._composer, req, email, reason, text, language)
            await uow.outbox.add(message, now)
            return _Change(reason=RejectionReason(reason).value, data={"message": text})

        return await self._act(principal, request_id, Action.REJECT, expected_version, hook)

    async def request_information(
        self, principal: Principal, request_id: str, question: str, expected_version: int | None = None
    ) -> PrivacyRequest:
        text = validate_note(question, "question")
        if not text:
            raise ValidationFailed.single("question", "Say what you need from the subject.")

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            change = _Change(data={"question": text})
            rule = self._sla.stored_rule(req)
            if rule.allows_pauses:
                # The clock stops only where the regime lets it; elsewhere it keeps running.
                begin_pause(rule, await uow.requests.pauses(req.id), now)
                await uow.requests.add_pause(req.id, now)
                change.data["clockPaused"] = True
            email, language = await email_of(uow, self._cipher, req), await language_of(uow, req.subject_id)
            paused = bool(change.data.get("clockPaused"))
            message = messages.information_needed(self._composer, req, email, text, paused, language)
            await uow.outbox.add(message, now)
            return change

        return await self._act(principal, request_id, Action.REQUEST_INFORMATION, expected_version, hook)

    async def provide_information(
        self, principal: Principal, request_id: str, answer: str, expected_version: int | None = None
    ) -> PrivacyRequest:
        text = validate_note(answer, "answer")

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            change = _Change(data={"answer": text} if text else {})
            change.fields.update(await self._resume_clock(uow, req, now))
            if change.fields:
                change.data["dueAt"] = change.fields["due_at"].isoformat()
            return change

        return await self._act(principal, request_id, Action.PROVIDE_INFORMATION, expected_version, hook)

    async def extend(
        self, principal: Principal, request_id: str, reason: str, expected_version: int | None = None
    ) -> PrivacyRequest:
        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            pauses = await uow.requests.pauses(req.id)
            deadline = check_extension(
                self._sla.stored_rule(req),
                self._sla.as_deadline(req),
                now,
                reason,
                req.extended,
                calendar=self._sla.calendar(req.jurisdiction),
                pauses=pauses,
            )
            email, language = await email_of(uow, self._cipher, req), await language_of(uow, req.subject_id)
            notice = messages.extension_notice(
                self._composer, req, email, deadline.due_at, reason.strip(), language
            )
            await uow.outbox.add(notice, now)
            return _Change(
                fields={"due_at": deadline.due_at, "extended": True, "sla_inputs": dict(deadline.inputs)},
                reason=reason.strip(),
                data={"previousDueAt": req.due_at.isoformat(), "dueAt": deadline.due_at.isoformat()},
            )

        return await self._act(principal, request_id, Action.EXTEND, expected_version, hook)

    async def cancel(self, principal: Principal, request_id: str, reason: str | None = None,
                     expected_version: int | None = None) -> PrivacyRequest:  # fmt: skip
        text = validate_note(reason, "reason")

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            return _Change(reason=text)

        return await self._act(principal, request_id, Action.CANCEL, expected_version, hook)

    async def assign(self, principal: Principal, request_id: str, assignee: str | None,
                     expected_version: int | None = None) -> PrivacyRequest:  # fmt: skip
        if assignee is not None:
            assignee = assignee.strip() or None
        if assignee is not None and len(assignee) > ASSIGNEE_MAX:
            raise ValidationFailed.single("assignee", f"Must be at most {ASSIGNEE_MAX} characters.")

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            return _Change(
                fields={"assignee": assignee}, data={"assignee": assignee, "previous": req.assignee}
            )

        return await self._act(principal, request_id, Action.ASSIGN, expected_version, hook)

    async def complete(self, principal: Principal, request_id: str, note: str | None = None,
                       expected_version: int | None = None, download_url: str | None = None,
                       download_expires_at: datetime | None = None) -> PrivacyRequest:  # fmt: skip
        noted = _noted(note)

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            email, language = await email_of(uow, self._cipher, req), await language_of(uow, req.subject_id)
            message = messages.completed(
                self._composer, req, email, download_url, download_expires_at, language
            )
            await uow.outbox.add(message, now)
            return await noted(uow, req, t, now)

        return await self._act(principal, request_id, Action.COMPLETE, expected_version, hook)

    async def fail(self, principal: Principal, request_id: str, reason: str,
                   expected_version: int | None = None) -> PrivacyRequest:  # fmt: skip
        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            return _Change(reason=reason)

        return await self._act(principal, request_id, Action.FAIL, expected_version, hook)

    async def retry(self, principal: Principal, request_id: str, note: str | None = None,
                    expected_version: int | None = None) -> PrivacyRequest:  # fmt: skip
        noted = _noted(note)
        fulfilment = self._fulfilment

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            change = await noted(uow, req, t, now)
            if fulfilment is not None:  # only the failed steps run again
                change.data["stepsRetried"] = await fulfilment.reset_failed(uow, req, now)
            return change

        return await self._act(principal, request_id, Action.RETRY, expected_version, hook)

    async def complete_fulfilled(
        self,
        principal: Principal,
        request_id: str,
        is_finished: Callable[[UnitOfWork, PrivacyRequest], Awaitable[bool]],
        data: Mapping[str, Any],
        link: CompletionLink | None = None,
    ) -> PrivacyRequest:
        """The worker's COMPLETE once every step is DONE; the completion message is queued with it.

        `is_finished` is asked again inside the transaction, so a retry or a cancel that won the race
        is not overtaken (the action is then refused as a Conflict)."""

        async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
            if not await is_finished(uow, req):
                raise Conflict("The request's fulfilment steps are not all done.")
            email, language = await email_of(uow, self._cipher, req), await language_of(uow, req.subject_id)
            message = messages.completed(
                self._composer,
                req,
                email,
                link.url if link else None,
                link.expires_at if link else None,
                language,
            )
            await uow.outbox.add(message, now)
            return _Change(data=dict(data))

        return await self._act(principal, request_id, Action.COMPLETE, None, hook)

    # --- the one way a request changes ------------------------------------------------------------------

    async def _act(
        self,
        principal: Principal,
        request_id: str,
        action: Action,
        expected_version: int | None,
        hook: Hook,
    ) -> PrivacyRequest:
        now = self._clock()
        async with self._uow() as uow:
            request = await uow.requests.get(request_id)
            if request is None:
                raise not_found(request_id)
            role = actor_role(principal, request)
            transition = apply(request.status, action, role)
            version = request.version if expected_version is None else expected_version
            if version != request.version:
                raise StaleVersion("privacy request", request.id, version, request.version)
            change = await hook(uow, request, transition, now)
            fields = {"status": transition.to_status, "updated_at": now, **change.fields}
            if transition.to_status.is_terminal:
                fields.update(await self._resume_clock(uow, request, now, recompute=False))
                fields["closed_at"] = now
            event = RequestEvent.record(
                request.id,
                transition,
                actor_kind=role,
                actor_id=principal.id,
                occurred_at=now,
                reason=change.reason,
                data=change.data,
            )
            updated = request.evolve(**fields)
            paused = bool(await uow.requests.open_pauses([request.id]))
            deadline = self._sla.as_deadline(updated)
            updated = updated.evolve(
                sla_status=sla_status(deadline, now, closed_at=updated.closed_at, paused=paused).value
            )
            saved = await uow.requests.save(updated, version)
            await uow.requests.add_event(event)
            await enqueue_status_changed(uow, saved, event, request.status, now)
            await uow.commit()
        await publish_event(self._events, saved, event)
        return saved

    async def _resume_clock(
        self, uow: UnitOfWork, request: PrivacyRequest, now: datetime, recompute: bool = True
    ) -> dict[str, Any]:
        """End a running pause; the deadline moves later by the paused days (when `recompute`)."""
        pauses = await uow.requests.pauses(request.id)
        if not is_paused(pauses):
            return {}
        ended = end_pause(pauses, now)
        await uow.requests.end_pause(request.id, now)
        if not recompute:
            return {}
        deadline = self._sla.recompute(request, ended, request.extended)
        return {
            "due_at": deadline.due_at,
            "original_due_at": deadline.original_due_at,
            "sla_inputs": dict(deadline.inputs),
        }


def _noted(note: str | None) -> Hook:
    text = validate_note(note)

    async def hook(uow: UnitOfWork, req: PrivacyRequest, t: Transition, now: datetime) -> _Change:
        return _Change(data={"note": text} if text else {})

    return hook
