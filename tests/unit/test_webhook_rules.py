"""Webhook rules without I/O: validation, the signed envelope, the secret box."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dsr_gateway.connectors.public_addresses import non_public_destination
from dsr_gateway.connectors.secret_box import SecretBox, SecretUnreadable
from dsr_gateway.connectors.webhook_signing import sign, verify_signature
from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.domain.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEventType,
    envelope,
    non_public_address,
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
        ("http://[::1", True, False),  # unbalanced brackets
        ("https://crm.example:99999/hooks", False, False),  # no such port
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
    ("host", "public"),
    [
        ("crm.example", True),  # a name: checked once resolved, at delivery
        ("8.8.8.8", True),
        ("[2001:4860:4860::8888]", True),
        ("127.0.0.1", False),
        ("[::1]", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.20", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("[fd00::1]", False),
        ("[fe80::1]", False),
        ("[::ffff:127.0.0.1]", False),
        ("localhost", False),
        ("db.localhost", False),
        ("printer.local", False),
        ("metadata.google.internal", False),
    ],
)
def test_private_destinations_are_refused_unless_allowed(host: str, public: bool) -> None:
    url = f"https://{host}:8443/hooks"
    assert (non_public_address(host.strip("[]")) is None) is public
    validate_subscription(url, SLA, None, allow_plain_http=False, allow_private_addresses=True)
    if public:
        validate_subscription(url, SLA, None, allow_plain_http=False, allow_private_addresses=False)
    else:
        with pytest.raises(ValidationFailed) as caught:
            validate_subscription(url, SLA, None, allow_plain_http=False, allow_private_addresses=False)
        assert "public addresses only" in caught.value.problems[0].message


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery() -> None:
    answers = {
        "crm.example": ["203.0.113.10", "2001:db8::1"],  # documentation ranges: not global either
        "hooks.example": ["8.8.4.4"],
        "split.example": ["8.8.4.4", "10.0.0.7"],  # one private answer is enough to refuse
        "v6.example": ["fe80::1%eth0"],
    }
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[Any]:
        asked.append((host, port))
        if host not in answers:
            raise OSError("no such host")
        return [(0, 0, 0, "", (address, port)) for address in answers[host]]

    assert await non_public_destination("https://hooks.example/h", resolve) is None
    assert asked == [("hooks.example", 443)]
    assert await non_public_destination("https://split.example:8443/h", resolve) == (
        "split.example resolves to 10.0.0.7, not a public address"
    )
    assert "not a public address" in str(await non_public_destination("https://crm.example/h", resolve))
    assert "fe80::1" in str(await non_public_destination("http://v6.example/h", resolve))
    assert await non_public_destination("https://gone.example/h", resolve) is None  # the request fails
    assert await non_public_destination("https://localhost./h", resolve) == "localhost. is a local name"
    assert await non_public_destination("https://169.254.169.254/latest", resolve) is not None


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
