"""The compliance report against a data set seeded through the real services with a moving clock.

Every figure is computed again here from the script of what was done, not read back from the database.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dsr_gateway import cli
from dsr_gateway.cli_report import render_csv
from dsr_gateway.domain.consent import ConsentMethod
from dsr_gateway.domain.consent_rules import ConsentChoice
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.domain.privacy_requests import PrivacyRequest
from dsr_gateway.domain.reports import ComplianceReport
from dsr_gateway.domain.requests import RejectionReason, RequestType
from dsr_gateway.domain.sla_rules import Jurisdiction
from dsr_gateway.services.consent_writes import SetConsentsRequest, WithdrawRequest
from dsr_gateway.services.requests import SubmitCommand
from tests.support.accountability_factories import AGENT, Workbench, workbench
from tests.support.app import GraphQLClient, agent_token
from tests.support.consent_factories import seed_catalogue
from tests.support.factories import publish_notice

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 31, 12, tzinfo=UTC)
RECONFIRM_DAYS = 365  # marketing_email in seed_catalogue
MATERIAL_VERSION = 2  # notice 2 changes marketing_email materially


def at(month: int, day: int, year: int = 2026, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def subject(external_id: str) -> Principal:
    return Principal(PrincipalKind.SUBJECT, id=external_id)


# (when, subject, action, purpose, topic, notice version): each one a setConsents or withdrawConsent call.
CONSENTS: list[tuple[datetime, str, str, str, str, int | None]] = [
    (at(6, 10, 2025), "s1", "GRANT", "marketing_email", "", 1),
    (at(1, 15), "s2", "GRANT", "marketing_email", "", 1),
    (at(1, 16), "s3", "GRANT", "marketing_email", "", 1),
    (at(2, 3), "s3", "WITHDRAW", "marketing_email", "", None),
    (at(2, 4), "s4", "OBJECT", "analytics", "", None),
    (at(3, 20), "s5", "GRANT", "marketing_email", "", 2),
    (at(3, 21), "s2", "GRANT", "marketing_email", "promotions", 2),
    (at(1, 5, 2027), "s6", "GRANT", "marketing_email", "", 2),
]

# (name, type, jurisdiction, received, [(action, when)]): the workflow each request goes through.
REQUESTS: list[tuple[str, RequestType, Jurisdiction, datetime, list[tuple[str, datetime]]]] = [
    ("r8", RequestType.ACCESS, Jurisdiction.GDPR, at(12, 15, 2025),
     [("approve", at(12, 16, 2025)), ("complete", at(1, 8))]),
    ("r1", RequestType.ACCESS, Jurisdiction.GDPR, at(1, 5),
     [("approve", at(1, 6)), ("complete", at(1, 20, hour=15))]),
    ("r2", RequestType.ERASURE, Jurisdiction.GDPR, at(2, 1),
     [("approve", at(2, 2)), ("complete", at(4, 10))]),
    ("r3", RequestType.ACCESS, Jurisdiction.CCPA, at(3, 1), [("reject", at(3, 4, hour=18))]),
    ("r4", RequestType.ACCESS, Jurisdiction.GDPR, at(4, 1), [("approve", at(4, 2)), ("extend", at(4, 20)),
                                                             ("complete", at(5, 20))]),
    ("r5", RequestType.PORTABILITY, Jurisdiction.GDPR, at(5, 1), [("cancel", at(5, 2))]),
    ("r6", RequestType.ACCESS, Jurisdiction.GDPR, at(6, 1), [("approve", at(6, 2))]),
    ("r7", RequestType.ERASURE, Jurisdiction.GDPR, at(12, 20), []),
]  # fmt: skip


async def seed_consents(bench: Workbench) -> None:
    for when, who, action, purpose, topic, notice in CONSENTS:
        bench.clock.now = when
        if action == "GRANT":
            choice = ConsentChoice(purpose, True, topic)
            await bench.consent.set_consents(
                subject(who), SetConsentsRequest(who, [choice], ConsentMethod.CHECKBOX, notice)
            )
        else:
            await bench.consent.withdraw(subject(who), WithdrawRequest(who, purpose))


async def seed_requests(bench: Workbench) -> dict[str, PrivacyRequest]:
    final: dict[str, PrivacyRequest] = {}
    for name, kind, jurisdiction, received, steps in REQUESTS:
        bench.clock.now = received
        who = f"req-{name}"
        details = {"all": True} if kind is RequestType.ERASURE else {}
        submitted = await bench.intake.submit(subject(who), SubmitCommand(kind, jurisdiction, details))
        request = submitted.request
        for action, when in steps:
            bench.clock.now = when
            if action == "approve":
                request = await bench.actions.approve(AGENT, request.id)
            elif action == "complete":
                request = await bench.actions.complete(AGENT, request.id)
            elif action == "extend":
                request = await bench.actions.extend(AGENT, request.id, "Many systems hold this data.")
            elif action == "reject":
                request = await bench.actions.reject(
                    AGENT, request.id, RejectionReason.EXCESSIVE, "The same request was answered last week."
                )
            else:
                request = await bench.actions.cancel(subject(who), request.id)
        final[name] = request
    return final


def expected_consents() -> dict[str, Any]:
    """The figures, from the script alone."""
    last: dict[tuple[str, str, str], tuple[str, datetime, int | None]] = {}
    activity: Counter[tuple[str, str, str]] = Counter()
    for when, who, action, purpose, topic, notice in CONSENTS:
        state = {"GRANT": "GRANTED", "WITHDRAW": "WITHDRAWN", "OBJECT": "OBJECTED"}[action]
        last[(who, purpose, topic)] = (state, when, notice)
        if START <= when < END:
            activity[(when.strftime("%Y-%m"), purpose, action)] += 1
    by_state = Counter((purpose, state) for (_, purpose, _), (state, _, _) in last.items())
    granted = [
        (p, w, n) for (_, p, _), (s, w, n) in last.items() if s == "GRANTED" and p == "marketing_email"
    ]
    return {
        "by_state": dict(by_state),
        "activity": dict(activity),
        "reconfirmation_due": sum(1 for _, w, _ in granted if w + timedelta(days=RECONFIRM_DAYS) <= END),
        "needs_reconsent": sum(1 for _, _, n in granted if n is None or n < MATERIAL_VERSION),
    }


def expected_requests(final: dict[str, PrivacyRequest]) -> dict[str, Any]:
    received = {name: r for name, _, _, r, _ in REQUESTS}
    closing = {name: steps[-1][1] for name, _, _, _, steps in REQUESTS if steps and steps[-1][0] != "approve"}
    outcomes = {"complete": "COMPLETED", "reject": "REJECTED", "cancel": "CANCELLED"}
    table = Counter(
        (kind.value, j.value, outcomes.get(steps[-1][0], "OPEN") if steps else "OPEN")
        for name, kind, j, rec, steps in REQUESTS
        if START <= rec < END
    )
    closed = {n: t for n, t in closing.items() if START <= t < END}
    met = sum(1 for n, t in closed.items() if t <= final[n].due_at)
    days = [(t - received[n]).total_seconds() / 86400 for n, t in closed.items()]
    open_names = [n for n, *_ in REQUESTS if n not in closing]
    return {
        "table": dict(table),
        "closed": len(closed),
        "met": met,
        "missed": len(closed) - met,
        "median": round(statistics.median(days), 2),
        "p90": round(statistics.quantiles(days, n=10, method="inclusive")[8], 2),
        "extensions": sum(
            1 for *_, steps in REQUESTS for a, t in steps if a == "extend" and START <= t < END
        ),
        "overdue": sum(1 for n in open_names if final[n].due_at < NOW),
    }


def check(report: ComplianceReport, consents: dict[str, Any], requests: dict[str, Any]) -> None:
    assert {(c.purpose, c.state): c.count for c in report.consents_by_state} == consents["by_state"]
    activity = {}
    for a in report.consent_activity:
        for action, value in (("GRANT", a.grants), ("WITHDRAW", a.withdrawals), ("OBJECT", a.objections)):
            if value:
                activity[(a.month, a.purpose, action)] = value
        assert a.reconfirmations == a.opt_outs == a.expiries == 0
    assert activity == consents["activity"]
    review = {r.purpose: r for r in report.consents_due_for_review}
    assert set(review) == {"marketing_email"}  # the only opt-in purpose with a review rule
    assert review["marketing_email"].reconfirmation_due == consents["reconfirmation_due"]
    assert review["marketing_email"].needs_reconsent == consents["needs_reconsent"]
    assert {(r.type, r.jurisdiction, r.outcome): r.count for r in report.requests} == requests["table"]
    t = report.timeliness
    assert (t.closed, t.met, t.missed) == (requests["closed"], requests["met"], requests["missed"])
    assert t.on_time_percent == round(100 * requests["met"] / requests["closed"], 2)
    assert t.median_days_to_close == pytest.approx(requests["median"], abs=0.011)
    assert t.p90_days_to_close == pytest.approx(requests["p90"], abs=0.011)
    assert t.extensions_granted == requests["extensions"]
    assert t.overdue_now == requests["overdue"]


REPORT_QUERY = """
query($from: DateTime!, $to: DateTime!) {
  complianceReport(from: $from, to: $to) {
    periodFrom periodTo
    consentsByState { purpose state count }
    consentActivity { month purpose grants reconfirmations withdrawals objections optOuts expiries }
    consentsDueForReview { purpose reconfirmationDue needsReconsent }
    requests { type jurisdiction outcome count }
    timeliness {
      closed met missed onTimePercent medianDaysToClose p90DaysToClose extensionsGranted overdueNow
    }
  }
}
"""


async def test_every_figure_matches_the_seeded_data(
    gql: GraphQLClient, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await seed_catalogue(gql)
    await publish_notice(gql, ["marketing_email", "analytics", "essential"], material=("marketing_email",))
    async with workbench(database_url) as bench:
        await seed_consents(bench)
        final = await seed_requests(bench)
        bench.clock.now = NOW
        report = await bench.reports.compliance(AGENT, START, END)
    consents, requests = expected_consents(), expected_requests(final)
    # The data set exercises every figure: both outcomes of the clock, and something on each side.
    for figure in ("met", "missed", "overdue", "extensions"):
        assert requests[figure], figure
    assert consents["needs_reconsent"]
    assert consents["reconfirmation_due"]
    check(report, consents, requests)

    # GraphQL shows the same figures (overdueNow is counted at the real "now" there).
    data = (await gql(REPORT_QUERY, {"from": START.isoformat(), "to": END.isoformat()}, token=agent_token()))[
        "complianceReport"
    ]
    assert data["consentsByState"] == [
        {"purpose": c.purpose, "state": c.state, "count": c.count} for c in report.consents_by_state
    ]
    assert len(data["consentActivity"]) == len(report.consent_activity)
    assert data["requests"] == [
        {"type": r.type, "jurisdiction": r.jurisdiction, "outcome": r.outcome, "count": r.count}
        for r in report.requests
    ]
    assert data["timeliness"]["onTimePercent"] == report.timeliness.on_time_percent
    assert data["timeliness"]["p90DaysToClose"] == report.timeliness.p90_days_to_close

    # The CSV: one section per table, readable by any CSV reader.
    sections = parse_sections(render_csv(report))
    assert list(sections) == [
        "report", "consents_by_state", "consent_activity",
        "consents_due_for_review", "requests", "timeliness",
    ]  # fmt: skip
    assert sections["timeliness"][0]["met"] == str(requests["met"])
    assert sum(int(r["count"]) for r in sections["requests"]) == sum(requests["table"].values())

    # And through the command, as an operator runs it.
    for name in [n for n in os.environ if n.startswith("DSR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSR_DATABASE_URL", database_url)
    code, out = await run_cli("report", "--from", "2026-01-01", "--to", "2027-01-01", "--format", "csv")
    assert code == 0
    from_cli = parse_sections(out)
    assert from_cli["requests"] == sections["requests"]
    assert from_cli["consents_by_state"] == sections["consents_by_state"]


async def test_staff_only_and_a_backwards_period_is_refused(gql: GraphQLClient) -> None:
    from tests.support.app import subject_token

    response = await gql.post(REPORT_QUERY, {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"},
                              token=subject_token("s1"))  # fmt: skip
    assert response.json()["errors"][0]["message"].startswith("Only staff")
    response = await gql.post(REPORT_QUERY, {"from": "2027-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
                              token=agent_token())  # fmt: skip
    assert "to: Must be after `from`" in response.json()["errors"][0]["message"]


def parse_sections(text: str) -> dict[str, list[dict[str, str]]]:
    sections: dict[str, list[dict[str, str]]] = {}
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("# ")
        sections[lines[0][2:]] = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    return sections


async def run_cli(*argv: str) -> tuple[int, str]:
    import contextlib

    buffer = io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(buffer):
            return cli.main(list(argv))

    code = await asyncio.to_thread(call)
    return code, buffer.getvalue()
