"""Reading requests: one by id, the agent queue, a subject's own, history and contact, all batched."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from dsr_gateway.domain.access import require_staff
from dsr_gateway.domain.calendar_math import require_aware
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.privacy_requests import PrivacyRequest, QueueCursor, QueueFilter, mask_email
from dsr_gateway.domain.workflow import Action, RequestEvent, allowed_actions
from dsr_gateway.services.ports import Cipher, Clock, UnitOfWorkFactory
from dsr_gateway.services.requests.clock import ClockView, SlaClock
from dsr_gateway.services.requests.common import actor_role, may_see

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class RequestView:
    """A request with its clock as of now and what the reader may do next."""

    request: PrivacyRequest
    clock: ClockView
    allowed_actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class RequestPage:
    items: tuple[RequestView, ...]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        if not self.items:
            return None
        last = self.items[-1].request
        return QueueCursor(last.due_at, last.received_at, last.id).encode()


class RequestQueryService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, cipher: Cipher, sla: SlaClock) -> None:
        self._uow = uow
        self._clock = clock
        self._cipher = cipher
        self._sla = sla

    async def get(self, principal: Principal, request_id: str) -> RequestView | None:
        """None for a request that does not exist or that the caller may not see: the same answer."""
        views = await self.many(principal, [request_id])
        return views.get(request_id)

    async def many(self, principal: Principal, request_ids: Collection[str]) -> dict[str, RequestView]:
        async with self._uow() as uow:
            found = await uow.requests.many(request_ids)
            visible = [r for r in found.values() if may_see(principal, r)]
            paused = await uow.requests.open_pauses([r.id for r in visible])
        return {r.id: self._view(principal, r, r.id in paused) for r in visible}

    async def page(
        self, principal: Principal, where: QueueFilter, first: int | None, after: str | None
    ) -> RequestPage:
        """The agent queue (staff), ordered by deadline, then receipt, then id."""
        require_staff(principal)
        size = min(max(first if first is not None else 25, 1), MAX_PAGE)
        if where.due_before is not None:
            require_aware(where.due_before, "filter.dueBefore")
        cursor = QueueCursor.decode(after) if after else None
        async with self._uow() as uow:
            page = await uow.requests.page(where, cursor, size)
            paused = await uow.requests.open_pauses([r.id for r in page.items])
        return RequestPage(
            tuple(self._view(principal, r, r.id in paused) for r in page.items), page.has_next_page
        )

    async def of_subjects(
        self, principal: Principal, external_ids: Sequence[str]
    ) -> dict[str, list[RequestView]]:
        """Each subject's own requests, newest first, for the ids the caller may read."""
        readable = [e for e in external_ids if principal.is_staff or principal.is_subject(e)]
        async with self._uow() as uow:
            subjects = await uow.subjects.many(readable)
            by_id = await uow.requests.by_subjects([s.id for s in subjects.values()])
            all_ids = [r.id for rs in by_id.values() for r in rs]
            paused = await uow.requests.open_pauses(all_ids)
        return {
            ext: [self._view(principal, r, r.id in paused) for r in by_id.get(subject.id, [])]
            for ext, subject in subjects.items()
        }

    async def contacts(self, principal: Principal, requests: Sequence[PrivacyRequest]) -> dict[str, str]:
        """The requester's email, masked, for staff (who must recognise it, never copy it)."""
        if not principal.is_staff:
            return {}
        wanted = {r.id: r.identity_id for r in requests if r.identity_id is not None}
        async with self._uow() as uow:
            identities = await uow.identities.many(set(wanted.values()))
        masked: dict[str, str] = {}
        for request_id, identity_id in wanted.items():
            identity = identities.get(identity_id)
            if identity is not None and identity.email_encrypted is not None:
                masked[request_id] = mask_email(self._cipher.decrypt(identity.email_encrypted))
        return masked

    async def present(self, principal: Principal, request: PrivacyRequest) -> RequestView:
        """The view of a request the caller just submitted or acted on (an anonymous submitter included)."""
        async with self._uow() as uow:
            paused = bool(await uow.requests.open_pauses([request.id]))
        return self._view(principal, request, paused)

    async def histories_by_id(
        self, principal: Principal, ids: Sequence[str]
    ) -> dict[str, list[RequestEvent]]:
        async with self._uow() as uow:
            found = await uow.requests.many(ids)
            visible = [i for i, r in found.items() if may_see(principal, r)]
            return dict(await uow.requests.events_for(visible))

    async def contacts_by_id(self, principal: Principal, ids: Sequence[str]) -> dict[str, str]:
        if not principal.is_staff:
            return {}
        async with self._uow() as uow:
            found = await uow.requests.many(ids)
        return await self.contacts(principal, list(found.values()))

    def _view(self, principal: Principal, request: PrivacyRequest, paused: bool) -> RequestView:
        actions: tuple[Action, ...] = ()
        if principal.is_staff or may_see(principal, request):
            actions = allowed_actions(request.status, actor_role(principal, request))
        return RequestView(request, self._sla.view(request, self._clock(), paused), actions)
