"""The rules a consent call must follow before anything is recorded, and who may make it."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from dsr_gateway.domain.consent import (
    AFFIRMATIVE_METHODS,
    ANY,
    NON_AFFIRMATIVE_REASON,
    Actor,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    ConsentRecord,
    ConsentStatus,
    Origin,
    Scope,
    needs_no_consent,
)
from dsr_gateway.domain.errors import FieldProblem, PermissionDenied, ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.domain.purposes import ConsentMechanism, Purpose

CONSENT_READ = "consent:read"
CONSENT_WRITE = "consent:write"
MAX_CHOICES = 100
ORIGIN_LIMITS = {"appId": 200, "url": 2000, "userAgent": 1000}
IDEMPOTENCY_KEY_MAX = 200


@dataclass(frozen=True, slots=True)
class ConsentChoice:
    """One separate choice: grant (True) or refuse (False) one purpose, topic or channel."""

    purpose: str
    granted: bool
    topic: str = ANY
    channel: str = ANY
    pre_selected: bool = False


# --- who may do it ----------------------------------------------------------------------------------


def actor_for(principal: Principal) -> Actor:
    """How the principal is recorded in the ledger: staff act as agents."""
    kinds = {
        PrincipalKind.SUBJECT: ActorKind.SUBJECT,
        PrincipalKind.STAFF: ActorKind.AGENT,
        PrincipalKind.API_CLIENT: ActorKind.API_CLIENT,
        PrincipalKind.SYSTEM: ActorKind.SYSTEM,
    }
    if principal.kind not in kinds or principal.id is None:
        raise PermissionDenied("Sign in to record consent.")
    return Actor(kinds[principal.kind], principal.id)


def require_consent_write(principal: Principal, external_id: str) -> None:
    """Subjects change their own consents; staff anyone's; API clients need `consent:write`."""
    if not (
        principal.is_subject(external_id)
        or principal.is_staff
        or principal.has_scope(CONSENT_WRITE)
        or principal.kind is PrincipalKind.SYSTEM
    ):
        raise PermissionDenied(
            "You may not change this subject's consents (subjects change their own; API clients need "
            f"the {CONSENT_WRITE} scope)."
        )


def require_consent_read(principal: Principal, external_id: str | None) -> None:
    """Staff and `consent:read` clients read any history; a subject reads only its own."""
    if principal.is_staff or principal.has_scope(CONSENT_READ) or principal.kind is PrincipalKind.SYSTEM:
        return
    if external_id is not None and principal.is_subject(external_id):
        return
    raise PermissionDenied(
        f"You may not read these consent events (subjects read their own; API clients need {CONSENT_READ})."
    )


def require_consent_check(principal: Principal) -> None:
    if not (principal.is_staff or principal.has_scope(CONSENT_READ)):
        raise PermissionDenied(f"Consent checks are for staff and API clients with the {CONSENT_READ} scope.")


def method_for(principal: Principal, requested: ConsentMethod | None) -> ConsentMethod:
    """The method recorded: agents record AGENT; IMPORT and GPC are reserved to their own channels."""
    if principal.is_staff:
        if requested not in (None, ConsentMethod.AGENT):
            raise ValidationFailed.single("method", "staff record choices with the AGENT method")
        return ConsentMethod.AGENT
    if requested is None:
        return ConsentMethod.API if principal.kind is PrincipalKind.API_CLIENT else ConsentMethod.BUTTON
    if requested in (ConsentMethod.AGENT, ConsentMethod.IMPORT, ConsentMethod.GPC, ConsentMethod.SYSTEM):
        raise ValidationFailed.single(
            "method",
            f"{requested.value} is reserved (agents, the import command, the Sec-GPC header); "
            "use CHECKBOX, BUTTON, API or UNSUBSCRIBE_LINK",
        )
    return requested


# --- what may be chosen -----------------------------------------------------------------------------


def action_for(purpose: Purpose, granted: bool) -> ConsentAction:
    """A "no" to an opt-out purpose is an objection; to an opt-in purpose, a withdrawal."""
    if granted:
        return ConsentAction.GRANT
    return ConsentAction.OBJECT if purpose.mechanism is ConsentMechanism.OPT_OUT else ConsentAction.WITHDRAW


def validate_choices(
    choices: Sequence[ConsentChoice],
    purposes: Mapping[str, Purpose],
    method: ConsentMethod,
    notice_version: int | None,
    notice_purposes: Collection[str] | None,
) -> list[tuple[Scope, ConsentAction]]:
    """Every problem of the call at once, each naming its choice (`choices.1.topic`); or the events.

    `notice_purposes` is the set of purposes the shown notice version states, None if it does not exist.
    """
    problems: list[FieldProblem] = []
    if not choices:
        problems.append(FieldProblem("choices", "give at least one choice"))
    if len(choices) > MAX_CHOICES:
        problems.append(FieldProblem("choices", f"at most {MAX_CHOICES} choices per call"))
    if notice_version is not None and notice_purposes is None:
        problems.append(FieldProblem("noticeVersion", f"no privacy notice version {notice_version}"))
    result: list[tuple[Scope, ConsentAction]] = []
    seen: set[Scope] = set()
    for index, choice in enumerate(choices):
        where = f"choices.{index}"
        purpose = purposes.get(choice.purpose)
        if purpose is None:
            problems.append(FieldProblem(f"{where}.purpose", f"no purpose {choice.purpose!r}"))
            continue
        before = len(problems)
        problems.extend(scope_problems(where, purpose, choice.topic, choice.channel))
        if choice.granted:
            problems.extend(_grant_problems(where, purpose, choice, method, notice_version, notice_purposes))
        scope = Scope(purpose.key, choice.topic, choice.channel)
        if scope in seen:
            problems.append(FieldProblem(where, "the same purpose, topic and channel is chosen twice"))
        seen.add(scope)
        if len(problems) == before:
            result.append((scope, action_for(purpose, choice.granted)))
    if problems:
        raise ValidationFailed(problems)
    return result


def scope_problems(
    where: str, purpose: Purpose, topic: str, channel: str, choosing: bool = True
) -> list[FieldProblem]:
    """Problems with a (purpose, topic, channel); `where` prefixes the field paths (`choices.0`)."""
    prefix = f"{where}." if where else ""
    problems: list[FieldProblem] = []
    if choosing and not purpose.is_consentable:
        problems.append(
            FieldProblem(
                f"{prefix}purpose", f"{purpose.key!r} is NOTICE_ONLY: it cannot be granted or withdrawn"
            )
        )
    if topic != ANY and topic not in purpose.topic_keys:
        known = ", ".join(sorted(purpose.topic_keys)) or "none"
        problems.append(
            FieldProblem(f"{prefix}topic", f"{purpose.key!r} has no topic {topic!r} (topics: {known})")
        )
    if channel != ANY and channel not in purpose.channels:
        known = ", ".join(c.value for c in purpose.channels) or "none"
        problems.append(
            FieldProblem(
                f"{prefix}channel", f"{purpose.key!r} does not cover channel {channel} (channels: {known})"
            )
        )
    return problems


def _grant_problems(
    where: str,
    purpose: Purpose,
    choice: ConsentChoice,
    method: ConsentMethod,
    notice_version: int | None,
    notice_purposes: Collection[str] | None,
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if choice.pre_selected:
        problems.append(
            FieldProblem(f"{where}.preSelected", "a pre-selected box is not consent; the subject must choose")
        )
    if method not in AFFIRMATIVE_METHODS:
        reason = NON_AFFIRMATIVE_REASON.get(method, "it is not an affirmative act")
        problems.append(
            FieldProblem(f"{where}.granted", f"cannot grant with method {method.value}: {reason}")
        )
    if purpose.mechanism is ConsentMechanism.OPT_IN:
        if notice_version is None:
            problems.append(
                FieldProblem(f"{where}.granted", "a grant needs the notice version shown (noticeVersion)")
            )
        elif notice_purposes is not None and purpose.key not in notice_purposes:
            problems.append(
                FieldProblem(
                    f"{where}.purpose",
                    f"notice version {notice_version} does not state {purpose.key!r}; "
                    "show a version that does",
                )
            )
    return problems


# --- where it came from -----------------------------------------------------------------------------


def truncate_ip(address: str) -> str:
    """The network, not the host: IPv4 to its /24, IPv6 to its /48 (an IPv4-mapped IPv6 as IPv4).

    `203.0.113.77` -> `203.0.113.0/24`; `2001:db8:abcd:12::1` -> `2001:db8:abcd::/48`.
    """
    ip = ipaddress.ip_address(address.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if isinstance(ip, ipaddress.IPv4Address) else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def make_origin(
    app_id: str | None, url: str | None, user_agent: str | None, ip: str | None, field: str = "origin"
) -> Origin:
    problems: list[FieldProblem] = []
    for name, value in (("appId", app_id), ("url", url), ("userAgent", user_agent)):
        if value is not None and len(value) > ORIGIN_LIMITS[name]:
            problems.append(
                FieldProblem(f"{field}.{name}", f"must be at most {ORIGIN_LIMITS[name]} characters")
            )
    truncated = None
    if ip:
        try:
            truncated = truncate_ip(ip)
        except ValueError:
            problems.append(FieldProblem(f"{field}.ip", f"{ip!r} is not an IPv4 or IPv6 address"))
    if problems:
        raise ValidationFailed(problems)
    return Origin(app_id=app_id, url=url, user_agent=user_agent, ip=truncated)


WITHDRAWING_ACTIONS = frozenset({ConsentAction.WITHDRAW, ConsentAction.OBJECT})


def is_same_withdrawal(previous: Collection[Scope], actions: Collection[ConsentAction],
                       purpose: str | None, topic: str, channel: str) -> bool:  # fmt: skip
    """Could a withdrawal that recorded these scopes and actions be this call (purpose None: all)?

    A retry under the same idempotency key replays the first call; a key reused for a different call is
    refused. A call that named a purpose recorded that scope (and, purpose-wide, the purpose's specific
    grants); withdrawing everything recorded each purpose it touched purpose-wide.
    """
    if not actions or not set(actions) <= WITHDRAWING_ACTIONS:
        return False  # the key recorded grants (a setConsents call), or nothing
    purposes = {s.purpose for s in previous}
    if purpose is None:
        return all(Scope(p) in previous for p in purposes)
    return purposes == {purpose} and Scope(purpose, topic, channel) in previous


def withdrawal_scopes(purpose: str | None, topic: str, channel: str, purposes: Mapping[str, Purpose],
                      current: Collection[ConsentRecord]) -> list[Scope]:  # fmt: skip
    """The scopes a withdrawal records (purpose None: all): the one named, and under a purpose-wide
    withdrawal every specific grant of the purpose; withdrawing everything touches each purpose with a
    record, and every opt-out purpose (an objection), never one that needs no consent."""
    if purpose is not None and (topic != ANY or channel != ANY):
        return [Scope(purpose, topic, channel)]
    if purpose is not None:
        targets = [purposes[purpose]]
    else:
        recorded = {r.scope.purpose for r in current}
        targets = [
            p
            for p in purposes.values()
            if not needs_no_consent(p) and (p.key in recorded or p.mechanism is ConsentMechanism.OPT_OUT)
        ]
    scopes: list[Scope] = []
    for target in targets:
        scopes.append(Scope(target.key))
        scopes.extend(
            r.scope
            for r in current
            if r.scope.purpose == target.key
            and not r.scope.is_purpose_wide
            and r.status is ConsentStatus.GRANTED
        )
    return scopes


def validate_idempotency_key(key: str | None) -> str | None:
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        raise ValidationFailed.single("idempotencyKey", f"use 1-{IDEMPOTENCY_KEY_MAX} characters")
    return key
