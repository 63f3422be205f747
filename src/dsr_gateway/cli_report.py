"""`dsr-gateway report --from DATE --to DATE [--format csv|json]`: the compliance report for files.

CSV: one section per table, each a `# name` line, a header line and its rows, sections separated by
an empty line (docs/audit.md lists the sections and columns). Dates are UTC; `--to` is exclusive.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.migrate import upgrade
from dsr_gateway.db.repositories.reports import SqlReportQueries
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.reports import ComplianceReport
from dsr_gateway.services.reports import ReportService


def parse_when(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC when no offset is given)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _table(name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [[f"# {name}"], list(header), *[list(r) for r in rows], []]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def render_csv(report: ComplianceReport) -> str:
    t = report.timeliness
    lines: list[list[Any]] = []
    lines += _table(
        "report",
        ["from", "to", "generated_at"],
        [[report.period.start.isoformat(), report.period.end.isoformat(), report.generated_at.isoformat()]],
    )
    lines += _table(
        "consents_by_state",
        ["purpose", "state", "count"],
        [[c.purpose, c.state, c.count] for c in report.consents_by_state],
    )
    lines += _table(
        "consent_activity",
        [
            "month",
            "purpose",
            "grants",
            "reconfirmations",
            "withdrawals",
            "objections",
            "opt_outs",
            "expiries",
        ],
        [
            [
                a.month,
                a.purpose,
                a.grants,
                a.reconfirmations,
                a.withdrawals,
                a.objections,
                a.opt_outs,
                a.expiries,
            ]
            for a in report.consent_activity
        ],
    )
    lines += _table(
        "consents_due_for_review",
        ["purpose", "reconfirmation_due", "needs_reconsent"],
        [[r.purpose, r.reconfirmation_due, r.needs_reconsent] for r in report.consents_due_for_review],
    )
    lines += _table(
        "requests",
        ["type", "jurisdiction", "outcome", "count"],
        [[r.type, r.jurisdiction, r.outcome, r.count] for r in report.requests],
    )
    lines += _table(
        "timeliness",
        [
            "closed",
            "met",
            "missed",
            "on_time_percent",
            "median_days_to_close",
            "p90_days_to_close",
            "extensions_granted",
            "overdue_now",
        ],
        [
            [
                t.closed,
                t.met,
                t.missed,
                _number(t.on_time_percent),
                _number(t.median_days_to_close),
                _number(t.p90_days_to_close),
                t.extensions_granted,
                t.overdue_now,
            ]
        ],
    )
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines[:-1])
    return out.getvalue()


def render_json(report: ComplianceReport) -> str:
    data = asdict(report)
    data["timeliness"]["on_time_percent"] = report.timeliness.on_time_percent
    return json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v), indent=2)


async def report(database_url: str, start: str, end: str, fmt: str) -> int:
    try:
        period = parse_when(start), parse_when(end)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        factory = make_session_factory(engine)
        service = ReportService(
            lambda: SqlUnitOfWork(factory), SqlReportQueries(engine), lambda: datetime.now(UTC)
        )
        try:
            result = await service.compliance(Principal.system(), *period)
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
    finally:
        await engine.dispose()
    sys.stdout.write(render_csv(result) if fmt == "csv" else render_json(result) + "\n")
    return 0
