"""ChainSealer (db/repositories/chain_sealing.py) seals through a ChainTemplate: every row gets exactly
the sequence, prev_hash and hash the domain's `seal` gives it, chain after chain, whatever the values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dsr_gateway.db.repositories.chain_sealing import CONSENT_SEALER, REQUEST_SEALER, ChainSealer
from dsr_gateway.domain.audit_chain import ChainHead, seal

T = datetime(2026, 11, 29, 9, 30, 15, 123456, tzinfo=UTC)


def consent_row(subject: int, n: int) -> dict[str, Any]:
    return {
        "subject_id": subject,
        "purpose_key": ["newsletter", "ads", "profil\u00e9", "emoji \U0001f600"][n % 4],
        "topic": "" if n % 2 else "weekly",
        "channel": ["", "EMAIL", "SMS"][n % 3],
        "action": "GRANT" if n % 3 else "WITHDRAW",
        "method": "API",
        "notice_version": None if n % 5 == 0 else n,
        "origin_app_id": None if n % 2 else 'app "quoted" \\ slash',
        "origin_url": None,
        "origin_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "origin_ip": "203.0.113.0/24",
        "actor_kind": "SUBJECT",
        "actor_id": str(subject),
        "occurred_at": T + timedelta(seconds=n),
        "recorded_at": (T + timedelta(seconds=n)).astimezone(timezone(timedelta(hours=2))),
        "idempotency_key": None if n % 4 else f"key-{n}",
    }


async def _no_reads(statement: Any, parameters: Any = None) -> Any:
    raise AssertionError("every head is given")


@pytest.mark.parametrize("sealer", [CONSENT_SEALER])
async def test_rows_are_sealed_as_the_domain_seals_them(sealer: ChainSealer) -> None:
    rows = [consent_row(subject, n) for n in range(12) for subject in (1, 2, 3)]
    known: dict[Any, ChainHead | None] = {1: None, 2: ChainHead(7, "ab" * 32), 3: None}
    sealed = await sealer.seal_all(_no_reads, rows, known)
    heads = dict(known)
    for row, got in zip(rows, sealed, strict=True):
        expected = seal(heads[row["subject_id"]], sealer.document(row), sealer._layout)
        assert {k: got[k] for k in ("sequence", "prev_hash", "hash")} == {
            k: expected[k] for k in ("sequence", "prev_hash", "hash")
        }
        assert {k: got[k] for k in row} == row  # the row's own values untouched
        heads[row["subject_id"]] = ChainHead(got["sequence"], got["hash"])
    assert [r["sequence"] for r in sealed if r["subject_id"] == 2][:2] == [8, 9]


async def test_a_request_event_with_details_is_sealed_as_the_domain_seals_it() -> None:
    row = {
        "request_id": "r-1",
        "action": "VERIFY",
        "from_status": "RECEIVED",
        "to_status": "VERIFYING",
        "actor_kind": "STAFF",
        "actor_id": "agent-1",
        "occurred_at": T,
        "reason": None,
        "data": {"method": "EMAIL_LINK", "notes": ["a", 1, None, 2.5, True], "nested": {"z": 1, "a": "é"}},
    }
    document = REQUEST_SEALER.document(row)
    (got,) = await REQUEST_SEALER.seal_all(_no_reads, [row], {"r-1": None})
    expected = seal(None, document, REQUEST_SEALER._layout)
    assert (got["sequence"], got["prev_hash"], got["hash"]) == (
        expected["sequence"],
        expected["prev_hash"],
        expected["hash"],
    )


async def test_a_naive_time_is_refused() -> None:
    row = consent_row(1, 1) | {"occurred_at": datetime(2026, 1, 1)}
    with pytest.raises(ValueError, match="naive"):
        await CONSENT_SEALER.seal_all(_no_reads, [row], {1: None})


async def test_a_column_left_out_of_the_row_is_written_as_it_was_hashed() -> None:
    row = consent_row(1, 3)
    del row["origin_url"], row["idempotency_key"]
    (got,) = await CONSENT_SEALER.seal_all(_no_reads, [row], {1: None})
    assert (got["origin_url"], got["idempotency_key"]) == (None, None)  # in the INSERT, as hashed
    expected = seal(None, CONSENT_SEALER.document(row), CONSENT_SEALER._layout)
    assert got["hash"] == expected["hash"]


async def test_the_live_sealer_keeps_no_values_in_memory() -> None:
    rows = [consent_row(subject, n) for n in range(5) for subject in (11, 12)]
    await CONSENT_SEALER.seal_all(_no_reads, rows, {11: None, 12: None})
    assert CONSENT_SEALER._template._texts == {}  # subjects' ids, addresses, agents: not kept
