"""Use cases for purposes and privacy notices."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from dsr_gateway.domain.access import require_admin
from dsr_gateway.domain.errors import FieldProblem, ValidationFailed
from dsr_gateway.domain.notices import NoticeDraft, PrivacyNotice, validate_draft
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.purposes import Purpose, validate_purpose
from dsr_gateway.services.comms.notices import NoticeAnnouncer
from dsr_gateway.services.ports import Clock, EventBus, UnitOfWorkFactory

NOTICE_CHANNEL = "notices"


class CatalogueService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        events: EventBus,
        announcer: NoticeAnnouncer | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._events = events
        # Tells subjects about a new version, in the publishing transaction (services/comms/notices.py).
        self._announcer = announcer

    async def purposes(self) -> Sequence[Purpose]:
        async with self._uow() as uow:
            return await uow.purposes.list_all()

    async def notice(self, version: int | None = None) -> PrivacyNotice | None:
        async with self._uow() as uow:
            return await uow.notices.get(version)

    async def upsert_purpose(
        self, principal: Principal, purpose: Purpose, expected_version: int | None = None
    ) -> Purpose:
        """Create a purpose, or change it; `expected_version` guards against another admin's edit."""
        require_admin(principal)
        validate_purpose(purpose)
        now = self._clock()
        async with self._uow() as uow:
            current = await uow.purposes.get(purpose.key)
            if current is None:
                await uow.purposes.add(purpose, now)
            else:
                await uow.purposes.update(
                    purpose, expected_version if expected_version is not None else current.version, now
                )
            saved = await uow.purposes.get(purpose.key)
            await uow.commit()
        assert saved is not None
        return saved

    async def publish_notice(self, principal: Principal, draft: NoticeDraft) -> PrivacyNotice:
        """Publish the next version; a material change makes older consents to those purposes lapse."""
        require_admin(principal)
        async with self._uow() as uow:
            known = await uow.purposes.existing_keys([p.key for p in draft.purposes])
            validate_draft(draft, known)
            purposes = {p.key: p for p in await uow.purposes.list_all()}
            latest = await uow.notices.get(None)
            if latest is None and any(p.material_change for p in draft.purposes):
                raise ValidationFailed(
                    [FieldProblem("purposes", "the first notice has no earlier version to change materially")]
                )
            # The notice keeps the purpose's wording as published, whatever later edits do.
            stated = tuple(
                replace(p, title=purposes[p.key].title, description=purposes[p.key].description)
                for p in draft.purposes
            )
            notice = PrivacyNotice(
                version=(latest.version + 1) if latest else 1,
                summary=draft.summary,
                data_categories=draft.data_categories,
                purposes=stated,
                translations=draft.translations,
                policy_url=draft.policy_url,
                published_at=self._clock(),
                published_by=principal.actor_label,
            )
            await uow.notices.add(notice)
            await uow.purposes.mark_material_change(notice.material_purposes, notice.version)
            if self._announcer is not None:
                await self._announcer.notice_published(uow, notice, latest)
            await uow.commit()
        await self._events.publish(NOTICE_CHANNEL, {"version": notice.version})
        return notice

    async def published_notices(self) -> AsyncIterator[PrivacyNotice]:
        """Each notice published from now on, as it is published."""
        async for event in self._events.subscribe(NOTICE_CHANNEL):
            version = event.get("version")
            notice = await self.notice(version) if isinstance(version, int) else None
            if notice is not None:
                yield notice
