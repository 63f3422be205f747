"""Sample message contexts and other test data for the communication area."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from dsr_gateway.domain.messages import MessageKind

DEFAULTS: dict[str, Any] = {"organisation": "Shop Example Ltd", "privacy_contact": "privacy@shop.example"}

SAMPLE_CONTEXTS: dict[MessageKind, dict[str, Any]] = {
    MessageKind.REQUEST_RECEIVED: {
        "request_reference": "R-1042",
        "request_type": "access",
        "received_on": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        "due_on": date(2026, 4, 2),
        "status_url": "https://shop.example/privacy/requests/R-1042",
    },
    MessageKind.VERIFICATION_CODE: {"request_type": "erasure", "code": "493817", "expires_in_minutes": 30},
    MessageKind.INFORMATION_NEEDED: {
        "request_reference": "R-1042",
        "information_needed": "The order number of the purchase you want corrected.",
        "respond_url": None,
        "clock_paused": True,
    },
    MessageKind.EXTENSION_NOTICE: {
        "request_reference": "R-1042",
        "reason": "Your request covers twelve systems and several years of records.",
        "original_due_on": date(2026, 4, 2),
        "new_due_on": date(2026, 6, 2),
    },
    MessageKind.COMPLETED: {
        "request_reference": "R-1042",
        "request_type": "access",
        "download_url": "https://gw.example/exports/abc?x=1&y=2",
        "download_expires_on": date(2026, 4, 9),
    },
    MessageKind.REJECTED: {
        "request_reference": "R-1042",
        "reason": "We could not confirm your identity.",
        "supervisory_authority_name": "Information Commissioner's Office",
        "supervisory_authority_url": "https://ico.org.uk/make-a-complaint/",
    },
    MessageKind.RECONFIRMATION_REMINDER: {
        "purpose_title": "Marketing emails",
        "reconfirm_url": "https://gw.example/reconfirm/tok",
        "lapses_on": date(2026, 5, 1),
        "unsubscribe_url": "https://gw.example/unsubscribe/tok2",
    },
    MessageKind.NOTICE_CHANGED: {
        "material": True,
        "changes": ["We now share your purchase history with our delivery partner."],
        "reconsent_purposes": ["Personalised offers"],
        "notice_url": "https://shop.example/privacy",
        "action_url": "https://shop.example/account/privacy",
    },
    MessageKind.PERMISSION_CHANGED: {
        "purpose_title": "Marketing emails",
        "granted": False,
        "changed_by": "a member of our support team",
        "changed_on": date(2026, 3, 2),
        "preferences_url": "https://shop.example/account/privacy",
    },
    MessageKind.BREACH_NOTICE: {
        "what_happened": "A backup file was exposed on a misconfigured server for two days.",
        "occurred_on": date(2026, 2, 20),
        "data_categories": ["Name", "Email address", "Order history"],
        "likely_consequences": "You may receive phishing emails that mention your orders.",
        "measures_taken": "We closed access, rotated credentials and told the regulator.",
        "steps_to_take": ["Be wary of emails asking for your password.", "Change your password."],
    },
}
