"""Rows of a consent import (a CSV from an earlier system): the columns, and what makes a row valid."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dsr_gateway.domain.consent import (
    ANY,
    GRANTING_ACTIONS,
    Actor,
    ActorKind,
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    ConsentRecord,
    NewConsentEvent,
    Origin,
    Scope,
    applied,
)
from dsr_gateway.domain.consent_rules import scope_problems
from dsr_gateway.domain.purposes import ConsentMechanism, Purpose
from dsr_gateway.domain.subjects import EXTERNAL_ID_MAX

REQUIRED_COLUMNS = ("subject_id", "purpose", "action", "occurred_at")
OPTIONAL_COLUMNS = ("topic", "channel", "notice_version", "source")
IMPORT_ACTOR = Actor(ActorKind.SYSTEM, "import")
# An earlier system's clock may be a little ahead; a date further in the future is a mistake.
FUTURE_TOLERANCE = timedelta(days=1)


MEMO_EVENTS = 10_000
ACTIONS = {a.value: a for a in ConsentAction}  # a dict look-up: an Enum call costs ~1 µs a row


class RowRejected(Exception):
    """The row cannot be imported; the message says why, for the rejected-row report."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    external_id: str
    event: NewConsentEvent


def header_problems(columns: Sequence[str] | None) -> list[str]:
    if not columns:
        return ["the file is empty; the first line must name the columns"]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown:
        problems.append(
            f"unknown column(s): {', '.join(unknown)}; the columns are "
            f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
        )
    return problems


def parse_row(
    line: int,
    row: Mapping[str, str | None],
    purposes: Mapping[str, Purpose],
    notice_purposes: Callable[[int], Collection[str] | None],
    now: datetime,
) -> ImportRow:
    """One CSV row as an event recorded with the IMPORT method; RowRejected says what is wrong."""

    def cell(name: str) -> str:
        value = row.get(name) or ""
        return value.strip() if isinstance(value, str) else ""

    if None in row:
        raise RowRejected("the row has more cells than the header has columns")

    external_id = cell("subject_id")
    if not external_id or len(external_id) > EXTERNAL_ID_MAX:
        raise RowRejected(f"subject_id must be 1-{EXTERNAL_ID_MAX} characters")
    purpose = purposes.get(cell("purpose"))
    if purpose is None:
        raise RowRejected(f"no purpose {cell('purpose')!r}")
    try:
        action = ConsentAction(cell("action").upper())
    except ValueError:
        raise RowRejected(
            f"action {cell('action')!r} is not one of {', '.join(a.value for a in ConsentAction)}"
        ) from None
    occurred_at = _instant(cell("occurred_at"), now)
    topic, channel = cell("topic"), cell("channel").upper()
    problems = scope_problems("", purpose, topic or ANY, channel or ANY)
    if problems:
        raise RowRejected("; ".join(f"{p.field}: {p.message}" for p in problems))
    version = _notice_version(cell("notice_version"), purpose, action, notice_purposes)
    source = cell("source") or None
    if source is not None and len(source) > 200:
        raise RowRejected("source must be at most 200 characters")
    event = NewConsentEvent(
        scope=Scope(purpose.key, topic, channel),
        action=action,
        method=ConsentMethod.IMPORT,
        notice_version=version,
        origin=Origin(app_id=source),
        actor=IMPORT_ACTOR,
        occurred_at=occurred_at,
        recorded_at=now,
    )
    return ImportRow(line, external_id, event)


def _instant(text: str, now: datetime) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RowRejected(f"occurred_at {text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise RowRejected("occurred_at needs a UTC offset, e.g. 2024-03-01T10:00:00Z")
    if value > now + FUTURE_TOLERANCE:
        raise RowRejected("occurred_at is in the future")
    return value


def _notice_version(
    text: str,
    purpose: Purpose,
    action: ConsentAction,
    notice_purposes: Callable[[int], Collection[str] | None],
) -> int | None:
    if not text:
        return None
    try:
        version = int(text)
    except ValueError:
        raise RowRejected(f"notice_version {text!r} is not a whole number") from None
    stated = notice_purposes(version)
    if stated is None:
        raise RowRejected(f"no privacy notice version {version}")
    granting = action in GRANTING_ACTIONS
    if granting and purpose.mechanism is ConsentMechanism.OPT_IN and purpose.key not in stated:
        raise RowRejected(f"notice version {version} does not state {purpose.key!r}")
    return version


class RowParser:
    """`parse_row` for a whole file: the same checks and messages, with what repeats across rows (a
    purpose/topic/channel's validity, a notice version's check, an occurred_at text) worked out once."""

    def __init__(
        self,
        purposes: Mapping[str, Purpose],
        notice_purposes: Callable[[int], Collection[str] | None],
        now: datetime,
    ) -> None:
        self._purposes = purposes
        self._notices = notice_purposes
        self._now = now
        self._scopes: dict[tuple[str, str, str], Scope | str] = {}
        self._versions: dict[tuple[str, str, str], int | str | None] = {}
        self._instants: dict[str, datetime] = {}
        self._origins: dict[str | None, Origin] = {}
        self._events: dict[tuple[str, ...], NewConsentEvent] = {}

    def __call__(self, line: int, row: Mapping[str, str | None]) -> ImportRow:
        if None in row:
            raise RowRejected("the row has more cells than the header has columns")
        get = row.get
        external_id = (get("subject_id") or "").strip()
        if not external_id or len(external_id) > EXTERNAL_ID_MAX:
            raise RowRejected(f"subject_id must be 1-{EXTERNAL_ID_MAX} characters")
        cells = (  # written out: a generator here costs a microsecond a row
            (get("purpose") or "").strip(),
            (get("topic") or "").strip(),
            (get("channel") or "").strip(),
            (get("action") or "").strip(),
            (get("occurred_at") or "").strip(),
            (get("notice_version") or "").strip(),
            (get("source") or "").strip(),
        )
        event = self._events.get(cells)
        if event is None:
            event = self._event(*cells)
            if len(self._events) < MEMO_EVENTS:
                self._events[cells] = event
        return ImportRow(line, external_id, event)

    def _event(
        self, key: str, topic: str, channel: str, text: str, when: str, version_text: str, source_text: str
    ) -> NewConsentEvent:
        """The event of the row's cells after subject_id (an event has no subject: rows repeating the
        same choice at the same time share one), checked in parse_row's order."""
        channel = channel.upper()
        scope = self._scopes.get((key, topic, channel))
        if scope is None:
            scope = self._scopes[(key, topic, channel)] = self._scope(key, topic, channel)
        purpose = self._purposes.get(key)
        if purpose is None:
            raise RowRejected(f"no purpose {key!r}")
        action = ACTIONS.get(text.upper())
        if action is None:
            raise RowRejected(f"action {text!r} is not one of {', '.join(a.value for a in ConsentAction)}")
        occurred_at = self._instants.get(when)
        if occurred_at is None:
            occurred_at = _instant(when, self._now)
            if len(self._instants) < 10_000:
                self._instants[when] = occurred_at
        if isinstance(scope, str):  # checked in parse_row's order: after the action and the time
            raise RowRejected(scope)
        version_key = (version_text, key, action.value)
        version = self._versions.get(version_key, "")
        if version == "":
            try:
                version = _notice_version(version_text, purpose, action, self._notices)
            except RowRejected as exc:
                version = str(exc)
            self._versions[version_key] = version
        if isinstance(version, str):
            raise RowRejected(version)
        source = source_text or None
        origin = self._origins.get(source)
        if origin is None:
            if source is not None and len(source) > 200:
                raise RowRejected("source must be at most 200 characters")
            origin = Origin(app_id=source)
            if len(self._origins) < 1000:
                self._origins[source] = origin
        return NewConsentEvent(
            scope=scope,
            action=action,
            method=ConsentMethod.IMPORT,
            notice_version=version,
            origin=origin,
            actor=IMPORT_ACTOR,
            occurred_at=occurred_at,
            recorded_at=self._now,
        )

    def _scope(self, key: str, topic: str, channel: str) -> Scope | str:
        """The scope, or the reason it is refused (remembered like a valid one)."""
        purpose = self._purposes.get(key)
        if purpose is None:
            return f"no purpose {key!r}"
        problems = scope_problems("", purpose, topic or ANY, channel or ANY)
        if problems:
            return "; ".join(f"{p.field}: {p.message}" for p in problems)
        return Scope(purpose.key, topic, channel)


class ImportFold:
    """The projection after imported events, continued from the stored records in ledger order."""

    def __init__(self, stored: Mapping[int, Iterable[ConsentRecord]]) -> None:
        # Keyed by flat (subject, purpose, topic, channel) tuples: hashing them is cheaper than a Scope.
        self._stored = {_key(s, r.scope): r for s, records in stored.items() for r in records}
        self._state = dict(self._stored)

    def add(self, event: ConsentEvent) -> None:
        self.add_new(event.subject_id, event.id, event)

    def add_new(self, subject_id: int, event_id: int, event: NewConsentEvent | ConsentEvent) -> None:
        """`add` of an event given its subject and id."""
        scope = event.scope
        key = (subject_id, scope.purpose, scope.topic, scope.channel)
        state = self._state
        state[key] = applied(state.get(key), event, event_id)

    def changed(self) -> tuple[list[tuple[int, ConsentRecord]], list[tuple[int, ConsentRecord]]]:
        """(subject, record) whose record changed: (those with no stored record, those with one)."""
        new: list[tuple[int, ConsentRecord]] = []
        replaced: list[tuple[int, ConsentRecord]] = []
        stored = self._stored
        for key, record in self._state.items():
            before = stored.get(key)
            if before is None:
                new.append((key[0], record))
            elif record is not before:
                replaced.append((key[0], record))
        return new, replaced

    def records_of(self, subjects: Collection[int]) -> dict[int, list[ConsentRecord]]:
        """Every record known for these subjects (stored or folded), as the next chunk starts from."""
        records: dict[int, list[ConsentRecord]] = {s: [] for s in subjects}
        for key, record in self._state.items():
            found = records.get(key[0])
            if found is not None:
                found.append(record)
        return records


@dataclass(frozen=True, slots=True)
class TableGrowth:
    """Rows an import added to a table, beside the planner's row count before it (negative: never
    counted)."""

    added: int
    planner_rows: float


ANALYZE_AFTER_ROWS = 10_000


def outdated_statistics(growth: Mapping[str, TableGrowth]) -> list[str]:
    """The tables whose planner statistics an import outdates: it added at least ANALYZE_AFTER_ROWS rows
    and at least as many as the planner counted (the table doubled, or was never counted, as after a first
    import into an empty database, when plans for the consent check would be poor). Smaller growth the
    planner scales from the table's size on disk, and autovacuum's own ANALYZE follows."""
    return [
        table
        for table, grown in growth.items()
        if grown.added >= ANALYZE_AFTER_ROWS and grown.added >= grown.planner_rows
    ]


def _key(subject_id: int, scope: Scope) -> tuple[int, str, str, str]:
    return (subject_id, scope.purpose, scope.topic, scope.channel)
