"""Which consent calls are refused before anything is recorded, who may make them, and origins."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dsr_gateway.domain.consent import (
    ANY,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    ConsentRecord,
    ConsentStatus,
    Scope,
)
from dsr_gateway.domain.consent_rules import (
    ConsentChoice,
    actor_for,
    is_same_withdrawal,
    make_origin,
    method_for,
    require_consent_check,
    require_consent_read,
    require_consent_write,
    truncate_ip,
    validate_choices,
    withdrawal_scopes,
)
from dsr_gateway.domain.errors import PermissionDenied, ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.domain.purposes import Channel, ConsentMechanism, LegalBasis, Purpose, PurposeCategory, Topic

EMAIL = Purpose(
    key="marketing_email",
    title="Marketing",
    description="d",
    legal_basis=LegalBasis.CONSENT,
    mechanism=ConsentMechanism.OPT_IN,
    category=PurposeCategory.MARKETING,
    channels=(Channel.EMAIL,),
    topics=(Topic("promotions", "Promotions"),),
)
ANALYTICS = replace(
    EMAIL,
    key="analytics",
    legal_basis=LegalBasis.LEGITIMATE_INTEREST,
    mechanism=ConsentMechanism.OPT_OUT,
    topics=(),
    channels=(),
)
ESSENTIAL = replace(
    EMAIL, key="essential", legal_basis=LegalBasis.CONTRACT, mechanism=ConsentMechanism.NOTICE_ONLY, topics=()
)
PURPOSES = {p.key: p for p in (EMAIL, ANALYTICS, ESSENTIAL)}
IN_NOTICE = {"marketing_email", "analytics"}


def run(
    *choices: ConsentChoice,
    method: ConsentMethod = ConsentMethod.CHECKBOX,
    version: int | None = 1,
    notice: set[str] | None = IN_NOTICE,
) -> list[tuple[Scope, ConsentAction]]:
    return validate_choices(choices, PURPOSES, method, version, notice)


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        ([ConsentChoice("marketing_email", True)], [(Scope("marketing_email"), ConsentAction.GRANT)]),
        ([ConsentChoice("marketing_email", False)], [(Scope("marketing_email"), ConsentAction.WITHDRAW)]),
        ([ConsentChoice("analytics", False)], [(Scope("analytics"), ConsentAction.OBJECT)]),
        ([ConsentChoice("analytics", True)], [(Scope("analytics"), ConsentAction.GRANT)]),
        (
            [ConsentChoice("marketing_email", True, topic="promotions", channel="EMAIL")],
            [(Scope("marketing_email", "promotions", "EMAIL"), ConsentAction.GRANT)],
        ),
        (
            [
                ConsentChoice("marketing_email", True),
                ConsentChoice("marketing_email", False, topic="promotions"),
            ],
            [
                (Scope("marketing_email"), ConsentAction.GRANT),
                (Scope("marketing_email", "promotions"), ConsentAction.WITHDRAW),
            ],
        ),
    ],
)
def test_valid_choices_become_events(choices: list[ConsentChoice], expected: list[object]) -> None:
    assert run(*choices) == expected


@pytest.mark.parametrize(
    ("choices", "kwargs", "field", "words"),
    [
        ([ConsentChoice("nope", True)], {}, "choices.0.purpose", "no purpose 'nope'"),
        (
            [ConsentChoice("analytics", False), ConsentChoice("marketing_email", True, topic="x")],
            {},
            "choices.1.topic",
            "has no topic 'x'",
        ),
        (
            [ConsentChoice("marketing_email", True, channel="SMS")],
            {},
            "choices.0.channel",
            "does not cover channel SMS",
        ),
        ([ConsentChoice("essential", True)], {}, "choices.0.purpose", "NOTICE_ONLY"),
        ([ConsentChoice("essential", False)], {}, "choices.0.purpose", "NOTICE_ONLY"),
        (
            [ConsentChoice("marketing_email", True, pre_selected=True)],
            {},
            "choices.0.preSelected",
            "pre-selected",
        ),
        (
            [ConsentChoice("marketing_email", True)],
            {"method": ConsentMethod.UNSUBSCRIBE_LINK},
            "choices.0.granted",
            "can only withdraw",
        ),
        (
            [ConsentChoice("marketing_email", True)],
            {"method": ConsentMethod.GPC},
            "choices.0.granted",
            "opt out",
        ),
        (
            [ConsentChoice("marketing_email", True)],
            {"version": None, "notice": None},
            "choices.0.granted",
            "notice version shown",
        ),
        (
            [ConsentChoice("marketing_email", True)],
            {"notice": {"analytics"}},
            "choices.0.purpose",
            "does not state 'marketing_email'",
        ),
        (
            [ConsentChoice("marketing_email", True)],
            {"version": 9, "notice": None},
            "noticeVersion",
            "no privacy notice",
        ),
        (
            [ConsentChoice("analytics", False), ConsentChoice("analytics", True)],
            {},
            "choices.1",
            "chosen twice",
        ),
        ([], {}, "choices", "at least one"),
    ],
)
def test_refused_choices_name_the_choice(
    choices: list[ConsentChoice], kwargs: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        run(*choices, **kwargs)  # type: ignore[arg-type]
    problems = {p.field: p.message for p in caught.value.problems}
    assert field in problems, problems
    assert words in problems[field]


def test_withdrawing_needs_no_notice_version_nor_affirmative_method() -> None:
    assert run(
        ConsentChoice("marketing_email", False),
        method=ConsentMethod.UNSUBSCRIBE_LINK,
        version=None,
        notice=None,
    ) == [(Scope("marketing_email", ANY, ANY), ConsentAction.WITHDRAW)]


def test_opt_out_grant_needs_no_notice_version() -> None:
    assert run(ConsentChoice("analytics", True), version=None, notice=None)[0][1] is ConsentAction.GRANT


SUBJECT = Principal(PrincipalKind.SUBJECT, id="alice")
AGENT = Principal(PrincipalKind.STAFF, id="agent-1", roles=frozenset({Role.AGENT}))
WRITER = Principal(PrincipalKind.API_CLIENT, id="crm", scopes=frozenset({"consent:write"}))
READER = Principal(PrincipalKind.API_CLIENT, id="crm", scopes=frozenset({"consent:read"}))
ANON = Principal.anonymous()


@pytest.mark.parametrize(
    ("principal", "target", "write", "read", "check"),
    [
        (SUBJECT, "alice", True, True, False),
        (SUBJECT, "bob", False, False, False),
        (SUBJECT, None, False, False, False),
        (AGENT, "bob", True, True, True),
        (AGENT, None, True, True, True),
        (WRITER, "bob", True, False, False),
        (READER, "bob", False, True, True),
        (READER, None, False, True, True),
        (ANON, "alice", False, False, False),
    ],
)
def test_who_may_write_read_and_check(
    principal: Principal, target: str | None, write: bool, read: bool, check: bool
) -> None:
    def allowed(call: object) -> bool:
        try:
            call()  # type: ignore[operator]
        except PermissionDenied:
            return False
        return True

    assert allowed(lambda: require_consent_write(principal, target or "")) is write
    assert allowed(lambda: require_consent_read(principal, target)) is read
    assert allowed(lambda: require_consent_check(principal)) is check


@pytest.mark.parametrize(
    ("principal", "kind"),
    [
        (SUBJECT, ActorKind.SUBJECT),
        (AGENT, ActorKind.AGENT),
        (WRITER, ActorKind.API_CLIENT),
        (Principal.system(), ActorKind.SYSTEM),
    ],
)
def test_actor_recorded_for_each_principal(principal: Principal, kind: ActorKind) -> None:
    assert actor_for(principal).kind is kind


def test_anonymous_is_no_actor() -> None:
    with pytest.raises(PermissionDenied):
        actor_for(ANON)


@pytest.mark.parametrize(
    ("principal", "requested", "expected"),
    [
        (SUBJECT, None, ConsentMethod.BUTTON),
        (SUBJECT, ConsentMethod.CHECKBOX, ConsentMethod.CHECKBOX),
        (WRITER, None, ConsentMethod.API),
        (AGENT, None, ConsentMethod.AGENT),
        (AGENT, ConsentMethod.AGENT, ConsentMethod.AGENT),
        (SUBJECT, ConsentMethod.AGENT, None),
        (WRITER, ConsentMethod.IMPORT, None),
        (SUBJECT, ConsentMethod.GPC, None),
        (AGENT, ConsentMethod.CHECKBOX, None),
    ],
)
def test_method_recorded(
    principal: Principal, requested: ConsentMethod | None, expected: ConsentMethod | None
) -> None:
    if expected is None:
        with pytest.raises(ValidationFailed):
            method_for(principal, requested)
    else:
        assert method_for(principal, requested) is expected


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        (" 10.1.2.3 ", "10.1.2.0/24"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("::1", "::/48"),
    ],
)
def test_ip_is_truncated(address: str, network: str) -> None:
    assert truncate_ip(address) == network
    assert make_origin(None, None, None, address).ip == network


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ip": "not-an-ip"}, "origin.ip"),
        ({"ip": "300.1.1.1"}, "origin.ip"),
        ({"app_id": "x" * 201}, "origin.appId"),
        ({"url": "x" * 2001}, "origin.url"),
        ({"user_agent": "x" * 1001}, "origin.userAgent"),
    ],
)
def test_bad_origins_are_refused(kwargs: dict[str, str], field: str) -> None:
    values = {"app_id": None, "url": None, "user_agent": None, "ip": None} | kwargs
    with pytest.raises(ValidationFailed) as caught:
        make_origin(**values)
    assert caught.value.problems[0].field == field


WIDE, PROMOTIONS, SMS = (
    Scope("marketing_email"),
    Scope("marketing_email", "promotions"),
    Scope("marketing_email", channel="SMS"),
)
W, OBJ, G = ConsentAction.WITHDRAW, ConsentAction.OBJECT, ConsentAction.GRANT


@pytest.mark.parametrize(
    ("scopes", "actions", "purpose", "topic", "channel", "same"),
    [
        # The retry of a topic withdrawal; the key reused for another topic, channel or purpose.
        ({PROMOTIONS}, [W], "marketing_email", "promotions", ANY, True),
        ({PROMOTIONS}, [W], "marketing_email", ANY, ANY, False),
        ({PROMOTIONS}, [W], "marketing_email", ANY, "SMS", False),
        ({PROMOTIONS}, [W], "analytics", ANY, ANY, False),
        # A purpose-wide withdrawal recorded the purpose and its specific grants.
        ({WIDE, SMS}, [W, W], "marketing_email", ANY, ANY, True),
        ({WIDE, SMS}, [W, W], "marketing_email", ANY, "SMS", True),
        ({WIDE, Scope("analytics")}, [W, OBJ], "marketing_email", ANY, ANY, False),
        # Withdrawing everything recorded each purpose purpose-wide.
        ({WIDE, SMS, Scope("analytics")}, [W, W, OBJ], None, ANY, ANY, True),
        ({PROMOTIONS}, [W], None, ANY, ANY, False),
        # A key that recorded grants belongs to a setConsents call.
        ({WIDE}, [G], "marketing_email", ANY, ANY, False),
        ({WIDE}, [G], None, ANY, ANY, False),
        (set(), [], None, ANY, ANY, False),
    ],
)
def test_a_withdrawal_key_replays_only_the_same_call(
    scopes: set[Scope],
    actions: list[ConsentAction],
    purpose: str | None,
    topic: str,
    channel: str,
    same: bool,
) -> None:
    assert is_same_withdrawal(scopes, actions, purpose, topic, channel) is same


def _record(scope: Scope, status: ConsentStatus) -> ConsentRecord:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return ConsentRecord(scope, status, ConsentMethod.CHECKBOX, 1, at, at, 1)


PROMOTIONS = Scope("marketing_email", "promotions")
BY_EMAIL = Scope("marketing_email", ANY, "EMAIL")
GIVEN = [
    _record(Scope("marketing_email"), ConsentStatus.GRANTED),
    _record(PROMOTIONS, ConsentStatus.GRANTED),
    _record(BY_EMAIL, ConsentStatus.WITHDRAWN),  # refused already: not withdrawn again purpose-wide
    _record(Scope("essential"), ConsentStatus.GRANTED),  # needs no consent: never withdrawn
]


@pytest.mark.parametrize(
    ("purpose", "topic", "channel", "current", "expected"),
    [
        # One topic or channel: that scope alone, recorded or not.
        ("marketing_email", "promotions", ANY, GIVEN, [PROMOTIONS]),
        ("marketing_email", ANY, "SMS", [], [Scope("marketing_email", ANY, "SMS")]),
        # Purpose-wide: the purpose and each specific grant under it.
        ("marketing_email", ANY, ANY, GIVEN, [Scope("marketing_email"), PROMOTIONS]),
        ("marketing_email", ANY, ANY, [], [Scope("marketing_email")]),
        # Everything: each purpose with a record, every opt-out purpose, never a notice-only one.
        (None, ANY, ANY, GIVEN, [Scope("marketing_email"), PROMOTIONS, Scope("analytics")]),
        (None, ANY, ANY, [], [Scope("analytics")]),
    ],
)
def test_a_withdrawal_records_its_scopes(
    purpose: str | None, topic: str, channel: str, current: list[ConsentRecord], expected: list[Scope]
) -> None:
    assert withdrawal_scopes(purpose, topic, channel, PURPOSES, current) == expected
