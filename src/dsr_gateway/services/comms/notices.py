"""Announcing a new privacy notice version, in the transaction that publishes it.

Who gets what:
- a subject with a granted consent to a purpose the version changed materially gets the "material"
  variant: what changed (the notice's summary and the new wording of each affected purpose), which of
  their consents no longer count (they read NEEDS_RECONSENT until reconfirmed), and what to do: a
  signed one-click reconfirmation link (with one affected purpose), or the preferences page (several);
- every other subject with any recorded consent choice gets the announcement, asking for nothing.
Subjects are read in keyset pages of 500 (two statements each) and their messages inserted per page.
The first notice is not announced: there was nothing before it to change.
"""

from __future__ import annotations

from datetime import timedelta

from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.notices import PrivacyNotice
from dsr_gateway.domain.unsubscribe import ReconfirmClaims
from dsr_gateway.services.comms.compose import Composer
from dsr_gateway.services.ports import Clock, NewMessage, UnitOfWork

PAGE = 500


class NoticeAnnouncer:
    def __init__(self, clock: Clock, composer: Composer) -> None:
        self._clock = clock
        self._composer = composer

    async def notice_published(
        self, uow: UnitOfWork, notice: PrivacyNotice, previous: PrivacyNotice | None
    ) -> int:
        """Queue the messages; returns how many. The caller commits with the notice."""
        if previous is None:
            return 0
        now = self._clock()
        material = {p.key: p for p in notice.purposes if p.material_change}
        changes = [notice.summary] + [f"{p.title}: {p.description}" for p in material.values()]
        told: set[int] = set()
        count = 0
        if material:
            after = 0
            while page := await uow.comms.subjects_with_consent(list(material), after, PAGE):
                after = page[-1][0]
                contacts = await uow.comms.contacts([s for s, _, _ in page])
                messages: list[NewMessage] = []
                for subject_id, external_id, keys in page:
                    told.add(subject_id)
                    context = {
                        "material": True,
                        "changes": changes,
                        "reconsent_purposes": [material[k].title for k in keys],
                        "notice_url": self._notice_url(notice),
                        "action_url": self._action_url(external_id, keys),
                    }
                    messages.append(
                        self._composer.to_contact(
                            MessageKind.NOTICE_CHANGED, context, contacts.get(subject_id), subject_id
                        )
                    )
                await uow.outbox.add_many(messages, now)
                count += len(messages)
        after = 0
        while page := await uow.comms.subjects_with_consent(None, after, PAGE):
            after = page[-1][0]
            rest = [(s, e) for s, e, _ in page if s not in told]
            contacts = await uow.comms.contacts([s for s, _ in rest])
            context = {
                "material": False,
                "changes": changes,
                "reconsent_purposes": [],
                "notice_url": self._notice_url(notice),
                "action_url": None,
            }
            messages = [
                self._composer.to_contact(MessageKind.NOTICE_CHANGED, context, contacts.get(s), s)
                for s, _ in rest
            ]
            await uow.outbox.add_many(messages, now)
            count += len(messages)
        return count

    def _notice_url(self, notice: PrivacyNotice) -> str:
        config = self._composer.config
        return notice.policy_url or config.notice_url or config.preferences_url or "(see our website)"

    def _action_url(self, external_id: str, keys: list[str]) -> str | None:
        config = self._composer.config
        if len(keys) == 1 or config.preferences_url is None:
            expires = self._clock() + timedelta(days=config.reconfirm_link_days)
            return self._composer.links.reconfirm_url(ReconfirmClaims(external_id, keys[0]), expires)
        return config.preferences_url
