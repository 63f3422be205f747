"""A refused recipient's address never reaches the failure text (logged, and stored as lastError)."""

from __future__ import annotations

import pytest

from dsr_gateway.connectors.smtp_mailer import SmtpConfig, SmtpMailer
from dsr_gateway.services.ports import DeliveryFailed
from tests.support.smtp import Inbox, smtp_inbox

__all__ = ["smtp_inbox"]

ADDRESS = "Jane.Doe@Example.com"


async def test_a_refused_recipient_is_masked_in_the_failure(smtp_inbox: Inbox) -> None:
    smtp_inbox.refuse.add(ADDRESS)
    mailer = SmtpMailer(SmtpConfig(host=smtp_inbox.host, port=smtp_inbox.port, starttls=False, timeout=5))
    with pytest.raises(DeliveryFailed) as caught:
        await mailer.send(ADDRESS, "Hello", "Body")
    detail = str(caught.value)
    assert caught.value.permanent
    assert "recipient refused" in detail
    assert ADDRESS.lower() not in detail.lower(), detail
    assert "550" in detail
