"""The three webhook events set off by real changes, delivered by the worker's sender to a real HTTP
server: consent.changed (setConsents), request.status_changed (approve), sla.alert (the SLA sweep)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.app import admin_token, agent_token, subject_token
from tests.support.comms_flow_factories import SUBSCRIBE, WEBHOOK_SECRET, comms_app, eventually
from tests.support.consent_factories import choice, seed_catalogue, set_consents
from tests.support.request_factories import APPROVE, act, submit
from tests.support.smtp import Inbox, smtp_inbox
from tests.support.webhook_receiver import running_receiver

__all__ = ["smtp_inbox"]


async def test_each_event_reaches_a_real_receiver_signed(database_url: str, smtp_inbox: Inbox) -> None:
    async with (
        running_receiver() as receiver,
        comms_app(database_url, smtp_inbox, sla_sweep_seconds=0.05) as gql,
    ):
        receiver.secret = WEBHOOK_SECRET
        events = ["CONSENT_CHANGED", "REQUEST_STATUS_CHANGED", "SLA_ALERT"]
        created = await gql(SUBSCRIBE, {"url": receiver.url, "events": events}, token=admin_token())
        assert created["createWebhookSubscription"]["__typename"] == "CreateWebhookSubscriptionSuccess"
        await seed_catalogue(gql)
        await set_consents(gql, choice(), token=subject_token("w-1"))
        # Received 40 days ago under GDPR: overdue, so the sweep raises an alert.
        received_at = (datetime.now(UTC) - timedelta(days=40)).isoformat()
        request = (await submit(gql, agent_token(), subjectExternalId="w-1", receivedAt=received_at))[
            "request"
        ]
        approved = await act(gql, APPROVE, request["id"])
        assert approved["__typename"] == "PrivacyRequestSuccess"

        def types() -> set[str]:
            return {r.body["type"] for r in receiver.received}

        async def all_arrived() -> bool:
            return {"consent.changed", "request.status_changed", "sla.alert"} <= types()

        await eventually(all_arrived)
        assert all(r.signature_ok for r in receiver.received)
        by_type = {r.body["type"]: r for r in receiver.received}
        consent = by_type["consent.changed"].body["data"]
        assert consent["subjectId"] == "w-1"
        assert [(e["purpose"], e["action"], e["actorKind"]) for e in consent["events"]] == [
            ("marketing_email", "GRANT", "SUBJECT")
        ]
        status = [r.body["data"] for r in receiver.received if r.body["type"] == "request.status_changed"]
        assert [(s["action"], s["fromStatus"], s["status"]) for s in status] == [
            ("APPROVE", "SUBMITTED", "IN_PROGRESS")
        ]
        assert status[0]["requestId"] == request["id"]
        alert = by_type["sla.alert"].body["data"]
        assert (alert["requestId"], alert["kind"]) == (request["id"], "OVERDUE")
        assert "w-1@" not in str([r.body for r in receiver.received])  # ids only, never an address
