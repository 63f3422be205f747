"""Breach notices to the subjects whose data sits in the affected systems (GDPR Art. 34).

Targeting, from the systems file (DSR_SYSTEMS_FILE) and the subjects the gateway knows:
1. the affected systems are those named, plus every system that lists one of the given data
   categories (`data_categories` of the system);
2. a system that lists the purposes it serves (`purposes`) holds the data of the subjects with a consent
   record (any state: the data may still be there) for one of those purposes;
3. a system that lists no purposes, or the gateway's own records, is taken to hold data of every subject
   the gateway knows: for a breach, telling too many beats leaving someone out.
Each targeted subject gets one BREACH_NOTICE message and a `breach_recipient` row (with the outbox id),
all in one transaction; a subject without a known address gets the row and a NO_ADDRESS message, so
staff can reach them another way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from dsr_gateway.domain.access import require_admin
from dsr_gateway.domain.errors import FieldProblem, ValidationFailed
from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.principal import Principal
from dsr_gateway.services.comms.compose import Composer
from dsr_gateway.services.fulfilment_ports import SystemDescription
from dsr_gateway.services.ports import Clock, UnitOfWorkFactory

PAGE = 500
TEXT_MAX = 4000


@dataclass(frozen=True, slots=True)
class BreachInput:
    systems: Sequence[str]
    data_categories: Sequence[str]
    summary: str
    likely_consequences: str
    measures_taken: str
    contact: str
    occurred_on: date | None = None
    steps_to_take: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class BreachResult:
    breach_id: int
    systems: list[str]
    recipients: int
    without_address: int


class BreachService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, composer: Composer, systems: Sequence[SystemDescription]
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._composer = composer
        self._systems = {s.name: s for s in systems}

    def _check(self, command: BreachInput) -> list[SystemDescription]:
        problems: list[FieldProblem] = []
        for index, name in enumerate(command.systems):
            if name not in self._systems:
                known = ", ".join(sorted(self._systems)) or "none configured"
                problems.append(FieldProblem(f"systems.{index}", f"no system {name!r} (systems: {known})"))
        for name in ("summary", "likely_consequences", "measures_taken", "contact"):
            value: str = getattr(command, name)
            camel = name.split("_")[0] + "".join(w.title() for w in name.split("_")[1:])
            if not value.strip():
                problems.append(FieldProblem(camel, "must not be blank: the subject needs to know this"))
            elif len(value) > TEXT_MAX:
                problems.append(FieldProblem(camel, f"must be at most {TEXT_MAX} characters"))
        categories = set(command.data_categories)
        affected = [
            s
            for s in self._systems.values()
            if s.name in command.systems or categories.intersection(s.data_categories)
        ]
        if not problems and not affected:
            problems.append(
                FieldProblem(
                    "dataCategories" if command.data_categories else "systems",
                    "name at least one system, or data categories a configured system holds",
                )
            )
        if problems:
            raise ValidationFailed(problems)
        return affected

    async def send(self, principal: Principal, command: BreachInput) -> BreachResult:
        require_admin(principal)
        affected = self._check(command)
        everyone = any(s.kind == "gateway" or not s.purposes for s in affected)
        purposes = sorted({p for s in affected for p in s.purposes})
        categories = list(command.data_categories) or sorted({c for s in affected for c in s.data_categories})
        now = self._clock()
        occurred_on = command.occurred_on or now.date()
        context = {
            "what_happened": command.summary.strip(),
            "occurred_on": occurred_on,
            "data_categories": categories,
            "likely_consequences": command.likely_consequences.strip(),
            "measures_taken": command.measures_taken.strip(),
            "steps_to_take": list(command.steps_to_take),
            "privacy_contact": command.contact.strip(),
        }
        recipients = without = 0
        async with self._uow() as uow:
            breach_id = await uow.comms.add_breach(
                [s.name for s in affected],
                categories,
                {
                    **{k: v for k, v in context.items() if k != "occurred_on"},
                    "occurredOn": occurred_on.isoformat(),
                },
                principal.actor_label,
                now,
            )
            after = 0
            while True:
                if everyone:
                    page = await uow.comms.subjects_page(after, PAGE)
                    ids = [s for s, _ in page]
                else:
                    ids = await uow.comms.subjects_with_records(purposes, after, PAGE)
                if not ids:
                    break
                after = ids[-1]
                contacts = await uow.comms.contacts(ids)
                messages = [
                    self._composer.to_contact(MessageKind.BREACH_NOTICE, context, contacts.get(s), s)
                    for s in ids
                ]
                outbox_ids = await uow.outbox.add_many(messages, now)
                await uow.comms.record_breach_recipients(
                    breach_id, list(zip(ids, outbox_ids, strict=True)), now
                )
                recipients += len(ids)
                without += sum(1 for m in messages if m.recipient_encrypted is None)
            await uow.commit()
        return BreachResult(breach_id, [s.name for s in affected], recipients, without)
