"""Webhook rules without I/O: validation, backoff, the signed envelope, the secret box."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dsr_gateway.connectors.secret_box import SecretBox, SecretUnreadable
from dsr_gateway.connectors.webhook_signing import sign, verify_signature
from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.domain.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEventType,
    envelope,
    retry_delay,
    validate_subscription,
)

SLA = [WebhookEventType.SLA_ALERT]


@pytest.mark.parametrize(
    ("url", "allow_http", "ok"),
    [
        ("https://crm.example/hooks", False, True),
        ("http://crm.example/hooks", False, False),
        ("http://crm.example/hooks", True, True),
        ("http://127.0.0.1:9000/hooks", False, True),
        ("http://localhost/hooks", False, True),
        ("https://", False, False),
        ("mailto:a@b.example", True, False),
        ("https://u:p@crm.example/", False, False),
        ("https://crm.example/" + "a" * 2000, False, False),
    ],
)
def test_subscription_urls(url: str, allow_http: bool, ok: bool) -> None:
    if ok:
        validate_subscription(url, SLA, None, allow_plain_http=allow_http)
    else:
        with pytest.raises(ValidationFailed) as caught:
            validate_subscription(url, SLA, None, allow_plain_http=allow_http)
        assert [p.field for p in caught.value.problems] == ["url"]


@pytest.mark.parametrize(
    ("attempts", "jitter", "seconds"),
    [
        (1, 0.0, 15),
        (1, 0.999999, 30),
        (2, 0.0, 30),
        (3, 0.0, 60),
        (4, 0.5, 180),
        (20, 0.0, 3 * 3600),  # capped at 6 h, then halved by the jitter floor
        (500, 1.0, 6 * 3600),
    ],
)
def test_backoff_doubles_up_to_the_cap_with_jitter(attempts: int, jitter: float, seconds: float) -> None:
    delay = retry_delay(attempts, timedelta(seconds=30), timedelta(hours=6), jitter)
    assert delay.total_seconds() == pytest.approx(seconds, abs=0.01)


def test_backoff_needs_a_failure_count() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay(0, timedelta(seconds=1), timedelta(seconds=2), 0.0)


def test_the_envelope_is_stable_compact_json() -> None:
    delivery = WebhookDelivery(
        id=1,
        subscription_id=2,
        event_id="e-1",
        event_type=WebhookEventType.CONSENT_CHANGED,
        payload={"b": 1, "a": "ä"},
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=None,
        last_status_code=None,
        last_error=None,
        created_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        delivered_at=None,
        redelivery_of=None,
    )
    assert (
        envelope(delivery)
        == (
            '{"createdAt":"2026-03-02T09:00:00Z","data":{"a":"ä","b":1},"id":"e-1","type":"consent.changed"}'
        ).encode()
    )


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature", "body", "now", "ok"),
    [
        ("k" * 32, "1000", None, b"{}", 1000, True),
        ("k" * 32, "1000", None, b"{}", 1299, True),
        ("k" * 32, "1000", None, b"{}", 1301, False),  # too old: a replay
        ("k" * 32, "1000", "v1=" + "0" * 64, b"{}", 1000, False),
        ("k" * 32, "999", None, b"{}", 1000, False),  # timestamp is part of what is signed
        ("k" * 32, "abc", None, b"{}", 1000, False),
        ("k" * 32, "1000", "v1=" + "0" * 64 + ",{good}", b"{}", 1000, True),  # any of several matches
    ],
)
def test_signature_verification(
    secret: str, timestamp: str, signature: str | None, body: bytes, now: int, ok: bool
) -> None:
    good = sign(secret, 1000, body)
    header = good if signature is None else signature.replace("{good}", good)
    assert verify_signature(secret, timestamp, header, body, now=now) is ok


def test_the_signature_covers_the_body() -> None:
    header = sign("k" * 32, 1000, b'{"a":1}')
    assert not verify_signature("k" * 32, "1000", header, b'{"a":2}', now=1000)
    assert not verify_signature("x" * 32, "1000", header, b'{"a":1}', now=1000)


def test_secret_box_round_trip_and_refusals() -> None:
    box = SecretBox("key-one")
    stored = box.encrypt("whsec_abc")
    assert stored.startswith("v1.")
    assert "whsec" not in stored
    assert box.encrypt("whsec_abc") != stored  # a fresh nonce each time
    assert box.decrypt(stored) == "whsec_abc"
    with pytest.raises(SecretUnreadable):
        SecretBox("key-two").decrypt(stored)
    with pytest.raises(SecretUnreadable):
        SecretBox("key-one", purpose="other").decrypt(stored)
    with pytest.raises(SecretUnreadable):
        box.decrypt(stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB"))
    with pytest.raises(SecretUnreadable):
        box.decrypt("plain")
