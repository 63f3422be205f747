"""The messages the gateway sends to subjects: their kinds and what a rendered one holds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MessageKind(StrEnum):
    """The kinds of message; the value is what the outbox stores and GraphQL shows."""

    REQUEST_RECEIVED = "REQUEST_RECEIVED"
    VERIFICATION_CODE = "VERIFICATION_CODE"
    INFORMATION_NEEDED = "INFORMATION_NEEDED"
    EXTENSION_NOTICE = "EXTENSION_NOTICE"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    RECONFIRMATION_REMINDER = "RECONFIRMATION_REMINDER"
    NOTICE_CHANGED = "NOTICE_CHANGED"
    PERMISSION_CHANGED = "PERMISSION_CHANGED"
    BREACH_NOTICE = "BREACH_NOTICE"

    @property
    def template(self) -> str:
        """The file name stem of the kind's templates (one template per kind): `request_received`."""
        return self.value.lower()


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """A message ready for a mailer: a one-line subject, a plain-text body and an HTML body."""

    subject: str
    text: str
    html: str
    language: str


# The variables each kind's templates use, besides `organisation` and `privacy_contact` (given to every
# message by the renderer's defaults). Those marked "or None" must still be passed: the templates run with
# StrictUndefined, so a forgotten variable is an error rather than a blank in a customer's inbox.
MESSAGE_FIELDS: dict[MessageKind, tuple[str, ...]] = {
    MessageKind.REQUEST_RECEIVED: (
        "request_reference",
        "request_type",
        "received_on",
        "due_on",
        "status_url",
    ),
    MessageKind.VERIFICATION_CODE: ("request_type", "code", "expires_in_minutes"),
    MessageKind.INFORMATION_NEEDED: (
        "request_reference",
        "information_needed",
        "respond_url",
        "clock_paused",
    ),
    MessageKind.EXTENSION_NOTICE: ("request_reference", "reason", "original_due_on", "new_due_on"),
    MessageKind.COMPLETED: ("request_reference", "request_type", "download_url", "download_expires_on"),
    MessageKind.REJECTED: (
        "request_reference",
        "reason",
        "supervisory_authority_name",
        "supervisory_authority_url",
    ),
    MessageKind.RECONFIRMATION_REMINDER: ("purpose_title", "reconfirm_url", "lapses_on", "unsubscribe_url"),
    MessageKind.NOTICE_CHANGED: ("material", "changes", "reconsent_purposes", "notice_url", "action_url"),
    MessageKind.PERMISSION_CHANGED: (
        "purpose_title",
        "granted",
        "changed_by",
        "changed_on",
        "preferences_url",
    ),
    MessageKind.BREACH_NOTICE: (
        "what_happened",
        "occurred_on",
        "data_categories",
        "likely_consequences",
        "measures_taken",
        "steps_to_take",
    ),
}
COMMON_FIELDS = ("organisation", "privacy_contact")
