"""The fold of consent events and the decision, table-driven, without I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dsr_gateway.domain.consent import (
    ANY,
    Actor,
    ActorKind,
    CheckedRecord,
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    ConsentReason,
    ConsentRecord,
    ConsentStatus,
    Origin,
    Scope,
    apply,
    covering_record,
    decide,
    fold,
)
from dsr_gateway.domain.purposes import Channel, ConsentMechanism, LegalBasis, Purpose, PurposeCategory, Topic

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
OPT_IN = Purpose(
    key="marketing_email",
    title="Marketing",
    description="d",
    legal_basis=LegalBasis.CONSENT,
    mechanism=ConsentMechanism.OPT_IN,
    category=PurposeCategory.MARKETING,
    channels=(Channel.EMAIL, Channel.SMS),
    topics=(Topic("promotions", "Promotions"), Topic("product_updates", "Updates")),
    reconfirm_after_days=365,
    last_material_version=3,
)
OPT_OUT = replace(
    OPT_IN, key="analytics", legal_basis=LegalBasis.LEGITIMATE_INTEREST, mechanism=ConsentMechanism.OPT_OUT
)


def record(
    status: ConsentStatus,
    topic: str = ANY,
    channel: str = ANY,
    version: int | None = 3,
    given_days_ago: int | None = 10,
) -> ConsentRecord:
    given = NOW - timedelta(days=given_days_ago) if given_days_ago is not None else None
    return ConsentRecord(
        scope=Scope("marketing_email", topic, channel),
        status=status,
        method=ConsentMethod.CHECKBOX,
        notice_version=version,
        given_at=given,
        updated_at=given or NOW - timedelta(days=1),
        last_event_id=1,
    )


G, W = ConsentStatus.GRANTED, ConsentStatus.WITHDRAWN


@pytest.mark.parametrize(
    ("purpose", "records", "expected"),
    [
        (OPT_IN, [], (False, ConsentReason.NOT_GIVEN)),
        (OPT_OUT, [], (True, ConsentReason.NOT_REQUIRED)),
        (replace(OPT_IN, mechanism=ConsentMechanism.NOTICE_ONLY), [], (True, ConsentReason.NOT_REQUIRED)),
        (replace(OPT_OUT, legal_basis=LegalBasis.CONTRACT), [record(W)], (True, ConsentReason.NOT_REQUIRED)),
        (replace(OPT_OUT, legal_basis=LegalBasis.LEGAL_OBLIGATION), [], (True, ConsentReason.NOT_REQUIRED)),
        (OPT_IN, [record(G)], (True, ConsentReason.GRANTED)),
        (OPT_IN, [record(W)], (False, ConsentReason.WITHDRAWN)),
        (OPT_IN, [record(ConsentStatus.OBJECTED)], (False, ConsentReason.WITHDRAWN)),
        (OPT_IN, [record(ConsentStatus.EXPIRED)], (False, ConsentReason.EXPIRED)),
        (OPT_IN, [record(ConsentStatus.GPC_OPT_OUT)], (False, ConsentReason.GPC_OPT_OUT)),
        # Granted under version 2; the purpose changed materially in version 3.
        (OPT_IN, [record(G, version=2)], (False, ConsentReason.NEEDS_RECONSENT)),
        (OPT_IN, [record(G, version=None)], (False, ConsentReason.NEEDS_RECONSENT)),
        (
            replace(OPT_IN, last_material_version=None),
            [record(G, version=None)],
            (True, ConsentReason.GRANTED),
        ),
        (OPT_IN, [record(G, version=4)], (True, ConsentReason.GRANTED)),
        # The reconfirmation period: 365 days from the last grant or reconfirmation.
        (OPT_IN, [record(G, given_days_ago=364)], (True, ConsentReason.GRANTED)),
        (OPT_IN, [record(G, given_days_ago=365)], (False, ConsentReason.EXPIRED)),
        (
            replace(OPT_IN, reconfirm_after_days=None),
            [record(G, given_days_ago=5000)],
            (True, ConsentReason.GRANTED),
        ),
        # Material change is reported before expiry: re-consent fixes both.
        (OPT_IN, [record(G, version=1, given_days_ago=900)], (False, ConsentReason.NEEDS_RECONSENT)),
        (OPT_OUT, [record(ConsentStatus.OBJECTED)], (False, ConsentReason.WITHDRAWN)),
        (OPT_OUT, [record(ConsentStatus.GPC_OPT_OUT)], (False, ConsentReason.GPC_OPT_OUT)),
        # A grant lifting an objection to an opt-out purpose: no notice version or expiry applies.
        (OPT_OUT, [record(G, version=None, given_days_ago=5000)], (True, ConsentReason.GRANTED)),
    ],
)
def test_decision_for_a_purpose(
    purpose: Purpose, records: list[ConsentRecord], expected: tuple[bool, ConsentReason]
) -> None:
    decision = decide(purpose, records, NOW)
    assert (decision.allowed, decision.reason) == expected
    assert decide(purpose, checked(records), NOW) == decision  # what a consent check reads is enough


def checked(records: list[ConsentRecord]) -> list[CheckedRecord]:
    return [CheckedRecord(r.scope, r.status, r.notice_version, r.given_at) for r in records]


@pytest.mark.parametrize(
    ("records", "topic", "channel", "expected"),
    [
        # The specific choice beats the purpose-wide one, whichever way.
        ([record(G), record(W, topic="promotions")], "promotions", ANY, ConsentReason.WITHDRAWN),
        ([record(G), record(W, topic="promotions")], "product_updates", ANY, ConsentReason.GRANTED),
        ([record(W), record(G, topic="promotions")], "promotions", ANY, ConsentReason.GRANTED),
        ([record(W), record(G, channel="SMS")], ANY, "SMS", ConsentReason.GRANTED),
        ([record(G), record(W, channel="SMS")], "promotions", "SMS", ConsentReason.WITHDRAWN),
        # Topic and channel both specific and disagreeing: the refusal wins.
        (
            [record(G, topic="promotions"), record(W, channel="SMS")],
            "promotions",
            "SMS",
            ConsentReason.WITHDRAWN,
        ),
        (
            [record(W, topic="promotions"), record(G, channel="SMS")],
            "promotions",
            "SMS",
            ConsentReason.WITHDRAWN,
        ),
        (
            [record(G, topic="promotions"), record(G, channel="SMS")],
            "promotions",
            "SMS",
            ConsentReason.GRANTED,
        ),
        # The exact scope beats both partial ones.
        (
            [record(W, topic="promotions"), record(W, channel="SMS"), record(G, "promotions", "SMS")],
            "promotions",
            "SMS",
            ConsentReason.GRANTED,
        ),
        # A question about the whole purpose reads only the purpose-wide record.
        ([record(G, topic="promotions")], ANY, ANY, ConsentReason.NOT_GIVEN),
        ([], "promotions", "EMAIL", ConsentReason.NOT_GIVEN),
    ],
)
def test_specific_scopes_override_the_purpose_wide_one(
    records: list[ConsentRecord], topic: str, channel: str, expected: ConsentReason
) -> None:
    assert decide(OPT_IN, records, NOW, topic, channel).reason is expected
    assert decide(OPT_IN, checked(records), NOW, topic, channel).reason is expected


def test_covering_record_is_none_without_records() -> None:
    assert covering_record([], "promotions", "SMS") is None


def event(
    event_id: int,
    action: ConsentAction,
    days_ago: int = 0,
    version: int | None = 3,
    subject_id: int = 1,
    topic: str = ANY,
) -> ConsentEvent:
    at = NOW - timedelta(days=days_ago)
    return ConsentEvent(
        id=event_id,
        subject_id=subject_id,
        scope=Scope("marketing_email", topic),
        action=action,
        method=ConsentMethod.CHECKBOX,
        notice_version=version,
        origin=Origin(),
        actor=Actor(ActorKind.SUBJECT, "s"),
        occurred_at=at,
        recorded_at=NOW,
    )


@pytest.mark.parametrize(
    ("events", "status", "version", "given_days_ago"),
    [
        ([event(1, ConsentAction.GRANT, 5)], ConsentStatus.GRANTED, 3, 5),
        (
            [event(1, ConsentAction.GRANT, 5), event(2, ConsentAction.WITHDRAW, 2)],
            ConsentStatus.WITHDRAWN,
            3,
            5,
        ),
        (
            [event(1, ConsentAction.GRANT, 9, version=2), event(2, ConsentAction.RECONFIRM, 1, version=None)],
            ConsentStatus.GRANTED,
            2,
            1,
        ),
        (
            [event(1, ConsentAction.GRANT, 9, version=2), event(2, ConsentAction.GRANT, 1, version=4)],
            ConsentStatus.GRANTED,
            4,
            1,
        ),
        ([event(1, ConsentAction.GRANT, 9), event(2, ConsentAction.EXPIRE, 1)], ConsentStatus.EXPIRED, 3, 9),
        (
            [event(1, ConsentAction.GRANT, 9), event(2, ConsentAction.GPC_OPT_OUT, 1)],
            ConsentStatus.GPC_OPT_OUT,
            3,
            9,
        ),
        ([event(1, ConsentAction.OBJECT, 1)], ConsentStatus.OBJECTED, None, None),
        # An imported event older than the current state is history; it does not override.
        (
            [event(1, ConsentAction.GRANT, 1), event(2, ConsentAction.WITHDRAW, 400)],
            ConsentStatus.GRANTED,
            3,
            1,
        ),
        # Same instant: ledger order decides.
        (
            [event(1, ConsentAction.GRANT, 1), event(2, ConsentAction.WITHDRAW, 1)],
            ConsentStatus.WITHDRAWN,
            3,
            1,
        ),
        # Fold order is the id, not the order the list arrives in.
        (
            [event(2, ConsentAction.WITHDRAW, 0), event(1, ConsentAction.GRANT, 0)],
            ConsentStatus.WITHDRAWN,
            3,
            0,
        ),
    ],
)
def test_fold(
    events: list[ConsentEvent], status: ConsentStatus, version: int | None, given_days_ago: int | None
) -> None:
    state = fold(events)
    result = state[(1, Scope("marketing_email"))]
    assert result.status is status
    assert result.notice_version == version
    assert result.given_at == (NOW - timedelta(days=given_days_ago) if given_days_ago is not None else None)


def test_fold_keeps_scopes_and_subjects_apart() -> None:
    state = fold(
        [
            event(1, ConsentAction.GRANT),
            event(2, ConsentAction.WITHDRAW, topic="promotions"),
            event(3, ConsentAction.WITHDRAW, subject_id=2),
        ]
    )
    assert {k: v.status for k, v in state.items()} == {
        (1, Scope("marketing_email")): ConsentStatus.GRANTED,
        (1, Scope("marketing_email", "promotions")): ConsentStatus.WITHDRAWN,
        (2, Scope("marketing_email")): ConsentStatus.WITHDRAWN,
    }


def test_apply_records_the_event_it_came_from() -> None:
    result = apply(None, event(7, ConsentAction.GRANT))
    assert result.last_event_id == 7
    assert result.updated_at == NOW
